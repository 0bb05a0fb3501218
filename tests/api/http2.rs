//! HTTP/2 over TLS (ALPN `h2`): the auth API and proxied routes answer as over HTTP/1.1, `:authority` is the host, a missing token is refused before the body.
//!
//! Long file: an HTTP/2 client over TLS, raw-frame attacks (rapid reset, pseudo-header disagreements) and their fixtures are one protocol's tests.

use crate::helpers::pki::Pki;
use crate::helpers::*;
use bytes::Bytes;
use reqwest::Version;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A gateway serving HTTPS (certificate of `pki`) in front of `up`, with
/// `alpn` (a YAML list) when given; its HTTPS port.
fn https_gateway(up: &Upstream, pki: &Pki, alpn: Option<&str>) -> (TestGateway, u16) {
    https_gateway_with(up, pki, alpn, "")
}

/// `https_gateway` with `extra` top-level config.
fn https_gateway_with(
    up: &Upstream,
    pki: &Pki,
    alpn: Option<&str>,
    extra: &str,
) -> (TestGateway, u16) {
    https_gateway_from(TestGateway::builder(), up, pki, alpn, extra)
}

/// `https_gateway_with`, from a builder the test has already set up.
fn https_gateway_from(
    builder: GatewayBuilder,
    up: &Upstream,
    pki: &Pki,
    alpn: Option<&str>,
    extra: &str,
) -> (TestGateway, u16) {
    let tls_port = free_port();
    let alpn = alpn.map(|a| format!("  alpn: {a}\n")).unwrap_or_default();
    let gw = builder
        .yaml(&format!(
            r#"
upstreams:
  up: {{ peers: ['{up}'] }}
routes:
  - {{ prefix: /pub, upstream: up, auth: public }}
  - {{ prefix: /hosted, upstream: up, auth: public, host: localhost }}
  - {{ prefix: /, upstream: up }}
tls:
  listen: ['127.0.0.1:{tls_port}']
  cert_file: {cert}
  key_file: {key}
{alpn}{extra}"#,
            up = up.addr,
            cert = pki.server_cert.display(),
            key = pki.server_key.display()
        ))
        .start();
    (gw, tls_port)
}

/// reqwest over TLS trusting only the test CA, `localhost` resolving to the
/// gateway; it offers `h2` and `http/1.1` by ALPN.
fn https_client(pki: &Pki, tls_port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(pki.ca_certificate())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], tls_port)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build HTTPS client")
}

fn url(tls_port: u16, path: &str) -> String {
    format!("https://localhost:{tls_port}{path}")
}

/// POST `body` as JSON; the status, the protocol it was answered in, the JSON.
async fn post_json(
    c: &reqwest::Client,
    tls_port: u16,
    path: &str,
    body: Value,
) -> (u16, Version, Value) {
    let r = c
        .post(url(tls_port, path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, version) = (r.status().as_u16(), r.version());
    (status, version, r.json().await.unwrap_or(Value::Null))
}

/// A raw HTTP/2 connection over TLS (ALPN `h2` only), for what reqwest
/// will not send: a `host` that disagrees with `:authority`, a request whose
/// body never comes.
async fn raw_h2(pki: &Pki, tls_port: u16) -> h2::client::SendRequest<Bytes> {
    raw_h2_connection(pki, tls_port).await.0
}

/// `raw_h2`, with the task driving the connection: it ends with the
/// connection, with the error (a GOAWAY's reason) that ended it.
async fn raw_h2_connection(
    pki: &Pki,
    tls_port: u16,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tls = tls_h2_stream(pki, tls_port).await;
    let (send, conn) = h2::client::handshake(tls).await.unwrap();
    let driver = tokio::spawn(conn);
    (send.ready().await.unwrap(), driver)
}

/// The status and body of a raw HTTP/2 response, within 5 s.
pub(crate) async fn raw_response(resp: h2::client::ResponseFuture) -> (u16, String) {
    raw_response_within(resp, Duration::from_secs(5)).await
}

/// The status and body of a raw HTTP/2 response, within `limit`.
pub(crate) async fn raw_response_within(
    resp: h2::client::ResponseFuture,
    limit: Duration,
) -> (u16, String) {
    tokio::time::timeout(limit, async {
        let resp = resp.await.unwrap();
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            text.extend_from_slice(&chunk);
        }
        (status, String::from_utf8_lossy(&text).into_owned())
    })
    .await
    .unwrap_or_else(|_| panic!("no HTTP/2 response within {limit:?}"))
}

