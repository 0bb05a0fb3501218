//! The protected proxy path: token checks in front of a real echo upstream.

use crate::helpers::*;
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{json, Value};

fn unsigned_token(user: u64) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({"user_id": user, "sub": user.to_string(), "iat": now, "exp": now + 60}))
    )
}

#[tokio::test]
async fn valid_token_is_forwarded_intact_with_user_id_and_no_spoofing() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let user = gw.new_user().await;
    let id = user.id.to_string();

    let r = gw
        .request(Method::PATCH, "/api/items/7?x=1&y=%20z")
        .bearer_auth(&user.access)
        .header("X-User-Id", "999")
        .header("x-user-id", "998")
        .header("X-USER-ID", "997")
        .header("X-Custom", "kept")
        .body("raw body bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().contains_key("x-request-id"),
        "request id echoed"
    );
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "PATCH");
    assert_eq!(echo["path"], "/api/items/7");
    assert_eq!(echo["query"], "x=1&y=%20z");
    assert_eq!(echo["body"], "raw body bytes");
    assert_eq!(header_values(&echo, "x-custom"), vec!["kept"]);
    assert_eq!(
        header_values(&echo, "x-user-id"),
        vec![id.as_str()],
        "only the gateway's X-User-Id"
    );
    assert!(
        header_values(&echo, "authorization").is_empty(),
        "the token stays at the gateway unless the route forwards it"
    );
    assert_eq!(header_values(&echo, "x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(
        header_values(&echo, "host"),
        vec![gw.addr.to_string()],
        "Host is passed through"
    );
}

#[tokio::test]
async fn large_proxied_bodies_are_streamed_without_the_auth_cap() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let body = vec![b'a'; 3 * 1024 * 1024];
    let r = gw
        .request(Method::POST, "/upload")
        .bearer_auth(jwt(SECRET, Algorithm::HS256, 5, 60))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["body_len"], 3 * 1024 * 1024);
}

#[tokio::test]
async fn bad_tokens_are_401_and_never_reach_the_upstream() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let refresh = gw.new_user().await.refresh;
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "missing_token"),
        (
            "not bearer",
            Some(format!("Basic {}", "dXNlcjpwYXNz")),
            "missing_token",
        ),
        ("empty bearer", Some("Bearer ".into()), "missing_token"),
        (
            "malformed",
            Some("Bearer not.a.jwt".into()),
            "invalid_token",
        ),
        (
            "other key",
            Some(format!(
                "Bearer {}",
                jwt(
                    "another-secret-0123456789abcdef0123456789",
                    Algorithm::HS256,
                    1,
                    60
                )
            )),
            "invalid_token",
        ),
        (
            "other algorithm",
            Some(format!("Bearer {}", jwt(SECRET, Algorithm::HS512, 1, 60))),
            "invalid_token",
        ),
        (
            "alg none",
            Some(format!("Bearer {}", unsigned_token(1))),
            "invalid_token",
        ),
        (
            "expired",
            Some(format!("Bearer {}", jwt(SECRET, Algorithm::HS256, 1, -5))),
            "token_expired",
        ),
        (
            "refresh token",
            Some(format!("Bearer {refresh}")),
            "invalid_token",
        ),
    ];
    for (what, auth, code) in cases {
        let mut req = gw.request(Method::GET, "/api/private");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(r.headers()["content-type"], "application/json", "{what}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        assert_error(&r.json().await.unwrap(), code);
    }
    assert_eq!(up.hits(), 0, "the upstream saw a rejected request");
}

