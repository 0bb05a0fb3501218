//! WebSockets through the gateway with real clients and a real server: Bearer and browser-style query tokens, what the upstream receives, origins, and refusals before the upgrade.
//!
//! Long file: one real WebSocket server and client fixture shared by every rule (tokens, origins, revocation across instances, time and idle limits, caps, running out of descriptors).

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket server that, once upgraded, sends the request it received as
/// JSON (`target` and lowercase `headers`), then echoes every text message.
struct WsUpstream {
    addr: std::net::SocketAddr,
    upgrades: Arc<AtomicUsize>,
}

impl WsUpstream {
    async fn start() -> WsUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upgrades = Arc::new(AtomicUsize::new(0));
        let count = upgrades.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut seen = json!({});
                    // tungstenite's own callback type, whose error is a whole response.
                    #[allow(clippy::result_large_err)]
                    let callback = |req: &Request, resp: Response| {
                        let headers: serde_json::Map<String, Value> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
                            .collect();
                        seen = json!({ "target": req.uri().to_string(), "headers": headers });
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await
                    else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    if ws.send(Message::text(seen.to_string())).await.is_err() {
                        return;
                    }
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WsUpstream { addr, upgrades }
    }

    fn upgrades(&self) -> usize {
        self.upgrades.load(Ordering::SeqCst)
    }
}

/// Open `ws://gateway{target}` with `headers`: the upstream's first message, or the refusal's status and body.
async fn open(
    gw: &TestGateway,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<(Value, impl FnOnce()), (u16, String)> {
    let mut req = format!("ws://{}{target}", gw.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, resp)) => {
            assert_eq!(resp.status(), 101);
            let first = ws.next().await.unwrap().unwrap();
            let seen: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
            // Frames both ways through the gateway.
            ws.send(Message::text("ping through")).await.unwrap();
            let echoed = ws.next().await.unwrap().unwrap();
            assert_eq!(echoed.to_text().unwrap(), "ping through");
            Ok((seen, move || drop(ws)))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("websocket to {target}: {e}"),
    }
}

fn gateway(up: &WsUpstream) -> TestGateway {
    TestGateway::builder()
        .upstream(up.addr)
        .yaml(
            r#"
routes:
  - prefix: /app
    upstream: default
    websocket_origins: ["https://app.example.com"]
  - prefix: /
    upstream: default
"#,
        )
        .start()
}

