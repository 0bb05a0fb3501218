//! A peer that dies under traffic, on both HTTP/1 engines: requests that cannot have reached it, and idempotent ones it never answered, go to the other peer; it is ejected at once; a POST it may have received is not sent again.

use crate::helpers::*;
use reqwest::Method;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Both engines, whatever pass of the suite this is: the fast path serves the
/// GETs with its own pool, pingora-proxy everything else.
const ENGINES: [bool; 2] = [true, false];

/// A gateway with one cluster `pool` of `peers`, no active health check (only
/// passive health and retries keep a dead peer from costing errors).
fn gateway(fast_path: bool, peers: &[std::net::SocketAddr]) -> TestGateway {
    let peers: Vec<String> = peers.iter().map(|p| format!("'{p}'")).collect();
    TestGateway::builder()
        .fast_path(fast_path)
        .yaml(&format!(
            "upstreams:\n  pool: {{ peers: [{}] }}\nroutes:\n  - {{ prefix: /, upstream: pool }}\n",
            peers.join(", ")
        ))
        .start()
}

/// Concurrent clients, each sending GETs over keep-alive connections, as `b` is
/// stopped (listener and every open connection closed, as a crashed peer's)
/// after a third of them: every GET is answered 200.
#[tokio::test]
async fn a_peer_killed_mid_traffic_costs_no_get_an_error() {
    const CLIENTS: usize = 8;
    const TOTAL: usize = 600;
    for fast_path in ENGINES {
        let a = Upstream::start("a").await;
        let b = Upstream::start("b").await;
        let gw = gateway(fast_path, &[a.addr, b.addr]);
        let tok = token(1);
        // Keep-alive connections to both peers, in the gateway's pool, before the kill.
        for _ in 0..CLIENTS {
            assert_eq!(gw.get_status("/warm", Some(&tok)).await, 200);
        }
        assert!(b.hits() > 0, "b was never used");

        let sent = AtomicUsize::new(0);
        let (sent, gw_ref, b_ref, tok_ref) = (&sent, &gw, &b, &tok);
        let client = move |_| async move {
            let (gw, b, tok) = (gw_ref, b_ref, tok_ref);
            let mut failures = Vec::new();
            loop {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                if n >= TOTAL {
                    return failures;
                }
                if n == TOTAL / 3 {
                    b.stop();
                }
                match gw.request(Method::GET, "/x").bearer_auth(tok).send().await {
                    Ok(r) if r.status() == 200 => {}
                    Ok(r) => failures.push(format!("GET {n}: {}", r.status())),
                    Err(e) => failures.push(format!("GET {n}: {e}")),
                }
            }
        };
        let failures: Vec<String> = futures_util::future::join_all((0..CLIENTS).map(client))
            .await
            .concat();
        let engine = if fast_path {
            "fast path"
        } else {
            "pingora-proxy"
        };
        assert!(failures.is_empty(), "{engine}: {failures:?}");
        let ejections = format!(
            "authgate_peer_ejections_total{{cluster=\"pool\",peer=\"{}\"}}",
            b.addr
        );
        assert!(
            gw.metric(&ejections).await >= 1.0,
            "{engine}: b not ejected"
        );
        // Ejected at its first refused connect, b costs a retry only for the
        // requests already on their way to it then (and once more per
        // ejection's end): without the ejection, half of the 400 GETs after
        // the kill would go to it first.
        let retries = gw
            .metric("authgate_upstream_retries_total{reason=\"connect_failed\"}")
            .await
            + gw.metric("authgate_upstream_retries_total{reason=\"before_response\"}")
                .await;
        assert!(
            (1.0..=(4 * CLIENTS) as f64).contains(&retries),
            "{engine}: {retries} retries"
        );
    }
}

/// A peer that reads each request and closes the connection without an answer,
/// as one that dies just after the request reached it; it counts what it read.
struct Swallower {
    addr: std::net::SocketAddr,
    gets: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
}

impl Swallower {
    async fn start() -> Swallower {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (gets, posts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (g, p) = (gets.clone(), posts.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (g, p) = (g.clone(), p.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if head.starts_with(b"GET ") {
                        g.fetch_add(1, Ordering::SeqCst);
                    } else if head.starts_with(b"POST ") {
                        p.fetch_add(1, Ordering::SeqCst);
                    }
                    // Dropped: closed with no answer.
                });
            }
        });
        Swallower { addr, gets, posts }
    }
}

/// GETs the swallowing peer read and never answered are answered by the other
/// peer; POSTs it read are not sent again: each is a 502, and the live peer
/// receives exactly the others.
#[tokio::test]
async fn an_unanswered_get_is_retried_and_a_post_that_reached_the_peer_is_not() {
    const N: usize = 10;
    for fast_path in ENGINES {
        let engine = if fast_path {
            "fast path"
        } else {
            "pingora-proxy"
        };
        let dying = Swallower::start().await;
        let a = Upstream::start("a").await;
        let gw = gateway(fast_path, &[dying.addr, a.addr]);
        let tok = token(1);
        for i in 0..N {
            assert_eq!(
                gw.get_status("/x", Some(&tok)).await,
                200,
                "{engine}: GET {i}"
            );
        }
        let swallowed_gets = dying.gets.load(Ordering::SeqCst);
        assert!(
            swallowed_gets > 0,
            "{engine}: no GET reached the dying peer"
        );
        assert_eq!(a.hits(), N, "{engine}: every GET answered by a");
        assert_eq!(
            gw.metric("authgate_upstream_retries_total{reason=\"before_response\"}")
                .await,
            swallowed_gets as f64,
            "{engine}"
        );

        let mut bad_gateway = 0;
        for i in 0..N {
            let r = gw
                .request(Method::POST, "/orders")
                .bearer_auth(&tok)
                .body("one order")
                .send()
                .await
                .unwrap();
            match r.status().as_u16() {
                200 => {}
                502 => bad_gateway += 1,
                s => panic!("{engine}: POST {i}: {s}"),
            }
        }
        let swallowed_posts = dying.posts.load(Ordering::SeqCst);
        assert!(
            swallowed_posts > 0,
            "{engine}: no POST reached the dying peer"
        );
        assert_eq!(
            bad_gateway, swallowed_posts,
            "{engine}: a POST was sent again"
        );
        assert_eq!(
            a.hits(),
            N + N - swallowed_posts,
            "{engine}: POSTs a received"
        );
        // A connection that broke after connecting says nothing of the peer's liveness.
        let ejections = format!(
            "authgate_peer_ejections_total{{cluster=\"pool\",peer=\"{}\"}}",
            dying.addr
        );
        assert_eq!(gw.metric(&ejections).await, 0.0, "{engine}");
    }
}
