//! Settings documented in docs/configuration.md and docs/operating.md that no other module
//! exercises on a running gateway: several listen addresses, `access_log: false`, the
//! hashing threads' nice value, and the tuning knobs (work stealing, the client
//! read buffer, the verified-token cache) leaving answers unchanged.

use crate::helpers::*;
use std::net::SocketAddr;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listen_address_serves() {
    let up = Upstream::start("a").await;
    let second = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .also_listen(second)
        .start();
    let c = client();
    for addr in [gw.addr, second] {
        let r = c
            .get(format!("http://{addr}/x"))
            .bearer_auth(token(3))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "on {addr}");
    }
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_off_writes_no_line() {
    let up = Upstream::start("a").await;
    let mut gw = TestGateway::builder()
        .upstream(up.addr)
        .env("AUTHGATE_ACCESS_LOG", "0")
        .start();
    for _ in 0..5 {
        assert_eq!(gw.get_status("/x", Some(&token(1))).await, 200);
    }
    assert_eq!(gw.get_status("/x", None).await, 401);
    gw.signal("TERM");
    let out = tokio::task::spawn_blocking(move || {
        assert!(gw.wait_exit(Duration::from_secs(15)).is_some());
        gw.output()
    })
    .await
    .unwrap();
    let lines = out
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"request_id\""))
        .count();
    assert_eq!(lines, 0, "{out}");
    // The diagnostics still go out.
    assert!(out.contains("SIGTERM received"), "{out}");
}

/// The nice value of each thread of `pid` whose name starts with `prefix`.
fn thread_nice(pid: u32, prefix: &str) -> Vec<i64> {
    threads_nice(pid, |_, comm| comm.starts_with(prefix))
}

/// The nice value of each thread of `pid` for which `pick(thread id, name)` holds.
fn threads_nice(pid: u32, pick: impl Fn(u32, &str) -> bool) -> Vec<i64> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let tid: u32 = dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !pick(tid, comm.trim()) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Fields after the parenthesised name: state is field 3, nice field 19.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i64 = after.split(' ').nth(16).unwrap().parse().unwrap();
        found.push(nice);
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_threads_run_at_the_configured_nice() {
    let gw = TestGateway::builder()
        .env("AUTHGATE_HASH_NICE", "7")
        .env("AUTHGATE_HASH_THREADS", "2")
        .start();
    // The pool starts with the first hash, from a proxy thread: the hashing
    // threads' nice must not leak into it.
    gw.new_user().await;
    // Each thread sets its own nice as it starts; on a loaded machine the
    // second may not have run yet when the first hash is done.
    eventually(
        Duration::from_secs(5),
        "both hashing threads at nice 7",
        || async { thread_nice(gw.pid(), "authgate-hash") == vec![7, 7] },
    )
    .await;
    // The proxy threads keep the default priority: Pingora names them after the
    // service, `authgate`, as the main thread is named after the binary (left
    // out: it serves no request).
    let pid = gw.pid();
    let proxy = threads_nice(pid, |tid, comm| comm == "authgate" && tid != pid);
    assert!(proxy.len() >= 2, "the 2 proxy threads: {proxy:?}");
    // The priority the gateway was started with (0, or more under `nice cargo test`).
    let started_at = threads_nice(pid, |tid, _| tid == pid);
    assert_eq!(started_at.len(), 1);
    assert_ne!(
        started_at[0], 7,
        "the test needs a start priority other than the hash threads'"
    );
    assert!(
        proxy.iter().all(|&n| n == started_at[0]),
        "{proxy:?} vs {started_at:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_knobs_leave_answers_unchanged() {
    let up = Upstream::start("a").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .env("AUTHGATE_WORK_STEALING", "on")
        .env("AUTHGATE_CLIENT_READ_BUFFER_BYTES", "16")
        .env("AUTHGATE_VERIFY_CACHE_ENTRIES", "1")
        .start();
    // A header far larger than the read buffer, tokens alternating through a one-entry cache.
    let big = "v".repeat(6000);
    for i in 0..10 {
        let t = token(1 + i % 2);
        let r = gw
            .request(reqwest::Method::GET, "/x")
            .bearer_auth(&t)
            .header("X-Big", &big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains(&format!("\"{}\"", 1 + i % 2)), "{body}");
    }
    assert_eq!(gw.get_status("/x", Some("not-a-token")).await, 401);
    let u = gw.new_user().await;
    assert_eq!(gw.get_as(&u, "/me").await.status(), 200);
}