#[tokio::test]
async fn the_auth_api_answers_over_http2_as_over_http1() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway(&up, &pki, None);
    let h2 = https_client(&pki, port);
    let email = format!("{}@example.com", unique("h2"));
    let creds = json!({"email": email, "password": PASSWORD});

    let (status, version, body) = post_json(&h2, port, "/register", creds.clone()).await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(status, 201, "{body}\n{}", gw.output());
    let (status, version, login) = post_json(&h2, port, "/login", creds.clone()).await;
    assert_eq!((status, version), (200, Version::HTTP_2), "{login}");
    let access = login["access_token"].as_str().expect("access_token");
    let refresh = login["refresh_token"].as_str().expect("refresh_token");

    let (status, _, refreshed) =
        post_json(&h2, port, "/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(refreshed["access_token"].is_string(), "{refreshed}");
    let me = h2
        .get(url(port, "/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!((me.status().as_u16(), me.version()), (200, Version::HTTP_2));
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], email.as_str(), "{me}");

    // The same refusals, word for word, on both protocols.
    let wrong = json!({"email": email, "password": "not the password"});
    let over_h2 = post_json(&h2, port, "/login", wrong.clone()).await;
    let over_h1 = gw.post_json("/login", wrong).await;
    assert_eq!((over_h2.0, &over_h2.2), (over_h1.0, &over_h1.1));
    assert_error(&over_h2.2, "invalid_credentials");
    let taken = post_json(&h2, port, "/register", creds.clone()).await;
    assert_eq!((taken.0, &taken.2), {
        let (s, b) = gw.post_json("/register", creds).await;
        (s, &b.clone())
    });
    assert_eq!(up.hits(), 0, "the auth API reached the upstream");
}

#[tokio::test]
async fn proxied_requests_over_http2_carry_the_gateways_identity_only() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway(&up, &pki, None);
    let h2 = https_client(&pki, port);

    let r = h2
        .get(url(port, "/api/items?a=1"))
        .bearer_auth(token(7))
        .header("x-user-id", "1")
        .header("X-User-Roles", "admin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", gw.output()));
    assert_eq!((r.status().as_u16(), r.version()), (200, Version::HTTP_2));
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["path"], "/api/items");
    assert_eq!(seen["query"], "a=1");
    assert_eq!(header_values(&seen, "x-user-id"), ["7"], "{seen}");
    assert!(header_values(&seen, "x-user-roles").is_empty(), "{seen}");
    assert!(header_values(&seen, "authorization").is_empty(), "{seen}");
    // The HTTP/1.1 upstream gets `Host` from `:authority`.
    assert_eq!(
        header_values(&seen, "host"),
        [format!("localhost:{port}")],
        "{seen}"
    );

    let r = h2
        .post(url(port, "/api/upload"))
        .bearer_auth(token(8))
        .header("x-user-id", "1")
        .body("a body over HTTP/2")
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, Version::HTTP_2));
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], "a body over HTTP/2");
    assert_eq!(header_values(&seen, "x-user-id"), ["8"], "{seen}");
    assert_eq!(
        header_values(&seen, "x-forwarded-proto"),
        ["https"],
        "{seen}"
    );

    // A body of unknown length (DATA frames, no content-length) reaches the
    // HTTP/1.1 upstream chunked, whole.
    let parts = ["part one, ", "part two"].map(|p| Ok::<_, std::io::Error>(Bytes::from(p)));
    let r = h2
        .post(url(port, "/api/stream"))
        .bearer_auth(token(9))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, Version::HTTP_2));
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["body"], "part one, part two", "{seen}");
    assert_eq!(
        header_values(&seen, "transfer-encoding"),
        ["chunked"],
        "{seen}"
    );
    assert_eq!(header_values(&seen, "x-user-id"), ["9"], "{seen}");

    // Without a token: the same 401 as over HTTP/1.1, nothing forwarded.
    let before = up.hits();
    let r = h2.get(url(port, "/api/items")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (401, Version::HTTP_2));
    let over_h2: Value = r.json().await.unwrap();
    let r = gw.get("/api/items", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(over_h2, r.json::<Value>().await.unwrap());
    assert_error(&over_h2, "missing_token");
    assert_eq!(up.hits(), before);
}

