//! Throttling (docs/throttling.md): failed logins per (account, IP), account and IP;
//! registrations and password changes per IP; 429 before any hashing, with Retry-After.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A gateway that believes X-Forwarded-For from loopback (so a test can speak from
/// several client IPs), with `rules` (`name: limit` per 10 minutes) over the defaults.
fn gateway(rules: &[(&str, u64)]) -> TestGateway {
    TestGateway::builder().yaml(&rules_yaml(rules)).start()
}

/// The configuration [`gateway`] starts with.
fn rules_yaml(rules: &[(&str, u64)]) -> String {
    let mut yaml = String::from("trusted_proxies: [\"127.0.0.1/32\"]\nthrottle:\n");
    for (rule, limit) in rules {
        yaml.push_str(&format!(
            "  {rule}: {{limit: {limit}, window_seconds: 600}}\n"
        ));
    }
    yaml
}

/// One answer: status, `Retry-After` (seconds) if any, JSON body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    /// Assert a 429 `too_many_attempts` whose Retry-After is within the 10-minute window.
    fn assert_throttled(&self) {
        assert_eq!(self.status, 429, "{}", self.body);
        assert_error(&self.body, "too_many_attempts");
        let wait = self.retry_after.expect("Retry-After on a 429");
        assert!((1..=600).contains(&wait), "Retry-After: {wait}");
    }
}

