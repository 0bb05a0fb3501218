//! Stopping the process (docs/operating.md, "Shutdown"): SIGTERM ends as soon as nothing is
//! in flight, within the grace period; the access log loses no line on SIGTERM, SIGQUIT or
//! SIGINT; `-d` runs in the background; and `upstreams.*.idle_timeout_ms` closes pooled
//! upstream connections.
//!
//! Long file: each shutdown and upgrade scenario needs its own process choreography (signals, handover socket, in-flight requests), written out in full so a failure reads as a timeline.

use crate::helpers::*;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A JWT for user `id` (forwarded by the default route).
fn bearer(id: u64) -> String {
    token(id)
}

/// Wait (in a blocking task) until `gw` exits; its status and how long that took.
async fn exit_of(mut gw: TestGateway, limit: Duration) -> (Option<ExitStatus>, Duration, String) {
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let s = gw.wait_exit(limit);
        (s, t.elapsed(), gw.output())
    })
    .await
    .unwrap()
}

/// A gateway in front of `upstream` with a long grace period, serving (signal handlers in place).
async fn gateway(upstream: std::net::SocketAddr, grace: u64) -> TestGateway {
    let gw = TestGateway::builder()
        .upstream(upstream)
        .yaml(&format!("grace_period_seconds: {grace}\n"))
        .start();
    // Pingora installs its signal handlers once every service has started:
    // a signal sent before would kill the process instead.
    gw.signal_handlers_installed().await;
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_an_idle_gateway_exits_at_once() {
    let up = Upstream::start("a").await;
    let gw = gateway(up.addr, 30).await;
    // An idle keep-alive connection (reqwest's pool) and one that never sent anything:
    // neither is in flight, neither holds the process.
    let c = client();
    let r = c
        .get(gw.url("/x"))
        .bearer_auth(bearer(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _silent = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.signal("TERM");
    let (status, took, out) = exit_of(gw, Duration::from_secs(40)).await;
    let status = status.expect("gateway did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}: {out}");
    assert!(
        took < Duration::from_secs(3),
        "an idle gateway took {took:?} to exit (grace period 30 s): {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_a_slow_request_then_exits_right_after_it() {
    let up = Upstream::start("a").await;
    let gw = gateway(up.addr, 30).await;
    let url = gw.url("/slow");
    let req = tokio::spawn(async move {
        let r = client().get(url).bearer_auth(bearer(1)).send().await;
        (r.map(|r| r.status().as_u16()), Instant::now())
    });
    // The echo upstream holds /slow for 3 s once it has it.
    eventually(
        Duration::from_secs(5),
        "the request is in flight",
        || async { up.hits() == 1 },
    )
    .await;
    let sent = Instant::now();
    gw.signal("TERM");
    // No new connection is accepted meanwhile: the gateway closes its listener
    // (refused or reset from then on, never served).
    gw.stops_listening(Duration::from_secs(2)).await;
    let late = client()
        .get(gw.url("/x"))
        .bearer_auth(bearer(1))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        late.is_err(),
        "a request after SIGTERM was served: {late:?}"
    );
    let (status, took, out) = exit_of(gw, Duration::from_secs(40)).await;
    let (answer, answered_at) = req.await.unwrap();
    assert_eq!(answer.unwrap(), 200, "the in-flight request was cut: {out}");
    let status = status.expect("gateway did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}: {out}");
    // exit_of measured from when it started waiting, right after the late request.
    let _ = took;
    let exited_after = sent.elapsed();
    assert!(
        exited_after < Duration::from_secs(6),
        "exited {exited_after:?} after SIGTERM (the request took 3 s, grace period 30 s): {out}"
    );
    let lag = Instant::now().duration_since(answered_at);
    assert!(
        lag < Duration::from_secs(2),
        "the process exited {lag:?} after the last answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_a_request_that_never_ends() {
    // An upstream that accepts and never answers.
    let stall = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = stall.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = stall.accept().await {
            keep.lock().unwrap().push(s);
        }
    });
    let gw = gateway(addr, 1).await;
    let url = gw.url("/x");
    let req = tokio::spawn(async move { client().get(url).bearer_auth(bearer(1)).send().await });
    eventually(
        Duration::from_secs(5),
        "the upstream has the request",
        || async { !held.lock().unwrap().is_empty() },
    )
    .await;
    gw.signal("TERM");
    let (status, took, out) = exit_of(gw, Duration::from_secs(20)).await;
    assert!(status.is_some(), "did not exit: {out}");
    // grace_period_seconds (1) + graceful_shutdown_timeout_seconds (1), not the 30 s read timeout.
    assert!(took < Duration::from_secs(5), "took {took:?}: {out}");
    assert!(
        req.await.unwrap().is_err(),
        "the stalled request got an answer"
    );
}

/// The access-log lines in `out`.
fn access_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("request_id").is_some())
        .collect()
}

