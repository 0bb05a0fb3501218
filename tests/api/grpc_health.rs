//! `health_check: {kind: grpc}` against grpcio's own health servicer (grpcio-health-checking): a peer is up while it answers SERVING, for the server or a named service.

use crate::grpc::{have_grpcio, spawn_server};
use crate::helpers::*;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

/// A grpcio server whose only service is `grpc.health.v1.Health`, serving
/// `test.Echo` and the server as a whole with the status written in the file
/// argv[1] (SERVING, NOT_SERVING), re-read every 50 ms; the port goes to stdout.
const SERVER: &str = r#"
import sys, time, threading
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
status_file = sys.argv[1]
hs = health.HealthServicer()
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
health_pb2_grpc.add_HealthServicer_to_server(hs, server)
port = server.add_insecure_port("127.0.0.1:0")
def follow():
    last = None
    while True:
        want = open(status_file).read().strip()
        # Never a half-written file (set() renames), but never die on one either.
        if want != last and want in ("SERVING", "NOT_SERVING"):
            status = health_pb2.HealthCheckResponse.ServingStatus.Value(want)
            hs.set("", status)
            hs.set("test.Echo", status)
            last = want
        time.sleep(0.05)
threading.Thread(target=follow, daemon=True).start()
server.start()
print(port, flush=True)
server.wait_for_termination()
"#;

struct HealthServer {
    child: Child,
    port: u16,
    status: PathBuf,
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.status);
    }
}

impl HealthServer {
    fn start() -> HealthServer {
        let status = std::env::temp_dir().join(unique("authgate-grpc-health"));
        std::fs::write(&status, "SERVING").unwrap();
        let (child, port) = spawn_server(SERVER, &status);
        HealthServer {
            child,
            port,
            status,
        }
    }

    /// Written beside and renamed over: a plain write truncates first, and
    /// the server reading the empty file in between raised and stopped
    /// following it (CI saw "whole peer_up turns 1" time out, under load).
    fn set(&self, status: &str) {
        let next = self.status.with_extension("next");
        std::fs::write(&next, status).unwrap();
        std::fs::rename(&next, &self.status).unwrap();
    }
}

/// `authgate_upstream_peer_up` of `cluster`'s one peer.
async fn peer_up(gw: &TestGateway, cluster: &str) -> Option<String> {
    let metrics = gw.metrics().await;
    let prefix = format!("authgate_upstream_peer_up{{cluster=\"{cluster}\"");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

async fn wait_for(gw: &TestGateway, cluster: &str, up: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{cluster} peer_up turns {up}"),
        || async { peer_up(gw, cluster).await.as_deref() == Some(up) },
    )
    .await;
}

#[tokio::test]
async fn a_grpc_health_check_follows_the_servers_serving_status() {
    let test = "grpc_health::a_grpc_health_check_follows_the_servers_serving_status";
    if !have_grpcio(test) {
        return;
    }
    let server = HealthServer::start();
    let check = |service: &str| {
        format!(
            "{{ peers: ['127.0.0.1:{}'], protocol: h2, health_check: {{ kind: grpc, interval_seconds: 1{service} }} }}",
            server.port
        )
    };
    let gw = TestGateway::builder()
        .yaml(&format!(
            "upstreams:\n  whole: {}\n  echo: {}\n  missing: {}\n\
             routes:\n  - {{ prefix: /, upstream: whole }}\n",
            check(""),
            check(", service: test.Echo"),
            check(", service: no.Such"),
        ))
        .start();
    // A service the server does not know is NOT_FOUND (trailers-only): down.
    wait_for(&gw, "missing", "0").await;
    wait_for(&gw, "whole", "1").await;
    wait_for(&gw, "echo", "1").await;
    server.set("NOT_SERVING");
    wait_for(&gw, "whole", "0").await;
    wait_for(&gw, "echo", "0").await;
    let r = gw.get("/x", Some(&token(1))).await;
    assert_eq!(r.status(), 503, "no healthy peer in the route's cluster");
    assert_error(&r.json().await.unwrap(), "no_healthy_upstream");
    server.set("SERVING");
    wait_for(&gw, "whole", "1").await;
    wait_for(&gw, "echo", "1").await;
    assert_eq!(peer_up(&gw, "missing").await.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_peer_that_is_not_a_grpc_server_is_down() {
    // An HTTP/1 server refuses the h2c preface: the check must fail, not pass on a connect.
    let test = "grpc_health::a_peer_that_is_not_a_grpc_server_is_down";
    if !have_grpcio(test) {
        return;
    }
    let plain = Upstream::start("plain").await;
    let gw = TestGateway::builder()
        .yaml(&format!(
            "upstreams:\n  plain: {{ peers: ['{}'], protocol: h2, health_check: {{ kind: grpc, interval_seconds: 1 }} }}\n\
             routes:\n  - {{ prefix: /, upstream: plain }}\n",
            plain.addr
        ))
        .start();
    wait_for(&gw, "plain", "0").await;
}

#[test]
fn a_grpc_check_needs_http2_and_only_it_names_a_service() {
    let conf = |cluster: &str| {
        format!("upstreams:\n  up: {{ peers: ['127.0.0.1:9'], {cluster} }}\nroutes:\n  - {{ prefix: /, upstream: up }}\n")
    };
    let env = [("AUTHGATE_JWT_SECRET", SECRET)];
    let (code, text) = check_config(&conf("health_check: { kind: grpc }"), &env);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("upstreams.up.health_check.kind") && text.contains("protocol: h2"),
        "{text}"
    );
    let (code, text) = check_config(
        &conf("protocol: h2, health_check: { kind: tcp, service: a.B }"),
        &env,
    );
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("upstreams.up.health_check.service"), "{text}");
    for ok in [
        "protocol: h2, health_check: { kind: grpc, service: a.B }",
        "protocol: auto, tls: true, health_check: { kind: grpc }",
    ] {
        let (code, text) = check_config(&conf(ok), &env);
        assert_eq!(code, Some(0), "{ok}: {text}");
    }
}
