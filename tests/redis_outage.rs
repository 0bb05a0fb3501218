//! Redis going away and coming back: 503 JSON from the auth API, no hang, proxying unaffected.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test]
async fn redis_down_gives_503_and_proxying_continues_then_recovers() {
    let mut redis = RedisServer::start();
    let up = Upstream::start("echo").await;
    let gw = GatewayOpts {
        redis_url: redis.url(),
        ..GatewayOpts::new()
    }
    .upstream(up.addr)
    .start();
    let c = client();
    let (email, access, refresh) = new_user(&c, &gw).await;
    let creds = json!({"email": email, "password": "correct horse battery"});

    redis.stop();
    for (path, body) in [
        ("/login", creds.clone()),
        (
            "/register",
            json!({"email": "new-one@example.com", "password": "long enough"}),
        ),
        ("/refresh", json!({"refresh_token": refresh})),
        ("/logout", json!({"refresh_token": refresh})),
    ] {
        let t = Instant::now();
        let (s, b) = post(&c, &gw.url(path), body).await;
        assert_eq!(s, 503, "{path}: {b}");
        assert_error(&b, "store_unavailable");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            t.elapsed()
        );
    }
    let r = c
        .get(gw.url("/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let r = c
        .get(gw.url("/api/data"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "proxying needs no Redis");

    let _redis = RedisServer::start_on(redis.port);
    // The data went with the old process (no persistence in tests); the service comes back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = post(&c, &gw.url("/register"), creds.clone()).await;
        if s == 201 {
            break;
        }
        assert_eq!(s, 503, "{b}");
        assert!(
            Instant::now() < deadline,
            "gateway did not reconnect to redis"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, _) = post(&c, &gw.url("/login"), creds).await;
    assert_eq!(s, 200);
    assert_eq!(
        c.get(gw.ops_url("/readyz")).send().await.unwrap().status(),
        200,
        "ready again"
    );
}

#[tokio::test]
async fn gateway_starts_and_proxies_while_redis_is_down() {
    let up = Upstream::start("echo").await;
    let dead_port = DeadPort::new();
    let dead = format!("redis://{}/0", dead_port.addr);
    let gw = GatewayOpts {
        redis_url: dead,
        ..GatewayOpts::new()
    }
    .upstream(up.addr)
    .start();
    let c = client();
    let (s, b) = post(
        &c,
        &gw.url("/login"),
        json!({"email": "a@example.com", "password": "whatever1"}),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(
        get_status(&c, &gw.url("/x"), Some(&token(9))).await,
        200,
        "proxying needs no Redis"
    );
}
