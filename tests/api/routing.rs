//! Routes, auth policies, load balancing, health checks, retries, timeouts and the upstream error bodies.

use crate::helpers::*;
use reqwest::Method;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// A gateway whose every path goes to one cluster, `pool`, defined by `pool` (YAML flow mapping).
fn gateway_with_pool(pool: &str) -> TestGateway {
    TestGateway::builder()
        .yaml(&format!(
            r#"
upstreams:
  pool: {pool}
routes:
  - {{ prefix: /, upstream: pool }}
"#
        ))
        .start()
}

/// Whether the gateway's metrics show `peer` as `up` (1) or down (0).
async fn peer_shows(gw: &TestGateway, peer: SocketAddr, up: u8) -> bool {
    gw.metrics().await.lines().any(|l| {
        l.starts_with("authgate_upstream_peer_up")
            && l.contains(&peer.to_string())
            && l.ends_with(&format!(" {up}"))
    })
}

#[tokio::test]
async fn routes_pick_clusters_and_apply_their_policies() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = TestGateway::builder()
        .yaml(&format!(
            r#"
upstreams:
  a: {{ peers: ['{a}'] }}
  b: {{ peers: ['{b}'] }}
routes:
  - {{ prefix: /public, upstream: a, auth: public }}
  - {{ prefix: /opt, upstream: a, auth: optional }}
  - {{ prefix: /api, upstream: b, strip_prefix: true }}
  - {{ prefix: /api/a, upstream: a }}
  - {{ prefix: /host, upstream: b, host: internal.example, auth: public }}
  - {{ prefix: /login, upstream: a, auth: public }}
"#,
            a = a.addr,
            b = b.addr
        ))
        .start();
    let get = |path: &str, tok: Option<&str>| {
        let mut r = gw.request(Method::GET, path).header("X-User-Id", "666");
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // public: no token needed, spoofed identity still removed
    let r = get("/public/x", None).await.unwrap();
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["upstream"], "a");
    assert!(
        header_values(&e, "x-user-id").is_empty(),
        "spoofed header reached a public route: {e}"
    );

    // optional: forwarded without identity, with identity when valid, 401 when invalid
    let e: Value = get("/opt", None).await.unwrap().json().await.unwrap();
    assert!(header_values(&e, "x-user-id").is_empty());
    let e: Value = get("/opt/y", Some(&token(12)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(header_values(&e, "x-user-id"), vec!["12"]);
    assert_eq!(
        get("/opt", Some("bad.token.here")).await.unwrap().status(),
        401
    );

    // required + strip_prefix, and longest prefix wins
    assert_eq!(get("/api/users", None).await.unwrap().status(), 401);
    let e: Value = get("/api/users?q=1", Some(&token(5)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            e["upstream"].as_str(),
            e["path"].as_str(),
            e["query"].as_str()
        ),
        (Some("b"), Some("/users"), Some("q=1"))
    );
    let e: Value = get("/api/a/z", Some(&token(5)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (e["upstream"].as_str(), e["path"].as_str()),
        (Some("a"), Some("/api/a/z"))
    );

    // segment-aware: /apix is not /api, and nothing else matches: 404 JSON
    let r = get("/apix", Some(&token(5))).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_error(&r.json().await.unwrap(), "not_found");

    // host-specific route
    let r = gw
        .request(Method::GET, "/host/1")
        .header("Host", "Internal.Example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get("/host/1", None).await.unwrap().status(), 404);

    // the auth endpoints are never shadowed by a route
    let (s, b) = gw.login("x@example.com", "whatever1").await;
    assert_eq!(s, 401);
    assert_error(&b, "invalid_credentials");
}

#[tokio::test]
async fn load_is_spread_across_peers() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = gateway_with_pool(&format!("{{ peers: ['{}', '{}'] }}", a.addr, b.addr));
    for _ in 0..40 {
        assert_eq!(gw.get_status("/x", Some(&token(1))).await, 200);
    }
    assert_eq!(a.hits() + b.hits(), 40);
    assert!(
        a.hits() >= 10 && b.hits() >= 10,
        "uneven spread: a={} b={}",
        a.hits(),
        b.hits()
    );
}

#[tokio::test]
async fn requests_retry_on_another_peer_when_connecting_fails() {
    let a = Upstream::start("a").await;
    let dead = DeadPort::new();
    let gw = gateway_with_pool(&format!("{{ peers: ['{}', '{}'] }}", a.addr, dead.addr));
    for i in 0..10 {
        let status = gw.get_status("/x", Some(&token(1))).await;
        assert_eq!(status, 200, "GET {i} was not retried");
    }
    // A refused connect sent nothing: a POST goes to the other peer too.
    for i in 0..10 {
        let r = gw
            .request(Method::POST, "/x")
            .bearer_auth(token(1))
            .body("b")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "POST {i} was not retried");
    }
    assert_eq!(a.hits(), 20);
    let ejections = format!(
        "authgate_peer_ejections_total{{cluster=\"pool\",peer=\"{}\"}}",
        dead.addr
    );
    assert!(gw.metric(&ejections).await >= 1.0, "{}", gw.metrics().await);
}

#[tokio::test]
async fn health_checks_take_a_dead_peer_out_and_put_it_back() {
    let a = Upstream::start("a").await;
    let mut b = Upstream::start("b").await;
    let gw = gateway_with_pool(&format!(
        "{{ peers: ['{}', '{}'], health_check: {{ kind: http, path: /health, interval_seconds: 1 }} }}",
        a.addr, b.addr
    ));
    let wait = Duration::from_secs(10);
    eventually(wait, "a health check reaches b", || async { b.hits() > 0 }).await;
    b.stop();
    // Until the next check notices, GETs that hit b are retried on a.
    eventually(wait, "the metrics show b down", || {
        peer_shows(&gw, b.addr, 0)
    })
    .await;
    let before_b = b.hits();
    // With b checked down, every request goes to a, the live peer (its health
    // checks add to its hits, never take away), and none even tries b: no
    // refused connect, so no retry.
    let before_a = a.hits();
    let retries = gw
        .metric("authgate_upstream_retries_total{reason=\"connect_failed\"}")
        .await;
    for i in 0..20 {
        let r = gw
            .request(Method::POST, "/x")
            .bearer_auth(token(1))
            .body("to a")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "POST {i} went to the dead peer");
        let echo: Value = r.json().await.expect("echo JSON");
        assert_eq!(echo["upstream"], "a", "POST {i}");
    }
    assert!(
        a.hits() >= before_a + 20,
        "the live peer got {} of 20 requests",
        a.hits() - before_a
    );
    assert_eq!(
        gw.metric("authgate_upstream_retries_total{reason=\"connect_failed\"}")
            .await,
        retries,
        "a request tried the peer checked down"
    );
    assert!(
        peer_shows(&gw, b.addr, 0).await,
        "metrics do not show the peer down:\n{}",
        gw.metrics().await
    );

    b.restart().await;
    eventually(wait, "the metrics show b up", || peer_shows(&gw, b.addr, 1)).await;
    for _ in 0..20 {
        assert_eq!(gw.get_status("/x", Some(&token(1))).await, 200);
    }
    assert!(b.hits() > before_b, "the peer did not come back");
}

