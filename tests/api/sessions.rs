//! Sessions: refresh-token families with reuse detection, absolute lifetime, the per-user cap,
//! the session endpoints, and revocation reaching every instance within a second.
//!
//! Long file: 16 scenarios of one lifecycle (create, rotate, reuse, list, end, caps) over the same two-instance fixtures; split by kind when it grows again.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Revocation must reach an instance within this long.
const WITHIN: Duration = Duration::from_secs(1);

async fn sessions_of(gw: &TestGateway, access: &str) -> Vec<Value> {
    let body = gw.get_json("/sessions", access).await;
    body["sessions"].as_array().expect("sessions array").clone()
}

/// Wait (at most [`WITHIN`]) until `access` is refused on `gw`'s `/me` and on a
/// proxied route (`gw` must have an upstream).
async fn refused_everywhere(gw: &TestGateway, access: &str) {
    eventually(WITHIN, "the access token is refused on /me", || async {
        gw.get_status("/me", Some(access)).await == 401
    })
    .await;
    assert_eq!(gw.get_status("/api/x", Some(access)).await, 401);
}

/// What the gateway stores for a refresh token: the SHA-256 of its canonical form.
fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.to_lowercase().as_bytes()))
}

/// Two instances of one deployment (one store, one issuer) with `yaml`, proxying to `up`.
fn two_instances(up: &Upstream, yaml: &str) -> (TestGateway, TestGateway) {
    let one = TestGateway::builder().upstream(up.addr).yaml(yaml).start();
    let two = TestGateway::builder()
        .upstream(up.addr)
        .yaml(yaml)
        .same_store_as(&one)
        .start();
    (one, two)
}

/// `method path` on `gw` with a Bearer token and, if given, a JSON body.
async fn call(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    bearer: impl std::fmt::Display,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = gw.request(method, path).bearer_auth(bearer);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

fn token_of(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
        .to_owned()
}

#[tokio::test]
async fn a_refresh_token_replayed_after_the_grace_window_ends_the_whole_session() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml("tokens:\n  reuse_grace_seconds: 1\n")
        .start();
    let user = gw.new_user().await;
    // The victim rotates; the thief kept the first token.
    let (s, rotated) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 200, "{rotated}");
    let victim_access = token_of(&rotated, "access_token");
    let victim_refresh = token_of(&rotated, "refresh_token");
    assert_eq!(gw.get_status("/api/x", Some(&victim_access)).await, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let (s, body) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 401);
    assert_error(&body, "invalid_refresh_token");
    // Both holders are out: the victim's newer refresh token and every access token.
    let (s, _) = gw.refresh(&victim_refresh).await;
    assert_eq!(s, 401, "the family is revoked");
    refused_everywhere(&gw, &victim_access).await;
    refused_everywhere(&gw, &user.access).await;
    assert!(gw
        .metrics()
        .await
        .contains("authgate_refresh_reuse_total 1"));
    let log = gw.output_containing("refresh_reuse_detected").await;
    assert!(log.contains(&format!("\"user_id\":{}", user.id)), "{log}");
}

#[tokio::test]
async fn a_replay_inside_the_grace_window_revokes_nothing() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    let (s, rotated) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 200);
    let (s, body) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 401, "a duplicate is refused");
    assert_error(&body, "invalid_refresh_token");
    let access = token_of(&rotated, "access_token");
    assert_eq!(gw.get_status("/me", Some(&access)).await, 200);
    let (s, _) = gw.refresh(&token_of(&rotated, "refresh_token")).await;
    assert_eq!(s, 200, "the session goes on");
}