/// With the fast path on, a GET or HEAD whose HEADERS ended its stream is
/// served by it (src/proxy/h1/h2.rs), beside the connection's other streams:
/// one waiting on a slow upstream holds up none of the others. A GET with a
/// body, and a POST, go to pingora-proxy, bodies whole. Every other test
/// here runs both ways (scripts/test.sh's fast-path-off pass).
#[tokio::test]
async fn plain_streams_take_the_fast_path_side_by_side_and_the_rest_do_not() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let builder = TestGateway::builder().fast_path(true);
    let (gw, port) = https_gateway_from(builder, &up, &pki, None, "");
    let fast_path = || gw.metric("authgate_fast_path_requests_total");
    let mut send = raw_h2(&pki, port).await;
    let me = format!("localhost:{port}");
    let get = |path: &str| {
        http::Request::get(url(port, path))
            .header("authorization", format!("Bearer {}", token(7)))
            .header("x-user-id", "1")
    };
    let before = fast_path().await;

    // The echo upstream answers /slow after 3 s.
    let (slow, _) = send
        .send_request(get("/slow").body(()).unwrap(), true)
        .unwrap();
    let started = std::time::Instant::now();
    send = send.ready().await.unwrap();
    let (quick, _) = send
        .send_request(get("/api/quick").body(()).unwrap(), true)
        .unwrap();
    let (status, body) = raw_response(quick).await;
    let waited = started.elapsed();
    assert_eq!(
        status,
        200,
        "{body}
{}",
        gw.output()
    );
    assert!(
        waited < Duration::from_millis(2500),
        "a stream waited {waited:?}, behind a slow one on its connection"
    );
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(header_values(&seen, "x-user-id"), ["7"], "{seen}");
    assert_eq!(header_values(&seen, "host"), [me.as_str()], "{seen}");
    assert!(header_values(&seen, "authorization").is_empty(), "{seen}");
    send = send.ready().await.unwrap();
    let head = http::Request::head(url(port, "/api/h"))
        .header("authorization", format!("Bearer {}", token(7)))
        .body(())
        .unwrap();
    let (status, body) = raw_response(send.send_request(head, true).unwrap().0).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, body) = raw_response_within(slow, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["path"],
        "/slow"
    );
    assert_eq!(fast_path().await, before + 3.0, "{}", gw.output());

    // A GET whose HEADERS did not end the stream has a body coming.
    send = send.ready().await.unwrap();
    let (resp, mut body_out) = send
        .send_request(get("/api/with-body").body(()).unwrap(), false)
        .unwrap();
    body_out
        .send_data(Bytes::from("a GET's body"), true)
        .unwrap();
    let (status, body) = raw_response(resp).await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (seen["method"].as_str(), seen["body"].as_str()),
        (Some("GET"), Some("a GET's body"))
    );
    assert_eq!(header_values(&seen, "x-user-id"), ["7"], "{seen}");
    assert_eq!(header_values(&seen, "host"), [me.as_str()], "{seen}");
    send = send.ready().await.unwrap();
    let post = http::Request::post(url(port, "/api/p"))
        .header("authorization", format!("Bearer {}", token(7)))
        .body(())
        .unwrap();
    let (status, _) = raw_response(send.send_request(post, true).unwrap().0).await;
    assert_eq!(status, 200);
    assert_eq!(
        fast_path().await,
        before + 3.0,
        "only plain streams took it"
    );
}

/// SIGTERM with a stream in flight: the stream is answered, the connection
/// gets its GOAWAY and closes, and the gateway exits right after, as for
/// HTTP/1.1 (shutdown.rs), whichever loop serves the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_an_http2_stream_then_closes_its_connection() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (mut gw, port) = https_gateway_with(&up, &pki, None, "grace_period_seconds: 30\n");
    gw.signal_handlers_installed().await;
    let (send, driver) = raw_h2_connection(&pki, port).await;
    let slow = http::Request::get(url(port, "/slow"))
        .header("authorization", format!("Bearer {}", token(7)))
        .body(())
        .unwrap();
    let (resp, _) = send.clone().send_request(slow, true).unwrap();
    // The echo upstream holds /slow for 3 s once it has it.
    eventually(
        Duration::from_secs(5),
        "the stream is in flight",
        || async { up.hits() == 1 },
    )
    .await;
    let sent = std::time::Instant::now();
    gw.signal("TERM");
    let (status, body) = raw_response_within(resp, Duration::from_secs(10)).await;
    assert_eq!(
        status,
        200,
        "the in-flight stream was cut: {body}\n{}",
        gw.output()
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), driver).await;
    assert!(
        ended.is_ok(),
        "the connection stayed open after its last stream"
    );
    let exited = tokio::task::spawn_blocking(move || gw.wait_exit(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(8),
        "exited {:?} after SIGTERM (the stream took 3 s, grace period 30 s)",
        sent.elapsed()
    );
}

