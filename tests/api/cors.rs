//! CORS (`docs/cors.md`): preflights answered by the gateway and never forwarded, refusals, and the headers of actual answers on both engines.

use crate::helpers::raw::{send_raw, RawResponse};
use crate::helpers::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream that counts requests and answers with CORS headers of its own
/// (`*`, which the gateway must replace).
struct CorsUpstream {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl CorsUpstream {
    async fn start() -> CorsUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            seen.fetch_add(1, Ordering::SeqCst);
                            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\
                                Access-Control-Allow-Origin: *\r\n\
                                Access-Control-Expose-Headers: X-Secret\r\n\
                                Vary: Accept-Encoding\r\n\r\n{}";
                            if s.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        CorsUpstream { addr, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

const CORS: &str = r#"
cors:
  allowed_origins: ['https://App.example:443', 'http://localhost:5173']
  allow_credentials: true
  allowed_headers: [Authorization, Content-Type]
  max_age_seconds: 300
"#;

fn gateway(up: &CorsUpstream, cors: &str, fast_path: Option<bool>) -> TestGateway {
    let yaml = format!(
        "upstreams:\n  up: {{ peers: ['{}'] }}\nroutes:\n  - {{ prefix: /pub, upstream: up, auth: public }}\n  - {{ prefix: /api, upstream: up }}\n  - {{ prefix: /ro, upstream: up, auth: public, methods: [GET, HEAD] }}\n{cors}",
        up.addr
    );
    let b = TestGateway::builder().yaml(&yaml);
    match fast_path {
        Some(on) => b.fast_path(on).start(),
        None => b.start(),
    }
}

/// The values of header `name` in a raw response head.
fn header(r: &RawResponse, name: &str) -> Vec<String> {
    r.head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

fn request(method: &str, path: &str, headers: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: a.example\r\n{headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn preflight(path: &str, origin: &str, method: &str, headers: &str) -> Vec<u8> {
    request(
        "OPTIONS",
        path,
        &format!(
            "Origin: {origin}\r\nAccess-Control-Request-Method: {method}\r\nAccess-Control-Request-Headers: {headers}\r\n"
        ),
    )
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_here() {
    let up = CorsUpstream::start().await;
    let gw = gateway(&up, CORS, None);
    // Another spelling of a listed origin, headers in any case, a required route without a token.
    let r = send_raw(
        gw.addr,
        &preflight(
            "/api/x",
            "https://APP.example",
            "DELETE",
            "authorization, CONTENT-TYPE",
        ),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        ["https://app.example"]
    );
    assert_eq!(header(&r, "access-control-allow-methods"), ["DELETE"]);
    assert_eq!(
        header(&r, "access-control-allow-headers"),
        ["Authorization, Content-Type"]
    );
    assert_eq!(header(&r, "access-control-max-age"), ["300"]);
    assert_eq!(header(&r, "access-control-allow-credentials"), ["true"]);
    assert_eq!(header(&r, "vary"), ["Origin"]);
    // A route's `methods`, and an auth endpoint's own.
    let r = send_raw(
        gw.addr,
        &preflight("/ro/x", "http://localhost:5173", "GET", ""),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(header(&r, "access-control-allow-methods"), ["GET, HEAD"]);
    let r = send_raw(
        gw.addr,
        &preflight("/login", "https://app.example", "POST", "content-type"),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(header(&r, "access-control-allow-methods"), ["POST"]);
    assert_eq!(up.hits(), 0, "a preflight is never forwarded");
}

#[tokio::test]
async fn refused_preflights_are_never_forwarded_and_allow_nothing() {
    let up = CorsUpstream::start().await;
    let gw = gateway(&up, CORS, None);
    let cases: [(Vec<u8>, u16, &str); 7] = [
        (preflight("/pub/x", "https://evil.example", "GET", ""), 403, "origin_not_allowed"),
        (preflight("/pub/x", "https://sub.app.example", "GET", ""), 403, "origin_not_allowed"),
        (preflight("/pub/x", "http://app.example", "GET", ""), 403, "origin_not_allowed"),
        (preflight("/pub/x", "null", "GET", ""), 403, "origin_not_allowed"),
        (preflight("/ro/x", "https://app.example", "POST", ""), 403, "cors_method_not_allowed"),
        (
            preflight("/pub/x", "https://app.example", "GET", "authorization, x-debug"),
            403,
            "cors_header_not_allowed",
        ),
        (
            request(
                "OPTIONS",
                "/pub/x",
                "Origin: https://app.example\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n",
            ),
            400,
            "invalid_origin",
        ),
    ];
    for (req, status, code) in cases {
        let r = send_raw(gw.addr, &req).await;
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.json()["error"], code, "{r:?}");
        assert!(
            header(&r, "access-control-allow-origin").is_empty(),
            "{r:?}"
        );
        assert_eq!(header(&r, "vary"), ["Origin"], "{r:?}");
    }
    assert_eq!(up.hits(), 0, "a refused preflight is never forwarded");
    assert_eq!(
        gw.metric("authgate_cors_refusals_total{reason=\"origin_not_allowed\"}")
            .await,
        4.0
    );
    assert_eq!(
        gw.metric("authgate_cors_refusals_total{reason=\"header_not_allowed\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn answers_carry_the_gateways_cors_headers_on_both_engines() {
    let up = CorsUpstream::start().await;
    for fast_path in [true, false] {
        let gw = gateway(&up, CORS, Some(fast_path));
        for method in ["GET", "POST"] {
            let r = send_raw(
                gw.addr,
                &request(
                    method,
                    "/pub/x",
                    "Origin: https://app.example:443\r\nContent-Length: 0\r\n",
                ),
            )
            .await;
            let at = format!("fast_path {fast_path} {method}: {r:?}");
            assert_eq!(r.status, 200, "{at}");
            assert_eq!(
                header(&r, "access-control-allow-origin"),
                ["https://app.example"],
                "{at}"
            );
            assert_eq!(
                header(&r, "access-control-allow-credentials"),
                ["true"],
                "{at}"
            );
            assert!(
                header(&r, "access-control-expose-headers").is_empty(),
                "{at}"
            );
            assert_eq!(header(&r, "vary"), ["Accept-Encoding", "Origin"], "{at}");

            let r = send_raw(
                gw.addr,
                &request(
                    method,
                    "/pub/x",
                    "Origin: https://evil.example\r\nContent-Length: 0\r\n",
                ),
            )
            .await;
            let at = format!("fast_path {fast_path} {method}: {r:?}");
            assert_eq!(r.status, 200, "{at}");
            assert!(header(&r, "access-control-allow-origin").is_empty(), "{at}");
            assert_eq!(header(&r, "vary"), ["Accept-Encoding", "Origin"], "{at}");
        }
        // The gateway's own answers too: a browser must read the 401 to log in.
        let r = send_raw(
            gw.addr,
            &request("GET", "/api/x", "Origin: https://app.example\r\n"),
        )
        .await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            ["https://app.example"]
        );
        assert_eq!(header(&r, "vary"), ["Origin"]);
    }
    assert_eq!(up.hits(), 8);
}

#[tokio::test]
async fn without_the_section_nothing_changes() {
    let up = CorsUpstream::start().await;
    let gw = gateway(&up, "", None);
    let r = send_raw(
        gw.addr,
        &preflight("/api/x", "https://app.example", "GET", ""),
    )
    .await;
    assert_eq!(r.status, 401, "a preflight carries no token: {r:?}");
    assert!(header(&r, "access-control-allow-origin").is_empty());
    assert!(header(&r, "vary").is_empty());
    let r = send_raw(
        gw.addr,
        &request("GET", "/pub/x", "Origin: https://app.example\r\n"),
    )
    .await;
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        ["*"],
        "the upstream's own: {r:?}"
    );
    assert_eq!(header(&r, "vary"), ["Accept-Encoding"]);
    assert_eq!(up.hits(), 1);
}
