//! Revocation and time limits reach open event streams (Server-Sent Events, any response without a length): over HTTP/1.1 on both engines and over HTTP/2, a logout on another instance ends the stream cleanly, and the upstream connection is let go.
//!
//! Long file: one SSE upstream and one gRPC streaming client, shared by every rule that ends a stream (logout across instances, a role change, time limits), in two protocols.

use crate::helpers::pki::Pki;
use crate::helpers::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream answering every request with an endless-looking event stream
/// (chunked, `text/event-stream`, an event every 50 ms for 30 s); it keeps
/// each request head it saw and counts the streams whose connection the
/// gateway dropped.
struct SseUpstream {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    dropped: Arc<AtomicUsize>,
}

impl SseUpstream {
    async fn start() -> SseUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (h, d) = (heads.clone(), dropped.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_events(sock, h.clone(), d.clone()));
            }
        });
        SseUpstream {
            addr,
            heads,
            dropped,
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve_events(
    mut sock: tokio::net::TcpStream,
    heads: Arc<Mutex<Vec<String>>>,
    dropped: Arc<AtomicUsize>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    let start = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    if sock.write_all(start).await.is_err() {
        return;
    }
    for i in 0..600 {
        let event = format!("data: tick {i}\n\n");
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
}

/// The routes: `/events` needs a token, `/limited` also ends its streams after 1 s.
fn routes(up: &SseUpstream) -> String {
    format!(
        r#"
upstreams:
  sse: {{ peers: ['{}'] }}
routes:
  - {{ prefix: /limited, upstream: sse, auth: public, max_stream_seconds: 1 }}
  - {{ prefix: /events, upstream: sse }}
"#,
        up.addr
    )
}

/// An event stream being read.
struct Events {
    response: reqwest::Response,
}

impl Events {
    /// Open `url` with `token` and read up to its first event.
    async fn open(client: &reqwest::Client, url: String, token: Option<&str>) -> Events {
        let mut req = client.get(url).header("accept", "text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut events = Events { response };
        events.next_event().await;
        events
    }

    /// The next chunk with an event in it; panics if the stream ends first.
    async fn next_event(&mut self) {
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(2), self.response.chunk())
                .await
                .expect("an event within 2 s")
                .expect("the stream goes on")
                .expect("the stream has not ended");
            if String::from_utf8_lossy(&chunk).contains("data: tick") {
                return;
            }
        }
    }

    /// Read until the stream ends, within `limit`: it must end cleanly (the
    /// terminating chunk, or END_STREAM), not by a broken connection.
    async fn ends_cleanly_within(&mut self, limit: Duration) {
        let end = async {
            loop {
                match self.response.chunk().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        };
        let ended = tokio::time::timeout(limit, end)
            .await
            .unwrap_or_else(|_| panic!("the stream ended within {limit:?}"));
        if let Err(e) = ended {
            panic!("the stream ended with an error, not cleanly: {e:?}");
        }
    }
}

/// A logout on instance two ends every event stream of that session open on
/// instance one, within a second, whichever engine relays it and over
/// HTTP/2 as well; a second session's stream goes on; the gateway lets go of
/// each upstream connection, and counts what it ended.
#[tokio::test]
async fn a_logout_on_another_instance_ends_the_sessions_event_streams_on_every_path() {
    let up = SseUpstream::start().await;
    let pki = Pki::generate();
    let tls_port = free_port();
    let tls = format!(
        "tls:\n  listen: ['127.0.0.1:{tls_port}']\n  cert_file: {}\n  key_file: {}\n",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let fast = TestGateway::builder()
        .yaml(&routes(&up))
        .yaml(&tls)
        .fast_path(true)
        .start();
    let pingora = TestGateway::builder()
        .yaml(&routes(&up))
        .fast_path(false)
        .same_store_as(&fast)
        .start();
    let two = TestGateway::builder()
        .upstream(up.addr)
        .same_store_as(&fast)
        .start();
    let user = two.new_user().await;
    let (s, other) = two.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    let other_access = other["access_token"].as_str().unwrap().to_owned();

    let h1 = client();
    let h2 = reqwest::Client::builder()
        .add_root_certificate(pki.ca_certificate())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], tls_port)))
        .build()
        .unwrap();
    let mut on_fast = Events::open(&h1, fast.url("/events"), Some(&user.access)).await;
    let mut on_pingora = Events::open(&h1, pingora.url("/events"), Some(&user.access)).await;
    let over_h2 = {
        let r = h2
            .get(format!("https://localhost:{tls_port}/events"))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        r
    };
    let mut over_h2 = Events { response: over_h2 };
    over_h2.next_event().await;
    let mut bystander = Events::open(&h1, fast.url("/events"), Some(&other_access)).await;
    let heads = up.heads();
    assert_eq!(heads.len(), 4);
    assert!(
        heads.iter().all(|h| h
            .to_ascii_lowercase()
            .contains(&format!("x-user-id: {}", user.id))),
        "{heads:?}"
    );

    let logged_out = Instant::now();
    assert_eq!(two.logout(&user.refresh).await.0, 200);
    on_fast.ends_cleanly_within(Duration::from_secs(2)).await;
    on_pingora.ends_cleanly_within(Duration::from_secs(2)).await;
    over_h2.ends_cleanly_within(Duration::from_secs(2)).await;
    let took = logged_out.elapsed();
    bystander.next_event().await;
    bystander.next_event().await;
    eventually(
        Duration::from_secs(3),
        "the upstream connections let go",
        || {
            let n = up.dropped.load(Ordering::SeqCst);
            async move { n == 3 }
        },
    )
    .await;
    let counted = fast
        .metric("authgate_streams_closed_total{reason=\"session_revoked\"}")
        .await
        + pingora
            .metric("authgate_streams_closed_total{reason=\"session_revoked\"}")
            .await;
    assert_eq!(counted, 3.0, "ended in {took:?}");
}

