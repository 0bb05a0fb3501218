//! Request smuggling over raw sockets, through both engines: for each framing trick, what the upstream actually received.
//!
//! A desync needs two parsers that split one byte stream differently. Each
//! test sends the trick exactly as written, then a request of its own on the
//! same socket where it matters, and asserts the upstream got nothing it could
//! read as a second, unchecked request (no identity header, no path the
//! gateway did not route).

use crate::helpers::raw::{closed, try_read_response, RawResponse, RawUpstream};
use crate::helpers::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A gateway through each engine: /pub public, /api a token required (the edge tests' routes).
fn gateways(up: &RawUpstream) -> [(bool, TestGateway); 2] {
    [true, false].map(|fast_path| {
        (
            fast_path,
            TestGateway::builder()
                .yaml(&crate::edge::routes(up))
                .fast_path(fast_path)
                .start(),
        )
    })
}

/// Send `bytes` on a fresh connection; read up to `answers` responses (fewer if
/// the gateway closes first) and whether it closed the connection afterwards.
async fn send(gw: &TestGateway, bytes: &[u8], answers: usize) -> (Vec<RawResponse>, bool) {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..answers {
        let Some(r) = try_read_response(&mut s).await else {
            break;
        };
        out.push(r);
        if out
            .last()
            .is_some_and(|r| r.head.to_ascii_lowercase().contains("connection: close"))
        {
            break;
        }
    }
    (out, closed(&mut s).await)
}

/// A request no client may get past the edge: /api without a token, with a spoofed identity.
const SMUGGLED: &str = "GET /api/admin HTTP/1.1\r\nHost: a\r\nX-User-Id: 1\r\n\r\n";

/// Nothing the upstream received is, or contains, the smuggled request.
fn nothing_smuggled(up: &RawUpstream, what: &str) {
    for seen in up.requests() {
        assert!(!seen.contains("/api/admin"), "{what}: {seen:?}");
        assert!(
            !seen.to_ascii_lowercase().contains("x-user-id"),
            "{what}: an identity header reached the upstream: {seen:?}"
        );
    }
}

#[tokio::test]
async fn conflicting_content_lengths_are_refused_and_the_connection_closed() {
    let up = RawUpstream::start().await;
    for (fast_path, gw) in gateways(&up) {
        for lengths in [
            "Content-Length: 5\r\nContent-Length: 39\r\n",
            "Content-Length: 5, 39\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 0x5\r\n",
        ] {
            let req = format!("POST /pub/x HTTP/1.1\r\nHost: a\r\n{lengths}\r\nhello{SMUGGLED}");
            let (r, closed) = send(&gw, req.as_bytes(), 2).await;
            assert_eq!(r.len(), 1, "fast_path {fast_path}, {lengths:?}: {r:?}");
            assert_eq!(
                r[0].status, 400,
                "fast_path {fast_path}, {lengths:?}: {r:?}"
            );
            assert!(closed, "fast_path {fast_path}, {lengths:?}: left open");
        }
    }
    assert_eq!(up.count(), 0, "{:?}", up.requests());
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_and_the_connection_closed() {
    let up = RawUpstream::start().await;
    for (fast_path, gw) in gateways(&up) {
        for framing in [
            "Content-Length: 44\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 44\r\n",
            "Content-Length: 44\r\nTransfer-Encoding: CHUNKED\r\n",
        ] {
            let req =
                format!("POST /pub/x HTTP/1.1\r\nHost: a\r\n{framing}\r\n0\r\n\r\n{SMUGGLED}");
            let (r, closed) = send(&gw, req.as_bytes(), 2).await;
            assert_eq!(r.len(), 1, "fast_path {fast_path}, {framing:?}: {r:?}");
            assert_eq!(
                r[0].status, 400,
                "fast_path {fast_path}, {framing:?}: {r:?}"
            );
            assert!(closed, "fast_path {fast_path}, {framing:?}: left open");
        }
    }
    assert_eq!(up.count(), 0, "{:?}", up.requests());
}

/// obs-fold (a header line continued on the next, RFC 9112 §5.2) hides a
/// header from one parser and not another: refused.
#[tokio::test]
async fn obs_fold_is_refused() {
    let up = RawUpstream::start().await;
    for (fast_path, gw) in gateways(&up) {
        for folded in [
            "X-Trace: a\r\n X-User-Id: 1\r\n",
            "X-Trace: a\r\n\tb\r\n",
            "Transfer-Encoding: identity\r\n chunked\r\nContent-Length: 5\r\n",
        ] {
            let req = format!(
                "POST /pub/x HTTP/1.1\r\nHost: a\r\n{folded}Content-Length: 5\r\n\r\nhello"
            );
            let (r, closed) = send(&gw, req.as_bytes(), 1).await;
            assert_eq!(r[0].status, 400, "fast_path {fast_path}, {folded:?}: {r:?}");
            assert!(closed, "fast_path {fast_path}, {folded:?}: left open");
        }
    }
    assert_eq!(up.count(), 0, "{:?}", up.requests());
}

/// A bare LF ends a line for httparse (RFC 9112 §2.2 allows it); the upstream
/// must then get the request the gateway checked, re-framed with CRLF, with
/// nothing a CRLF-only parser would read differently.
#[tokio::test]
async fn bare_lf_requests_reach_the_upstream_as_checked() {
    let up = RawUpstream::start().await;
    for (fast_path, gw) in gateways(&up) {
        let path = format!("/pub/lf-{fast_path}");
        let req = format!("GET {path} HTTP/1.1\nHost: a\nX-User-Id: 1\nConnection: close\n\n");
        let (r, _) = send(&gw, req.as_bytes(), 1).await;
        let seen: Vec<String> = up
            .requests()
            .into_iter()
            .filter(|r| r.contains(&path))
            .collect();
        match r.first().map(|r| r.status) {
            Some(200) => {
                assert_eq!(seen.len(), 1, "{seen:?}");
                assert!(
                    seen[0].starts_with(&format!("GET {path} HTTP/1.1\r\n")),
                    "{seen:?}"
                );
                assert!(
                    !seen[0].replace("\r\n", "").contains('\n'),
                    "fast_path {fast_path}: a bare LF was forwarded: {seen:?}"
                );
            }
            Some(400) => assert!(seen.is_empty(), "{seen:?}"),
            other => panic!("fast_path {fast_path}: {other:?} {r:?}"),
        }
        // A bare LF inside a chunked body's framing is refused.
        let req = format!(
            "POST /pub/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\n0\n\n{SMUGGLED}"
        );
        let (r, closed) = send(&gw, req.as_bytes(), 2).await;
        assert_eq!(r.len(), 1, "fast_path {fast_path}: {r:?}");
        assert_eq!(r[0].status, 400, "fast_path {fast_path}: {r:?}");
        assert!(closed, "fast_path {fast_path}: left open");
    }
    nothing_smuggled(&up, "bare LF");
}

/// Trailers are not headers: an identity in a chunked trailer never reaches
/// the upstream, whose only X-User-Id is the gateway's.
#[tokio::test]
async fn an_identity_header_in_a_chunked_trailer_never_reaches_the_upstream() {
    let up = RawUpstream::start().await;
    for (fast_path, gw) in gateways(&up) {
        for (path, auth) in [
            ("/pub/t", String::new()),
            ("/api/t", format!("Authorization: Bearer {}\r\n", token(7))),
        ] {
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\nX-User-Id: 1\r\nx_user_id: 1\r\n\r\n"
            );
            let (r, _) = send(&gw, req.as_bytes(), 1).await;
            assert_eq!(r[0].status, 200, "fast_path {fast_path} {path}: {r:?}");
            let raw = up.requests().pop().unwrap();
            let lower = raw.to_ascii_lowercase();
            let ids = lower.matches("x-user-id").count() + lower.matches("x_user_id").count();
            let want = usize::from(path == "/api/t");
            assert_eq!(ids, want, "fast_path {fast_path} {path}: {raw:?}");
            if want == 1 {
                assert!(lower.contains("\r\nx-user-id: 7\r\n"), "{raw:?}");
            }
        }
    }
}

/// A pipelined request is a request of its own: never forwarded as part of the
/// first, nor unchecked. (Today neither engine answers it: the connection is
/// closed after the first answer, which RFC 9112 §9.3.2 lets a client retry;
/// if it is ever served, it must be the edge's 401.)
#[tokio::test]
async fn a_pipelined_request_is_checked_on_its_own() {
    let up = RawUpstream::start().await;
    for (fast_path, gw) in gateways(&up) {
        let before = up.count();
        for first in [
            "GET /pub/first HTTP/1.1\r\nHost: a\r\n\r\n".to_owned(),
            "POST /pub/first HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi".to_owned(),
            "POST /pub/first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                .to_owned(),
        ] {
            let (r, _) = send(&gw, format!("{first}{SMUGGLED}").as_bytes(), 2).await;
            let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
            assert!(
                statuses == [200] || statuses == [200, 401],
                "fast_path {fast_path}, {first:?}: {r:?}"
            );
        }
        assert_eq!(up.count(), before + 3, "{:?}", up.requests());
        // A request inside a declared body is body, forwarded as such.
        let req = format!(
            "POST /pub/body HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SMUGGLED}",
            SMUGGLED.len()
        );
        let (r, _) = send(&gw, req.as_bytes(), 1).await;
        assert_eq!(r[0].status, 200, "{r:?}");
        let raw = up.requests().pop().unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, SMUGGLED, "fast_path {fast_path}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-length: {}", SMUGGLED.len())),
            "{head:?}"
        );
        assert_eq!(up.count(), before + 4);
    }
    // Only the body above carries the smuggled text; it was never a request.
    let requests = up.requests();
    assert!(
        requests.iter().all(|r| !r.starts_with("GET /api/admin")),
        "{requests:?}"
    );
}
