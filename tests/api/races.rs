//! Concurrency guarantees: one refresh token works once, one email registers once, however many clients race.

use crate::helpers::*;
use serde_json::json;

const RACERS: usize = 20;
const ROUNDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_20_concurrent_refreshes_of_one_token_exactly_one_wins() {
    let gw = TestGateway::start();
    for round in 0..ROUNDS {
        let refresh = gw.new_user().await.refresh;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                // One client each: separate connections really run in parallel.
                let (c, url, refresh, barrier) = (
                    client(),
                    gw.url("/refresh"),
                    refresh.clone(),
                    barrier.clone(),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    post(&c, &url, json!({"refresh_token": refresh})).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                200 => winners.push(body),
                401 => assert_error(&body, "invalid_refresh_token"),
                other => panic!("round {round}: unexpected {other}: {body}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} refreshes succeeded",
            winners.len()
        );
        // The winner's new token works exactly once too.
        let next = winners[0]["refresh_token"].as_str().unwrap();
        assert_eq!(gw.refresh(next).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_20_concurrent_registrations_of_one_email_exactly_one_wins() {
    // 100 registrations from one address: far past the default per-IP throttle,
    let gw = TestGateway::builder()
        .yaml("throttle:\n  register_per_ip: {limit: 1000, window_seconds: 3600}\n")
        // and 20 at once: more than the default queue of the 2 hashing threads.
        .env("AUTHGATE_HASH_MAX_QUEUE", "32")
        // ...all from one address, past its default fair share of the queue.
        .env("AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT", "32")
        .start();
    for round in 0..ROUNDS {
        let email = format!("{}@example.com", unique("race"));
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                // One client each: separate connections really run in parallel.
                let (c, url, barrier) = (client(), gw.url("/register"), barrier.clone());
                let body = json!({"email": email, "password": format!("password number {i}")});
                tokio::spawn(async move {
                    barrier.wait().await;
                    post(&c, &url, body).await
                })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                201 => created += 1,
                409 => assert_error(&body, "email_taken"),
                other => panic!("round {round}: unexpected {other}: {body}"),
            }
        }
        assert_eq!(
            created, 1,
            "round {round}: {created} registrations succeeded"
        );
        // Exactly one user record holds the email: losers left nothing behind.
        let redis = shared_redis();
        let users = redis.keys(&format!("{}user:{{*}}", gw.prefix));
        let holders = users
            .lines()
            .filter(|k| redis.cli(&["HGET", k, "email"]) == email)
            .count();
        assert_eq!(
            holders, 1,
            "round {round}: {holders} user records for one email"
        );
    }
}
