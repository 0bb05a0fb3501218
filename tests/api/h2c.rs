//! Cleartext HTTP/2 (`h2c: true`): prior-knowledge HTTP/2 and HTTP/1 on one plain listener, each served as on a listener of its own; a gRPC client inside a mesh reaches a grpcio server with the identity.

use crate::helpers::raw::{closed, read_response};
use crate::helpers::*;
use crate::http2::raw_response;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A gateway on one plain listener, `h2c` as given, the fast path on, and a
/// request head deadline of 500 ms; `/pub` public, the rest needs a token.
fn gateway(up: &Upstream, h2c: bool) -> TestGateway {
    gateway_with_head_deadline(up, h2c, 500)
}

/// `gateway` with a request head deadline of `head_ms`.
fn gateway_with_head_deadline(up: &Upstream, h2c: bool, head_ms: u64) -> TestGateway {
    TestGateway::builder()
        .http1_engine("fast")
        .yaml(&format!(
            r#"
h2c: {h2c}
limits: {{ request_head_timeout_ms: {head_ms} }}
upstreams:
  up: {{ peers: ['{up}'] }}
routes:
  - {{ prefix: /pub, upstream: up, auth: public }}
  - {{ prefix: /, upstream: up }}
"#,
            up = up.addr
        ))
        .start()
}

/// An HTTP/2 connection with prior knowledge over plain TCP.
async fn h2c_client(gw: &TestGateway) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(tcp)
        .await
        .unwrap_or_else(|e| panic!("h2c handshake: {e}\n{}", gw.output()));
    tokio::spawn(conn);
    send.ready().await.expect("h2c connection ready")
}

/// One request over `send`: the status and body.
async fn h2_exchange(
    send: &mut h2::client::SendRequest<Bytes>,
    req: http::request::Builder,
    body: Option<&str>,
) -> (u16, String) {
    let (resp, mut stream) = send
        .send_request(req.body(()).unwrap(), body.is_none())
        .unwrap();
    if let Some(b) = body {
        stream
            .send_data(Bytes::copy_from_slice(b.as_bytes()), true)
            .unwrap();
    }
    raw_response(resp).await
}

/// `authgate_fast_path_requests_total`.
async fn fast_path_count(gw: &TestGateway) -> f64 {
    gw.metric("authgate_fast_path_requests_total").await
}

#[tokio::test]
async fn http2_and_http1_clients_share_one_cleartext_listener() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, true);
    let base = format!("http://localhost:{}", gw.addr.port());
    let mut h2 = h2c_client(&gw).await;

    // The auth API over h2c answers as over HTTP/1.1.
    let creds = json!({"email": "mesh@example.com", "password": "correct horse battery staple"});
    let (status, body) = h2_exchange(
        &mut h2,
        http::Request::post(format!("{base}/register")).header("content-type", "application/json"),
        Some(&creds.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}\n{}", gw.output());
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].to_string();
    let (status, body) = h2_exchange(
        &mut h2,
        http::Request::post(format!("{base}/login")).header("content-type", "application/json"),
        Some(&creds.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let login: Value = serde_json::from_str(&body).unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();

    // A proxied request: the identity injected, a spoofed one removed, `Host`
    // from `:authority` for the HTTP/1.1 upstream.
    let (status, body) = h2_exchange(
        &mut h2,
        http::Request::get(format!("{base}/api/items?a=1"))
            .header("authorization", format!("Bearer {access}"))
            .header("x-user-id", "1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(header_values(&seen, "x-user-id"), [id.as_str()], "{seen}");
    assert_eq!(
        header_values(&seen, "host"),
        [format!("localhost:{}", gw.addr.port())],
        "{seen}"
    );
    assert!(header_values(&seen, "authorization").is_empty(), "{seen}");

    // Without a token: 401 over HTTP/2, nothing forwarded.
    let before = up.hits();
    let (status, body) =
        h2_exchange(&mut h2, http::Request::get(format!("{base}/api/x")), None).await;
    assert_eq!(status, 401, "{body}");
    assert_error(&serde_json::from_str(&body).unwrap(), "missing_token");
    // `host` disagreeing with `:authority`: the edge's 400, as over TLS.
    let (status, body) = h2_exchange(
        &mut h2,
        http::Request::get(format!("{base}/pub/x")).header("host", "other.example"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(up.hits(), before, "a refused request was forwarded");

    // HTTP/1 on the same listener keeps the fast path: a body-less GET is
    // served by it, and methods sharing the preface's first byte (POST,
    // PUT, PATCH start with `P`) are HTTP/1 too.
    let fast = fast_path_count(&gw).await;
    let r = gw.get("/api/items", Some(&access)).await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(header_values(&seen, "x-user-id"), [id.as_str()], "{seen}");
    assert_eq!(
        fast_path_count(&gw).await,
        fast + 1.0,
        "HTTP/1 took the fast path"
    );
    for method in ["POST", "PUT", "PATCH"] {
        let r = gw
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                "/api/w",
            )
            .bearer_auth(&access)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(r.version(), reqwest::Version::HTTP_11, "{method}");
        let seen: Value = r.json().await.unwrap();
        assert_eq!(seen["method"], method);
    }
}

/// The preface check reads no further than the first byte that differs from
/// it, so an HTTP/1.0 request shorter than the 24-byte preface is answered at
/// once (Pingora's own h2c check waits for 24 bytes), and a connection that
/// begins like the preface and stops is closed at the head deadline.
#[tokio::test]
async fn a_short_http1_request_is_answered_and_a_stalled_preface_closed() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, true);
    let short = b"GET /pub HTTP/1.0\r\n\r\n";
    assert!(short.len() < 24);
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(short).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(3), read_response(&mut s))
        .await
        .expect("a short HTTP/1.0 request is answered within 3 s");
    // Answered by HTTP/1's edge rules (HTTP/1.0 without `Host` is refused),
    // not held waiting for a preface.
    assert_eq!(r.status, 400, "{}", r.head);
    assert_error(&r.json(), "invalid_host");

    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let start = Instant::now();
    assert!(closed(&mut s).await, "a stalled preface is closed");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "closed at the 500 ms head deadline, not the 60 s idle timeout: {:?}",
        start.elapsed()
    );
    assert_eq!(up.hits(), 0);
}

