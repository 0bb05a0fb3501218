//! gRPC through the gateway: a real grpcio server behind an `h2` cluster (h2c), a real grpcio client over TLS (ALPN h2); the identity reaches the server as metadata, trailers come back, refusals are gRPC statuses.

use crate::helpers::pki::Pki;
use crate::helpers::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The upstream: `test.Echo` with raw-bytes messages (no protobuf codegen).
/// `Unary` answers the metadata it saw as JSON and sets a trailer; `Stream`
/// sends as many messages as the request says; `Fail` ends NOT_FOUND;
/// `Forever` sends a message every 50 ms for 30 s. Each
/// call is appended to the file named by argv[1]; the port goes to stdout.
const SERVER: &str = r#"
import sys, json, time
from concurrent import futures
import grpc
calls = sys.argv[1]
def seen(name):
    with open(calls, "a") as f:
        f.write(name + "\n")
def unary(req, ctx):
    seen("Unary")
    ctx.set_trailing_metadata((("x-served-by", "grpcio"),))
    md = [[k, v] for k, v in ctx.invocation_metadata() if isinstance(v, str)]
    return json.dumps({"metadata": md, "request": req.decode()}).encode()
def stream(req, ctx):
    seen("Stream")
    for i in range(int(req.decode())):
        yield f"part {i}".encode()
def forever(req, ctx):
    seen("Forever")
    for i in range(600):
        if not ctx.is_active():
            return
        yield f"tick {i}".encode()
        time.sleep(0.05)
def fail(req, ctx):
    seen("Fail")
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "Forever": grpc.unary_stream_rpc_method_handler(forever),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
"#;

/// The client: argv port, CA file (`-`: cleartext h2c), a JSON plan (a list of calls, each
/// `{kind: unary|stream, path, body, token?, metadata?}`); prints one JSON
/// list: each call's status code name, details, messages and trailers.
const CLIENT: &str = r#"
import sys, json
import grpc
port, ca, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if ca == "-":
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
else:
    creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
    ch = grpc.secure_channel(f"127.0.0.1:{port}", creds,
                             options=[("grpc.ssl_target_name_override", "localhost")])
grpc.channel_ready_future(ch).result(timeout=20)
out = []
for p in plan:
    md = [tuple(x) for x in p.get("metadata", [])]
    if p.get("token"):
        md.append(("authorization", "Bearer " + p["token"]))
    body = p.get("body", "").encode()
    r = {"messages": []}
    try:
        if p["kind"] == "stream":
            call = ch.unary_stream(p["path"])(body, metadata=md, timeout=20)
            for m in call:
                r["messages"].append(m.decode())
        else:
            resp, call = ch.unary_unary(p["path"]).with_call(body, metadata=md, timeout=20)
            r["messages"].append(resp.decode())
    except grpc.RpcError as e:
        call = e
    r["code"] = call.code().name
    r["details"] = call.details() or ""
    r["trailers"] = [[k, v] for k, v in (call.trailing_metadata() or []) if isinstance(v, str)]
    out.append(r)
print(json.dumps(out))
"#;

/// The grpcio server process, killed when dropped.
pub(crate) struct GrpcServer {
    child: Child,
    pub(crate) port: u16,
    calls: PathBuf,
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the Python server `script` with argument `file`; it prints its port first.
pub(crate) fn spawn_server(script: &str, file: &Path) -> (Child, u16) {
    use std::io::BufRead as _;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("the grpcio server did not start: {line:?}")
    });
    (child, port)
}

impl GrpcServer {
    pub(crate) fn start() -> GrpcServer {
        let calls = std::env::temp_dir().join(unique("authgate-grpc-calls"));
        std::fs::write(&calls, "").unwrap();
        let (child, port) = spawn_server(SERVER, &calls);
        GrpcServer { child, port, calls }
    }