/// POST `body` to `path` as client `ip` (through the trusted loopback proxy), with a Bearer token if given.
async fn post_from(
    gw: &TestGateway,
    ip: &str,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> Answer {
    let mut req = gw
        .request(Method::POST, path)
        .header("X-Forwarded-For", ip)
        .json(&body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    Answer {
        status: r.status().as_u16(),
        retry_after,
        body: r.json().await.unwrap_or(Value::Null),
    }
}

async fn login_from(gw: &TestGateway, ip: &str, email: &str, password: &str) -> Answer {
    post_from(
        gw,
        ip,
        "/login",
        json!({"email": email, "password": password}),
        None,
    )
    .await
}

/// The status of a login as client `ip`.
async fn login_status(gw: &TestGateway, ip: &str, email: &str, password: &str) -> u16 {
    login_from(gw, ip, email, password).await.status
}

/// `n` logins to `email` with a wrong password as client `ip`, each answered 401.
async fn fail(gw: &TestGateway, ip: &str, email: &str, n: usize) {
    for i in 0..n {
        let status = login_status(gw, ip, email, "wrong password").await;
        assert_eq!(status, 401, "failure {i} of {n} for {email:?} from {ip}");
    }
}

const IP: &str = "198.51.100.7";

#[tokio::test]
async fn past_the_account_ip_limit_even_the_right_password_gets_429() {
    let gw = gateway(&[("login_per_account_ip", 3)]);
    let user = gw.new_user().await;
    fail(&gw, IP, &user.email, 3).await;
    // Refused before the password is looked at: a right guess is not even tried,
    // and a throttled guess costs no hash (docs/throttling.md).
    let hashes = gw.metric(PASSWORD_HASHES).await;
    assert!(hashes > 0.0, "the failed logins were hashed");
    login_from(&gw, IP, &user.email, PASSWORD)
        .await
        .assert_throttled();
    login_from(&gw, IP, &user.email, "wrong password")
        .await
        .assert_throttled();
    assert_eq!(
        gw.metric(PASSWORD_HASHES).await,
        hashes,
        "a throttled login was hashed"
    );
    // The same account from another address, and another account from this one, go on.
    assert_eq!(
        login_status(&gw, "198.51.100.8", &user.email, PASSWORD).await,
        200
    );
    let other = gw.new_user().await;
    assert_eq!(login_status(&gw, IP, &other.email, PASSWORD).await, 200);
}

#[tokio::test]
async fn a_successful_login_clears_the_account_ip_failures() {
    let gw = gateway(&[("login_per_account_ip", 3)]);
    let user = gw.new_user().await;
    fail(&gw, IP, &user.email, 2).await;
    assert_eq!(login_status(&gw, IP, &user.email, PASSWORD).await, 200);
    fail(&gw, IP, &user.email, 3).await;
    login_from(&gw, IP, &user.email, "wrong password")
        .await
        .assert_throttled();
}

#[tokio::test]
async fn unknown_and_unparsable_emails_are_throttled_like_known_ones() {
    let gw = gateway(&[("login_per_account_ip", 3)]);
    let unknown = format!("{}@example.com", unique("nobody"));
    fail(&gw, IP, &unknown, 3).await;
    login_from(&gw, IP, &unknown, "wrong password")
        .await
        .assert_throttled();
    // Keyed on its normalised form: another spelling of the same address is the same account.
    login_from(&gw, IP, &unknown.to_uppercase(), "x")
        .await
        .assert_throttled();

    // Not an address at all: keyed on its trimmed, lowercased text.
    let junk = unique("Not An Email");
    for spelling in [junk.clone(), format!("  {junk} "), junk.to_uppercase()] {
        fail(&gw, IP, &spelling, 1).await;
    }
    login_from(&gw, IP, &junk.to_lowercase(), "wrong password")
        .await
        .assert_throttled();
}

#[tokio::test]
async fn the_account_limit_holds_across_addresses_and_the_ip_limit_across_accounts() {
    let gw = gateway(&[
        ("login_per_account_ip", 10),
        ("login_per_account", 4),
        ("login_per_ip", 6),
    ]);
    let user = gw.new_user().await;
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        fail(&gw, ip, &user.email, 1).await;
    }
    login_from(&gw, "203.0.113.5", &user.email, PASSWORD)
        .await
        .assert_throttled();

    // One address, many accounts: the sixth failure closes the address, for any account.
    for i in 0..6 {
        fail(&gw, IP, &format!("{}-{i}@example.com", unique("spray")), 1).await;
    }
    let fresh = gw.new_user().await;
    login_from(&gw, IP, &fresh.email, PASSWORD)
        .await
        .assert_throttled();
    assert_eq!(
        login_status(&gw, "203.0.113.9", &fresh.email, PASSWORD).await,
        200
    );
}

#[tokio::test]
async fn registrations_are_limited_per_ip() {
    let gw = gateway(&[("register_per_ip", 2)]);
    let register = |ip: &'static str, email: String| {
        let gw = &gw;
        async move {
            let body = json!({"email": email, "password": PASSWORD});
            post_from(gw, ip, "/register", body, None).await
        }
    };
    let taken = format!("{}@example.com", unique("reg"));
    assert_eq!(register(IP, taken.clone()).await.status, 201);
    // A taken email counts too: a 409 is an answer worth throttling.
    assert_eq!(register(IP, taken).await.status, 409);
    let third = register(IP, format!("{}@example.com", unique("reg"))).await;
    third.assert_throttled();
    let elsewhere = register("198.51.100.99", format!("{}@example.com", unique("reg"))).await;
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.body);
}

#[tokio::test]
async fn password_changes_are_limited_per_ip() {
    let gw = gateway(&[("password_per_ip", 2)]);
    let user = gw.new_user().await;
    let change = |current: &'static str| {
        let body = json!({"current_password": current, "new_password": "a brand new password"});
        post_from(&gw, IP, "/password", body, Some(&user.access))
    };
    for _ in 0..2 {
        assert_eq!(change("wrong password").await.status, 401);
    }
    change(PASSWORD).await.assert_throttled();
}