/// `max_stream_seconds` ends an event stream cleanly when its time is up,
/// with or without a token, on both engines.
#[tokio::test]
async fn max_stream_seconds_ends_an_event_stream_when_its_time_is_up() {
    let up = SseUpstream::start().await;
    for fast_path in [true, false] {
        let gw = TestGateway::builder()
            .yaml(&routes(&up))
            .fast_path(fast_path)
            .start();
        let opened = Instant::now();
        let mut events = Events::open(&client(), gw.url("/limited"), None).await;
        events.ends_cleanly_within(Duration::from_secs(3)).await;
        let lasted = opened.elapsed();
        assert!(
            lasted >= Duration::from_millis(900),
            "fast path {fast_path}: ended after {lasted:?}, before its limit"
        );
        assert_eq!(
            gw.metric("authgate_streams_closed_total{reason=\"max_stream_seconds\"}")
                .await,
            1.0
        );
    }
}

/// A grpcio client on one server-streaming call: argv port, CA file, path,
/// token (or ""). Prints `first` once the first message is in, then, when
/// the call ends, one JSON line: its status code name, details, messages.
const STREAM_CLIENT: &str = r#"
import sys, json
import grpc
port, ca, path, token = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3], sys.argv[4]
creds = grpc.ssl_channel_credentials(root_certificates=ca)
ch = grpc.secure_channel(f"127.0.0.1:{port}", creds,
                         options=[("grpc.ssl_target_name_override", "localhost")])
md = [("authorization", "Bearer " + token)] if token else []
n = 0
try:
    call = ch.unary_stream(path)(b"", metadata=md, timeout=30)
    for m in call:
        n += 1
        if n == 1:
            print("first", flush=True)
except grpc.RpcError as e:
    call = e
print(json.dumps({"code": call.code().name, "details": call.details() or "", "messages": n}), flush=True)
"#;

/// A server-streaming call through a gateway, from its first message to its end.
struct GrpcCall {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl GrpcCall {
    /// Start the call and wait for its first message.
    fn open(tls_port: u16, ca: &std::path::Path, path: &str, token: &str) -> GrpcCall {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("python3")
            .args(["-c", STREAM_CLIENT, &tls_port.to_string()])
            .arg(ca)
            .args([path, token])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(first, "first", "the call's first message came through");
        GrpcCall { child, lines }
    }

    /// How the call ended: its status code name and details.
    async fn ended(mut self) -> (String, String) {
        let last = tokio::task::spawn_blocking(move || {
            let last = self.lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = self.child.wait();
            last
        })
        .await
        .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last:?}"));
        assert!(v["messages"].as_u64().unwrap() >= 1, "{v}");
        (
            v["code"].as_str().unwrap().to_owned(),
            v["details"].as_str().unwrap().to_owned(),
        )
    }
}

/// A gateway with HTTPS (ALPN h2) in front of the grpcio server (an h2
/// cluster): `/test.Echo/` needs a token; `extra_route` comes first. Its
/// HTTPS port.
fn grpc_gateway(
    server: &crate::grpc::GrpcServer,
    pki: &Pki,
    extra_route: &str,
) -> (TestGateway, u16) {
    let tls_port = free_port();
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"
upstreams:
  grpc: {{ peers: ['127.0.0.1:{port}'], protocol: h2 }}
routes:
{extra_route}
  - {{ prefix: /test.Echo/, upstream: grpc }}
tls:
  listen: ['127.0.0.1:{tls_port}']
  cert_file: {cert}
  key_file: {key}
"#,
            port = server.port,
            cert = pki.server_cert.display(),
            key = pki.server_key.display()
        ))
        .start();
    (gw, tls_port)
}

