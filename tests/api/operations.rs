//! The operations surface: metrics, access log hygiene, graceful upgrade, draining on SIGTERM, HTTPS.

use crate::helpers::pki::Pki;
use crate::helpers::*;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Every sample of the exposition, keyed by `name{labels}`.
async fn scrape(gw: &TestGateway) -> HashMap<String, f64> {
    gw.metrics()
        .await
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            l.rsplit_once(' ')
                .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_with_traffic() {
    let up = Upstream::start("a").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let before = scrape(&gw).await;
    let user = gw.new_user().await;
    for _ in 0..3 {
        assert_eq!(gw.get_status("/x", Some(&token(1))).await, 200);
    }
    for _ in 0..2 {
        assert_eq!(gw.get_status("/x", None).await, 401);
    }
    assert_eq!(gw.get_status("/x", Some("a.b.c")).await, 401);
    gw.login(&user.email, "wrong password").await;
    gw.refresh(&user.refresh).await;
    gw.refresh(&user.refresh).await;
    let after = scrape(&gw).await;
    let expected = [
        (r#"authgate_requests_total{route="/",status="200"}"#, 3.0),
        (r#"authgate_requests_total{route="/",status="401"}"#, 3.0),
        (r#"authgate_token_rejections_total{reason="missing"}"#, 2.0),
        (
            r#"authgate_token_rejections_total{reason="malformed"}"#,
            1.0,
        ),
        (
            r#"authgate_auth_requests_total{endpoint="login",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"authgate_auth_requests_total{endpoint="login",outcome="invalid_credentials"}"#,
            1.0,
        ),
        (
            r#"authgate_auth_requests_total{endpoint="refresh",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"authgate_auth_requests_total{endpoint="refresh",outcome="invalid_refresh_token"}"#,
            1.0,
        ),
        (r#"authgate_request_duration_seconds_count{route="/"}"#, 6.0),
    ];
    for (key, want) in expected {
        assert_eq!(delta(&before, &after, key), want, "{key}");
    }
}

#[tokio::test]
async fn access_log_has_one_json_line_per_request_and_no_secrets() {
    let up = Upstream::start("a").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let user = gw.new_user().await;
    let (_, b) = gw.refresh(&user.refresh).await;
    let refresh2 = b["refresh_token"].as_str().unwrap().to_owned();
    let r = gw
        .request(Method::GET, "/orders?api_key=query-secret-value")
        .bearer_auth(&user.access)
        .header("Cookie", "session=cookie-secret-value")
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Access log lines are flushed in batches, at least every 100 ms.
    let out = gw.output_containing("trace-42").await;
    for secret in [
        PASSWORD,
        &user.access,
        &user.refresh,
        &refresh2,
        "query-secret-value",
        "cookie-secret-value",
        SECRET,
        "Bearer",
    ] {
        assert!(
            !out.contains(secret),
            "log contains a secret ({secret}):\n{out}"
        );
    }
    let lines: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let proxied = lines
        .iter()
        .find(|l| l["request_id"] == "trace-42")
        .expect("access line for the proxied request");
    assert_eq!(proxied["method"], "GET");
    assert_eq!(proxied["path"], "/orders");
    assert_eq!(proxied["status"], 200);
    assert_eq!(proxied["route"], "/");
    assert_eq!(proxied["upstream"], up.addr.to_string());
    assert!(proxied["user_id"].as_u64().is_some());
    // The client address by the trusted-proxy rule (here: the peer itself).
    assert_eq!(proxied["client"], "127.0.0.1");
    assert!(proxied["duration_ms"].as_f64().is_some());
    assert!(proxied["time"].as_str().unwrap().ends_with('Z'));
    let auth_lines = lines
        .iter()
        .filter(|l| l["route"].as_str().is_some_and(|r| r.starts_with("auth:")))
        .count();
    assert_eq!(auth_lines, 3, "register, login, refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_upgrade_loses_no_request() {
    let up = Upstream::start("a").await;
    let mut old = TestGateway::builder().upstream(up.addr).start();
    let url = old.url("/x");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let tok = token(1);
        tokio::spawn(async move {
            let c = client();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match c.get(&url).bearer_auth(&tok).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    let wait = Duration::from_secs(10);
    eventually(wait, "load reaches the upstream", || async {
        up.hits() >= 25
    })
    .await;
    let mut new = old.start_upgrade();
    let sock = old.upgrade_sock();
    eventually(wait, "the new process waits for the listeners", || async {
        sock.exists()
    })
    .await;
    old.signal("QUIT");
    let exited = tokio::task::spawn_blocking(move || {
        let s = old.wait_exit(Duration::from_secs(15));
        (s, old)
    })
    .await
    .unwrap();
    assert!(
        exited.0.is_some(),
        "old process did not exit: {}",
        exited.1.output()
    );
    let served = up.hits();
    eventually(wait, "the new process serves the load", || async {
        up.hits() >= served + 25
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}\nnew: {}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)],
        new.output()
    );
    assert!(ok > 50, "only {ok} requests ran");
    // The new process serves alone now.
    assert_eq!(new.get_status("/x", Some(&token(1))).await, 200);
    assert!(new.wait_exit(Duration::from_millis(10)).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start("a").await;
    let mut gw = TestGateway::builder().upstream(up.addr).start();
    let url = gw.url("/slow");
    let req = tokio::spawn(async move {
        client()
            .get(url)
            .bearer_auth(token(1))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // The echo upstream holds /slow for 3 s once it has it.
    eventually(
        Duration::from_secs(5),
        "the request is in flight",
        || async { up.hits() == 1 },
    )
    .await;
    gw.signal("TERM");
    assert_eq!(
        req.await.unwrap().unwrap(),
        200,
        "in-flight request was cut"
    );
    let status = tokio::task::spawn_blocking(move || gw.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(status.is_some(), "gateway did not exit after SIGTERM");
}

/// A gateway in front of `upstream` that also serves HTTPS with the server certificate of `pki`; its HTTPS port.
fn https_gateway(upstream: SocketAddr, pki: &Pki) -> (TestGateway, u16) {
    let tls_port = free_port();
    let gw = TestGateway::builder()
        .upstream(upstream)
        .yaml(&format!(
            r#"
tls:
  listen: ['127.0.0.1:{tls_port}']
  cert_file: {cert}
  key_file: {key}
"#,
            cert = pki.server_cert.display(),
            key = pki.server_key.display()
        ))
        .start();
    (gw, tls_port)
}

#[tokio::test]
async fn tls_upstreams_are_verified_with_the_configured_ca_and_sni() {
    let pki = Pki::generate();
    let echo = Upstream::start("echo").await;
    // An inner gateway serving HTTPS in front of the echo upstream...
    let (_inner, tls_port) = https_gateway(echo.addr, &pki);
    // ...and an outer one that reaches it over TLS, trusting only that certificate
    // (and passing the token on: the inner gateway checks it again).
    let outer = |ca: Option<&Path>| {
        let ca_line = ca
            .map(|p| format!("upstream_ca_file: {}", p.display()))
            .unwrap_or_default();
        TestGateway::builder()
            .yaml(&format!(
                r#"
{ca_line}
upstreams:
  secure: {{ peers: ['127.0.0.1:{tls_port}'], tls: true, sni: localhost }}
routes:
  - {{ prefix: /, upstream: secure, forward_authorization: true }}
"#
            ))
            .start()
    };
    let trusted = outer(Some(&pki.ca));
    let r = trusted.get("/through-tls", Some(&token(8))).await;
    assert_eq!(r.status(), 200, "{}", trusted.output());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["path"], "/through-tls");
    // Without the CA the peer's certificate must be refused.
    let untrusted = outer(None);
    let status = untrusted.get_status("/through-tls", Some(&token(8))).await;
    assert_eq!(status, 502, "an unverified TLS peer was accepted");
}

#[tokio::test]
async fn https_listener_serves_with_the_configured_certificate() {
    let pki = Pki::generate();
    let up = Upstream::start("a").await;
    let (gw, tls_port) = https_gateway(up.addr, &pki);
    // A client that trusts only the test CA, with localhost resolving to the gateway.
    let https = reqwest::Client::builder()
        .add_root_certificate(pki.ca_certificate())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], tls_port)))
        .build()
        .expect("build HTTPS client");
    let r = https
        .get(format!("https://localhost:{tls_port}/secure"))
        .bearer_auth(token(4))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", gw.output()));
    let body: Value = r
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", gw.output()));
    assert_eq!(body["path"], "/secure");
    assert!(
        body["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[0] == "x-forwarded-proto" && p[1] == "https"),
        "{body}"
    );
}

/// Issue #23: with stdout a pipe nobody reads, requests keep being answered
/// promptly once the pipe is full: access lines are dropped and counted in
/// `authgate_log_lines_dropped_total`, never waited for. A security event
/// made meanwhile is never dropped: it comes out once stdout is read.
#[tokio::test]
async fn an_unread_stdout_never_stalls_requests() {
    let gw = std::sync::Arc::new(TestGateway::builder().stdout_unread().start());
    // Long paths make long lines: the 64 KiB pipe and the writer's 1 MiB queue
    // fill after a few thousand requests.
    let path = format!("/unrouted/{}", "x".repeat(400));
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (gw, path) = (gw.clone(), path.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..800 {
                let answered =
                    tokio::time::timeout(std::time::Duration::from_secs(3), gw.get(&path, None))
                        .await;
                assert!(answered.is_ok(), "a request waited on stdout");
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let metrics = tokio::time::timeout(std::time::Duration::from_secs(3), gw.metrics())
        .await
        .expect("metrics answered");
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("authgate_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no authgate_log_lines_dropped_total: {metrics}"));
    assert!(dropped > 0, "6400 long lines fit an unread pipe? {dropped}");
    eprintln!(
        "6400 requests in {:?}, {dropped} lines dropped",
        started.elapsed()
    );

    let (s, _) = gw.login("nobody-23@example.com", "not a password").await;
    assert_eq!(s, 401);
    // More access lines after it: a batch holding the event would be dropped.
    for _ in 0..400 {
        gw.get(&path, None).await;
    }
    let mut gw = std::sync::Arc::into_inner(gw).expect("the workers are done");
    let mut stdout = gw.take_stdout().expect("an unread stdout");
    // A thread of its own (not spawn_blocking, which the runtime would wait
    // for): it ends when the gateway, dropped at the end, closes the pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(&mut stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(r#""event":"login_failed""#) {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let found = rx.recv_timeout(Duration::from_secs(10)).ok();
    assert!(found.is_some(), "the security event was dropped");
}

/// Regression: Pingora put the first bytes of a request head it could not
/// parse into the error it logs, so a header with a NUL byte wrote the
/// client's Authorization and Cookie into the log (the ops listener's HTTP
/// app logs such errors at ERROR; found by Schemathesis against the admin
/// API). Neither listener may log a credential it was sent.
#[tokio::test]
async fn an_unparsable_request_head_never_puts_its_credentials_in_the_log() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let secret = "Zq7-not-a-real-token-but-a-secret-all-the-same";
    let head = format!(
        "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {secret}\r\nCookie: s={secret}\r\nX-Bad: \0\r\n\r\n"
    );
    for addr in [gw.addr, gw.ops] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let answer = raw::try_read_response(&mut s).await;
        assert!(
            answer.as_ref().is_none_or(|r| r.status == 400),
            "{addr}: {answer:?}"
        );
    }
    // Pingora logs the failed read; wait for it, then look for the secret.
    let out = gw.output_containing("bytes of request head").await;
    assert!(!out.contains(secret), "a credential was logged:\n{out}");
}