#[tokio::test]
async fn rotation_never_extends_a_session_past_its_absolute_end() {
    let gw = TestGateway::builder()
        .yaml("tokens:\n  session_max_seconds: 2\n  refresh_ttl_seconds: 60\n")
        .start();
    let user = gw.new_user().await;
    let mut refresh = user.refresh.clone();
    let started = std::time::Instant::now();
    let mut rotations = 0;
    loop {
        let (s, body) = gw.refresh(&refresh).await;
        if s != 200 {
            assert_error(&body, "invalid_refresh_token");
            break;
        }
        rotations += 1;
        refresh = token_of(&body, "refresh_token");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "still rotating after 4 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(rotations >= 3, "kept rotating until the end ({rotations})");
    assert!(started.elapsed() >= Duration::from_millis(1700));
    // A new login starts a new session.
    let (s, _) = gw.post_json("/login", user.credentials()).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn logout_ends_the_session_of_the_token_and_its_access_tokens() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let user = gw.new_user().await;
    let (s, body) = gw.logout(&user.refresh).await;
    assert_eq!((s, body), (200, json!({"success": "User logged out."})));
    refused_everywhere(&gw, &user.access).await;
    let (s, _) = gw.logout(&user.refresh).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn sessions_are_listed_newest_first_and_one_can_be_ended() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();
    let user = gw.new_user().await;
    let other = gw
        .request(reqwest::Method::POST, "/login")
        .header("User-Agent", "second-device/1.0")
        .json(&user.credentials())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    let other: Value = other.json().await.unwrap();
    let other_access = token_of(&other, "access_token");

    let list = sessions_of(&gw, &user.access).await;
    assert_eq!(list.len(), 2, "{list:?}");
    for s in &list {
        for field in [
            "id",
            "created_at",
            "last_used_at",
            "ip",
            "user_agent",
            "current",
        ] {
            assert!(s.get(field).is_some(), "{field} missing in {s}");
        }
        assert_eq!(s["ip"], "127.0.0.1");
    }
    assert_eq!(list[0]["user_agent"], "second-device/1.0", "newest first");
    assert_eq!(list[0]["current"], false);
    assert_eq!(list[1]["current"], true);

    let sid = list[0]["id"].as_str().unwrap();
    let r = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("/sessions/{sid}"),
        &user.access,
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.content_length(), Some(0));
    refused_everywhere(&gw, &other_access).await;
    assert_eq!(gw.refresh(&token_of(&other, "refresh_token")).await.0, 401);
    assert_eq!(
        gw.get_status("/me", Some(&user.access)).await,
        200,
        "the caller's session lives"
    );

    let again = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("/sessions/{sid}"),
        &user.access,
        None,
    )
    .await;
    assert_eq!(again.status(), 404);
    // Another user cannot end this user's session.
    let stranger = gw.new_user().await;
    let mine = sessions_of(&gw, &user.access).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("/sessions/{mine}"),
        &stranger.access,
        None,
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(gw.get_status("/me", Some(&user.access)).await, 200);
}

