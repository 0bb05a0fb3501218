//! Redis Cluster (issue 13): the harness's cluster, two gateway instances as one deployment on
//! a cluster, and a master killed under load. Each test starts a cluster of its own, so they
//! run in either pass; the failover test is slow and runs in the cluster pass of scripts/test.sh.
//!
//! Long file: a master is killed under a load generator of its own (workers, a registrar) that checks every acknowledged write afterwards.

use crate::helpers::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Revocation must reach the other instance within this long.
const WITHIN: Duration = Duration::from_secs(2);

fn token_of(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
        .to_owned()
}

#[test]
fn the_harness_cluster_spreads_keys_over_three_masters_and_follows_redirects() {
    let cluster = shared_cluster();
    assert_eq!(cluster.seed_nodes().len(), 6);
    // The cluster is shared: keys of this test only, under a prefix of its own.
    let p = unique("h");
    let key = |k: &str| format!("{p}:{k}");
    // Keys of different slots, written through one node: redis-cli follows MOVED.
    for k in ["a", "b", "c", "d", "e", "f", "{t}:1", "{t}:2"] {
        assert_eq!(cluster.cli(&["SET", &key(k), k]), "OK");
    }
    assert_eq!(cluster.cli(&["GET", &key("e")]), "e");
    let keys = cluster.keys(&key("*"));
    assert_eq!(keys.lines().count(), 8, "{keys}");
    let mut masters: Vec<u16> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|k| cluster.master_of(&key(k)))
        .collect();
    masters.sort_unstable();
    masters.dedup();
    assert!(masters.len() > 1, "every key on one master: {masters:?}");
    // A hash tag keeps keys in one slot.
    assert_eq!(
        cluster.master_of(&key("{t}:1")),
        cluster.master_of(&key("{t}:2"))
    );
}