    /// The calls the server has handled, by method.
    pub(crate) fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Whether python3 with grpcio is here; when not, the test is skipped (a failure under CI).
pub(crate) fn have_grpcio(test: &str) -> bool {
    have_python_module(test, "grpc", "grpcio")
}

/// A gateway with HTTPS (ALPN h2) in front of `grpc` (protocol h2, plain TCP);
/// `/test.Echo/` needs a token, `/test.Admin/` the `admin` role, `/test.Down/`
/// goes to a dead peer; `extra` is more top-level config. Its HTTPS port.
fn gateway(grpc: u16, dead: &DeadPort, pki: &Pki, extra: &str) -> (TestGateway, u16) {
    let tls_port = free_port();
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"
upstreams:
  grpc: {{ peers: ['127.0.0.1:{grpc}'], protocol: h2 }}
  down: {{ peers: ['{dead}'], protocol: h2, connect_timeout_ms: 500 }}
routes:
  - {{ prefix: /test.Echo/, upstream: grpc }}
  - {{ prefix: /test.Admin/, upstream: grpc, roles: [admin] }}
  - {{ prefix: /test.Down/, upstream: down }}
tls:
  listen: ['127.0.0.1:{tls_port}']
  cert_file: {cert}
  key_file: {key}
{extra}
"#,
            dead = dead.addr,
            cert = pki.server_cert.display(),
            key = pki.server_key.display()
        ))
        .start();
    (gw, tls_port)
}