#[tokio::test]
async fn a_user_keeps_at_most_the_configured_number_of_sessions() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder()
        .upstream(up.addr)
        .yaml("tokens:\n  max_sessions_per_user: 2\n")
        .start();
    // Sessions are ordered by their last use in milliseconds: each step below
    // happens in a later millisecond than the one before (not a wait for anything).
    let tick = || tokio::time::sleep(Duration::from_millis(5));
    let first = gw.new_user().await;
    tick().await;
    let (s, second) = gw.post_json("/login", first.credentials()).await;
    assert_eq!(s, 200);
    tick().await;
    // The first, older session is used after the second opened: the second is
    // now the least recently used, and the one a third login ends.
    let (s, used) = gw.refresh(&first.refresh).await;
    assert_eq!(s, 200, "{used}");
    tick().await;
    let (s, _) = gw.post_json("/login", first.credentials()).await;
    assert_eq!(s, 200);
    let lru_refresh = token_of(&second, "refresh_token");
    assert_eq!(
        gw.refresh(&lru_refresh).await.0,
        401,
        "the least recently used session ended"
    );
    // ...with its token lookups, not only its hash.
    let stale = format!("{}rt:{}", gw.prefix, fingerprint(&lru_refresh));
    assert_eq!(shared_redis().cli(&["EXISTS", &stale]), "0");
    refused_everywhere(&gw, &token_of(&second, "access_token")).await;
    let (s, kept) = gw.refresh(&token_of(&used, "refresh_token")).await;
    assert_eq!(s, 200, "the recently used, older session ended: {kept}");
    tick().await;
    let (_, newest) = gw.post_json("/login", first.credentials()).await;
    assert_eq!(
        sessions_of(&gw, &token_of(&newest, "access_token"))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn logout_all_and_a_password_change_reach_another_instance_within_a_second() {
    let up = Upstream::start("echo").await;
    let (one, two) = two_instances(&up, "");
    let user = one.new_user().await;
    let (s, on_two) = two.post_json("/login", user.credentials()).await;
    assert_eq!(s, 200);
    let two_access = token_of(&on_two, "access_token");
    assert_eq!(two.get_status("/api/x", Some(&two_access)).await, 200);
    assert_eq!(sessions_of(&two, &two_access).await.len(), 2);

    // A password change through one ends every session, on the other too.
    let r = call(
        &one,
        reqwest::Method::POST,
        "/password",
        &user.access,
        Some(json!({"current_password": "wrong password!", "new_password": "a new password"})),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_error(&r.json().await.unwrap(), "invalid_credentials");
    let r = call(
        &one,
        reqwest::Method::POST,
        "/password",
        &user.access,
        Some(json!({"current_password": PASSWORD, "new_password": "a new password"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let fresh: Value = r.json().await.unwrap();
    refused_everywhere(&two, &two_access).await;
    refused_everywhere(&two, &user.access).await;
    assert_eq!(
        two.refresh(&token_of(&on_two, "refresh_token")).await.0,
        401
    );
    let fresh_access = token_of(&fresh, "access_token");
    let r = two.get("/api/x", Some(&fresh_access)).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        two.login(&user.email, PASSWORD).await.0,
        401,
        "old password"
    );
    let (s, again) = two.login(&user.email, "a new password").await;
    assert_eq!(s, 200);

    // Logging out everywhere through two ends the sessions one knows of.
    let r = call(
        &two,
        reqwest::Method::POST,
        "/logout/all",
        token_of(&again, "access_token"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"success": "All sessions logged out."})
    );
    refused_everywhere(&one, &fresh_access).await;
    assert_eq!(one.refresh(&token_of(&fresh, "refresh_token")).await.0, 401);
    let log = one.output_containing("password_changed").await;
    assert!(!log.contains("a new password"), "a password in the log");
}

#[tokio::test]
async fn every_session_key_expires_on_its_own() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    // Each step must have worked, or the keys it writes are not there to check.
    let (s, rotated) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 200, "refresh: {rotated}");
    let (s, second) = gw.post_json("/login", user.credentials()).await;
    assert_eq!(s, 200, "second login: {second}");
    let (s, b) = gw.refresh(&token_of(&second, "refresh_token")).await;
    assert_eq!(s, 200, "second refresh: {b}");
    let r = call(
        &gw,
        reqwest::Method::POST,
        "/logout/all",
        token_of(&rotated, "access_token"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200, "logout/all");
    let (s, third) = gw.post_json("/login", user.credentials()).await;
    assert_eq!(s, 200, "third login: {third}");
    let (s, b) = gw.refresh(&token_of(&third, "refresh_token")).await;
    assert_eq!(s, 200, "third refresh: {b}");

    let redis = shared_redis();
    let keys = redis.keys(&format!("{}*", gw.prefix));
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    assert!(keys.len() > 4, "{keys:?}");
    // Users, their email claims and the id counter are the only keys kept for ever.
    let permanent = |k: &str| {
        let rest = &k[gw.prefix.len()..];
        rest == "user:next_id"
            || rest.starts_with("email:")
            || (rest.starts_with("user:{") && rest.ends_with('}'))
    };
    for k in keys.iter().filter(|k| !permanent(k)) {
        let ttl: i64 = redis.cli(&["PTTL", k]).parse().expect("PTTL");
        assert!(ttl > 0, "{k} has no expiry (PTTL {ttl})");
    }
}

#[tokio::test]
async fn the_revocation_feed_reconnects_after_redis_comes_back() {
    let mut redis = RedisServer::start();
    let gw = TestGateway::builder().redis_url(redis.url()).start();
    let up = || async { gw.metrics().await.contains("authgate_revocation_feed_up 1") };
    eventually(Duration::from_secs(5), "the feed follows", up).await;
    redis.stop();
    eventually(Duration::from_secs(5), "the feed is down", || async {
        gw.metrics().await.contains("authgate_revocation_feed_up 0")
    })
    .await;
    let _redis = RedisServer::start_on(redis.port);
    eventually(Duration::from_secs(10), "the feed follows again", up).await;
}

#[tokio::test]
async fn a_refresh_token_from_before_sessions_is_traded_for_a_session_once() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    // What the gateway stored before sessions existed: the token's SHA-256 -> user id.
    let legacy = "3f1c2a4e-8b7d-4c6e-9a5f-0123456789ab";
    let key = format!("{}rt:{}", gw.prefix, fingerprint(legacy));
    shared_redis().cli(&["SET", &key, &user.id.to_string(), "EX", "600"]);

    let (s, body) = gw.refresh(legacy).await;
    assert_eq!(s, 200, "{body}");
    let access = token_of(&body, "access_token");
    assert_eq!(gw.get_json("/me", &access).await["id"], user.id);
    assert_eq!(gw.refresh(legacy).await.0, 401, "a token works once");
    assert_eq!(gw.refresh(&token_of(&body, "refresh_token")).await.0, 200);
    // Another token from before sessions, after the user logged out everywhere: dead.
    let older = "4a2d3b5f-9c8e-4d7f-8b6a-123456789abc";
    let key = format!("{}rt:{}", gw.prefix, fingerprint(older));
    shared_redis().cli(&["SET", &key, &user.id.to_string(), "EX", "600"]);
    let r = call(
        &gw,
        reqwest::Method::POST,
        "/logout/all",
        &user.access,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(gw.refresh(older).await.0, 401);
}

/// Regression (#21): the new access token a password change answers with was
/// refused by every instance but the one that served it, for its whole life,
/// when it was minted in the same second as the revocation. Generations make
/// "older than" exact on every instance.
#[tokio::test]
async fn the_token_a_password_change_answers_with_is_good_on_every_instance_at_once() {
    let up = Upstream::start("echo").await;
    let (one, two) = two_instances(&up, "");
    for round in 0..3 {
        let user = one.new_user().await;
        let (s, on_two) = two.login(&user.email, PASSWORD).await;
        assert_eq!(s, 200);
        let old_on_two = token_of(&on_two, "access_token");
        let r = call(
            &one,
            reqwest::Method::POST,
            "/password",
            &user.access,
            Some(json!({"current_password": PASSWORD, "new_password": "a new password"})),
        )
        .await;
        assert_eq!(r.status(), 200);
        let fresh = token_of(&r.json().await.unwrap(), "access_token");
        let started = std::time::Instant::now();
        // At once, and then across the second the revocation was made in.
        for at_ms in [0u64, 500, 1200, 2500] {
            let wait = Duration::from_millis(at_ms).saturating_sub(started.elapsed());
            tokio::time::sleep(wait).await;
            for gw in [&two, &one] {
                let r = gw.get("/api/x", Some(&fresh)).await;
                assert_eq!(
                    r.status(),
                    200,
                    "round {round}, {at_ms} ms: {:?}",
                    r.text().await
                );
                assert_eq!(gw.get_status("/me", Some(&fresh)).await, 200);
            }
            if at_ms == 0 {
                refused_everywhere(&two, &old_on_two).await;
                refused_everywhere(&two, &user.access).await;
            }
        }
    }
}

/// After a logout everywhere, a login on another instance in the same second
/// is a new generation: good on both, while every older token is refused.
#[tokio::test]
async fn a_login_right_after_logout_all_is_good_everywhere_and_older_tokens_are_not() {
    let up = Upstream::start("echo").await;
    let (one, two) = two_instances(&up, "");
    let user = one.new_user().await;
    let r = call(
        &one,
        reqwest::Method::POST,
        "/logout/all",
        &user.access,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let (s, again) = two.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    let again = token_of(&again, "access_token");
    refused_everywhere(&two, &user.access).await;
    refused_everywhere(&one, &user.access).await;
    for gw in [&one, &two] {
        assert_eq!(gw.get_status("/api/x", Some(&again)).await, 200);
    }
    let claims = claims_of(&again);
    assert_eq!(
        claims["gen"], 1,
        "one logout everywhere: generation 1 ({claims})"
    );
}

/// The claims of a JWT, unverified (the test only reads what it was given).
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Regression (#21): disabling a user (as an import of an inactive Django
/// account does, or `HSET ... disabled 1`) left their refresh tokens working.
/// A refresh of a disabled user's session now ends it.
#[tokio::test]
async fn a_disabled_user_cannot_refresh_and_the_session_ends() {
    let gw = TestGateway::start();
    let user = gw.new_user().await;
    let key = format!("{}user:{{{}}}", gw.prefix, user.id);
    assert_eq!(shared_redis().cli(&["HSET", &key, "disabled", "1"]), "1");
    let (s, body) = gw.refresh(&user.refresh).await;
    assert_eq!(s, 401, "{body}");
    assert_error(&body, "invalid_refresh_token");
    let sessions = format!("{}user:{{{}}}:sessions", gw.prefix, user.id);
    assert_eq!(
        shared_redis().cli(&["ZCARD", &sessions]),
        "0",
        "the session is gone"
    );
    // Enabling again restores login, not the old session.
    assert_eq!(shared_redis().cli(&["HDEL", &key, "disabled"]), "1");
    assert_eq!(gw.refresh(&user.refresh).await.0, 401);
    assert_eq!(gw.login(&user.email, PASSWORD).await.0, 200);
}

/// Every kind of revocation made on one instance reaches another within a
/// second. The instance that revokes applies it before publishing, so only a
/// second instance shows the feed at work (#24).
#[tokio::test]
async fn every_kind_of_revocation_reaches_a_second_instance_within_a_second() {
    let up = Upstream::start("echo").await;
    let yaml = "tokens:\n  reuse_grace_seconds: 1\n  max_sessions_per_user: 2\n";
    let (one, two) = two_instances(&up, yaml);

    // POST /logout on one.
    let user = one.new_user().await;
    assert_eq!(two.get_status("/api/x", Some(&user.access)).await, 200);
    assert_eq!(one.logout(&user.refresh).await.0, 200);
    refused_everywhere(&two, &user.access).await;

    // DELETE /sessions/<id> on one, of a session opened on two.
    let user = one.new_user().await;
    let (s, on_two) = two.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    let two_access = token_of(&on_two, "access_token");
    let sid = sessions_of(&two, &two_access)
        .await
        .into_iter()
        .find(|s| s["current"] == true)
        .expect("the current session")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &one,
        reqwest::Method::DELETE,
        &format!("/sessions/{sid}"),
        &user.access,
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    refused_everywhere(&two, &two_access).await;
    assert_eq!(
        two.get_status("/me", Some(&user.access)).await,
        200,
        "only that session"
    );

    // Reuse detected on one: the whole family, on two.
    let user = one.new_user().await;
    let (s, rotated) = two.refresh(&user.refresh).await;
    assert_eq!(s, 200);
    let rotated_access = token_of(&rotated, "access_token");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(one.refresh(&user.refresh).await.0, 401, "the replay");
    refused_everywhere(&two, &rotated_access).await;

    // The session cap, enforced on one, ends the oldest session on two.
    let user = two.new_user().await;
    for _ in 0..2 {
        assert_eq!(one.login(&user.email, PASSWORD).await.0, 200);
    }
    refused_everywhere(&two, &user.access).await;
}

async fn following(gw: &TestGateway) -> bool {
    gw.metrics().await.contains("authgate_revocation_feed_up 1")
}

/// A revocation published while an instance's subscription was down is
/// applied by the full re-read when it subscribes again; a feed down longer
/// than an access token lives makes `/readyz` fail, naming it (#24).
#[tokio::test]
async fn a_missed_revocation_is_reread_after_the_feed_reconnects_and_a_stale_feed_is_not_ready() {
    let redis = RedisServer::start();
    let up = Upstream::start("echo").await;
    let one = TestGateway::builder()
        .upstream(up.addr)
        .redis_url(redis.url())
        .start();
    let two = TestGateway::builder()
        .upstream(up.addr)
        .same_store_as(&one)
        .start();
    for gw in [&one, &two] {
        eventually(Duration::from_secs(5), "the feed follows", || following(gw)).await;
    }
    let user = one.new_user().await;
    let (s, on_two) = two.login(&user.email, PASSWORD).await;
    assert_eq!(s, 200);
    let two_access = token_of(&on_two, "access_token");

    // Subscribing is refused and every subscription cut: commands still work.
    redis.cli(&["ACL", "SETUSER", "default", "-subscribe", "-psubscribe"]);
    redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    eventually(
        Duration::from_secs(5),
        "the feed is down on two",
        || async {
            two.metrics()
                .await
                .contains("authgate_revocation_feed_up 0")
        },
    )
    .await;
    let r = call(
        &one,
        reqwest::Method::POST,
        "/logout/all",
        &user.access,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        two.get_status("/api/x", Some(&two_access)).await,
        200,
        "two cannot have heard of it: its feed is down"
    );

    redis.cli(&["ACL", "SETUSER", "default", "+subscribe", "+psubscribe"]);
    // The feed's backoff is at most 2 s; then the re-read applies what it missed.
    eventually(
        Duration::from_secs(4),
        "the missed revocation applies on two",
        || async { two.get_status("/api/x", Some(&two_access)).await == 401 },
    )
    .await;

    // Down for longer than an access token lives (2 s here): not ready.
    let short = TestGateway::builder()
        .upstream(up.addr)
        .same_store_as(&one)
        .env("AUTHGATE_ACCESS_TTL", "2")
        .start();
    eventually(Duration::from_secs(5), "the feed follows", || {
        following(&short)
    })
    .await;
    assert_eq!(short.ops_get("/readyz").await.status(), 200);
    redis.cli(&["ACL", "SETUSER", "default", "-subscribe", "-psubscribe"]);
    redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    eventually(
        Duration::from_secs(6),
        "/readyz fails for a stale feed",
        || async {
            let r = short.ops_get("/readyz").await;
            r.status() == 503
                && r.text()
                    .await
                    .unwrap_or_default()
                    .contains("revocation feed")
        },
    )
    .await;
    redis.cli(&["ACL", "SETUSER", "default", "+subscribe", "+psubscribe"]);
    eventually(Duration::from_secs(5), "/readyz recovers", || async {
        short.ops_get("/readyz").await.status() == 200
    })
    .await;
}

/// Issue #23: a refresh costs the 2 Redis round trips docs/sessions.md states (the
/// lookup, then the rotate script, by its SHA1, that also writes the new lookup),
/// counted by a relay that sees every command; the old lookup two generations
/// back is deleted after the answer, off its path. The first rotation a fresh
/// Redis sees costs one more: NOSCRIPT, then the script's source.
#[tokio::test]
async fn a_refresh_takes_two_redis_round_trips() {
    let redis = RedisServer::start();
    let relay = RedisRelay::start(std::net::SocketAddr::from(([127, 0, 0, 1], redis.port))).await;
    let gw = TestGateway::builder().redis_url(relay.url()).start();
    let user = gw.new_user().await;
    const BACKGROUND: [&str; 6] = ["SUBSCRIBE", "PING", "CLIENT", "HELLO", "SELECT", "INFO"];
    let mut refresh = user.refresh.clone();
    let counted = |before: usize| -> Vec<Seen> {
        relay.seen()[before..]
            .iter()
            .filter(|c| !BACKGROUND.contains(&c.name.as_str()) && c.name != "DEL")
            .cloned()
            .collect()
    };
    let before = relay.seen().len();
    let (s, b) = gw.refresh(&refresh).await;
    assert_eq!(s, 200, "{b}");
    let first: Vec<String> = counted(before).into_iter().map(|c| c.name).collect();
    assert_eq!(first, ["GET", "EVALSHA", "EVAL"], "the first rotation");
    refresh = token_of(&b, "refresh_token");
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = relay.seen().len();
        let (s, b) = gw.refresh(&refresh).await;
        assert_eq!(s, 200, "{b}");
        let during: Vec<Seen> = relay.seen()[before..]
            .iter()
            .filter(|c| !BACKGROUND.contains(&c.name.as_str()))
            .cloned()
            .collect();
        // The lookup two generations back is deleted off the answer's path
        // (spawned once the answer is made): it may show up here or not, and
        // only ever after the script.
        let (off_path, during): (Vec<Seen>, Vec<Seen>) =
            during.into_iter().partition(|c| c.name == "DEL");
        let names: Vec<&str> = during.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["GET", "EVALSHA"], "refresh {round}: {during:?}");
        let flights: std::collections::BTreeSet<(usize, usize)> =
            during.iter().map(|c| (c.conn, c.flight)).collect();
        assert_eq!(flights.len(), 2, "refresh {round}: {during:?}");
        let eval = during[1].flight;
        assert!(
            off_path
                .iter()
                .all(|d| d.conn != during[1].conn || d.flight > eval),
            "refresh {round}: a DEL before the script: {off_path:?}"
        );
        refresh = token_of(&b, "refresh_token");
        assert_eq!(
            gw.get_status("/me", Some(&token_of(&b, "access_token")))
                .await,
            200
        );
    }
    let (s, b) = gw.refresh(&refresh).await;
    assert_eq!(s, 200, "the last lookup written by the script works: {b}");
}
