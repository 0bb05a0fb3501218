//! The body-less fast path: which requests take it, and that what it sends either way is what pingora-proxy sends.

use crate::helpers::raw::{read_response, RawUpstream};
use crate::helpers::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The edge tests' routes (/pub public, /api required, /fwd forwarding Authorization).
fn gateway(up: &RawUpstream, fast_path: bool) -> TestGateway {
    TestGateway::builder()
        .yaml(&crate::edge::routes(up))
        .fast_path(fast_path)
        // One proxy thread, so one pooled upstream connection serves every request.
        .env("AUTHGATE_THREADS", "1")
        .start()
}

/// `authgate_fast_path_requests_total` as the gateway reports it.
async fn fast_path_count(gw: &TestGateway) -> u64 {
    let metrics = gw.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("authgate_fast_path_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("authgate_fast_path_requests_total is exported")
}

/// Send each request on one keep-alive connection; each response's head and body.
async fn exchange(gw: &TestGateway, requests: &[String]) -> Vec<(u16, String, String)> {
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    let mut out = Vec::new();
    for r in requests {
        s.write_all(r.as_bytes()).await.expect("write");
        let resp = read_response(&mut s).await;
        out.push((resp.status, resp.head, resp.body));
    }
    out
}

/// Plain requests, good and bad, each with a fixed request id so runs compare.
fn plain_requests() -> Vec<String> {
    let tok = token(7);
    let req = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: a.example\r\nX-Request-Id: fixed-1\r\n{extra}\r\n")
    };
    vec![
        req("/api/x?q=1", &format!("Authorization: Bearer {tok}\r\n")),
        // Spoofed identity in several spellings, forwarding headers, a URL override.
        req(
            "/api/./y//z",
            &format!(
                "Authorization: Bearer {tok}\r\nX-User-Id: 1\r\nx_user_id: 1\r\n\
                 X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Original-URL: /admin\r\n"
            ),
        ),
        req("/fwd/keep", &format!("Authorization: Bearer {tok}\r\n")),
        req("/pub/open", "Connection: keep-alive\r\n"),
        // Refused at the edge and at the token check: never forwarded.
        req("/api/x", ""),
        req("/api/x", "Authorization: Bearer not.a.token\r\n"),
        // (canonically /api: a token is required)
        req("/pub/%2e%2e/api", ""),
        req("/nowhere", ""),
        // An auth endpoint (the token's user does not exist).
        req("/me", &format!("Authorization: Bearer {tok}\r\n")),
    ]
}

/// Drop the lines that differ between any two runs (dates).
fn comparable(head: &str) -> String {
    head.lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_fast_path_forwards_and_answers_exactly_what_pingora_proxy_does() {
    // One token for both runs: what is forwarded must match byte for byte.
    let requests = plain_requests();
    let mut seen = Vec::new();
    for fast in [true, false] {
        let up = RawUpstream::start().await;
        let gw = gateway(&up, fast);
        let before = fast_path_count(&gw).await;
        let answers = exchange(&gw, &requests).await;
        let taken = fast_path_count(&gw).await - before;
        let expected = if fast { requests.len() as u64 } else { 0 };
        assert_eq!(taken, expected, "fast path on: {fast}");
        let answers: Vec<_> = answers
            .into_iter()
            .map(|(status, head, body)| (status, comparable(&head), body))
            .collect();
        seen.push((up.requests(), answers));
    }
    let (fast, pingora) = (&seen[0], &seen[1]);
    assert_eq!(fast.0.len(), 4, "four requests forwarded: {:#?}", fast.0);
    assert_eq!(fast.0, pingora.0, "what the upstream received");
    for (i, (f, p)) in fast.1.iter().zip(&pingora.1).enumerate() {
        // /me answers the user's own data: the same user on both runs.
        assert_eq!(f, p, "answer to request {i}");
    }
    assert_eq!(
        fast.1.iter().map(|a| a.0).collect::<Vec<_>>(),
        [200, 200, 200, 200, 401, 401, 401, 404, 401]
    );
}

#[tokio::test]
async fn requests_with_a_body_an_upgrade_or_hop_by_hop_headers_go_to_pingora_proxy() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, true);
    let tok = token(7);
    let before = fast_path_count(&gw).await;
    let requests = [
        format!("POST /api/p HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {tok}\r\nContent-Length: 2\r\n\r\nhi"),
        format!("GET /api/g HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {tok}\r\nContent-Length: 0\r\n\r\n"),
        format!("GET /api/t HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {tok}\r\nTE: trailers\r\nConnection: TE\r\n\r\n"),
        format!("GET /api/k HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {tok}\r\nKeep-Alive: timeout=5\r\n\r\n"),
        format!("GET /api/old HTTP/1.0\r\nHost: a\r\nAuthorization: Bearer {tok}\r\nConnection: keep-alive\r\n\r\n"),
    ];
    let answers = exchange(&gw, &requests).await;
    assert!(answers.iter().all(|a| a.0 == 200), "{answers:#?}");
    assert_eq!(
        fast_path_count(&gw).await,
        before,
        "none took the fast path"
    );
    let got = up.requests();
    assert_eq!(got.len(), 5);
    assert!(
        got[0].ends_with("\r\n\r\nhi"),
        "the body was forwarded: {:?}",
        got[0]
    );
    for r in &got[2..4] {
        let lower = r.to_ascii_lowercase();
        assert!(
            !lower.contains("\r\nte:") && !lower.contains("\r\nkeep-alive:"),
            "hop-by-hop headers stripped: {r:?}"
        );
    }
}