/// A logout on instance two ends the session's gRPC stream on instance one
/// with `grpc-status` 16 UNAUTHENTICATED in its trailers, within a second.
#[tokio::test]
async fn a_logout_on_another_instance_ends_the_sessions_grpc_stream_unauthenticated() {
    let test =
        "streams::a_logout_on_another_instance_ends_the_sessions_grpc_stream_unauthenticated";
    if !crate::grpc::have_grpcio(test) {
        return;
    }
    let server = crate::grpc::GrpcServer::start();
    let pki = Pki::generate();
    let (one, tls_port) = grpc_gateway(&server, &pki, "");
    let two = TestGateway::builder().same_store_as(&one).start();
    let user = two.new_user().await;
    let call = tokio::task::spawn_blocking({
        let (ca, access) = (pki.ca.clone(), user.access.clone());
        move || GrpcCall::open(tls_port, &ca, "/test.Echo/Forever", &access)
    })
    .await
    .unwrap();
    let logged_out = Instant::now();
    assert_eq!(two.logout(&user.refresh).await.0, 200);
    let (code, details) = tokio::time::timeout(Duration::from_secs(3), call.ended())
        .await
        .expect("the call ended");
    assert_eq!(
        (code.as_str(), details.as_str()),
        ("UNAUTHENTICATED", "session revoked"),
        "after {:?}",
        logged_out.elapsed()
    );
    assert!(
        logged_out.elapsed() < Duration::from_secs(2),
        "ended {:?} after the logout",
        logged_out.elapsed()
    );
    assert_eq!(
        one.metric("authgate_streams_closed_total{reason=\"session_revoked\"}")
            .await,
        1.0
    );
}

/// A role change made on another instance that takes away a role a gRPC
/// stream was opened with ends it with 7 PERMISSION_DENIED in its trailers.
#[tokio::test]
async fn a_role_taken_away_ends_a_grpc_stream_opened_with_it_permission_denied() {
    let test = "streams::a_role_taken_away_ends_a_grpc_stream_opened_with_it_permission_denied";
    if !crate::grpc::have_grpcio(test) {
        return;
    }
    let server = crate::grpc::GrpcServer::start();
    let pki = Pki::generate();
    let (one, tls_port) = grpc_gateway(
        &server,
        &pki,
        "  - { prefix: /test.Echo/Forever, upstream: grpc, roles: [admin] }",
    );
    let admin = crate::admin::AdminGateway::beside(&one);
    let email = format!("{}@example.com", unique("grpc-roles"));
    let (s, made) = crate::admin::admin_call(
        &admin,
        reqwest::Method::POST,
        "/admin/users",
        Some(serde_json::json!({"email": email, "password": PASSWORD, "roles": ["admin"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let (s, login) = one.login(&email, PASSWORD).await;
    assert_eq!(s, 200, "{login}");
    let call = tokio::task::spawn_blocking({
        let ca = pki.ca.clone();
        let access = login["access_token"].as_str().unwrap().to_owned();
        move || GrpcCall::open(tls_port, &ca, "/test.Echo/Forever", &access)
    })
    .await
    .unwrap();
    let (s, b) = crate::admin::admin_call(
        &admin,
        reqwest::Method::PUT,
        &format!("/admin/users/{}/roles", made["id"]),
        Some(serde_json::json!({"roles": ["staff"]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (code, details) = tokio::time::timeout(Duration::from_secs(3), call.ended())
        .await
        .expect("the call ended");
    assert_eq!(
        (code.as_str(), details.as_str()),
        ("PERMISSION_DENIED", "roles changed")
    );
    assert_eq!(
        one.metric("authgate_streams_closed_total{reason=\"roles_changed\"}")
            .await,
        1.0
    );
}

/// `max_stream_seconds` ends a gRPC stream with 4 DEADLINE_EXCEEDED.
#[tokio::test]
async fn max_stream_seconds_ends_a_grpc_stream_deadline_exceeded() {
    let test = "streams::max_stream_seconds_ends_a_grpc_stream_deadline_exceeded";
    if !crate::grpc::have_grpcio(test) {
        return;
    }
    let server = crate::grpc::GrpcServer::start();
    let pki = Pki::generate();
    let (_gw, tls_port) = grpc_gateway(
        &server,
        &pki,
        "  - { prefix: /test.Echo/Forever, upstream: grpc, max_stream_seconds: 1 }",
    );
    let call = tokio::task::spawn_blocking({
        let ca = pki.ca.clone();
        move || GrpcCall::open(tls_port, &ca, "/test.Echo/Forever", &token(77))
    })
    .await
    .unwrap();
    let (code, details) = tokio::time::timeout(Duration::from_secs(4), call.ended())
        .await
        .expect("the call ended");
    assert_eq!(
        (code.as_str(), details.as_str()),
        ("DEADLINE_EXCEEDED", "stream time limit")
    );
}
