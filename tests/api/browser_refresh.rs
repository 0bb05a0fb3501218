//! Browser sessions over raw sockets (`docs/browser.md`): the gateway refreshing an expired cookie, tabs racing one refresh on one and two instances, a late replay taken for theft, and logout reaching a second instance.

use crate::browser::{cookie_of, gateway, get, header, session_cookie, yaml, ORIGIN};
use crate::helpers::raw::{send_raw, RawUpstream};
use crate::helpers::*;
use std::time::Duration;

#[tokio::test]
async fn tabs_racing_an_expired_cookie_share_one_refresh_and_a_late_replay_ends_the_session() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "tokens:\n  access_ttl_seconds: 1\n");
    let user = gw.new_user().await;
    let old = cookie_of(&gw, &user).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Ten tabs send the expired cookie at once: every one is served, with a new cookie.
    let tabs = (0..10).map(|_| {
        let req = get("/app/tab", &format!("Cookie: {old}\r\n"));
        let addr = gw.addr;
        tokio::spawn(async move { send_raw(addr, &req).await })
    });
    let mut fresh = Vec::new();
    for t in tabs {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        fresh.push(session_cookie(&r).expect("a refreshed cookie"));
    }
    assert_eq!(gw.metric("authgate_refresh_reuse_total").await, 0.0);
    // One session still (beside the JSON login's), and the refreshed cookie works.
    let newest = fresh.last().unwrap().clone();
    let r = send_raw(gw.addr, &get("/sessions", &format!("Cookie: {newest}\r\n"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["sessions"].as_array().map(Vec::len),
        Some(2),
        "{r:?}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let replay = send_raw(gw.addr, &get("/app/stolen", &format!("Cookie: {old}\r\n"))).await;
    assert_eq!(replay.status, 401, "{replay:?}");
    assert_eq!(gw.metric("authgate_refresh_reuse_total").await, 1.0);
    // The whole session ended: the newest cookie too.
    eventually(Duration::from_secs(2), "the session ends", || async {
        send_raw(
            gw.addr,
            &get("/app/after", &format!("Cookie: {newest}\r\n")),
        )
        .await
        .status
            == 401
    })
    .await;
}

#[tokio::test]
async fn logout_with_the_cookie_ends_the_session_on_every_instance() {
    let up = RawUpstream::start().await;
    let a = gateway(&up, "");
    let b = TestGateway::builder()
        .yaml(&yaml(&up, ""))
        .same_store_as(&a)
        .start();
    let user = a.new_user().await;
    let cookie = cookie_of(&a, &user).await;
    let on_b = send_raw(b.addr, &get("/app/b", &format!("Cookie: {cookie}\r\n"))).await;
    assert_eq!(on_b.status, 200, "{on_b:?}");
    let logout = format!(
        "POST /logout HTTP/1.1\r\nHost: app.example\r\nCookie: {cookie}\r\nOrigin: {ORIGIN}\r\n\
         Sec-Fetch-Mode: navigate\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
    );
    let r = send_raw(a.addr, logout.as_bytes()).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(header(&r, "location"), [format!("{ORIGIN}/login")]);
    assert!(header(&r, "set-cookie")
        .iter()
        .any(|c| c.contains("Max-Age=0")));
    let started = std::time::Instant::now();
    eventually(
        Duration::from_secs(1),
        "B refuses the logged-out cookie",
        || async {
            send_raw(b.addr, &get("/app/b", &format!("Cookie: {cookie}\r\n")))
                .await
                .status
                == 401
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    // A fetch's logout answers JSON.
    let cookie = cookie_of(&a, &user).await;
    let fetch = format!(
        "POST /logout HTTP/1.1\r\nHost: app.example\r\nCookie: {cookie}\r\nOrigin: {ORIGIN}\r\nContent-Length: 0\r\n\r\n"
    );
    let r = send_raw(a.addr, fetch.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["success"], "User logged out.");
}

/// Ten tabs sharing one cookie jar, each sending its requests to one of two
/// instances in turn, the access part living 3 s: every request is served,
/// no refresh is taken for theft, and the user still has one browser session.
#[tokio::test]
async fn ten_tabs_on_two_instances_never_log_the_user_out() {
    use std::sync::{Arc, Mutex};
    let up = RawUpstream::start().await;
    let ttl = "tokens:\n  access_ttl_seconds: 3\n";
    let a = TestGateway::builder()
        .yaml(&yaml(&up, ttl).replace("refresh_grace_seconds: 2", "refresh_grace_seconds: 6"))
        .start();
    let b = TestGateway::builder()
        .yaml(&yaml(&up, ttl).replace("refresh_grace_seconds: 2", "refresh_grace_seconds: 6"))
        .same_store_as(&a)
        .start();
    let user = a.new_user().await;
    let jar = Arc::new(Mutex::new(cookie_of(&a, &user).await));
    let instances = [a.addr, b.addr];
    let started = std::time::Instant::now();
    let tabs: Vec<_> = (0..10)
        .map(|tab| {
            let jar = jar.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..20usize {
                    // 200 requests over 20 s: each tab every 0.5..1.5 s, staggered.
                    tokio::time::sleep(Duration::from_millis(
                        500 + ((tab * 37 + i * 53) % 1000) as u64,
                    ))
                    .await;
                    let cookie = jar.lock().unwrap().clone();
                    let addr = instances[(tab + i) % 2];
                    let r = send_raw(
                        addr,
                        &get(&format!("/app/{tab}/{i}"), &format!("Cookie: {cookie}\r\n")),
                    )
                    .await;
                    if let Some(new) = session_cookie(&r) {
                        *jar.lock().unwrap() = new;
                    }
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tabs {
        all.extend(t.await.unwrap());
    }
    assert!(
        started.elapsed() > Duration::from_secs(9),
        "the test spans several access lifetimes"
    );
    assert_eq!(all.len(), 200);
    assert!(all.iter().all(|&s| s == 200), "{all:?}");
    let reuse = a.metric("authgate_refresh_reuse_total").await
        + b.metric("authgate_refresh_reuse_total").await;
    assert_eq!(reuse, 0.0);
    let refreshes = a.metric("authgate_cookie_refreshes_total").await
        + b.metric("authgate_cookie_refreshes_total").await;
    assert!(refreshes >= 3.0, "the cookie was refreshed ({refreshes})");
    let cookie = jar.lock().unwrap().clone();
    let r = send_raw(a.addr, &get("/sessions", &format!("Cookie: {cookie}\r\n"))).await;
    // new_user's JSON login, and the one browser session.
    assert_eq!(
        r.json()["sessions"].as_array().map(Vec::len),
        Some(2),
        "{r:?}"
    );
}

/// An old access part beside a newer refresh token is not a cookie the
/// gateway minted: refused and cleared, and it rotates nothing (or a client
/// could force a rotation, and a Redis write, per request). A refreshed
/// answer from an upstream is never kept by a shared cache.
#[tokio::test]
async fn an_access_part_is_bound_to_its_refresh_token() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "tokens:\n  access_ttl_seconds: 1\n");
    let user = gw.new_user().await;
    let first = cookie_of(&gw, &user).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = send_raw(gw.addr, &get("/app/", &format!("Cookie: {first}\r\n"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(header(&r, "cache-control"), ["private, no-store"]);
    let second = session_cookie(&r).expect("refreshed");
    let refreshes = gw.metric("authgate_cookie_refreshes_total").await;
    let (old_access, _) = first.rsplit_once('.').unwrap();
    let (_, new_token) = second.rsplit_once('.').unwrap();
    let forged = format!("{old_access}.{new_token}");
    for _ in 0..3 {
        let r = send_raw(gw.addr, &get("/app/", &format!("Cookie: {forged}\r\n"))).await;
        assert_eq!(r.status, 401, "{r:?}");
        assert!(header(&r, "set-cookie")
            .iter()
            .any(|c| c.contains("Max-Age=0")));
    }
    assert_eq!(
        gw.metric("authgate_cookie_refreshes_total").await,
        refreshes
    );
    // The genuine cookie is untouched by the attempts.
    let r = send_raw(gw.addr, &get("/app/", &format!("Cookie: {second}\r\n"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Logging out everywhere by cookie clears it.
    let all = format!(
        "POST /logout/all HTTP/1.1\r\nHost: app.example\r\nCookie: {second}\r\nOrigin: {ORIGIN}\r\nContent-Length: 0\r\n\r\n"
    );
    let r = send_raw(gw.addr, all.as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        header(&r, "set-cookie")
            .iter()
            .any(|c| c.contains("Max-Age=0")),
        "{r:?}"
    );
}