#[tokio::test]
async fn throttled_logins_are_counted_and_logged_without_the_password() {
    let gw = gateway(&[("login_per_account_ip", 1)]);
    let user = gw.new_user().await;
    let secret = "a password that must never be logged";
    assert_eq!(login_from(&gw, IP, &user.email, secret).await.status, 401);
    for _ in 0..3 {
        login_from(&gw, IP, &user.email, secret)
            .await
            .assert_throttled();
    }
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("authgate_throttled_total{endpoint=\"login\"} 3"),
        "{metrics}"
    );
    let out = gw.output_containing("\"event\":\"login_throttled\"").await;
    let event = out
        .lines()
        .find(|l| l.contains("\"event\":\"login_throttled\""))
        .unwrap();
    assert!(event.contains(IP), "{event}");
    assert!(!out.contains(secret), "the password reached the log");
    assert!(!out.contains(&user.email), "the email reached the log");
}

/// Regression (#21): the throttle used to be checked, then the password hashed,
/// then the failure counted, so a burst of concurrent guesses all passed the
/// check (9 wrong guesses against a limit of 5: nine 401s, no 429). Now each
/// attempt is checked and counted in one step, on every instance together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_concurrent_guesses_on_two_instances_passes_no_more_than_the_limit() {
    let yaml = rules_yaml(&[("login_per_account_ip", 5)]);
    // All nine come from one address: past its default fair share of the
    // hashing queue, some would be 503 `busy` instead of judged.
    let share = ("AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT", "32");
    let one = TestGateway::builder()
        .yaml(&yaml)
        .env(share.0, share.1)
        .start();
    let two = TestGateway::builder()
        .yaml(&yaml)
        .env(share.0, share.1)
        .same_store_as(&one)
        .start();
    let user = one.new_user().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(9));
    let tasks: Vec<_> = (0..9)
        .map(|i| {
            let url = if i % 2 == 0 {
                one.url("/login")
            } else {
                two.url("/login")
            };
            let (email, barrier) = (user.email.clone(), barrier.clone());
            tokio::spawn(async move {
                let c = client();
                barrier.wait().await;
                let r = c
                    .post(url)
                    .header("X-Forwarded-For", IP)
                    .json(&json!({"email": email, "password": "wrong password"}))
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429]);
    // And the limit holds afterwards, on both.
    for gw in [&one, &two] {
        login_from(gw, IP, &user.email, PASSWORD)
            .await
            .assert_throttled();
    }
}

/// Regression (#21): correct-password logins were never counted, so one
/// account's owner (or whoever has the password) could keep the hashing pool
/// busy for everyone. `login_attempts_per_*` count every attempt.
#[tokio::test]
async fn correct_logins_count_as_attempts_per_account_and_per_ip() {
    let gw = gateway(&[
        ("login_attempts_per_account", 4),
        ("login_attempts_per_ip", 6),
    ]);
    // Its first login (in new_user) is one attempt of the account's four, from 127.0.0.1.
    let user = gw.new_user().await;
    // Registered only: their logins below are the only attempts from that address.
    let mut others = Vec::new();
    for _ in 0..6 {
        let email = format!("{}@example.com", unique("attempts"));
        assert_eq!(gw.register(&email, PASSWORD).await.0, 201);
        others.push(email);
    }
    for i in 0..3 {
        let ip = format!("192.0.2.{i}");
        assert_eq!(login_status(&gw, &ip, &user.email, PASSWORD).await, 200);
    }
    login_from(&gw, "192.0.2.9", &user.email, PASSWORD)
        .await
        .assert_throttled();
    // Per IP: six attempts from one address, whichever accounts they are for.
    for (i, email) in others.iter().enumerate() {
        let status = login_status(&gw, "198.51.100.50", email, PASSWORD).await;
        assert_eq!(status, 200, "attempt {i}");
    }
    login_from(&gw, "198.51.100.50", &others[0], PASSWORD)
        .await
        .assert_throttled();
    assert_eq!(
        login_status(&gw, "198.51.100.51", &others[0], PASSWORD).await,
        200
    );
}

/// Regression (#21): sixteen concurrent correct logins from one client held
/// the hashing queue, and every other user's login was 503 `busy`. A client
/// has a fair share of the queue; the others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_client_cannot_fill_the_hashing_queue_for_everyone() {
    // Slow hashing (OWASP's 19 MiB, 2 passes), one thread, room for 16 waiting;
    // no throttle, so only the queue's rules decide. Not slower: on a loaded CI
    // machine a 64 MiB hash took seconds, and queued logins ran past the
    // client's timeout.
    let gw = TestGateway::builder()
        .yaml("trusted_proxies: [\"127.0.0.1/32\"]\nthrottle:\n  enabled: false\n")
        .env("AUTHGATE_ARGON2_MEMORY_KIB", "19456")
        .env("AUTHGATE_ARGON2_ITERATIONS", "2")
        .env("AUTHGATE_HASH_THREADS", "1")
        .env("AUTHGATE_HASH_MAX_QUEUE", "16")
        .env("AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT", "2")
        .start();
    let greedy = gw.new_user().await;
    let other = gw.new_user().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // More at once than the whole queue admits (1 + 16).
    let flood: Vec<_> = (0..24)
        .map(|_| {
            let (url, email, stop) = (gw.url("/login"), greedy.email.clone(), stop.clone());
            tokio::spawn(async move {
                let c = client();
                let mut busy = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = match c
                        .post(&url)
                        .header("X-Forwarded-For", "203.0.113.66")
                        .json(&json!({"email": email, "password": PASSWORD}))
                        .send()
                        .await
                    {
                        Ok(r) => r,
                        // The flood only has to keep the queue full; what
                        // is asserted is the other client's answers.
                        Err(e) if e.is_timeout() => continue,
                        Err(e) => panic!("flood request failed: {e}"),
                    };
                    match r.status().as_u16() {
                        200 => {}
                        503 => busy += 1,
                        s => panic!("flood got {s}"),
                    }
                }
                busy
            })
        })
        .collect();
    // While the flood runs, another client's logins are all served.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..5 {
        let a = login_from(&gw, "203.0.113.77", &other.email, PASSWORD).await;
        assert_eq!(a.status, 200, "login {i} of the other client: {}", a.body);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = 0;
    for t in flood {
        refused += t.await.unwrap();
    }
    assert!(refused > 0, "the flood was never held to its share");
}

