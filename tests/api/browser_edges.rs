//! Browser mode's edges over raw sockets (`docs/browser.md`): an upstream setting the gateway's cookie, unreadable and oversized form posts, a cookie session ended from another session, and a JSON logout body winning over the cookie.

use crate::browser::{cookie_json_post, cookie_of, form_login, gateway, get, header, ORIGIN};
use crate::helpers::raw::{send_raw, RawUpstream};
use crate::helpers::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream that tries to set the gateway's cookie beside one of its own.
async fn cookie_setting_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\
                    Set-Cookie: __Host-authgate=planted; Path=/; Secure\r\n\
                    Set-Cookie: theirs=1; Path=/\r\nConnection: close\r\n\r\n{}";
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upstream_cannot_set_the_gateways_cookie() {
    let addr = cookie_setting_upstream().await;
    let gw = TestGateway::builder()
        .yaml(&format!(
            "public_url: \"{ORIGIN}\"\nbrowser: {{ enabled: true }}\n\
             upstreams:\n  up: {{ peers: ['{addr}'] }}\nroutes:\n  - {{ prefix: /app, upstream: up, auth: public }}\n"
        ))
        .start();
    let r = send_raw(gw.addr, &get("/app/", "")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(header(&r, "set-cookie"), ["theirs=1; Path=/"]);
}

fn form(body: &str, content_length: usize) -> Vec<u8> {
    format!(
        "POST /login HTTP/1.1\r\nHost: app.example\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Sec-Fetch-Mode: navigate\r\nOrigin: {ORIGIN}\r\nContent-Length: {content_length}\r\n\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test]
async fn an_unreadable_or_oversized_form_gets_the_page_and_changes_nothing() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    for body in ["email=%zz&password=x", "email=a%FF%FE&password=x", "=&&="] {
        let r = send_raw(gw.addr, &form(body, body.len())).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.body.contains("<form"), "the page again: {r:?}");
        assert!(header(&r, "set-cookie").is_empty());
    }
    // Over the auth body cap (64 KiB): refused from its Content-Length, unread.
    let big = 64 * 1024 + 1;
    let r = send_raw(gw.addr, &form("", big)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body.contains("<form"), "{r:?}");
    assert_eq!(
        gw.metric(PASSWORD_HASHES).await,
        0.0,
        "a refused form costs no hash"
    );
}

#[tokio::test]
async fn a_cookie_session_ended_from_another_session_is_refused_within_a_second() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    let list = send_raw(gw.addr, &get("/sessions", &format!("Cookie: {cookie}\r\n"))).await;
    let rows = list.json()["sessions"]
        .as_array()
        .cloned()
        .expect("sessions");
    assert_eq!(rows.len(), 2, "{list:?}");
    let browser = rows
        .iter()
        .find(|r| r["current"] == true)
        .expect("the cookie's session");
    let id = browser["id"].as_str().unwrap();
    // Ended with the JSON session's Bearer token.
    let del = gw
        .request(reqwest::Method::DELETE, &format!("/sessions/{id}"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    eventually(Duration::from_secs(1), "the cookie is refused", || async {
        send_raw(gw.addr, &get("/app/", &format!("Cookie: {cookie}\r\n")))
            .await
            .status
            == 401
    })
    .await;
}

#[tokio::test]
async fn a_json_refresh_token_body_wins_over_the_cookie_on_logout() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    let body = format!("{{\"refresh_token\":\"{}\"}}", user.refresh);
    let r = send_raw(gw.addr, &cookie_json_post("/logout", &cookie, &body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        header(&r, "set-cookie").is_empty(),
        "the cookie's session goes on"
    );
    let (status, _) = gw.refresh(&user.refresh).await;
    assert_eq!(status, 401, "the body's session ended");
    let r = send_raw(gw.addr, &get("/app/", &format!("Cookie: {cookie}\r\n"))).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// The page answers with the JSON API's statuses: failed logins are
/// throttled exactly as for JSON (here the default 5 per account and address),
/// and the sixth is the page with 429 and `Retry-After`, costing no hash.
#[tokio::test]
async fn a_throttled_form_login_is_the_page_with_429_and_retry_after() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let hashes = gw.metric(PASSWORD_HASHES).await;
    for _ in 0..5 {
        let r = send_raw(
            gw.addr,
            &form_login(&user.email, "a wrong password", "/", ORIGIN),
        )
        .await;
        assert_eq!(r.status, 401, "{r:?}");
    }
    let r = send_raw(gw.addr, &form_login(&user.email, PASSWORD, "/", ORIGIN)).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.body.contains("Too many attempts"), "{}", r.body);
    let retry: u64 = header(&r, "retry-after")[0].parse().expect("seconds");
    assert!(retry > 0);
    assert!(
        header(&r, "set-cookie").is_empty(),
        "the right password, but throttled"
    );
    assert_eq!(gw.metric(PASSWORD_HASHES).await, hashes + 5.0);
}