/// An upstream that answers one request per connection and then closes it,
/// without saying `Connection: close`: every pooled connection goes stale.
async fn closing_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let opened = std::sync::Arc::new(AtomicUsize::new(0));
    let count = opened.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                // Closed once the gateway has pooled it.
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    (addr, opened)
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_not_an_error() {
    let (addr, opened) = closing_upstream().await;
    let gw = TestGateway::builder()
        .yaml(&format!(
            "upstreams:\n  up: {{ peers: ['{addr}'] }}\nroutes:\n  - {{ prefix: /, upstream: up }}\n"
        ))
        .env("AUTHGATE_THREADS", "1")
        .start();
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            gw.get_status("/x", Some(&token(1))).await,
            200,
            "request {i}"
        );
    }
    assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 5);
}

/// Read up to the end of a response head.
async fn read_head(s: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("a response head within 10 s")
            .expect("read");
        assert_eq!(
            n,
            1,
            "closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn head_gets_the_upstreams_length_and_no_body_either_way() {
    for fast in [true, false] {
        let up = RawUpstream::start().await;
        let gw = gateway(&up, fast);
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(b"HEAD /pub/h HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut s).await.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-length: 2\r\n"), "{head}");
        // No body bytes follow: the next answer on the connection is the next request's.
        s.write_all(b"GET /pub/g HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let next = read_response(&mut s).await;
        assert_eq!(
            (next.status, next.body.as_str()),
            (200, "{}"),
            "fast path: {fast}"
        );
        assert!(up.requests()[0].starts_with("HEAD /pub/h HTTP/1.1\r\n"));
    }
}

#[tokio::test]
async fn a_client_that_leaves_frees_the_upstream_connection_it_was_waiting_on() {
    use tokio::io::AsyncReadExt;
    // An upstream that reads the request, never answers, and records when the
    // gateway gives up on the connection.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let (reached, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            let reached = reached.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            seen.extend_from_slice(&chunk[..n]);
                            // The whole head is here: the request reached the upstream.
                            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                                let _ = reached.send(());
                                seen.clear();
                            }
                        }
                    }
                }
                let _ = tx.send(std::time::Instant::now());
            });
        }
    });
    let gw = TestGateway::builder()
        .yaml(&format!(
            "upstreams:\n  up: {{ peers: ['{addr}'], read_timeout_ms: 30000 }}\nroutes:\n  - {{ prefix: /, upstream: up }}\n"
        ))
        .start();
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    let req = format!(
        "GET /slow HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\n\r\n",
        token(1)
    );
    client.write_all(req.as_bytes()).await.unwrap();
    // Once the request has reached the upstream, leave.
    tokio::time::timeout(Duration::from_secs(5), arrived.recv())
        .await
        .expect("the request reaches the upstream")
        .expect("the upstream task lives");
    let left = std::time::Instant::now();
    drop(client);
    let freed = tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .expect("the gateway closes the upstream connection (read timeout is 30 s)")
        .expect("an upstream connection was made");
    assert!(freed.duration_since(left) < Duration::from_secs(2));
}

/// An upstream that reads a request head, then answers 200 after `delay`.
async fn slow_upstream(delay: Duration) -> std::net::SocketAddr {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    .await;
            });
        }
    });
    addr
}

/// The value of the metric line starting with `series` (0 when absent).
fn metric(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A byte from the client while the upstream has not answered yet (a body-less
/// request has nothing more to send) is the client's error: 400, counted as a
/// client error, never as an upstream failure.
#[tokio::test]
async fn a_client_byte_while_the_upstream_thinks_is_a_client_error() {
    let up = slow_upstream(Duration::from_millis(1500)).await;
    for fast_path in [true, false] {
        let gw = TestGateway::builder()
            .yaml(&format!(
                "upstreams:\n  up: {{ peers: ['{up}'] }}\nroutes:\n  - {{ prefix: /, upstream: up, auth: public }}\n"
            ))
            .fast_path(fast_path)
            .start();
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        // Past the fast path's 50 ms before it watches the client.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(b"X").await.unwrap();
        let r = read_response(&mut s).await;
        assert_eq!(r.status, 400, "fast_path {fast_path}: {r:?}");
        assert_error(&r.json(), "bad_request");
        let m = gw.metrics().await;
        assert_eq!(
            metric(&m, "authgate_client_errors_total{kind=\"bad_request\"}"),
            1,
            "fast_path {fast_path}: {m}"
        );
        assert!(
            !m.contains("authgate_upstream_errors_total{"),
            "fast_path {fast_path}: counted against the upstream: {m}"
        );
        gw.output_containing("client error for request").await;
    }
}
