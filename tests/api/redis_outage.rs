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
