//! Redis over TLS (`rediss://`): a real TLS-only redis-server with certificates made at
//! test time, the real gateway in front of it.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::tls_redis::{unrelated_ca, TlsRedis};
use support::*;

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A gateway on `redis` that trusts `ca` (none: no TLS files at all).
fn gateway(redis: &TlsRedis, ca: Option<&Path>, client_cert: bool) -> Gateway {
    let mut opts = GatewayOpts {
        redis_url: redis.url(),
        ..GatewayOpts::new()
    };
    if let Some(ca) = ca {
        opts = opts.redis_key("tls_ca_file", p(ca));
    }
    if client_cert {
        opts = opts
            .redis_key("tls_cert_file", p(&redis.pki.client_cert))
            .redis_key("tls_key_file", p(&redis.pki.client_key));
    }
    opts.start()
}

/// Every Redis-backed call answers 503 `store_unavailable`, promptly.
async fn assert_store_unavailable(gw: &Gateway) {
    let c = client();
    let creds = json!({"email": "tls-user@example.com", "password": "correct horse battery"});
    for path in ["/register", "/login"] {
        let t = Instant::now();
        let (s, b) = post(&c, &gw.url(path), creds.clone()).await;
        assert_eq!(s, 503, "{path}: {b}\n{}", gw.output());
        assert_error(&b, "store_unavailable");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn register_login_and_me_work_over_mutual_tls() {
    let redis = TlsRedis::start(true);
    let gw = gateway(&redis, Some(&redis.pki.ca), true);
    let c = client();
    let (email, access, _) = new_user(&c, &gw).await;
    let me = get_json(&c, &gw.url("/me"), &access).await;
    assert_eq!(me["email"], email.as_str(), "{me}");
    // The user really is in the TLS server (not some other Redis).
    let keys = redis.cli(&["--scan", "--pattern", &format!("{}*", gw.prefix)]);
    assert!(
        !keys.is_empty(),
        "no keys under {} in the TLS redis",
        gw.prefix
    );
}

#[tokio::test]
async fn the_ca_can_come_from_the_environment() {
    let redis = TlsRedis::start(false);
    let gw = GatewayOpts {
        redis_url: redis.url(),
        ..GatewayOpts::new()
    }
    .env("AUTHGATE_REDIS_TLS_CA_FILE", p(&redis.pki.ca))
    .start();
    let c = client();
    let (email, access, _) = new_user(&c, &gw).await;
    let me = get_json(&c, &gw.url("/me"), &access).await;
    assert_eq!(me["email"], email.as_str(), "{me}");
}

#[tokio::test]
async fn without_a_client_certificate_the_store_is_unavailable() {
    let redis = TlsRedis::start(true);
    let gw = gateway(&redis, Some(&redis.pki.ca), false);
    assert_store_unavailable(&gw).await;
    let c = client();
    let s = get_status(&c, &gw.url("/me"), Some(&token(1))).await;
    assert_eq!(s, 503, "{}", gw.output());
    let out = gw.output();
    assert!(out.contains("CertificateRequired"), "{out}");
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_server_is_refused() {
    let redis = TlsRedis::start(false);
    let other = unrelated_ca();
    let gw = gateway(&redis, Some(&other), false);
    assert_store_unavailable(&gw).await;
    let out = gw.output();
    assert!(out.contains("UnknownIssuer"), "{out}");
}

/// `authgate -t` on a config with these `redis:` lines: (exit code, output).
fn check(redis_lines: &str) -> (i32, String) {
    let conf = std::env::temp_dir().join(format!("{}.yaml", unique("authgate-redis-tls")));
    std::fs::write(&conf, format!("redis:\n{redis_lines}")).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["-t", "-c", p(&conf)])
        .env("AUTHGATE_JWT_SECRET", SECRET)
        .env_remove("AUTHGATE_UPSTREAM")
        .env_remove("AUTHGATE_REDIS_URL")
        .env_remove("AUTHGATE_REDIS_TLS_CA_FILE")
        .output()
        .expect("run authgate -t");
    let _ = std::fs::remove_file(&conf);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn tls_settings_are_checked_and_errors_name_the_key() {
    let pki = support::tls_redis::Pki::generate();
    let (ca, cert, key) = (p(&pki.ca), p(&pki.client_cert), p(&pki.client_key));
    let secret_junk = pki.dir.join("junk.key");
    std::fs::write(&secret_junk, "TOP-SECRET-KEY-BYTES\n").unwrap();
    let broken_key = pki.dir.join("broken.key");
    std::fs::write(
        &broken_key,
        "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-BYTES!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let tls = "  url: rediss://127.0.0.1:6390/0\n";
    let (code, out) = check(&format!(
        "{tls}  tls_ca_file: {ca}\n  tls_cert_file: {cert}\n  tls_key_file: {key}\n"
    ));
    assert_eq!(code, 0, "{out}");
    let cases = [
        (
            format!("  url: redis://127.0.0.1:6390/0\n  tls_ca_file: {ca}\n"),
            "redis.tls_ca_file",
        ),
        (
            format!("{tls}  tls_cert_file: {cert}\n"),
            "redis.tls_key_file",
        ),
        (
            format!("{tls}  tls_key_file: {key}\n"),
            "redis.tls_cert_file",
        ),
        (
            format!("{tls}  tls_ca_file: {}/nope.pem\n", p(&pki.dir)),
            "redis.tls_ca_file",
        ),
        (format!("{tls}  tls_ca_file: {key}\n"), "redis.tls_ca_file"),
        (
            format!(
                "{tls}  tls_cert_file: {cert}\n  tls_key_file: {}\n",
                p(&secret_junk)
            ),
            "redis.tls_key_file",
        ),
        (
            format!(
                "{tls}  tls_cert_file: {cert}\n  tls_key_file: {}\n",
                p(&broken_key)
            ),
            "redis.tls_key_file",
        ),
    ];
    for (lines, name) in cases {
        let (code, out) = check(&lines);
        assert_ne!(code, 0, "accepted:\n{lines}");
        assert!(out.contains(name), "{lines}\n{out}");
        assert!(!out.contains("TOP-SECRET"), "key contents printed: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}
