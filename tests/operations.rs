//! The operations surface: metrics, access log hygiene, graceful upgrade, draining on SIGTERM, HTTPS.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::*;

/// Every sample of the exposition, keyed by `name{labels}`.
async fn scrape(gw: &Gateway) -> HashMap<String, f64> {
    let text = reqwest::get(gw.ops_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
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
    let gw = GatewayOpts::new().upstream(up.addr).start();
    let c = client();
    let before = scrape(&gw).await;
    let (email, _, refresh) = new_user(&c, &gw).await;
    for _ in 0..3 {
        assert_eq!(
            c.get(gw.url("/x"))
                .bearer_auth(token(1))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(c.get(gw.url("/x")).send().await.unwrap().status(), 401);
    }
    assert_eq!(
        c.get(gw.url("/x"))
            .bearer_auth("a.b.c")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    post(
        &c,
        &gw.url("/login"),
        json!({"email": email, "password": "wrong password"}),
    )
    .await;
    post(&c, &gw.url("/refresh"), json!({"refresh_token": refresh})).await;
    post(&c, &gw.url("/refresh"), json!({"refresh_token": refresh})).await;
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
    let gw = GatewayOpts::new().upstream(up.addr).start();
    let c = client();
    let password = "correct horse battery";
    let (_, access, refresh) = new_user(&c, &gw).await;
    let (_, b) = post(&c, &gw.url("/refresh"), json!({"refresh_token": refresh})).await;
    let refresh2 = b["refresh_token"].as_str().unwrap().to_owned();
    let r = c
        .get(gw.url("/orders?api_key=query-secret-value"))
        .bearer_auth(&access)
        .header("Cookie", "session=cookie-secret-value")
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Access log lines are flushed in batches, at least every 100 ms.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gw.output().contains("trace-42") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = gw.output();
    for secret in [
        password,
        &access,
        &refresh,
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
    let mut old = GatewayOpts::new().upstream(up.addr).start();
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut new = old.start_upgrade();
    tokio::time::sleep(Duration::from_millis(1000)).await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    assert_eq!(
        client()
            .get(new.url("/x"))
            .bearer_auth(token(1))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(new.wait_exit(Duration::from_millis(10)).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start("a").await;
    let mut gw = GatewayOpts::new().upstream(up.addr).start();
    let url = gw.url("/slow");
    let req = tokio::spawn(async move {
        client()
            .get(url)
            .bearer_auth(token(1))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
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

/// A test CA and a server certificate it signed for localhost and 127.0.0.1: (ca, cert, key).
fn certificates() -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [Vec<String>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=authgate test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        vec![
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p("leaf.ext"),
            "-out",
            &p("cert.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    ];
    for args in steps {
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl is needed for this test (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// A gateway in front of `upstream` that also serves HTTPS with `cert` and `key`; its HTTPS port.
fn https_gateway(
    upstream: std::net::SocketAddr,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> (Gateway, u16) {
    let tls_port = free_port();
    let gw = GatewayOpts::new()
        .upstream(upstream)
        .yaml(&format!(
            "tls:\n  listen: ['127.0.0.1:{tls_port}']\n  cert_file: {}\n  key_file: {}\n",
            cert.display(),
            key.display()
        ))
        .start();
    (gw, tls_port)
}

#[tokio::test]
async fn tls_upstreams_are_verified_with_the_configured_ca_and_sni() {
    let (ca, cert, key) = certificates();
    let echo = Upstream::start("echo").await;
    // An inner gateway serving HTTPS in front of the echo upstream...
    let (_inner, tls_port) = https_gateway(echo.addr, &cert, &key);
    // ...and an outer one that reaches it over TLS, trusting only that certificate
    // (and passing the token on: the inner gateway checks it again).
    let outer = |ca: Option<&std::path::Path>| {
        let ca_line = ca
            .map(|p| format!("upstream_ca_file: {}\n", p.display()))
            .unwrap_or_default();
        GatewayOpts::new()
            .yaml(&format!(
                "{ca_line}upstreams:\n  secure: {{ peers: ['127.0.0.1:{tls_port}'], tls: true, sni: localhost }}\nroutes:\n  - {{ prefix: /, upstream: secure, forward_authorization: true }}\n"
            ))
            .start()
    };
    let trusted = outer(Some(&ca));
    let r = client()
        .get(trusted.url("/through-tls"))
        .bearer_auth(token(8))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", trusted.output());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["path"], "/through-tls");
    // Without the CA the peer's certificate must be refused.
    let untrusted = outer(None);
    let status = get_status(&client(), &untrusted.url("/through-tls"), Some(&token(8))).await;
    assert_eq!(status, 502, "an unverified TLS peer was accepted");
}

#[tokio::test]
async fn https_listener_serves_with_the_configured_certificate() {
    let (ca, cert, key) = certificates();
    let up = Upstream::start("a").await;
    let (gw, tls_port) = https_gateway(up.addr, &cert, &key);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&ca)
            .args(["-H", &format!("Authorization: Bearer {}", token(4))])
            .arg(format!("https://localhost:{tls_port}/secure"))
            .arg("--resolve")
            .arg(format!("localhost:{tls_port}:127.0.0.1"))
            .output()
            .expect("curl is needed for this test (scripts/test.sh installs it)")
    })
    .await
    .unwrap();
    let body: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}\n{}", gw.output()));
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
