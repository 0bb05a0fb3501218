//! Prometheus metrics for the process: one registry, counters and histograms bumped on the request path.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

/// Every metric the gateway exports.
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests by route label and status.
    pub requests: IntCounterVec,
    /// Request latency by route label.
    pub latency: HistogramVec,
    /// Proxy failures by kind (bad_gateway, upstream_timeout, no_healthy_upstream, ...).
    pub upstream_errors: IntCounterVec,
    /// Proxy attempts the client ended by breaking the protocol (bytes sent
    /// where none may come, a malformed body), by the code answered.
    pub client_errors: IntCounterVec,
    /// Auth endpoint outcomes: endpoint, outcome (`ok` or the error code).
    pub auth: IntCounterVec,
    /// Access tokens refused on protected routes, by reason.
    pub token_rejections: IntCounterVec,
    /// Valid tokens refused (403) by a route's `roles`, by route.
    pub role_refusals: IntCounterVec,
    /// Admin operations (API and CLI), by operation and outcome.
    pub admin: IntCounterVec,
    /// WebSocket upgrades refused by a WebSocket rule, by reason.
    pub websocket_refusals: IntCounterVec,
    /// Open streams ended by a revocation, by reason.
    pub streams_closed: IntCounterVec,
    /// CORS requests refused (`docs/cors.md`), by reason.
    pub cors_refusals: IntCounterVec,
    /// Browser requests refused (`docs/browser.md`): `csrf`, `origin_not_allowed`.
    pub browser_refusals: IntCounterVec,
    /// Session cookies the gateway refreshed itself.
    pub cookie_refreshes: IntCounter,
    /// Session cookies cleared because they were not (or no longer) a session.
    pub cookies_cleared: IntCounter,
    /// Redis calls that failed or timed out, by node (`host:port`; `unknown`
    /// for a cluster call whose node was not known yet).
    pub redis_errors: IntCounterVec,
    /// 1 when a peer is healthy, by cluster and peer (set at scrape time).
    pub peer_up: IntGaugeVec,
    /// Refresh tokens presented again after the grace window (sessions revoked as stolen).
    pub refresh_reuse: IntCounter,
    /// Requests refused by a throttle, by endpoint.
    pub throttled: IntCounterVec,
    /// 1 while the revocation feed follows Redis, 0 while it reconnects.
    pub revocation_feed_up: IntGauge,
    /// Revocations held in memory.
    pub revocations_held: IntGauge,
    /// Requests read by the body-less fast path (the others went to pingora-proxy).
    pub fast_path: IntCounter,
    /// Password hashes computed for requests (argon2id hashes and verifications, Django
    /// verifications): a throttled or refused request must not move it.
    pub password_hashes: IntCounter,
    /// Access log lines dropped because stdout did not keep up (never security events).
    pub log_lines_dropped: IntCounter,
    /// Client connections closed at accept, by the cap that refused them.
    pub connections_refused: IntCounterVec,
    /// Peers skipped after a refused or reset connect (passive health), by cluster and peer.
    pub peer_ejections: IntCounterVec,
    /// Upstream tries repeated on another peer, by reason (connect_failed, before_response).
    pub upstream_retries: IntCounterVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("authgate".into()), None)?;
    let requests = IntCounterVec::new(
        Opts::new("requests_total", "Requests by route and status"),
        &["route", "status"],
    )?;
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "request_duration_seconds",
            "Time from request to last response byte, by route",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["route"],
    )?;
    let upstream_errors = IntCounterVec::new(
        Opts::new("upstream_errors_total", "Proxy failures by kind"),
        &["kind"],
    )?;
    let client_errors = IntCounterVec::new(
        Opts::new(
            "client_errors_total",
            "Proxy attempts the client broke off with invalid bytes, by the code answered",
        ),
        &["kind"],
    )?;
    let auth = IntCounterVec::new(
        Opts::new(
            "auth_requests_total",
            "Auth endpoint outcomes (ok or the error code)",
        ),
        &["endpoint", "outcome"],
    )?;
    let token_rejections = IntCounterVec::new(
        Opts::new("token_rejections_total", "Access tokens refused, by reason"),
        &["reason"],
    )?;
    let redis_errors = IntCounterVec::new(
        Opts::new(
            "redis_errors_total",
            "Redis calls that failed or timed out, by node",
        ),
        &["node"],
    )?;
    let peer_up = IntGaugeVec::new(
        Opts::new("upstream_peer_up", "1 if the peer passes its health check"),
        &["cluster", "peer"],
    )?;
    registry.register(Box::new(requests.clone()))?;
    registry.register(Box::new(latency.clone()))?;
    registry.register(Box::new(upstream_errors.clone()))?;
    registry.register(Box::new(client_errors.clone()))?;
    registry.register(Box::new(auth.clone()))?;
    registry.register(Box::new(token_rejections.clone()))?;
    registry.register(Box::new(redis_errors.clone()))?;
    registry.register(Box::new(peer_up.clone()))?;
    let refresh_reuse = IntCounter::new(
        "refresh_reuse_total",
        "Refresh tokens replayed after the grace window; each revoked its session",
    )?;
    let throttled = IntCounterVec::new(
        Opts::new("throttled_total", "Requests refused with 429, by endpoint"),
        &["endpoint"],
    )?;
    let revocation_feed_up = IntGauge::new(
        "revocation_feed_up",
        "1 while the revocation feed follows Redis",
    )?;
    let revocations_held = IntGauge::new(
        "revocations_held",
        "Revoked sessions and users held in memory",
    )?;
    registry.register(Box::new(refresh_reuse.clone()))?;
    registry.register(Box::new(throttled.clone()))?;
    registry.register(Box::new(revocation_feed_up.clone()))?;
    registry.register(Box::new(revocations_held.clone()))?;
    let fast_path = IntCounter::new(
        "fast_path_requests_total",
        "Requests served by the body-less HTTP/1 fast path; the rest went through pingora-proxy",
    )?;
    registry.register(Box::new(fast_path.clone()))?;
    let password_hashes = IntCounter::new(
        "password_hashes_total",
        "Password hashes computed for requests (hashes and verifications)",
    )?;
    registry.register(Box::new(password_hashes.clone()))?;
    let role_refusals = IntCounterVec::new(
        Opts::new(
            "role_refusals_total",
            "Valid tokens refused with 403 by a route's roles, by route",
        ),
        &["route"],
    )?;
    let admin = IntCounterVec::new(
        Opts::new(
            "admin_requests_total",
            "Admin operations (admin API and CLI), by operation and outcome",
        ),
        &["operation", "outcome"],
    )?;
    let websocket_refusals = IntCounterVec::new(
        Opts::new(
            "websocket_refusals_total",
            "WebSocket upgrades refused by a WebSocket rule, by reason",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(websocket_refusals.clone()))?;
    let streams_closed = IntCounterVec::new(
        Opts::new(
            "streams_closed_total",
            "Open streams (WebSockets) ended by a revocation, by reason",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(streams_closed.clone()))?;
    let cors_refusals = IntCounterVec::new(
        Opts::new(
            "cors_refusals_total",
            "CORS preflights and requests refused by the cors section, by reason",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(cors_refusals.clone()))?;
    let browser_refusals = IntCounterVec::new(
        Opts::new(
            "browser_refusals_total",
            "Cookie-authenticated requests refused for their origin, by reason (csrf, origin_not_allowed)",
        ),
        &["reason"],
    )?;
    let cookie_refreshes = IntCounter::new(
        "cookie_refreshes_total",
        "Session cookies refreshed by the gateway after their access part expired",
    )?;
    let cookies_cleared = IntCounter::new(
        "cookies_cleared_total",
        "Session cookies cleared: tampered, from another deployment, or of an ended session",
    )?;
    registry.register(Box::new(browser_refusals.clone()))?;
    registry.register(Box::new(cookie_refreshes.clone()))?;
    registry.register(Box::new(cookies_cleared.clone()))?;
    registry.register(Box::new(role_refusals.clone()))?;
    registry.register(Box::new(admin.clone()))?;
    let log_lines_dropped = IntCounter::new(
        "log_lines_dropped_total",
        "Access log lines dropped because stdout did not keep up; the log is complete while this is 0",
    )?;
    registry.register(Box::new(log_lines_dropped.clone()))?;
    let connections_refused = IntCounterVec::new(
        Opts::new(
            "connections_refused_total",
            "Client connections closed at accept, by reason (max_connections, max_connections_per_ip)",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(connections_refused.clone()))?;
    let peer_ejections = IntCounterVec::new(
        Opts::new(
            "peer_ejections_total",
            "Peers skipped for a few seconds after a refused or reset connect, by cluster and peer",
        ),
        &["cluster", "peer"],
    )?;
    registry.register(Box::new(peer_ejections.clone()))?;
    let upstream_retries = IntCounterVec::new(
        Opts::new(
            "upstream_retries_total",
            "Upstream tries repeated on another peer, by reason (connect_failed, before_response)",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(upstream_retries.clone()))?;
    Ok(Metrics {
        role_refusals,
        admin,
        websocket_refusals,
        streams_closed,
        cors_refusals,
        browser_refusals,
        cookie_refreshes,
        cookies_cleared,
        registry,
        requests,
        latency,
        upstream_errors,
        client_errors,
        auth,
        token_rejections,
        redis_errors,
        peer_up,
        refresh_reuse,
        throttled,
        revocation_feed_up,
        revocations_held,
        fast_path,
        password_hashes,
        log_lines_dropped,
        connections_refused,
        peer_ejections,
        upstream_retries,
    })
}

/// The process's metrics.
pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| match build() {
    Ok(m) => m,
    // Only reachable with duplicate or malformed metric names: a bug caught by any test run.
    Err(e) => panic!("metric definitions are invalid: {e}"),
});

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8192);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("cannot encode metrics: {e}");
        }
        out
    }
}

/// Status codes that get a label of their own; anything else counts as "other".
const STATUSES: usize = 600;

/// The request counters and latency histogram of one route label, looked up
/// once. `with_label_values` hashes the labels and takes a lock on every call;
/// these handles are what the proxy path bumps instead.
pub(crate) struct RequestMetrics {
    label: String,
    latency: Histogram,
    /// One counter per status, resolved the first time that status is answered.
    by_status: Box<[OnceLock<IntCounter>]>,
}

impl RequestMetrics {
    /// The handles for route label `label`.
    pub(crate) fn new(label: &str) -> Self {
        RequestMetrics {
            label: label.to_owned(),
            latency: METRICS.latency.with_label_values(&[label]),
            by_status: (0..=STATUSES).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The route label these handles count under.
    #[cfg(test)]
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Count one answered request.
    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        let i = usize::from(status).min(STATUSES);
        if let Some(slot) = self.by_status.get(i) {
            slot.get_or_init(|| {
                let status = if i < STATUSES {
                    status.to_string()
                } else {
                    "other".to_owned()
                };
                METRICS
                    .requests
                    .with_label_values(&[self.label.as_str(), status.as_str()])
            })
            .inc();
        }
        self.latency.observe(elapsed.as_secs_f64());
    }
}
