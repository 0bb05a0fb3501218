//! The harness: a real redis-server (or Redis Cluster), real upstreams and the real `authgate`
//! binary, on free loopback ports, with one [`TestGateway`] per test.

// Shared with examples/echo.rs, which alone uses `serve`.
#[allow(dead_code)]
#[path = "../../support/echo.rs"]
pub mod echo;
mod gateway;
mod keys;
pub mod pki;
mod process;
pub mod raw;
mod redis;
mod redis_cluster;
mod relay;
mod skip;
pub mod tls_redis;
mod upstream;

pub use gateway::{GatewayBuilder, TestGateway, TestUser, PASSWORD, PASSWORD_HASHES};
pub use keys::{claims, sign_with, token_part, tokens_yaml, KeyFiles};
pub use process::{check_config, free_port, listens_on, run_authgate, unique};
pub use redis::{shared_cluster, shared_redis, RedisServer};
pub use redis_cluster::RedisCluster;
pub use relay::{RedisRelay, Seen};
pub use skip::{have_python_module, skip};
pub use upstream::{DeadPort, Upstream};

use std::future::Future;
use std::time::{Duration, Instant};

/// A JWT secret for tests (32+ bytes).
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// An HTTP client that does not follow redirects and keeps connections alive.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build client")
}

/// POST JSON with `c` and return (status, body as JSON or Null).
pub async fn post(
    c: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Poll `condition` every 50 ms until it holds; panic naming `what` if it still does not after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Assert the gateway's error shape: JSON with `error` == code and a non-empty `detail`.
pub fn assert_error(body: &serde_json::Value, code: &str) {
    assert_eq!(body["error"], code, "body: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "no detail: {body}"
    );
}

/// An access token signed with `secret` and `alg` for `user`, expiring `exp_in` seconds from now.
pub fn jwt(secret: &str, alg: jsonwebtoken::Algorithm, user: u64, exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let claims = serde_json::json!({"user_id": user, "sub": user.to_string(), "iat": now, "exp": now + exp_in});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign test token")
}

/// A valid access token for `user` (the test secret, HS256, five minutes).
pub fn token(user: u64) -> String {
    jwt(SECRET, jsonwebtoken::Algorithm::HS256, user, 300)
}

/// The values of header `name` (any case) in an echo upstream's answer.
pub fn header_values(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .filter(|p| p[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|p| p[1].as_str().map(str::to_owned))
        .collect()
}