/// Run the grpcio client's `plan` against the gateway's `port`: over TLS
/// trusting `ca`, or over h2c without one.
pub(crate) async fn run_client(port: u16, ca: Option<&Path>, plan: Value) -> Vec<Value> {
    let ca = ca.map_or_else(|| PathBuf::from("-"), Path::to_owned);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", CLIENT, &port.to_string()])
            .arg(ca)
            .arg(plan.to_string())
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "grpcio client: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The values of `key` in the metadata the upstream echoed in `answer`.
pub(crate) fn metadata(answer: &Value, key: &str) -> Vec<String> {
    let echoed: Value = serde_json::from_str(answer["messages"][0].as_str().unwrap()).unwrap();
    echoed["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|kv| kv[0] == key)
        .map(|kv| kv[1].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn unary_and_server_streaming_calls_reach_a_grpcio_server_with_the_identity() {
    let test = "grpc::unary_and_server_streaming_calls_reach_a_grpcio_server_with_the_identity";
    if !have_grpcio(test) {
        return;
    }
    let server = GrpcServer::start();
    let dead = DeadPort::new();
    let pki = Pki::generate();
    let (gw, tls_port) = gateway(server.port, &dead, &pki, "");
    let t = token(4242);
    let answers = run_client(
        tls_port,
        Some(&pki.ca),
        json!([
            {"kind": "unary", "path": "/test.Echo/Unary", "body": "hi", "token": t,
             "metadata": [["x-user-id", "1"], ["x_user_id", "2"], ["x-custom", "kept"]]},
            {"kind": "stream", "path": "/test.Echo/Stream", "body": "3", "token": t},
            {"kind": "unary", "path": "/test.Echo/Fail", "token": t},
        ]),
    )
    .await;
    let unary = &answers[0];
    assert_eq!(unary["code"], "OK", "{unary}");
    assert_eq!(
        metadata(unary, "x-user-id"),
        ["4242"],
        "the identity, and not the client's spoofed one: {unary}"
    );
    assert!(
        metadata(unary, "x_user_id").is_empty(),
        "a spoofed spelling is removed: {unary}"
    );
    assert_eq!(metadata(unary, "x-custom"), ["kept"], "{unary}");
    assert!(
        metadata(unary, "authorization").is_empty(),
        "the token is not forwarded: {unary}"
    );
    assert!(
        unary["trailers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-served-by", "grpcio"])),
        "the server's trailers reach the client: {unary}"
    );
    let stream = &answers[1];
    assert_eq!(stream["code"], "OK", "{stream}");
    assert_eq!(stream["messages"], json!(["part 0", "part 1", "part 2"]));
    // grpc-status in the trailers, from the server: not the gateway's guess.
    let fail = &answers[2];
    assert_eq!(
        (&fail["code"], &fail["details"]),
        (&json!("NOT_FOUND"), &json!("no such thing")),
        "{fail}"
    );
    assert_eq!(server.calls(), ["Unary", "Stream", "Fail"]);
    drop(gw);
}

#[test]
fn protocols_that_cannot_work_are_refused_at_load() {
    let conf = |protocol: &str, tls: bool| {
        format!(
            "upstreams:\n  up: {{ peers: ['127.0.0.1:9'], protocol: {protocol}, tls: {tls} }}\n\
             routes:\n  - {{ prefix: /, upstream: up }}\n"
        )
    };
    let (code, text) = check_config(&conf("auto", false), &[("AUTHGATE_JWT_SECRET", SECRET)]);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("upstreams.up.protocol") && text.contains("auto needs tls: true"),
        "{text}"
    );
    for (protocol, tls) in [
        ("auto", true),
        ("h2", false),
        ("h2", true),
        ("http1", false),
    ] {
        let (code, text) = check_config(&conf(protocol, tls), &[("AUTHGATE_JWT_SECRET", SECRET)]);
        assert_eq!(code, Some(0), "{protocol} tls={tls}: {text}");
    }
    // An HTTP/1.1 health check would find an h2-only peer always down.
    let (code, text) = check_config(
        &conf("h2, health_check: { kind: http }", false),
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("upstreams.up.health_check.kind") && text.contains("use kind: tcp"),
        "{text}"
    );
    let (code, text) = check_config(
        &conf("h2, health_check: { kind: tcp }", false),
        &[("AUTHGATE_JWT_SECRET", SECRET)],
    );
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = check_config(&conf("h3", false), &[("AUTHGATE_JWT_SECRET", SECRET)]);
    assert_ne!(code, Some(0), "{text}");
}

#[tokio::test]
async fn the_gateways_own_refusals_are_grpc_statuses_and_reach_no_upstream() {
    let test = "grpc::the_gateways_own_refusals_are_grpc_statuses_and_reach_no_upstream";
    if !have_grpcio(test) {
        return;
    }
    let server = GrpcServer::start();
    let dead = DeadPort::new();
    let pki = Pki::generate();
    let (gw, tls_port) = gateway(server.port, &dead, &pki, "underscore_headers: reject");
    let t = token(7);
    let answers = run_client(
        tls_port,
        Some(&pki.ca),
        json!([
            {"kind": "unary", "path": "/test.Echo/Unary"},
            {"kind": "stream", "path": "/test.Echo/Stream", "body": "2"},
            {"kind": "unary", "path": "/test.Echo/Unary", "token": "not.a.token"},
            {"kind": "unary", "path": "/other.Service/Call", "token": t},
            {"kind": "unary", "path": "/test.Admin/Unary", "token": t},
            {"kind": "unary", "path": "/test.Down/Unary", "token": t},
            // A header name the edge refuses (400 at the edge).
            {"kind": "unary", "path": "/test.Echo/Unary", "token": t, "metadata": [["x_custom", "1"]]},
        ]),
    )
    .await;
    let seen: Vec<(&str, &str)> = answers
        .iter()
        .map(|a| (a["code"].as_str().unwrap(), a["details"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "UNAUTHENTICATED",
                "authentication required: send Authorization: Bearer <access token>"
            ),
            (
                "UNAUTHENTICATED",
                "authentication required: send Authorization: Bearer <access token>"
            ),
            ("UNAUTHENTICATED", "access token is invalid"),
            ("UNIMPLEMENTED", "no route for this path"),
            (
                "PERMISSION_DENIED",
                "this route needs a role the token does not have"
            ),
            ("UNAVAILABLE", "the upstream service could not be reached"),
            (
                "INVALID_ARGUMENT",
                "header names with underscores are not accepted; use hyphens"
            ),
        ],
        "{answers:?}"
    );
    assert!(server.calls().is_empty(), "{:?}", server.calls());
    drop(gw);
}

#[tokio::test]
async fn grpc_timeout_bounds_the_wait_for_the_upstream() {
    // The harness's echo upstream (its /slow answers after 3 s), not grpcio:
    // a grpcio server enforces the forwarded grpc-timeout itself, racing the
    // gateway; and reqwest, not the grpcio client, which does the same.
    let up = Upstream::start("grpc-deadline").await;
    let pki = Pki::generate();
    let tls_port = free_port();
    let _gw = TestGateway::builder()
        .yaml(&format!(
            r#"
upstreams:
  up: {{ peers: ['{up}'] }}
routes:
  - {{ prefix: /, upstream: up }}
tls:
  listen: ['127.0.0.1:{tls_port}']
  cert_file: {cert}
  key_file: {key}
"#,
            up = up.addr,
            cert = pki.server_cert.display(),
            key = pki.server_key.display()
        ))
        .start();
    let client = reqwest::Client::builder()
        .add_root_certificate(pki.ca_certificate())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], tls_port)),
        )
        .build()
        .unwrap();
    for timeout in ["300m", "0n"] {
        let r = client
            .post(format!("https://localhost:{tls_port}/slow"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {}", token(9)))
            .header("grpc-timeout", timeout)
            // One empty message: no compression flag, length 0.
            .body(vec![0u8; 5])
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            (header("grpc-status"), header("grpc-message")),
            (
                Some("4".to_owned()),
                Some("the upstream service did not answer in time".to_owned())
            ),
            "grpc-timeout {timeout}: {:?}",
            r.headers()
        );
    }
}