/// Auth is decided on the header alone: HEADERS without END_STREAM, no DATA
/// ever sent, and the 401 still comes, for a body of any declared size (over
/// HTTP/1.1 a small one is drained, up to 5 s, to keep the connection; an
/// HTTP/2 refusal ends only its stream). The 2 s bound is far above the
/// answer's own time and below that drain's.
#[tokio::test]
async fn a_request_without_a_token_is_refused_before_its_body() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway(&up, &pki, None);
    let mut send = raw_h2(&pki, port).await;
    for length in [None, Some("10"), Some("1000000")] {
        let mut req = http::Request::post(url(port, "/api/upload"))
            .header("content-type", "application/octet-stream");
        if let Some(n) = length {
            req = req.header("content-length", n);
        }
        // The body's stream stays open (held here) and empty.
        let (resp, _body) = send.send_request(req.body(()).unwrap(), false).unwrap();
        let (status, body) = raw_response_within(resp, Duration::from_secs(2)).await;
        assert_eq!(status, 401, "{length:?}: {body}\n{}", gw.output());
        assert_error(&serde_json::from_str(&body).unwrap(), "missing_token");
        send = send.ready().await.expect("the connection serves on");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn the_authority_is_the_host_and_must_agree_with_host() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway(&up, &pki, None);
    let mut send = raw_h2(&pki, port).await;
    let get = |authority: &str, host: Option<&str>| {
        let mut b = http::Request::get(format!("https://{authority}/pub/x"));
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(()).unwrap()
    };
    // `:authority` alone, and with a `host` naming it too: served.
    let me = format!("localhost:{port}");
    for host in [None, Some(me.as_str())] {
        let (resp, _) = send.send_request(get(&me, host), true).unwrap();
        let (status, body) = raw_response(resp).await;
        assert_eq!(status, 200, "{host:?}: {body}\n{}", gw.output());
        let seen: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(header_values(&seen, "host"), [me.as_str()], "{seen}");
    }
    // Host routing goes by `:authority`, canonical: `host: localhost` is
    // matched by `LocalHost.:port`, not by `127.0.0.1:port`.
    for (authority, want) in [
        (format!("LocalHost.:{port}"), 200),
        (format!("127.0.0.1:{port}"), 401),
    ] {
        let req = http::Request::get(format!("https://{authority}/hosted/x"))
            .body(())
            .unwrap();
        let (resp, _) = send.send_request(req, true).unwrap();
        let (status, body) = raw_response(resp).await;
        assert_eq!(status, want, "{authority}: {body}");
        send = send.ready().await.expect("the connection serves on");
    }
    let served = up.hits();
    // A `host` naming another host (or the same one spelt differently: one
    // answer to "which host?", byte for byte, as for HTTP/1.1): 400.
    for host in ["other.example", "LOCALHOST"] {
        let (resp, _) = send.send_request(get(&me, Some(host)), true).unwrap();
        let (status, body) = raw_response(resp).await;
        assert_eq!(status, 400, "host {host}: {body}");
        send = send.ready().await.expect("the connection serves on");
    }
    // An `:authority` that is no host name: the edge's own 400.
    let (resp, _) = send.send_request(get("bad..host", None), true).unwrap();
    let (status, body) = raw_response(resp).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&serde_json::from_str(&body).unwrap(), "invalid_host");
    assert_eq!(up.hits(), served, "a refused request was forwarded");
}

