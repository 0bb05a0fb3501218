//! Browser mode (`docs/browser.md`) over raw sockets: the login page, form login, the session cookie's attributes and stripping, navigation vs fetch, CSRF and open redirects (refreshes and revocation: `browser_refresh.rs`).

use crate::helpers::raw::{send_raw, RawResponse, RawUpstream};
use crate::helpers::*;

pub(crate) const ORIGIN: &str = "https://app.example";
pub(crate) const COOKIE: &str = "__Host-authgate";

pub(crate) fn yaml(up: &RawUpstream, extra: &str) -> String {
    format!(
        "public_url: \"{ORIGIN}\"\n\
         browser: {{ enabled: true, refresh_grace_seconds: 2, allow_registration: true }}\n\
         upstreams:\n  up: {{ peers: ['{}'] }}\nroutes:\n  - {{ prefix: /app, upstream: up }}\n  \
         - {{ prefix: /open, upstream: up, auth: optional }}\n  \
         - {{ prefix: /pub, upstream: up, auth: public }}\n{extra}",
        up.addr
    )
}

pub(crate) fn gateway(up: &RawUpstream, extra: &str) -> TestGateway {
    TestGateway::builder().yaml(&yaml(up, extra)).start()
}

/// Values of response header `name`.
pub(crate) fn header(r: &RawResponse, name: &str) -> Vec<String> {
    r.head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// The session cookie's `name=value` from a response, if it set one.
pub(crate) fn session_cookie(r: &RawResponse) -> Option<String> {
    header(r, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{COOKIE}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

pub(crate) fn form_login(email: &str, password: &str, return_to: &str, origin: &str) -> Vec<u8> {
    form_post("/login", email, password, return_to, origin)
}

/// A browser's form post of the login or registration page to `path`.
pub(crate) fn form_post(
    path: &str,
    email: &str,
    password: &str,
    return_to: &str,
    origin: &str,
) -> Vec<u8> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", email)
        .append_pair("password", password)
        .append_pair("return_to", return_to)
        .finish();
    format!(
        "POST {path} HTTP/1.1\r\nHost: app.example\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Sec-Fetch-Mode: navigate\r\nOrigin: {origin}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Log `user` in through the form; the cookie's `name=value`.
pub(crate) async fn cookie_of(gw: &TestGateway, user: &TestUser) -> String {
    let r = send_raw(gw.addr, &form_login(&user.email, PASSWORD, "/app/", ORIGIN)).await;
    assert_eq!(r.status, 303, "{r:?}");
    session_cookie(&r).expect("a session cookie")
}

/// A page's `fetch` of `path` with the cookie and a JSON `body`, from the site.
pub(crate) fn cookie_json_post(path: &str, cookie: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: app.example\r\nCookie: {cookie}\r\nOrigin: {ORIGIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app.example\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn the_login_page_is_for_browsers_and_the_json_api_is_unchanged() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let page = send_raw(
        gw.addr,
        &get(
            "/login?return_to=%2Fapp%2Fx",
            "Accept: text/html,*/*;q=0.8\r\n",
        ),
    )
    .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(header(&page, "content-type")[0].starts_with("text/html"));
    let csp = &header(&page, "content-security-policy")[0];
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header(&page, "x-frame-options"), ["DENY"]);
    assert_eq!(header(&page, "cache-control"), ["no-store"]);
    for part in [
        "<label for=\"email\">Email</label>",
        "<label for=\"password\">Password</label>",
        "name=\"return_to\" value=\"/app/x\"",
        "action=\"/login\"",
    ] {
        assert!(page.body.contains(part), "{part}: {}", page.body);
    }
    assert!(!page.body.contains("<script"), "no script on the page");
    let css = send_raw(gw.addr, &get("/.authgate/style.css", "")).await;
    assert_eq!(css.status, 200);
    assert!(header(&css, "content-type")[0].starts_with("text/css"));
    // Programs get the JSON API exactly as before.
    let api = send_raw(gw.addr, &get("/login", "Accept: */*\r\n")).await;
    assert_eq!(api.status, 405, "{api:?}");
    assert_eq!(api.json()["error"], "method_not_allowed");
    let user = gw.new_user().await;
    let (status, body) = gw.login(&user.email, PASSWORD).await;
    assert_eq!(status, 200);
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn a_form_login_sets_a_host_only_secure_cookie_and_returns_to_a_safe_path() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let r = send_raw(
        gw.addr,
        &form_login(&user.email, PASSWORD, "/app/page?x=1", ORIGIN),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(header(&r, "location"), [format!("{ORIGIN}/app/page?x=1")]);
    let set = header(&r, "set-cookie");
    assert_eq!(set.len(), 1, "{set:?}");
    let attrs: Vec<&str> = set[0].split("; ").skip(1).collect();
    for a in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(attrs.contains(&a), "{a} in {set:?}");
    }
    assert!(!set[0].contains("Domain="), "host-only: {set:?}");
    assert!(set[0].len() < 1024, "{} bytes", set[0].len());
    assert!(!r.body.contains(&user.email) && r.body.is_empty());
    // The open-redirect catalogue lands on /.
    for evil in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
        "/app\r\nX: 1",
    ] {
        let r = send_raw(gw.addr, &form_login(&user.email, PASSWORD, evil, ORIGIN)).await;
        assert_eq!(r.status, 303, "{evil:?}: {r:?}");
        assert_eq!(header(&r, "location"), [format!("{ORIGIN}/")], "{evil:?}");
    }
}

#[tokio::test]
async fn a_failed_or_cross_site_form_login_re_renders_the_page_and_sets_nothing() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    for (email, password) in [
        (user.email.as_str(), "wrong password!"),
        ("nobody@example.com", PASSWORD),
    ] {
        let r = send_raw(gw.addr, &form_login(email, password, "/app/", ORIGIN)).await;
        assert_eq!(r.status, 401, "{r:?}");
        assert!(r.body.contains("Wrong email or password."), "{}", r.body);
        assert!(r.body.contains("value=\"/app/\""), "return_to kept");
        assert!(session_cookie(&r).is_none());
    }
    // Login CSRF: a form of another site, or one without Origin / Sec-Fetch-Site.
    for origin in ["https://evil.example", "null"] {
        let r = send_raw(gw.addr, &form_login(&user.email, PASSWORD, "/app/", origin)).await;
        assert_eq!(r.status, 403, "{origin}: {r:?}");
        assert!(session_cookie(&r).is_none());
    }
    let body = format!(
        "email={}&password=x&email=b",
        user.email.replace('@', "%40")
    );
    let repeated = format!(
        "POST /login HTTP/1.1\r\nHost: app.example\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Sec-Fetch-Mode: navigate\r\nOrigin: {ORIGIN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = send_raw(gw.addr, repeated.as_bytes()).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("<form"), "the page again");
}

#[tokio::test]
async fn the_cookie_authenticates_a_route_and_never_reaches_the_upstream() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    // An app's own UTF-8 cookie beside it changes nothing.
    let cookies = format!("Cookie: theme=caf\u{e9}; {cookie}; lang=en\r\nX-User-Id: 999\r\n");
    let r = send_raw(gw.addr, &get("/app/x", &cookies)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = up.last().expect("forwarded");
    assert_eq!(seen.header("x-user-id"), [user.id.to_string()]);
    assert_eq!(seen.header("cookie"), ["theme=caf\u{e9}; lang=en"]);
    assert!(
        !up.requests().concat().contains(COOKIE),
        "the cookie leaked upstream"
    );
    // An upstream cannot set the gateway's cookie... (RawUpstream sets none;
    // the rule is checked in unit tests of cookie::sets) and /me takes the cookie.
    let me = send_raw(gw.addr, &get("/me", &format!("Cookie: {cookie}\r\n"))).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.json()["email"], user.email.as_str());
    let sessions = send_raw(gw.addr, &get("/sessions", &format!("Cookie: {cookie}\r\n"))).await;
    assert_eq!(sessions.status, 200, "{sessions:?}");
    // A Bearer token still wins over a cookie, and works without one.
    let r = send_raw(
        gw.addr,
        &get(
            "/app/y",
            &format!("Authorization: Bearer {}\r\n", user.access),
        ),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn without_a_session_a_page_load_goes_to_login_and_a_fetch_gets_401() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let nav = send_raw(
        gw.addr,
        &get(
            "/app/page?x=1",
            "Sec-Fetch-Mode: navigate\r\nAccept: text/html\r\n",
        ),
    )
    .await;
    assert_eq!(nav.status, 302, "{nav:?}");
    assert_eq!(
        header(&nav, "location"),
        [format!("{ORIGIN}/login?return_to=%2Fapp%2Fpage%3Fx%3D1")]
    );
    let by_accept = send_raw(gw.addr, &get("/app/", "Accept: text/html,*/*;q=0.8\r\n")).await;
    assert_eq!(by_accept.status, 302);
    for fetch in [
        "Sec-Fetch-Mode: cors\r\nAccept: text/html\r\n",
        "Accept: application/json\r\n",
        "",
    ] {
        let r = send_raw(gw.addr, &get("/app/", fetch)).await;
        assert_eq!(r.status, 401, "{fetch:?}: {r:?}");
        assert_eq!(r.json()["error"], "missing_token");
    }
    // A tampered cookie is cleared, never a 500; on an optional route it is ignored.
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    // One character of the access part's signature changed.
    let (jwt, refresh) = cookie.rsplit_once('.').unwrap();
    let flipped = if jwt.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{flipped}.{refresh}", &jwt[..jwt.len() - 1]);
    let r = send_raw(gw.addr, &get("/app/", &format!("Cookie: {tampered}\r\n"))).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(header(&r, "set-cookie")
        .iter()
        .any(|c| c.starts_with(&format!("{COOKIE}=;")) && c.contains("Max-Age=0")));
    let r = send_raw(gw.addr, &get("/open/", &format!("Cookie: {tampered}\r\n"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(up.last().unwrap().header("x-user-id").is_empty());
    assert!(header(&r, "set-cookie")
        .iter()
        .any(|c| c.contains("Max-Age=0")));
    assert!(gw.metric("authgate_cookies_cleared_total").await >= 2.0);
    assert_eq!(
        up.requests()
            .iter()
            .filter(|r| r.starts_with("GET /app"))
            .count(),
        0
    );
}

#[tokio::test]
async fn a_cookie_authenticated_unsafe_request_must_come_from_the_site() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    let post = |extra: &str| {
        format!(
            "POST /app/x HTTP/1.1\r\nHost: app.example\r\nCookie: {cookie}\r\n{extra}Content-Length: 2\r\n\r\n{{}}"
        )
        .into_bytes()
    };
    for attack in [
        "",
        "Origin: https://evil.example\r\n",
        "Origin: null\r\n",
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\n",
        "Origin: https://evil.example\r\nSec-Fetch-Site: same-origin\r\n",
    ] {
        let r = send_raw(gw.addr, &post(attack)).await;
        assert_eq!(r.status, 403, "{attack:?}: {r:?}");
        assert_eq!(r.json()["error"], "csrf");
    }
    assert_eq!(up.count(), 0, "a refused request reached the upstream");
    for ok in [
        "Origin: https://app.example\r\n",
        "Sec-Fetch-Site: same-origin\r\n",
    ] {
        let r = send_raw(gw.addr, &post(ok)).await;
        assert_eq!(r.status, 200, "{ok:?}: {r:?}");
    }
    assert_eq!(
        gw.metric("authgate_browser_refusals_total{reason=\"csrf\"}")
            .await,
        6.0
    );
    // Bearer requests are not judged by origin.
    let bearer = format!(
        "POST /app/x HTTP/1.1\r\nHost: app.example\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        user.access
    );
    assert_eq!(send_raw(gw.addr, bearer.as_bytes()).await.status, 200);
    // Nor a gateway endpoint spared: PUT /me with the cookie from another site.
    let put = format!(
        "PUT /me HTTP/1.1\r\nHost: app.example\r\nCookie: {cookie}\r\nOrigin: https://evil.example\r\n\
         Content-Type: application/json\r\nContent-Length: 18\r\n\r\n{{\"username\":\"evil\"}}"
    );
    let r = send_raw(gw.addr, put.as_bytes()).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["error"], "csrf");
}

#[tokio::test]
async fn a_public_route_strips_the_cookie_and_clears_a_bad_one() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    let r = send_raw(
        gw.addr,
        &get("/pub/", &format!("Cookie: {cookie}; x=1\r\n")),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        header(&r, "set-cookie").is_empty(),
        "a good cookie is left alone"
    );
    let seen = up.last().unwrap();
    assert_eq!(seen.header("cookie"), ["x=1"]);
    assert!(
        seen.header("x-user-id").is_empty(),
        "a public route carries no identity"
    );
    let r = send_raw(
        gw.addr,
        &get("/pub/", &format!("Cookie: {COOKIE}=not-ours\r\n")),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        header(&r, "set-cookie")
            .iter()
            .any(|c| c.contains("Max-Age=0")),
        "{r:?}"
    );
    assert!(up.last().unwrap().header("cookie").is_empty());
}

/// Cross-site WebSocket hijacking: a page of another site opening a socket
/// with the browser's cookie. A cookie-authenticated upgrade must come from
/// the site (403 `origin_not_allowed`, the upstream sees nothing).
#[tokio::test]
async fn a_cookie_authenticated_websocket_must_come_from_the_site() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let cookie = cookie_of(&gw, &user).await;
    let upgrade = |origin: &str| {
        format!(
            "GET /app/ws HTTP/1.1\r\nHost: app.example\r\nCookie: {cookie}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
        )
        .into_bytes()
    };
    for evil in ["https://evil.example", "null"] {
        let r = send_raw(gw.addr, &upgrade(evil)).await;
        assert_eq!(r.status, 403, "{evil}: {r:?}");
        assert_eq!(r.json()["error"], "origin_not_allowed");
    }
    assert_eq!(up.count(), 0, "a refused upgrade reached the upstream");
    let label = "authgate_browser_refusals_total{reason=\"origin_not_allowed\"}";
    assert_eq!(gw.metric(label).await, 2.0);
    // From the site's own page it is forwarded (this upstream answers 200, not 101).
    send_raw(gw.addr, &upgrade(ORIGIN)).await;
    assert_eq!(up.count(), 1);
    let seen = up.last().unwrap();
    assert_eq!(seen.header("x-user-id"), [user.id.to_string()]);
    assert!(seen.header("cookie").is_empty());
}