#[tokio::test]
async fn two_instances_on_one_cluster_are_one_deployment() {
    // Only read and written (its gateways keep to their key prefix): the shared one.
    let cluster = shared_cluster();
    let up = Upstream::start("echo").await;
    let a = TestGateway::builder()
        .cluster(cluster)
        .upstream(up.addr)
        .start();
    let b = TestGateway::builder()
        .same_store_as(&a)
        .upstream(up.addr)
        .start();

    let email = format!("{}@example.com", unique("user"));
    let (s, body) = a.register(&email, PASSWORD).await;
    assert_eq!(s, 201, "register through A: {body}");
    let id = body["id"].as_u64().expect("integer id");
    let (s, pair) = b.login(&email, PASSWORD).await;
    assert_eq!(s, 200, "login through B: {pair}");
    let mut access = token_of(&pair, "access_token");
    let mut refresh = token_of(&pair, "refresh_token");

    for (n, (gw, other)) in [(&a, &b), (&b, &a), (&a, &b), (&b, &a)]
        .into_iter()
        .enumerate()
    {
        let (s, next) = gw.refresh(&refresh).await;
        assert_eq!(s, 200, "refresh {n}: {next}");
        // The spent token is dead on both instances (a replay inside the grace
        // window: refused, and it revokes nothing).
        assert_eq!(gw.refresh(&refresh).await.0, 401, "refresh {n} replayed");
        assert_eq!(other.refresh(&refresh).await.0, 401, "refresh {n} replayed");
        access = token_of(&next, "access_token");
        refresh = token_of(&next, "refresh_token");
    }
    for gw in [&a, &b] {
        let me = gw.get_json("/me", &access).await;
        assert_eq!(me["id"], id, "{me}");
        assert_eq!(me["email"], email.as_str(), "{me}");
        assert_eq!(gw.get_status("/api/x", Some(&access)).await, 200);
    }
    // A third instance given its seed nodes by the environment, not its config file; its
    // URL names a node that does not serve the user's slot, so only cluster mode finds the user.
    let holder = cluster.master_of(&format!("{}user:{{{id}}}", a.prefix));
    let elsewhere = cluster
        .seed_nodes()
        .into_iter()
        .find(|n| !n.ends_with(&format!(":{holder}")))
        .unwrap();
    let c = TestGateway::builder()
        .same_store_as(&a)
        .redis_url(format!("redis://{elsewhere}/0"))
        .env(
            "AUTHGATE_REDIS_CLUSTER_NODES",
            &cluster.seed_nodes().join(","),
        )
        .start();
    let me = c.get_json("/me", &access).await;
    assert_eq!(me["id"], id, "/me through the third instance: {me}");
    drop(c);

    // A second session, ended through B by its id: A refuses its tokens, the first lives on.
    let (s, second) = a.login(&email, PASSWORD).await;
    assert_eq!(s, 200, "{second}");
    let second_access = token_of(&second, "access_token");
    let sessions = b.get_json("/sessions", &second_access).await;
    let sid = sessions["sessions"]
        .as_array()
        .expect("sessions array")
        .iter()
        .find(|s| s["current"] == true)
        .unwrap_or_else(|| panic!("no current session in {sessions}"))["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let r = b
        .request(reqwest::Method::DELETE, &format!("/sessions/{sid}"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    eventually(
        WITHIN,
        "A refuses the ended session's access token",
        || async { a.get_status("/me", Some(&second_access)).await == 401 },
    )
    .await;
    assert_eq!(a.get_status("/api/x", Some(&second_access)).await, 401);
    for gw in [&a, &b] {
        let (s, body) = gw.refresh(&token_of(&second, "refresh_token")).await;
        assert_eq!(s, 401, "the ended session's refresh token: {body}");
    }
    assert_eq!(
        a.get_status("/me", Some(&access)).await,
        200,
        "the first session"
    );

    // Logging out everywhere through A: B refuses the access token, both the refresh token.
    let r = a
        .request(reqwest::Method::POST, "/logout/all")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    eventually(WITHIN, "B refuses the access token", || async {
        b.get_status("/me", Some(&access)).await == 401
    })
    .await;
    assert_eq!(b.get_status("/api/x", Some(&access)).await, 401);
    for gw in [&a, &b] {
        assert_eq!(
            gw.refresh(&refresh).await.0,
            401,
            "refresh after logout/all"
        );
    }
}

/// Redis calls may take this long before the gateway gives up (`redis.timeout_ms`).
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// What a request may take beyond [`REDIS_TIMEOUT`]: hashing, a second call, a loaded machine.
const MARGIN: Duration = Duration::from_secs(1);
/// Traffic must recover this soon after the kill.
const RECOVERY: Duration = Duration::from_secs(15);
/// Writes acknowledged this long before the kill must survive it (replication is asynchronous).
const DURABLE_AFTER: Duration = Duration::from_secs(1);

/// One answer of the load loop.
struct Answer {
    op: &'static str,
    status: u16,
    body: Value,
    started: Instant,
    took: Duration,
    /// Whether the request needs the killed master's slots (the workers' users live there).
    victim_slot: bool,
}

/// What the load tasks share with the test.
#[derive(Clone)]
struct Load {
    gw: Arc<TestGateway>,
    stop: Arc<AtomicBool>,
    killed_at: Arc<Mutex<Option<Instant>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
    /// What must not happen, found by a task.
    faults: Arc<Mutex<Vec<String>>>,
    /// Acknowledged writes that did not survive the failover.
    lost: Arc<Mutex<Vec<String>>>,
    /// Emails whose registration got 201, and when.
    registered: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Load {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    /// POST (with a body) or GET `path`, recorded; a transport error is status 0.
    async fn call(
        &self,
        c: &reqwest::Client,
        op: &'static str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = self.gw.url(&format!("/{op}"));
        let mut req = match body {
            Some(b) => c.post(url).json(&b),
            None => c.get(url),
        };
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let started = Instant::now();
        let (status, body) = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, Value::String(e.to_string())),
        };
        self.answers.lock().unwrap().push(Answer {
            op,
            status,
            body: body.clone(),
            started,
            took: started.elapsed(),
            victim_slot: op != "register",
        });
        (status, body)
    }

    /// A refresh token acknowledged at `acked` is unknown to the store: lost in the
    /// failover if acknowledged shortly before the kill (or after it), a fault otherwise.
    fn refresh_token_gone(&self, email: &str, acked: Instant, answer: &Value) {
        match *self.killed_at.lock().unwrap() {
            Some(kill) if acked + DURABLE_AFTER > kill => self.lost.lock().unwrap().push(format!(
                "refresh token of {email} acknowledged at {} s from the kill",
                since(kill, acked)
            )),
            kill => self.faults.lock().unwrap().push(format!(
                "refresh token of {email} acknowledged {:?} ago refused (kill: {kill:?}): {answer}",
                acked.elapsed()
            )),
        }
    }
}

/// `t` relative to `kill`, in seconds (negative: before).
fn since(kill: Instant, t: Instant) -> String {
    if t >= kill {
        format!("+{:.3}", (t - kill).as_secs_f64())
    } else {
        format!("-{:.3}", (kill - t).as_secs_f64())
    }
}

/// The tokens a worker holds; `acked` is when the store acknowledged the refresh token,
/// None once a refresh with it got 503 (it may or may not have been rotated then).
struct Held {
    access: String,
    refresh: String,
    acked: Option<Instant>,
}

impl Held {
    fn from(answer: &Value) -> Held {
        Held {
            access: token_of(answer, "access_token"),
            refresh: token_of(answer, "refresh_token"),
            acked: Some(Instant::now()),
        }
    }
}

/// One worker: log in as `email`, then refresh and GET /me in turn, as a client would:
/// retry after a 503, log in again after a 401.
async fn worker(load: Load, email: String) {
    let c = client();
    let mut held: Option<Held> = None;
    while load.running() {
        held = match held {
            None => {
                let credentials = json!({"email": email, "password": PASSWORD});
                let (s, b) = load.call(&c, "login", None, Some(credentials)).await;
                (s == 200).then(|| Held::from(&b))
            }
            Some(mut h) => {
                let body = json!({"refresh_token": h.refresh});
                let (s, b) = load.call(&c, "refresh", None, Some(body)).await;
                match s {
                    200 => h = Held::from(&b),
                    503 => h.acked = None,
                    // Expected only when the last attempt with this token may have rotated it.
                    401 => {
                        if let Some(acked) = h.acked {
                            load.refresh_token_gone(&email, acked, &b);
                        }
                    }
                    _ => {}
                }
                if s == 401 {
                    None
                } else {
                    load.call(&c, "me", Some(&h.access), None).await;
                    Some(h)
                }
            }
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Register new users all along (their keys on any slot), noting which got 201 and when.
async fn registrar(load: Load) {
    let c = client();
    while load.running() {
        let email = format!("{}@example.com", unique("reg"));
        let body = json!({"email": email, "password": PASSWORD});
        if load.call(&c, "register", None, Some(body)).await.0 == 201 {
            load.registered
                .lock()
                .unwrap()
                .push((email, Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// What is wrong with the load loop's answers: an unexpected status, an error other than
/// `store_unavailable`, a request slower than the Redis timeout allows, a 503 once traffic
/// has recovered (plus a second for every connection to learn the new slot map).
fn judge(answers: &[Answer], kill: Instant, recovered: Option<Instant>) -> Vec<String> {
    let mut faults = vec![];
    for a in answers {
        let expected = match (a.op, a.status) {
            ("register", 201) | ("login" | "refresh" | "me", 200) => true,
            // The worker judged it (a token that may have been rotated, or a lost write).
            ("refresh", 401) => true,
            (_, 503) => a.body["error"] == "store_unavailable",
            _ => false,
        };
        let at = since(kill, a.started);
        if !expected {
            faults.push(format!("{} at {at} s: {} {}", a.op, a.status, a.body));
        }
        if a.took > REDIS_TIMEOUT + MARGIN {
            faults.push(format!(
                "{} at {at} s took {:?}: {}",
                a.op, a.took, a.status
            ));
        }
        if recovered.is_some_and(|r| a.started > r + Duration::from_secs(1)) && a.status == 503 {
            faults.push(format!(
                "{} at {at} s, after the recovery: 503 {}",
                a.op, a.body
            ));
        }
    }
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (~15 s): scripts/test.sh runs it in the cluster pass (-- --include-ignored)"]
async fn a_master_killed_under_load_fails_over_and_traffic_recovers_by_itself() {
    let mut cluster = RedisCluster::start();
    let gw = TestGateway::builder()
        .cluster(&cluster)
        .redis_key("timeout_ms", &REDIS_TIMEOUT.as_millis().to_string())
        // The registration loop below is not an attack.
        .yaml("throttle:\n  register_per_ip: {limit: 100000, window_seconds: 3600}\n")
        // ...and every loop speaks from 127.0.0.1: one client to the hashing queue's fair share.
        .env("AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT", "64")
        .start();

    // Users registered well before the kill; the workers are those on the victim's slots.
    let mut users = vec![];
    for _ in 0..24 {
        let email = format!("{}@example.com", unique("fo"));
        let (s, b) = gw.register(&email, PASSWORD).await;
        assert_eq!(s, 201, "register: {b}");
        let key = format!("{}user:{{{}}}", gw.prefix, b["id"]);
        users.push((email, cluster.master_of(&key), key));
    }
    let (victim, victim_key) = (users[0].1, users[0].2.clone());

    let load = Load {
        gw: Arc::new(gw),
        stop: Arc::default(),
        killed_at: Arc::default(),
        answers: Arc::default(),
        faults: Arc::default(),
        lost: Arc::default(),
        registered: Arc::default(),
    };
    let mut tasks = vec![tokio::spawn(registrar(load.clone()))];
    for (email, _, _) in users.iter().filter(|u| u.1 == victim).take(4) {
        tasks.push(tokio::spawn(worker(load.clone(), email.clone())));
    }

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kill = Instant::now();
    *load.killed_at.lock().unwrap() = Some(kill);
    // wait_ok holds out until no dead node serves a slot: a replica has taken over.
    tokio::task::block_in_place(|| {
        cluster.kill(victim);
        cluster.wait_ok();
    });
    let promoted = kill.elapsed();
    let new_master = tokio::task::block_in_place(|| cluster.master_of(&victim_key));
    assert_ne!(new_master, victim, "no replica took over {victim_key}");

    // Recovered: a request that needs the victim's slots, sent after the kill, succeeded.
    let first_success = || {
        let answers = load.answers.lock().unwrap();
        answers
            .iter()
            .filter(|a| a.victim_slot && a.started > kill && (200..300).contains(&a.status))
            .map(|a| a.started + a.took)
            .min()
    };
    let recovered = loop {
        let first = first_success();
        if first.is_some() || kill.elapsed() > RECOVERY {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Steady traffic after the recovery, ~10 s of load in all.
    let until = recovered.map_or(kill, |t| t + Duration::from_secs(3));
    let until = until.max(kill + Duration::from_secs(7));
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    load.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("load task");
    }

    let answers = std::mem::take(&mut *load.answers.lock().unwrap());
    let mut faults = std::mem::take(&mut *load.faults.lock().unwrap());
    faults.extend(judge(&answers, kill, recovered));
    let mut counts = std::collections::BTreeMap::<(&str, u16), usize>::new();
    for a in &answers {
        *counts.entry((a.op, a.status)).or_default() += 1;
    }
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    let recovery = recovered.map(|t| t - kill);
    eprintln!(
        "failover: replica promoted {promoted:?} after the kill, first success {recovery:?} \
         after it; slowest request {slowest:?}; answers {counts:?}"
    );
    assert!(
        recovery.is_some(),
        "nothing on the killed master's slots succeeded within {RECOVERY:?} of the kill \
         (promoted after {promoted:?}): {counts:?}"
    );

    // The killed node comes back as a replica; the cluster is whole again.
    tokio::task::block_in_place(|| {
        cluster.restart(victim);
        cluster.wait_ok();
    });

    // Acknowledged registrations: all but the last second's before the kill must be there.
    let gw = &load.gw;
    for (email, _, _) in &users {
        let (s, b) = gw.login(email, PASSWORD).await;
        if s != 200 {
            faults.push(format!(
                "{email}, registered before the load: login {s} {b}"
            ));
        }
    }
    let mut lost = std::mem::take(&mut *load.lost.lock().unwrap());
    let registered = std::mem::take(&mut *load.registered.lock().unwrap());
    for (email, acked) in &registered {
        let at = since(kill, *acked);
        match gw.login(email, PASSWORD).await {
            (200, _) => {}
            (401, _) if *acked + DURABLE_AFTER > kill => {
                lost.push(format!("registration of {email} acknowledged at {at} s"));
            }
            (s, b) => faults.push(format!("{email}, registered at {at} s: login {s} {b}")),
        }
    }
    eprintln!(
        "failover: {} registrations acknowledged, {} acknowledged writes lost{}",
        registered.len(),
        lost.len(),
        lost.iter().map(|l| format!("\n  {l}")).collect::<String>()
    );
    assert!(
        faults.is_empty(),
        "{} faults (times from the kill; promoted after {promoted:?}, recovered after \
         {recovery:?}):\n{}",
        faults.len(),
        faults[..faults.len().min(30)].join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_readyz_recovers_and_revocations_reach_every_instance() {
    let mut cluster = RedisCluster::start();
    let up = Upstream::start("echo").await;
    let a = TestGateway::builder()
        .cluster(&cluster)
        .upstream(up.addr)
        .redis_key("timeout_ms", "500")
        .start();
    let b = TestGateway::builder()
        .same_store_as(&a)
        .upstream(up.addr)
        .start();
    assert_eq!(a.ops_get("/readyz").await.status(), 200);
    // The master of the revocations set (every instance re-reads it on
    // (re)subscribing), and a user whose keys live there too.
    let victim = cluster.master_of(&format!("{}revocations", a.prefix));
    let mut user = a.new_user().await;
    while cluster.master_of(&format!("{}user:{{{}}}", a.prefix, user.id)) != victim {
        user = a.new_user().await;
    }
    assert_eq!(b.get_status("/me", Some(&user.access)).await, 200);

    tokio::task::block_in_place(|| cluster.kill(victim));
    // A call that needs the dead master: 503, counted against that node.
    assert_eq!(a.get_status("/me", Some(&user.access)).await, 503);
    let metrics = a.metrics().await;
    let counted = format!("authgate_redis_errors_total{{node=\"127.0.0.1:{victim}\"}}");
    assert!(metrics.contains(&counted), "no {counted} in:\n{metrics}");
    eventually(
        Duration::from_secs(5),
        "/readyz reports the cluster missing a master",
        || async {
            let r = a.ops_get("/readyz").await;
            r.status() == 503 && r.text().await.unwrap_or_default().contains("redis")
        },
    )
    .await;
    tokio::task::block_in_place(|| cluster.wait_ok());
    for gw in [&a, &b] {
        eventually(
            Duration::from_secs(5),
            "/readyz after the failover",
            || async { gw.ops_get("/readyz").await.status() == 200 },
        )
        .await;
    }

    // Logging out everywhere through A after the failover still reaches B. Its
    // subscription may have been on the killed node: it subscribes on another and
    // re-reads the set, or catches up at its next periodic re-read (every 5 s).
    let r = a
        .request(reqwest::Method::POST, "/logout/all")
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    eventually(
        Duration::from_secs(6),
        "B refuses the access token",
        || async { b.get_status("/me", Some(&user.access)).await == 401 },
    )
    .await;
    assert_eq!(b.get_status("/api/x", Some(&user.access)).await, 401);
}