#[tokio::test]
async fn tls_alpn_can_turn_http2_off() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    for (alpn, want) in [
        (None, Version::HTTP_2),
        (Some("[h2, http/1.1]"), Version::HTTP_2),
        (Some("['http/1.1']"), Version::HTTP_11),
    ] {
        let (gw, port) = https_gateway(&up, &pki, alpn);
        let r = https_client(&pki, port)
            .get(url(port, "/pub/x"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{alpn:?}: {e:?}\n{}", gw.output()));
        assert_eq!((r.status().as_u16(), r.version()), (200, want), "{alpn:?}");
    }
}

#[tokio::test]
async fn http2_limits_are_the_configured_ones() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway_with(
        &up,
        &pki,
        None,
        "http2: { max_concurrent_streams: 7, max_header_list_bytes: 4096 }\n",
    );
    let mut send = raw_h2(&pki, port).await;
    // The server's SETTINGS have arrived once a first answer has.
    let big = "x".repeat(6000);
    for (value, want) in [("small", 200), (big.as_str(), 431)] {
        let req = http::Request::get(url(port, "/pub/x"))
            .header("x-padding", value)
            .body(())
            .unwrap();
        let (resp, _) = send.send_request(req, true).unwrap();
        let (status, body) = raw_response(resp).await;
        assert_eq!(
            status,
            want,
            "{} bytes: {body}\n{}",
            value.len(),
            gw.output()
        );
        send = send.ready().await.expect("the connection serves on");
    }
    assert_eq!(send.current_max_send_streams(), 7);
    // The defaults: the same large header is served.
    let (_gw, port) = https_gateway(&up, &pki, None);
    let mut send = raw_h2(&pki, port).await;
    let req = http::Request::get(url(port, "/pub/x"))
        .header("x-padding", big.as_str())
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    assert_eq!(raw_response(resp).await.0, 200);
    assert_eq!(send.current_max_send_streams(), 100);
}