#[tokio::test]
async fn access_tokens_expire_after_their_ttl() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .env("AUTHGATE_ACCESS_TTL", "1")
        .start();
    let user = gw.new_user().await;
    let r = gw.get_as(&user, "/api").await;
    assert_eq!(r.status(), 200, "fresh token works");
    // Time passing is the behaviour under test: the 1 s token must be past its expiry.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let r = gw.get_as(&user, "/api").await;
    assert_eq!(r.status(), 401, "expired token refused");
    assert_error(&r.json().await.unwrap(), "token_expired");
    let r = gw.get_as(&user, "/me").await;
    assert_eq!(r.status(), 401, "expired token refused by /me");
    let (s, b) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 200);
    let r = gw
        .get("/api", Some(b["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), 200, "refreshed token works");
}

#[tokio::test]
async fn unreachable_upstream_is_a_json_502() {
    let dead = DeadPort::new();
    let gw = TestGateway::builder().upstream(dead.addr).start();
    let r = gw
        .get("/api", Some(&jwt(SECRET, Algorithm::HS256, 1, 60)))
        .await;
    assert_eq!(r.status(), 502);
    assert_error(&r.json().await.unwrap(), "bad_gateway");
}

/// One HTTP/1.1 connection, reused for every request: a closed connection fails the next send.
async fn one_connection(
    gw: &TestGateway,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>> {
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

fn request(
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "gw");
    if let Some(a) = auth {
        b = b.header("authorization", format!("Bearer {a}"));
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    b.body(http_body_util::Full::new(bytes::Bytes::from(
        body.to_owned(),
    )))
    .unwrap()
}

#[tokio::test]
async fn connections_stay_open_across_401s_auth_answers_and_proxied_requests() {
    use http_body_util::BodyExt;
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let good = jwt(SECRET, Algorithm::HS256, 3, 60);
    let mut conn = one_connection(&gw).await;
    let steps = [
        ("GET", "/api/a", None, "", 401),
        ("GET", "/api/b", Some(good.as_str()), "", 200),
        ("POST", "/api/c", Some("bad"), "{\"x\":1}", 401),
        (
            "POST",
            "/login",
            None,
            "{\"email\":\"x@example.com\",\"password\":\"whatever1\"}",
            401,
        ),
        ("POST", "/register", None, "{bad json", 400),
        ("GET", "/register", None, "", 405),
        ("GET", "/me", Some(good.as_str()), "", 401),
        ("GET", "/api/d", Some(good.as_str()), "", 200),
    ];
    for (method, path, auth, body, status) in steps {
        conn.ready()
            .await
            .unwrap_or_else(|e| panic!("connection closed before {method} {path}: {e}"));
        let resp = conn
            .send_request(request(method, path, auth, body))
            .await
            .unwrap_or_else(|e| panic!("{method} {path} on the reused connection: {e}"));
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        resp.into_body().collect().await.unwrap();
    }
}

/// A gateway that closes client connections idle for 1 s.
fn one_second_keepalive() -> TestGateway {
    TestGateway::builder()
        .yaml("keepalive_timeout_seconds: 1\n")
        .start()
}

/// Assert the gateway closes `s` (EOF, nothing sent first) within 5 s.
async fn assert_closed_soon(s: &mut tokio::net::TcpStream, what: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{what} not closed: {closed:?}");
}

#[tokio::test]
async fn idle_client_connections_are_closed_after_the_keepalive_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = one_second_keepalive();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /me HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    // The connection stays open for the next request, then closes once idle for 1 s.
    assert_closed_soon(&mut s, "idle connection").await;
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed_after_the_keepalive_timeout() {
    // Pingora's own loop waits a fixed 60 s here; the operator's setting must apply.
    let gw = one_second_keepalive();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    assert_closed_soon(&mut s, "silent connection").await;
}

#[tokio::test]
async fn a_request_sent_in_pieces_after_an_idle_pause_is_served_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The gateway waits for the first byte outside the proxy, then hands the
    // connection over: the byte it peeked at must still be part of the request.
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let token = token(7);
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    for round in 0..2 {
        // The pauses are the behaviour under test: an idle connection, then a request in pieces.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let req =
            format!("GET /api/piece HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n");
        let (first, rest) = req.as_bytes().split_at(1);
        s.write_all(first).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        s.write_all(rest).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "round {round}: {head}");
    }
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn request_headers_larger_than_the_read_buffer_arrive_whole() {
    // The default read buffer is 1 KiB; a big cookie must still reach the upstream intact.
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let cookie: String = (0..6000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    for _ in 0..3 {
        let echo: Value = gw
            .request(Method::GET, "/api/big")
            .bearer_auth(token(7))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(header_values(&echo, "cookie"), vec![cookie.clone()]);
        assert_eq!(header_values(&echo, "x-user-id"), vec!["7".to_owned()]);
    }
}

#[tokio::test]
async fn a_refused_large_upload_still_gets_its_401() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    // Too large to drain for keep-alive, so the gateway closes. 2 MiB is more than
    // the loopback socket buffers absorb (without lingering this fails every time
    // here) and less than what they absorb plus the 1 MiB the gateway lingers on.
    for _ in 0..5 {
        // A new client (and connection) each time, as the gateway closes the last one.
        let r = client()
            .post(gw.url("/upload"))
            .body(vec![b'a'; 2 * 1024 * 1024])
            .send()
            .await
            .expect("the 401 arrives instead of a reset");
        assert_eq!(r.status(), 401);
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn with_the_pingora_engine_pingoras_own_loop_serves_and_keeps_connections_alive() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .http1_engine("pingora")
        .yaml("keepalive_timeout_seconds: 1\n")
        .start();
    let user = gw.new_user().await;
    // Several requests on one connection (reqwest keeps it alive), then the idle close.
    for _ in 0..3 {
        assert_eq!(gw.get_as(&user, "/api/x").await.status(), 200);
    }
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /me HTTP/1.1\r\nHost: gw\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    }
    assert_closed_soon(&mut s, "idle connection (Pingora's loop)").await;
}

/// The older keys still work, with a warning naming the engine they mean;
/// the combination that used to be accepted and do nothing (the fast path
/// without parking) says so, and serves through pingora-proxy; beside
/// `http1_engine` either is refused at load.
#[tokio::test]
async fn the_deprecated_engine_keys_still_work_with_a_warning_and_never_beside_http1_engine() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .http1_engine("")
        .yaml("idle_parking: false\nfast_path: true\n")
        .start();
    let user = gw.new_user().await;
    assert_eq!(gw.get_as(&user, "/api/x").await.status(), 200);
    let log = gw
        .output_containing("deprecated: this is `http1_engine: pingora`")
        .await;
    assert!(log.contains("fast_path: true had no effect"), "{log}");
    assert_eq!(gw.metric("authgate_fast_path_requests_total").await, 0.0);
    let (code, out) = check_config(
        "http1_engine: parked\nfast_path: false\n",
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_ne!(
        code,
        Some(0),
        "both kinds of key at once must be refused: {out}"
    );
    assert!(out.contains("http1_engine"), "{out}");
}
