//! Redis going away and coming back: 503 JSON from the auth API, no hang, proxying unaffected.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn redis_down_gives_503_and_proxying_continues_then_recovers() {
    let mut redis = RedisServer::start();
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .redis_url(redis.url())
        .upstream(up.addr)
        .start();
    let user = gw.new_user().await;

    redis.stop();
    for (path, body) in [
        ("/login", user.credentials()),
        (
            "/register",
            json!({"email": "new-one@example.com", "password": "long enough"}),
        ),
        ("/refresh", json!({"refresh_token": user.refresh})),
        ("/logout", json!({"refresh_token": user.refresh})),
    ] {
        let t = Instant::now();
        let (s, b) = gw.post_json(path, body).await;
        assert_eq!(s, 503, "{path}: {b}");
        assert_error(&b, "store_unavailable");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(gw.get_as(&user, "/me").await.status(), 503);
    assert_eq!(
        gw.get_as(&user, "/api/data").await.status(),
        200,
        "proxying needs no Redis"
    );
    let metrics = gw.metrics().await;
    let counted = format!(
        "authgate_redis_errors_total{{node=\"127.0.0.1:{}\"}}",
        redis.port
    );
    assert!(metrics.contains(&counted), "no {counted} in:\n{metrics}");

    let _redis = RedisServer::start_on(redis.port);
    // The data went with the old process (no persistence in tests); the service comes back.
    eventually(
        Duration::from_secs(10),
        "gateway reconnects to redis",
        || async {
            let (s, b) = gw.register(&user.email, PASSWORD).await;
            assert!(s == 201 || s == 503, "{s}: {b}");
            s == 201
        },
    )
    .await;
    let (s, _) = gw.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    assert_eq!(gw.ops_get("/readyz").await.status(), 200, "ready again");
}

#[tokio::test]
async fn gateway_starts_and_proxies_while_redis_is_down() {
    let up = Upstream::start("echo").await;
    let dead = DeadPort::new();
    let gw = TestGateway::builder()
        .redis_url(format!("redis://{}/0", dead.addr))
        .upstream(up.addr)
        .start();
    let (s, b) = gw.login("a@example.com", "whatever1").await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(
        gw.get_status("/x", Some(&token(9))).await,
        200,
        "proxying needs no Redis"
    );
}

/// The scripts Redis holds for this server (`INFO memory`).
fn cached_scripts(redis: &RedisServer) -> u64 {
    let info = redis.cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number_of_cached_scripts in {info}"))
}

/// A Redis that has lost its scripts (SCRIPT FLUSH: what a restart, or a
/// replica promoted by a failover, looks like to a client) still runs every
/// session step: the gateway calls its scripts by SHA1 and, on NOSCRIPT,
/// sends the source, which Redis caches again.
#[tokio::test]
async fn every_session_step_survives_a_redis_that_lost_its_scripts() {
    let redis = RedisServer::start();
    let gw = TestGateway::builder().redis_url(redis.url()).start();
    let flush = || {
        assert_eq!(redis.cli(&["SCRIPT", "FLUSH"]).trim(), "OK");
        assert_eq!(cached_scripts(&redis), 0);
    };
    flush();
    let user = gw.new_user().await;
    flush();
    let (s, rotated) = gw.refresh(&user.refresh).await;
    assert_eq!(
        s,
        200,
        "refresh after SCRIPT FLUSH: {rotated}\n{}",
        gw.output()
    );
    assert!(cached_scripts(&redis) > 0, "the source was sent and cached");
    flush();
    // The old token again, past the reuse grace: the rotate script sees reuse.
    let (s, _) = gw.refresh(&user.refresh).await;
    assert!(s == 401, "a reused token after SCRIPT FLUSH: {s}");
    flush();
    let (s, b) = gw.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200, "{b}");
    flush();
    let r = gw
        .request(reqwest::Method::POST, "/logout/all")
        .bearer_auth(b["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "logout/all after SCRIPT FLUSH");
}