/// A TLS connection offering only ALPN `h2`, with nothing of HTTP/2 sent yet.
async fn tls_h2_stream(
    pki: &Pki,
    tls_port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

/// One HTTP/2 frame: 9-byte header, then `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A flood in CVE-2023-44487's shape on `stream` (HTTP/2 not yet begun),
/// written frame by frame (the h2 crate's own client would not put a reset
/// stream's HEADERS on the wire): HEADERS then RST_STREAM for stream after
/// stream, for `scheme` (HPACK static index: 0x86 http, 0x87 https) and
/// `authority`. The first task ends with how the server ended the
/// connection ("GOAWAY" or "closed"); the second with `Some(streams sent)`
/// if a write failed, `None` if it sent all of them.
pub(crate) fn rapid_reset_flood<S>(
    stream: S,
    scheme: u8,
    authority: &str,
) -> (
    tokio::task::JoinHandle<&'static str>,
    tokio::task::JoinHandle<Option<u32>>,
)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const STREAMS: u32 = 100_000;
    const BATCH: u32 = 100;
    let (mut rx, mut tx) = tokio::io::split(stream);
    // What the server sends, until it sends GOAWAY (frame type 7) or closes.
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            while buf.len() >= 9 {
                let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                if buf.len() < 9 + len {
                    break;
                }
                if buf[3] == 7 {
                    return "GOAWAY";
                }
                buf.drain(..9 + len);
            }
            match rx.read(&mut chunk).await {
                Ok(0) | Err(_) => return "closed",
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    // :method GET, :scheme, :path / (static table), :authority literal.
    let mut block = vec![0x82, scheme, 0x84, 0x01, authority.len() as u8];
    block.extend_from_slice(authority.as_bytes());
    let flood = tokio::spawn(async move {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        wire.extend(frame(4, 0, 0, &[]));
        if tx.write_all(&wire).await.is_err() {
            return Some(0);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut id = 1u32;
        while id < 2 * STREAMS && tokio::time::Instant::now() < deadline {
            let mut wire = Vec::new();
            for _ in 0..BATCH {
                wire.extend(frame(1, 0x4, id, &block));
                wire.extend(frame(3, 0, id, &8u32.to_be_bytes())); // CANCEL
                id += 2;
            }
            if tx.write_all(&wire).await.is_err() || tx.flush().await.is_err() {
                return Some(id / 2);
            }
        }
        None
    });
    (reader, flood)
}

/// How a flood from [`rapid_reset_flood`] ended: the connection lost (GOAWAY,
/// or closed mid-flood), within 25 s, never left open to the loop's end.
pub(crate) async fn flood_lost_its_connection(
    reader: tokio::task::JoinHandle<&'static str>,
    flood: tokio::task::JoinHandle<Option<u32>>,
) {
    let ended = tokio::time::timeout(Duration::from_secs(25), reader)
        .await
        .expect("the flooding connection was neither sent GOAWAY nor closed")
        .unwrap();
    let sent = flood.await.unwrap();
    assert!(
        sent.is_some() || ended == "GOAWAY",
        "every stream reset and the connection still open ({ended})"
    );
}

/// CVE-2023-44487's shape over TLS: the gateway ends that connection (GOAWAY,
/// or closes it) long before the loop's bound, and serves another client
/// meanwhile.
#[tokio::test]
async fn a_rapid_reset_flood_loses_its_connection_and_others_are_served() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway(&up, &pki, None);
    let tls = tls_h2_stream(&pki, port).await;
    let (reader, flood) = rapid_reset_flood(tls, 0x87, &format!("localhost:{port}"));
    // Another client, on a connection of its own, while the flood runs.
    let other = https_client(&pki, port);
    let r = other
        .get(url(port, "/pub/other"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", gw.output()));
    assert_eq!((r.status().as_u16(), r.version()), (200, Version::HTTP_2));
    flood_lost_its_connection(reader, flood).await;
    let r = other.get(url(port, "/pub/after")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the gateway serves on after the flood");
}

/// `keepalive_timeout_seconds` closes an idle HTTP/2 connection as it does an
/// HTTP/1 one (Pingora's own default keeps it forever).
#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_keepalive_timeout() {
    let pki = Pki::generate();
    let up = Upstream::start("up").await;
    let (gw, port) = https_gateway_with(&up, &pki, None, "keepalive_timeout_seconds: 1\n");
    let (mut send, driver) = raw_h2_connection(&pki, port).await;
    let req = http::Request::get(url(port, "/pub/x")).body(()).unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    assert_eq!(raw_response(resp).await.0, 200, "{}", gw.output());
    // `send` is held: the client keeps the connection, the server must end it.
    let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection was kept 10 s");
    drop(send);
}

/// An HTTP/2 client may split `cookie` into several fields (RFC 9113 §8.2.3);
/// an HTTP/1.1 upstream gets them as one, joined by `; `, and in browser
/// mode the gateway's session cookie among them authenticates and is removed.
#[tokio::test]
async fn split_cookie_fields_reach_an_http1_upstream_as_one() {
    let up = Upstream::start("cookies").await;
    let pki = Pki::generate();
    let browser = "public_url: \"https://localhost\"\nbrowser: { enabled: true }\n";
    let (gw, tls_port) = https_gateway_with(&up, &pki, None, browser);
    let user = gw.new_user().await;
    let form = format!(
        "email={}&password=correct+horse+battery&return_to=%2F",
        user.email.replace('@', "%40")
    );
    let login = format!(
        "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Sec-Fetch-Mode: navigate\r\nOrigin: https://localhost\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let r = crate::helpers::raw::send_raw(gw.addr, login.as_bytes()).await;
    assert_eq!(r.status, 303, "{r:?}");
    let set = r
        .head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Set-Cookie: ")
                .or_else(|| l.strip_prefix("set-cookie: "))
        })
        .expect("a session cookie")
        .to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    let mut send = raw_h2(&pki, tls_port).await;
    for (cookies, user_id) in [
        (vec!["theme=dark", pair.as_str(), "lang=en"], Some(user.id)),
        (vec!["theme=dark", "lang=en"], None),
    ] {
        let mut req = http::Request::builder()
            .method("GET")
            .uri("https://localhost/pub/x");
        if user_id.is_some() {
            req = http::Request::builder()
                .method("GET")
                .uri("https://localhost/x");
        }
        for c in &cookies {
            req = req.header("cookie", *c);
        }
        let (resp, _) = send.send_request(req.body(()).unwrap(), true).unwrap();
        let (status, body) = raw_response(resp).await;
        assert_eq!(status, 200, "{body}");
        let seen: Value = serde_json::from_str(&body).unwrap();
        let headers = seen["headers"].as_array().unwrap();
        let values = |name: &str| -> Vec<String> {
            headers
                .iter()
                .filter(|kv| kv[0] == name)
                .map(|kv| kv[1].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(values("cookie"), ["theme=dark; lang=en"], "{body}");
        assert_eq!(
            values("x-user-id"),
            user_id
                .map(|u| u.to_string())
                .into_iter()
                .collect::<Vec<_>>()
        );
    }
}