/// Without `h2c`, the plain listener speaks HTTP/1 only: the preface is an
/// HTTP/1 request the parser refuses, and no HTTP/2 connection comes up.
#[tokio::test]
async fn without_h2c_a_plain_listener_speaks_http1_only() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, false);
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let handshake = async {
        let (send, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(conn);
        let mut send = send.ready().await?;
        let req = http::Request::get(format!("http://localhost:{}/pub/x", gw.addr.port()))
            .body(())
            .unwrap();
        let (resp, _) = send.send_request(req, true)?;
        resp.await
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .expect("refused within 5 s, not held");
    assert!(answer.is_err(), "HTTP/2 was served without h2c: {answer:?}");
    assert_eq!(up.hits(), 0);
}

/// A gRPC client inside a mesh, cleartext to the gateway and cleartext to a
/// grpcio server: the call is served, the identity is the gateway's, and a
/// call without a token is UNAUTHENTICATED at the gateway.
#[tokio::test]
async fn a_cleartext_grpc_client_reaches_a_grpcio_server_through_h2c() {
    let test = "h2c::a_cleartext_grpc_client_reaches_a_grpcio_server_through_h2c";
    if !crate::grpc::have_grpcio(test) {
        return;
    }
    let server = crate::grpc::GrpcServer::start();
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"
h2c: true
upstreams:
  grpc: {{ peers: ['127.0.0.1:{port}'], protocol: h2 }}
routes:
  - {{ prefix: /test.Echo/, upstream: grpc }}
"#,
            port = server.port
        ))
        .start();
    let answers = crate::grpc::run_client(
        gw.addr.port(),
        None,
        json!([
            {"kind": "unary", "path": "/test.Echo/Unary", "body": "hi", "token": token(77),
             "metadata": [["x-user-id", "1"]]},
            {"kind": "unary", "path": "/test.Echo/Unary", "body": "hi"},
        ]),
    )
    .await;
    assert_eq!(answers[0]["code"], "OK", "{}\n{}", answers[0], gw.output());
    assert_eq!(crate::grpc::metadata(&answers[0], "x-user-id"), ["77"]);
    assert_eq!(answers[1]["code"], "UNAUTHENTICATED", "{}", answers[1]);
    assert_eq!(
        server.calls(),
        ["Unary"],
        "the refused call reached nothing"
    );
}

/// A graceful shutdown does not wait out the head deadline for the rest of
/// a preface: the half-sent connection is closed at once, as an idle one is.
#[tokio::test]
async fn a_shutdown_closes_a_connection_still_sending_its_preface() {
    let up = Upstream::start("up").await;
    let gw = gateway_with_head_deadline(&up, true, 20_000);
    gw.signal_handlers_installed().await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    gw.signal("TERM");
    assert!(closed(&mut s).await, "closed by the shutdown");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "closed at the shutdown, not the 20 s head deadline: {:?}",
        start.elapsed()
    );
}

/// The rapid-reset flood over cleartext HTTP/2 meets the same defence as over
/// TLS: the flooding connection is lost, and HTTP/1 and h2c clients of the
/// same listener are served meanwhile.
#[tokio::test]
async fn a_rapid_reset_flood_over_h2c_loses_its_connection_and_others_are_served() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, true);
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let authority = format!("localhost:{}", gw.addr.port());
    let (reader, flood) = crate::http2::rapid_reset_flood(tcp, 0x86, &authority);
    assert_eq!(
        gw.get_status("/pub/http1", None).await,
        200,
        "{}",
        gw.output()
    );
    let mut h2 = h2c_client(&gw).await;
    let (status, body) = h2_exchange(
        &mut h2,
        http::Request::get(format!("http://{authority}/pub/h2c")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    crate::http2::flood_lost_its_connection(reader, flood).await;
    assert_eq!(gw.get_status("/pub/after", None).await, 200);
}