/// Regression (#21): a stolen session could guess the account's current
/// password at `POST /password`, limited only per IP. A wrong one is now a
/// failed login of the account, logged, and the fifth ends the session.
#[tokio::test]
async fn wrong_current_passwords_count_as_failed_logins_and_end_the_session() {
    let gw = gateway(&[("login_per_account", 7), ("password_per_ip", 100)]);
    let user = gw.new_user().await;
    let change = |current: &'static str, ip: &'static str| {
        let body = json!({"current_password": current, "new_password": "a brand new password"});
        post_from(&gw, ip, "/password", body, Some(&user.access))
    };
    for i in 0..4 {
        let a = change("wrong password", "198.51.100.1").await;
        assert_eq!(a.status, 401, "failure {i}: {}", a.body);
        assert_error(&a.body, "invalid_credentials");
        assert_eq!(
            gw.get_status("/me", Some(&user.access)).await,
            200,
            "failure {i}"
        );
    }
    let fifth = change("wrong password", "198.51.100.2").await;
    assert_eq!(fifth.status, 401, "{}", fifth.body);
    let r = gw.get("/me", Some(&user.access)).await;
    assert_eq!(r.status(), 401);
    assert_error(&r.json().await.unwrap(), "invalid_token");
    assert_eq!(gw.refresh(&user.refresh).await.0, 401, "the session ended");
    let event = "\"event\":\"password_change_failed\"";
    eventually(
        std::time::Duration::from_secs(5),
        "five password_change_failed events",
        || async { gw.output().matches(event).count() == 5 },
    )
    .await;
    let log = gw.output();
    assert!(!log.contains("wrong password"), "a password in the log");
    // Five failures of the account's seven: two more wrong logins close it, from anywhere.
    fail(&gw, "198.51.100.3", &user.email, 2).await;
    login_from(&gw, "198.51.100.4", &user.email, PASSWORD)
        .await
        .assert_throttled();
}