#[tokio::test]
async fn a_browser_style_query_token_opens_a_websocket_and_never_reaches_the_upstream() {
    let up = WsUpstream::start().await;
    let gw = gateway(&up);
    let user = gw.new_user().await;
    let target = format!("/chat?room=7&access_token={}&x=1", user.access);
    let (seen, close) = open(&gw, &target, &[("X-User-Id", "999"), ("X_User_Id", "998")])
        .await
        .unwrap();
    assert_eq!(seen["target"], "/chat?room=7&x=1", "{seen}");
    assert_eq!(seen["headers"]["x-user-id"], user.id.to_string(), "{seen}");
    assert!(seen["headers"].get("x_user_id").is_none(), "{seen}");
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    close();
    // The Bearer header works as before.
    let bearer = format!("Bearer {}", user.access);
    let (seen, close) = open(&gw, "/chat", &[("Authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(seen["headers"]["x-user-id"], user.id.to_string());
    close();
    assert_eq!(up.upgrades(), 2);
    let log = gw.output();
    assert!(!log.contains(&user.access), "the query token was logged");
}

/// A refused upgrade: target, headers, status, error code.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test]
async fn without_a_valid_token_or_with_two_the_upgrade_is_refused_before_the_upstream() {
    let up = WsUpstream::start().await;
    let gw = gateway(&up);
    let user = gw.new_user().await;
    let bearer = format!("Bearer {}", user.access);
    let twice = format!("/chat?access_token={0}&access_token={0}", user.access);
    let query = format!("/chat?access_token={}", user.access);
    let cases: [Case; 4] = [
        ("/chat", vec![], 401, "missing_token"),
        (
            "/chat?access_token=not.a.token",
            vec![],
            401,
            "invalid_token",
        ),
        (&twice, vec![], 400, "invalid_authorization"),
        (
            &query,
            vec![("Authorization", &bearer)],
            400,
            "invalid_authorization",
        ),
    ];
    for (target, headers, status, code) in cases {
        let (s, body) = open(&gw, target, &headers).await.err().expect("refused");
        assert_eq!(s, status, "{target}: {body}");
        assert_error(&serde_json::from_str(&body).unwrap(), code);
    }
    assert_eq!(up.upgrades(), 0, "a refused upgrade reached the upstream");
    // On a request that is not an upgrade the parameter means nothing: 401 as before.
    let r = gw
        .get(&format!("/chat?access_token={}", user.access), None)
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_route_with_websocket_origins_refuses_other_origins() {
    let up = WsUpstream::start().await;
    let gw = gateway(&up);
    let user = gw.new_user().await;
    let target = format!("/app/live?access_token={}", user.access);
    let (seen, close) = open(&gw, &target, &[("Origin", "https://app.example.com")])
        .await
        .unwrap();
    assert_eq!(seen["headers"]["origin"], "https://app.example.com");
    close();
    for origin in [
        Some("https://evil.example"),
        Some("https://app.example.com.evil.example"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let (s, body) = open(&gw, &target, &headers).await.err().expect("refused");
        assert_eq!(s, 403, "{origin:?}: {body}");
        assert_error(&serde_json::from_str(&body).unwrap(), "origin_not_allowed");
    }
    assert_eq!(up.upgrades(), 1);
    assert!(gw
        .metrics()
        .await
        .contains("authgate_websocket_refusals_total{reason=\"origin_not_allowed\"} 3"));
    // Elsewhere any origin may open one.
    let other = format!("/chat?access_token={}", user.access);
    assert!(open(&gw, &other, &[("Origin", "https://evil.example")])
        .await
        .is_ok());
}

/// Review finding: other spellings of the parameter reached the upstream as a
/// second token (`access%5Ftoken`, `Access_Token`, a `;` segment), and a plain
/// GET with an `Upgrade` header added by hand counted as a handshake.
#[tokio::test]
async fn other_spellings_of_the_token_and_handshakes_in_name_only_are_refused() {
    let up = WsUpstream::start().await;
    let gw = gateway(&up);
    let user = gw.new_user().await;
    let t = &user.access;
    for target in [
        format!("/chat?access_token={t}&access%5Ftoken=other"),
        format!("/chat?access_token={t}&Access_Token=other"),
        format!("/chat?access_token={t}&x=1;access_token=other"),
        // Alone, too: which name an upstream's parser reads is not ours to guess.
        format!("/chat?access%5Ftoken={t}"),
    ] {
        let (s, body) = open(&gw, &target, &[]).await.err().expect("refused");
        assert_eq!(s, 400, "{target}: {body}");
        assert_error(
            &serde_json::from_str(&body).unwrap(),
            "invalid_authorization",
        );
    }
    assert_eq!(up.upgrades(), 0);
    // `Upgrade: websocket` without a Sec-WebSocket-Key is no handshake: the
    // query token counts for nothing.
    let r = client()
        .get(gw.url(&format!("/chat?access_token={t}")))
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open WebSocket through `gw` with `access`, past the upstream's first message.
async fn open_socket(gw: &TestGateway, access: &str) -> Socket {
    open_socket_at(gw, "/chat", access).await
}

/// `open_socket` to `path`.
async fn open_socket_at(gw: &TestGateway, path: &str, access: &str) -> Socket {
    let mut req = format!("ws://{}{path}", gw.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {access}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    if let Err(e) = ws.next().await.unwrap() {
        panic!("{e}: {}", gw.output());
    }
    ws
}

/// The socket still carries frames both ways.
async fn still_open(ws: &mut Socket) {
    ws.send(Message::text("still there?")).await.unwrap();
    let echoed = tokio::time::timeout(std::time::Duration::from_secs(2), ws.next())
        .await
        .expect("an echo within 2 s")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(echoed.to_text().unwrap(), "still there?");
}

/// The close code the gateway ends `ws` with, within 2 s.
async fn closed_with(ws: &mut Socket) -> Option<u16> {
    close_frame_within(ws, std::time::Duration::from_secs(2))
        .await
        .map(|(code, _)| code)
}

/// The close frame's code and reason `ws` ends with within `limit` (None:
/// it ended, or failed, without one).
async fn close_frame_within(ws: &mut Socket, limit: std::time::Duration) -> Option<(u16, String)> {
    let wait = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()))
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(limit, wait)
        .await
        .expect("the socket ended in time")
}

/// A route with `key: 0` is refused at load, naming the key.
fn refused_at_zero(key: &str) {
    let (code, out) = check_config(
        &format!("routes:\n  - {{ prefix: /, upstream: default, {key}: 0 }}\nupstreams:\n  default: {{ peers: ['127.0.0.1:1'] }}\n"),
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains(&format!("routes[0].{key}")), "{out}");
}

/// Two gateways on one store: sockets open on `one`, sessions end on `two`.
fn two_instances(up: &WsUpstream) -> (TestGateway, TestGateway) {
    let one = gateway(up);
    let two = TestGateway::builder()
        .upstream(up.addr)
        .same_store_as(&one)
        .start();
    (one, two)
}

/// A revocation learnt from the feed ends the open WebSockets it covers on
/// the instance that did not serve it: close code 1008 (#27). Another
/// session's socket of the same user stays open until `/logout/all`.
#[tokio::test]
async fn a_revocation_on_another_instance_closes_the_sessions_websockets_with_1008() {
    let up = WsUpstream::start().await;
    let (one, two) = two_instances(&up);
    let user = two.new_user().await;
    let (s, other) = two.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    let other_access = other["access_token"].as_str().unwrap().to_owned();
    let mut first = open_socket(&one, &user.access).await;
    let mut second = open_socket(&one, &other_access).await;

    assert_eq!(two.logout(&user.refresh).await.0, 200);
    assert_eq!(closed_with(&mut first).await, Some(1008));
    still_open(&mut second).await;

    let r = two
        .request(reqwest::Method::POST, "/logout/all")
        .bearer_auth(&other_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(closed_with(&mut second).await, Some(1008));
    let metrics = one.metrics().await;
    assert!(
        // `/logout/all` revokes each session by name.
        metrics.contains("authgate_streams_closed_total{reason=\"session_revoked\"} 2"),
        "{metrics}"
    );
}

/// A role change made on another instance re-checks each open WebSocket of
/// the user against the roles it was opened with (what its upstream was told
/// in `X-User-Roles`): an addition closes nothing (nor does the `g` published
/// beside it for older instances), and a removal closes exactly the sockets
/// opened with the role taken away, with 1008, even where the route would
/// still admit the user. Tokens minted before a change are refused.
#[tokio::test]
async fn a_role_change_closes_only_the_websockets_opened_with_a_role_it_takes_away() {
    let up = WsUpstream::start().await;
    let routes = r#"
routes:
  - { prefix: /ops, upstream: default, roles: [admin] }
  - { prefix: /desk, upstream: default, roles: [staff, admin] }
  - { prefix: /, upstream: default }
"#;
    let admin = crate::admin::AdminGateway::start_to(up.addr, routes);
    let one = TestGateway::builder()
        .upstream(up.addr)
        .yaml(routes)
        .same_store_as(&admin.gw)
        .start();
    let email = format!("{}@example.com", unique("roles"));
    let (s, made) = crate::admin::admin_call(
        &admin,
        reqwest::Method::POST,
        "/admin/users",
        Some(json!({"email": email, "password": PASSWORD, "roles": ["staff"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let id = made["id"].as_u64().unwrap();
    let set_roles = |roles: Value| {
        let admin = &admin;
        async move {
            let (s, b) = crate::admin::admin_call(
                admin,
                reqwest::Method::PUT,
                &format!("/admin/users/{id}/roles"),
                Some(json!({ "roles": roles })),
            )
            .await;
            assert_eq!(s, 200, "{b}");
        }
    };
    let (s, login) = one.login(&email, PASSWORD).await;
    assert_eq!(s, 200, "{login}");
    let as_staff = login["access_token"].as_str().unwrap().to_owned();
    let mut desk = open_socket_at(&one, "/desk/feed", &as_staff).await;
    let mut chat = open_socket_at(&one, "/chat", &as_staff).await;

    // An addition: nothing closes; the old token is refused for new requests.
    set_roles(json!(["staff", "admin"])).await;
    eventually(
        std::time::Duration::from_secs(2),
        "the pre-change token is refused",
        || async { one.get_status("/chat", Some(&as_staff)).await == 401 },
    )
    .await;
    still_open(&mut desk).await;
    still_open(&mut chat).await;

    // A socket opened with the new roles, then `admin` taken away: only it closes.
    let (s, b) = one.refresh(login["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let mut ops = open_socket_at(&one, "/ops/feed", b["access_token"].as_str().unwrap()).await;
    set_roles(json!(["staff"])).await;
    assert_eq!(
        close_frame_within(&mut ops, std::time::Duration::from_secs(2)).await,
        Some((1008, "roles changed".to_owned())),
        "{}",
        one.output()
    );
    still_open(&mut desk).await;
    still_open(&mut chat).await;

    // `staff` taken away: both sockets opened with it close, the one on a
    // route any token may use too (its upstream was told `staff`).
    set_roles(json!([])).await;
    assert_eq!(closed_with(&mut desk).await, Some(1008));
    assert_eq!(closed_with(&mut chat).await, Some(1008));
    let metrics = one.metrics().await;
    assert!(
        metrics.contains("authgate_streams_closed_total{reason=\"roles_changed\"} 3"),
        "{metrics}"
    );
    assert!(!metrics.contains("reason=\"user_revoked\""), "{metrics}");
}

/// Set the soft limit on open files of process `pid` (prlimit(2)).
fn set_open_files(pid: u32, soft: u64) {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .output()
        .expect("prlimit (util-linux) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How many files process `pid` has open.
fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Out of file descriptors, no WebSocket opens beyond the reach of a
/// revocation: each one needs a duplicate of its upstream socket, and when
/// that cannot be made the upgrade is refused (503 `busy`) before the request
/// goes up. Whatever the spare descriptors' count (three tries, one per
/// remainder of the three descriptors a WebSocket holds), every socket that
/// did open is closed with 1008 by a logout on another instance.
#[tokio::test]
async fn out_of_file_descriptors_no_websocket_opens_beyond_the_reach_of_a_revocation() {
    let up = WsUpstream::start().await;
    let (one, two) = two_instances(&up);
    let pid = one.pid();
    let mut refused_busy = 0;
    for spare in 0..3u64 {
        let user = two.new_user().await;
        // Settle: the registration's and the first requests' descriptors.
        drop(open_socket(&one, &user.access).await);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        set_open_files(pid, open_files(pid) + 3 + spare);
        let mut opened = Vec::new();
        for _ in 0..4 {
            let mut req = format!("ws://{}/chat", one.addr)
                .into_client_request()
                .unwrap();
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {}", user.access).parse().unwrap(),
            );
            let attempt = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                tokio_tungstenite::connect_async(req),
            )
            .await;
            match attempt {
                Ok(Ok((mut ws, _))) => match ws.next().await {
                    // The upstream's first message: the upgrade went through.
                    Some(Ok(_)) => opened.push(ws),
                    // Ended right after the 101 (out of descriptors further on): not open.
                    _ => break,
                },
                Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r))) => {
                    let status = r.status().as_u16();
                    assert!(matches!(status, 502 | 503), "refused with {status}");
                    if status == 503 {
                        let body: Value =
                            serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}"))
                                .unwrap_or(Value::Null);
                        assert_eq!(body["error"], "busy", "{body}");
                        refused_busy += 1;
                    }
                    break;
                }
                // Out of descriptors at accept: the connection is never served.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        assert!(
            !opened.is_empty(),
            "room for one WebSocket was left ({spare} spare)"
        );
        assert_eq!(two.logout(&user.refresh).await.0, 200);
        for ws in &mut opened {
            assert_eq!(closed_with(ws).await, Some(1008), "{}", one.output());
        }
        set_open_files(pid, 4096);
    }
    assert!(
        refused_busy > 0,
        "one of the three remainders ends at the duplicate"
    );
    assert!(one
        .output()
        .contains("refused, as a revocation could not end it"));
}

/// `websocket_idle_seconds` closes a WebSocket that carries nothing either
/// way for that long, with 1008 ("idle timeout"); frames from the client
/// alone keep it open (the upstream echoes only text, so binary frames go one
/// way); a socket on a route without the key outlives the quiet spell.
#[tokio::test]
async fn websocket_idle_seconds_closes_a_quiet_websocket_and_traffic_keeps_it_open() {
    let up = WsUpstream::start().await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml(
            "routes:\n  - { prefix: /quiet, upstream: default, websocket_idle_seconds: 1 }\n  - { prefix: /, upstream: default }\n",
        )
        .start();
    let user = gw.new_user().await;
    let mut req = format!("ws://{}/quiet", gw.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", user.access).parse().unwrap(),
    );
    let (mut quiet, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    quiet.next().await.unwrap().unwrap();
    let mut unlimited = open_socket(&gw, &user.access).await;
    // 2.4 s of client-to-upstream frames only, 300 ms apart: never idle for 1 s.
    for _ in 0..8 {
        quiet.send(Message::binary(vec![1u8; 8])).await.unwrap();
        let early = tokio::time::timeout(std::time::Duration::from_millis(300), quiet.next()).await;
        assert!(early.is_err(), "closed while busy: {early:?}");
    }
    let started = std::time::Instant::now();
    let closed = close_frame_within(&mut quiet, std::time::Duration::from_secs(3)).await;
    assert_eq!(closed, Some((1008, "idle timeout".to_owned())));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    still_open(&mut unlimited).await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("authgate_streams_closed_total{reason=\"websocket_idle_seconds\"} 1"),
        "{metrics}"
    );
    refused_at_zero("websocket_idle_seconds");
}

/// `max_stream_seconds` bounds a WebSocket however busy or quiet it is: the
/// gateway closes it with 1008 ("stream time limit") once the route's limit
/// has passed, with a token or on a public route without one; a socket on a
/// route without the key stays open.
#[tokio::test]
async fn max_stream_seconds_closes_a_websocket_with_1008_when_its_time_is_up() {
    let up = WsUpstream::start().await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml(
            r#"
routes:
  - prefix: /short
    upstream: default
    max_stream_seconds: 1
  - prefix: /open
    upstream: default
    auth: public
    max_stream_seconds: 1
  - prefix: /
    upstream: default
"#,
        )
        .start();
    let user = gw.new_user().await;
    let connect = |path: &'static str, token: Option<String>| {
        let mut req = format!("ws://{}{path}", gw.addr)
            .into_client_request()
            .unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
            ws.next().await.unwrap().unwrap();
            ws
        }
    };
    let mut short = connect("/short", Some(user.access.clone())).await;
    let mut public = connect("/open", None).await;
    let mut unlimited = open_socket(&gw, &user.access).await;
    // Busy until the end: traffic does not extend the limit.
    still_open(&mut short).await;
    for ws in [&mut short, &mut public] {
        let closed = close_frame_within(ws, std::time::Duration::from_secs(3)).await;
        assert_eq!(closed, Some((1008, "stream time limit".to_owned())));
    }
    still_open(&mut unlimited).await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("authgate_streams_closed_total{reason=\"max_stream_seconds\"} 2"),
        "{metrics}"
    );
    refused_at_zero("max_stream_seconds");
}

/// The upgrade's answer: `Ok` when it opened, else the status and JSON body.
async fn try_open(gw: &TestGateway, access: &str) -> Result<Socket, (u16, Value)> {
    let mut req = format!("ws://{}/chat", gw.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {access}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, _)) => {
            ws.next().await.unwrap().unwrap();
            Ok(ws)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err((
            r.status().as_u16(),
            serde_json::from_slice(r.body().as_deref().unwrap_or(b"null")).unwrap(),
        )),
        Err(e) => panic!("{e}"),
    }
}

/// `limits.max_websockets_per_user` and `_per_ip` refuse the upgrade past
/// the cap with 429 `too_many_websockets` before anything reaches the
/// upstream, and a closed socket gives its place back.
#[tokio::test]
async fn open_websockets_are_capped_per_user_and_per_address() {
    let up = WsUpstream::start().await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml("limits:\n  max_websockets_per_user: 2\n  max_websockets_per_ip: 3\n")
        .start();
    let (a, b) = (gw.new_user().await, gw.new_user().await);
    let first = try_open(&gw, &a.access).await.unwrap();
    let _second = try_open(&gw, &a.access).await.unwrap();
    let upgrades = up.upgrades();
    let (status, body) = try_open(&gw, &a.access).await.err().unwrap();
    assert_eq!(status, 429);
    assert_error(&body, "too_many_websockets");
    let _third = try_open(&gw, &b.access).await.unwrap();
    // Three from this address: b's second is refused by the address cap.
    let (status, body) = try_open(&gw, &b.access).await.err().unwrap();
    assert_eq!(status, 429);
    assert_error(&body, "too_many_websockets");
    assert_eq!(
        up.upgrades(),
        upgrades + 1,
        "refused upgrades never reach the upstream"
    );
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(ws) = try_open(&gw, &a.access).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "a closed socket gives its place back");
    let metrics = gw.metrics().await;
    for label in ["max_websockets_per_user", "max_websockets_per_ip"] {
        let line = format!("authgate_websocket_refusals_total{{reason=\"{label}\"}} ");
        assert!(metrics.contains(&line), "{label}: {metrics}");
    }
}

/// Regression (pingora#946, patches/pingora-proxy.upgrade-race.diff): when
/// the upstream's 101 was read before the upgrade request's own empty body
/// had gone up, pingora-proxy took that body's end for the tunnel's and
/// closed the socket right after the 101. Which comes first is a race, so
/// this opens a thousand sockets, each carrying a frame both ways; before the patch
/// about one in ten failed on a busy machine.
#[tokio::test]
async fn every_upgrade_carries_frames_both_ways_whichever_half_is_first() {
    let up = WsUpstream::start().await;
    let gw = gateway(&up);
    let user = gw.new_user().await;
    for i in 0..1000 {
        let mut ws = open_socket(&gw, &user.access).await;
        ws.send(Message::text(format!("frame {i}"))).await.unwrap();
        match ws.next().await {
            Some(Ok(m)) => assert_eq!(m.to_text().unwrap(), format!("frame {i}")),
            other => panic!("socket {i}: {other:?}"),
        }
    }
    assert_eq!(up.upgrades(), 1000);
}