async fn no_acknowledged_request_missing_from_the_log(signal: &str) {
    const N: usize = 40;
    let up = Upstream::start("a").await;
    let gw = gateway(up.addr, 30).await;
    let c = client();
    let mut ids = Vec::new();
    for i in 0..N {
        let id = format!("log-{signal}-{i}");
        let r = c
            .get(gw.url("/x"))
            .bearer_auth(bearer(1))
            .header("X-Request-Id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(id);
    }
    // At once: the batching flusher writes every 100 ms.
    gw.signal(signal);
    let (status, _, out) = exit_of(gw, Duration::from_secs(40)).await;
    assert!(status.is_some(), "no exit after SIG{signal}: {out}");
    let logged: Vec<String> = access_lines(&out)
        .iter()
        .filter_map(|l| l["request_id"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !logged.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "SIG{signal}: {} of {N} answered requests missing from the access log: {missing:?}",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_complete_after_sigterm() {
    no_acknowledged_request_missing_from_the_log("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_complete_after_sigint() {
    no_acknowledged_request_missing_from_the_log("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_complete_after_sigquit() {
    no_acknowledged_request_missing_from_the_log("QUIT").await;
}

/// Kills the daemon (by pid) however the test ends.
struct Daemon(i32);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .status();
    }
}

fn alive(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_mode_serves_in_the_background_and_stops_on_sigterm() {
    let up = Upstream::start("a").await;
    // A config written and checked by a foreground run, which is then stopped.
    let fg = TestGateway::builder()
        .upstream(up.addr)
        .yaml("grace_period_seconds: 30\n")
        .start();
    let conf = fg.conf().to_owned();
    let addr = fg.addr;
    let pid_file = conf.with_file_name("authgate.pid");
    drop(fg);
    let _ = std::fs::remove_file(&pid_file);
    let log = conf.with_file_name("daemon.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["-d", "-c"])
        .arg(&conf)
        .env("AUTHGATE_JWT_SECRET", SECRET)
        .env("AUTHGATE_UPSTREAM", format!("http://{}", up.addr))
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .status()
        .unwrap();
    // The command itself returns at once; the server lives on in the background.
    assert!(status.success(), "authgate -d: {status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut pid = None;
    eventually(
        Duration::from_secs(10),
        "the daemon writes its pid file",
        || {
            let p = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            pid = p;
            async move { p.is_some() }
        },
    )
    .await;
    let pid = pid.unwrap();
    let _guard = Daemon(pid);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually(Duration::from_secs(10), "the daemon serves", || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
            && read_log().contains("Starting service: authgate\n")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = client();
    let r = c
        .get(format!("http://{addr}/x"))
        .bearer_auth(bearer(7))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: serde_json::Value = r.json().await.unwrap();
    assert!(echoed.to_string().contains("\"7\""), "{echoed}");
    assert!(alive(pid));
    drop(c);
    // The shutdown watcher lives in the forked process too: SIGTERM exits promptly.
    let t = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    while alive(pid) && t.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the daemon is still running: {}", read_log());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the daemon took {:?} to stop (grace period 30 s): {}",
        t.elapsed(),
        read_log()
    );
    // Its access log went to the inherited stdout.
    assert_eq!(access_lines(&read_log()).len(), 1, "{}", read_log());
}

/// An HTTP/1.1 upstream that answers every request 200 on keep-alive connections and
/// records, per connection, when it was opened and when the gateway closed it.
struct PoolUpstream {
    addr: std::net::SocketAddr,
    opened: Arc<AtomicUsize>,
    closed: Arc<Mutex<Vec<Instant>>>,
}

impl PoolUpstream {
    async fn start() -> PoolUpstream {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let opened = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let (o, cl) = (opened.clone(), closed.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                o.fetch_add(1, Ordering::SeqCst);
                let cl = cl.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        // GETs without a body: one answer per blank line.
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let _ = s
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                .await;
                        }
                    }
                    cl.lock().unwrap().push(Instant::now());
                });
            }
        });
        PoolUpstream {
            addr,
            opened,
            closed,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_idle_timeout_closes_pooled_connections() {
    let up = PoolUpstream::start().await;
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"upstreams:
  pool: {{ peers: ['{}'], idle_timeout_ms: 400 }}
routes:
  - {{ prefix: /, upstream: pool }}
"#,
            up.addr
        ))
        // One proxy thread: both requests go out through the same thread's
        // share of the upstream pool.
        .env("AUTHGATE_THREADS", "1")
        .start();
    let tok = bearer(1);
    let get = |c: reqwest::Client| {
        let (url, tok) = (gw.url("/x"), tok.clone());
        async move {
            let r = c.get(url).bearer_auth(tok).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    get(client()).await;
    // Within the idle timeout the pooled connection is reused...
    tokio::time::sleep(Duration::from_millis(100)).await;
    get(client()).await;
    assert_eq!(
        up.opened.load(Ordering::SeqCst),
        1,
        "the pooled connection was not reused"
    );
    let idle_from = Instant::now();
    // ...and once idle for longer, the gateway closes it by itself.
    eventually(
        Duration::from_secs(5),
        "the gateway closes the idle upstream connection",
        || async { !up.closed.lock().unwrap().is_empty() },
    )
    .await;
    let closed_at = up.closed.lock().unwrap()[0];
    let idle = closed_at.duration_since(idle_from);
    assert!(
        idle >= Duration::from_millis(300) && idle < Duration::from_millis(2500),
        "closed after {idle:?} idle (idle_timeout_ms 400)"
    );
    get(client()).await;
    assert_eq!(
        up.opened.load(Ordering::SeqCst),
        2,
        "a new connection after the timeout"
    );
}

/// Issue #23: SIGTERM leaves by the one exit path, not by `process::exit` from
/// the shutdown watcher: the grace period is ended early, Pingora stops its
/// runtimes and returns, and the gateway's exit path writes out the access
/// log and the security events last, with status 0, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_by_the_one_exit_path_after_pingoras_shutdown() {
    let up = Upstream::start("a").await;
    let gw = gateway(up.addr, 30).await;
    let r = client()
        .get(gw.url("/x"))
        .bearer_auth(bearer(1))
        .header("X-Request-Id", "exit-path-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = gw.login("exit-path@example.com", "not the password").await;
    assert_eq!(s, 401);
    gw.signal("TERM");
    let (status, took, out) = exit_of(gw, Duration::from_secs(40)).await;
    let status = status.expect("no exit after SIGTERM");
    assert!(status.success(), "exit status {status}: {out}");
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} (grace 30 s): {out}"
    );
    let at = |text: &str| {
        out.find(text)
            .unwrap_or_else(|| panic!("no {text:?} in the output: {out}"))
    };
    let ended_early = at("grace period ended early");
    let runtimes = at("All runtimes exited");
    let exiting = at("authgate exiting");
    assert!(
        ended_early < runtimes && runtimes < exiting,
        "Pingora's shutdown, then the exit path: {out}"
    );
    assert!(out.contains(r#""request_id":"exit-path-1""#), "{out}");
    assert!(out.contains(r#""event":"login_failed""#), "{out}");
}
