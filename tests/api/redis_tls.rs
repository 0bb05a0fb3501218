//! Redis over TLS (`rediss://`): a real TLS-only redis-server with certificates made at
//! test time, the real gateway in front of it.

use crate::helpers::pki::{unrelated_ca, Pki};
use crate::helpers::tls_redis::TlsRedis;
use crate::helpers::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A gateway on `redis` that trusts `ca` (none: no TLS files at all).
fn gateway(redis: &TlsRedis, ca: Option<&Path>, client_cert: bool) -> TestGateway {
    let mut builder = TestGateway::builder().redis_url(redis.url());
    if let Some(ca) = ca {
        builder = builder.redis_key("tls_ca_file", p(ca));
    }
    if client_cert {
        builder = builder
            .redis_key("tls_cert_file", p(&redis.pki.client_cert))
            .redis_key("tls_key_file", p(&redis.pki.client_key));
    }
    builder.start()
}

/// Every Redis-backed call answers 503 `store_unavailable`, promptly.
async fn assert_store_unavailable(gw: &TestGateway) {
    let creds = json!({"email": "tls-user@example.com", "password": PASSWORD});
    for path in ["/register", "/login"] {
        let t = Instant::now();
        let (s, b) = gw.post_json(path, creds.clone()).await;
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
    let user = gw.new_user().await;
    let me = gw.get_json("/me", &user.access).await;
    assert_eq!(me["email"], user.email.as_str(), "{me}");
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
    let gw = TestGateway::builder()
        .redis_url(redis.url())
        .env("AUTHGATE_REDIS_TLS_CA_FILE", p(&redis.pki.ca))
        .start();
    let user = gw.new_user().await;
    let me = gw.get_json("/me", &user.access).await;
    assert_eq!(me["email"], user.email.as_str(), "{me}");
}

#[tokio::test]
async fn without_a_client_certificate_the_store_is_unavailable() {
    let redis = TlsRedis::start(true);
    let gw = gateway(&redis, Some(&redis.pki.ca), false);
    assert_store_unavailable(&gw).await;
    let s = gw.get_status("/me", Some(&token(1))).await;
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

/// `authgate -t` on a config whose `redis:` section holds these keys: (exit code, output).
fn check(redis: &[(&str, &str)]) -> (i32, String) {
    let conf = std::env::temp_dir().join(format!("{}.yaml", unique("authgate-redis-tls")));
    let keys: String = redis.iter().map(|(k, v)| format!("\n  {k}: {v}")).collect();
    std::fs::write(&conf, format!("redis:{keys}\n")).expect("write config");
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
    let pki = Pki::generate();
    let (ca, cert, key) = (p(&pki.ca), p(&pki.client_cert), p(&pki.client_key));
    let secret_junk = pki.dir.join("junk.key");
    std::fs::write(&secret_junk, "TOP-SECRET-KEY-BYTES\n").unwrap();
    let broken_key = pki.dir.join("broken.key");
    std::fs::write(
        &broken_key,
        "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-BYTES!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = format!("{}/nope.pem", p(&pki.dir));
    let tls = ("url", "rediss://127.0.0.1:6390/0");
    let (code, out) = check(&[
        tls,
        ("tls_ca_file", ca),
        ("tls_cert_file", cert),
        ("tls_key_file", key),
    ]);
    assert_eq!(code, 0, "{out}");
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("url", "redis://127.0.0.1:6390/0"), ("tls_ca_file", ca)],
            "redis.tls_ca_file",
        ),
        (&[tls, ("tls_cert_file", cert)], "redis.tls_key_file"),
        (&[tls, ("tls_key_file", key)], "redis.tls_cert_file"),
        (&[tls, ("tls_ca_file", &missing)], "redis.tls_ca_file"),
        (&[tls, ("tls_ca_file", key)], "redis.tls_ca_file"),
        (
            &[
                tls,
                ("tls_cert_file", cert),
                ("tls_key_file", p(&secret_junk)),
            ],
            "redis.tls_key_file",
        ),
        (
            &[
                tls,
                ("tls_cert_file", cert),
                ("tls_key_file", p(&broken_key)),
            ],
            "redis.tls_key_file",
        ),
    ];
    for (redis, name) in cases {
        let (code, out) = check(redis);
        assert_ne!(code, 0, "accepted: {redis:?}");
        assert!(out.contains(name), "{redis:?}\n{out}");
        assert!(!out.contains("TOP-SECRET"), "key contents printed: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}
