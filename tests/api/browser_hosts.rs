//! Browser mode for apps on sibling hosts (`cookie_domain`, `return_hosts`; `docs/browser.md`) over raw sockets: the domain cookie, absolute `return_to` only to listed hosts, and their pages passing the CSRF rule.

use crate::browser::{form_login, get, header};
use crate::helpers::raw::{send_raw, RawResponse, RawUpstream};
use crate::helpers::*;

const PUBLIC: &str = "https://auth.example.com";
const APP: &str = "https://app.example.com";
const NAME: &str = "__Secure-authgate";

fn gateway(up: &RawUpstream) -> TestGateway {
    TestGateway::builder()
        .yaml(&format!(
            "public_url: \"{PUBLIC}\"\n\
             browser: {{ enabled: true, cookie_domain: example.com, return_hosts: [app.example.com] }}\n\
             upstreams:\n  up: {{ peers: ['{}'] }}\nroutes:\n  - {{ prefix: /app, upstream: up }}\n",
            up.addr
        ))
        .start()
}

fn cookie(r: &RawResponse) -> Option<String> {
    header(r, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{NAME}=")))
}

#[tokio::test]
async fn a_domain_cookie_returns_only_to_listed_hosts() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up);
    let user = gw.new_user().await;
    let r = send_raw(
        gw.addr,
        &form_login(&user.email, PASSWORD, &format!("{APP}/dash?x=1"), PUBLIC),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(header(&r, "location"), [format!("{APP}/dash?x=1")]);
    let set = cookie(&r).expect("the domain cookie");
    for a in [
        "Domain=example.com",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(set.split("; ").any(|x| x == a), "{a} in {set}");
    }
    let pair = set.split(';').next().unwrap().to_owned();
    for evil in [
        "https://evil.com/",
        "https://app.example.com.evil.com/",
        "https://app.example.com@evil.com/",
        "http://app.example.com/",
        "https://docs.example.com/",
        "https://app.example.com//evil.com",
    ] {
        let r = send_raw(gw.addr, &form_login(&user.email, PASSWORD, evil, PUBLIC)).await;
        assert_eq!(header(&r, "location"), [format!("{PUBLIC}/")], "{evil}");
    }
    // The login page carries a listed target, and drops another.
    let html = "Accept: text/html\r\n";
    let page = send_raw(
        gw.addr,
        &get("/login?return_to=https%3A%2F%2Fapp.example.com%2Fx", html),
    )
    .await;
    assert!(
        page.body.contains(&format!("value=\"{APP}/x\"")),
        "{}",
        page.body
    );
    let page = send_raw(
        gw.addr,
        &get("/login?return_to=https%3A%2F%2Fevil.com%2Fx", html),
    )
    .await;
    assert!(
        page.body.contains("name=\"return_to\" value=\"/\""),
        "{}",
        page.body
    );
    // The cookie works, a listed app's page passes the CSRF rule, another site's does not.
    let r = send_raw(gw.addr, &get("/app/", &format!("Cookie: {pair}\r\n"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let post = |origin: &str| {
        format!(
            "POST /app/x HTTP/1.1\r\nHost: auth.example.com\r\nCookie: {pair}\r\nOrigin: {origin}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    assert_eq!(send_raw(gw.addr, &post(APP)).await.status, 200);
    assert_eq!(
        send_raw(gw.addr, &post("https://evil.com")).await.status,
        403
    );
    // Logout clears the cookie where it was set: with its Domain.
    let logout = format!(
        "POST /logout HTTP/1.1\r\nHost: auth.example.com\r\nCookie: {pair}\r\nOrigin: {APP}\r\nContent-Length: 0\r\n\r\n"
    );
    let r = send_raw(gw.addr, logout.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let cleared = cookie(&r).expect("cleared");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Domain=example.com"),
        "{cleared}"
    );
}