#[tokio::test]
async fn every_peer_down_is_503_and_readyz_says_why() {
    let a = Upstream::start("a").await;
    let gw = gateway_with_pool(&format!(
        "{{ peers: ['{}'], health_check: {{ kind: tcp, interval_seconds: 1 }} }}",
        a.addr
    ));
    assert_eq!(gw.ops_get("/readyz").await.status(), 200);
    a.stop();
    eventually(Duration::from_secs(10), "readyz turns 503", || async {
        gw.ops_get("/readyz").await.status() == 503
    })
    .await;
    let r = gw.get("/x", Some(&token(1))).await;
    assert_eq!(r.status(), 503);
    assert_error(&r.json().await.unwrap(), "no_healthy_upstream");
    let r = gw.ops_get("/readyz").await;
    assert_eq!(r.status(), 503);
    let b: Value = r.json().await.unwrap();
    assert!(b["detail"].as_str().unwrap().contains("pool"), "{b}");
    assert_eq!(gw.ops_get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_slow_upstream_is_a_504() {
    let a = Upstream::start("a").await;
    let gw = gateway_with_pool(&format!(
        "{{ peers: ['{}'], read_timeout_ms: 300 }}",
        a.addr
    ));
    let t = std::time::Instant::now();
    let r = gw.get("/slow", Some(&token(1))).await;
    assert_eq!(r.status(), 504);
    assert_error(&r.json().await.unwrap(), "upstream_timeout");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_peer_that_never_accepts_is_a_connect_timeout_504() {
    // A listener whose accept queue is full drops new SYNs, so connecting hangs.
    // (Should the kernel still complete the handshake, nobody reads the request:
    // the short read timeout makes that a 504 as well.)
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..3 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let gw = gateway_with_pool(&format!(
        "{{ peers: ['{addr}'], connect_timeout_ms: 300, read_timeout_ms: 500 }}"
    ));
    let r = gw
        .request(Method::POST, "/x")
        .bearer_auth(token(1))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert_error(&r.json().await.unwrap(), "upstream_timeout");
    drop(listener);
}

#[tokio::test]
async fn request_ids_are_kept_when_sane_and_echoed() {
    let a = Upstream::start("a").await;
    let gw = TestGateway::builder().upstream(a.addr).start();
    let r = gw
        .request(Method::GET, "/x")
        .bearer_auth(token(1))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let e: Value = r.json().await.unwrap();
    assert!(e["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p[0] == "x-request-id" && p[1] == "abc-123"));
    let r = gw
        .request(Method::GET, "/x")
        .header("X-Request-Id", "bad id\"<>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // A new id: 32 hex digits, never the client's.
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let e = gw.get_json("/x", &token(1)).await;
    assert!(e["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p[0] == "x-forwarded-proto" && p[1] == "http"));
}
