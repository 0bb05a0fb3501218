//! The operations listener: `/healthz` (alive), `/readyz` (Redis, the revocation feed and every cluster usable), `/metrics` (Prometheus), and `/admin/*` when the admin API is on.

use crate::admin::http::AdminApi;
use crate::auth::revocations::Revocations;
use crate::metrics::METRICS;
use crate::proxy::upstreams::Cluster;
use crate::store::Store;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::sync::Arc;

/// Serves the ops endpoints.
pub(crate) struct OpsApp {
    store: Arc<Store>,
    clusters: Vec<Arc<Cluster>>,
    revocations: Arc<Revocations>,
    /// The admin API under `/admin`, when a token is configured (else 404 there).
    admin: Option<Arc<AdminApi>>,
}

/// The admin API alone, on `admin.listen`: everything outside `/admin` is 404.
pub(crate) struct AdminOnly(pub(crate) Arc<AdminApi>);

#[async_trait]
impl ServeHttp for AdminOnly {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if is_admin_path(session.req_header().uri.path()) {
            return self.0.serve(session).await;
        }
        not_found("try /admin/users or /admin/openapi.json")
    }
}

/// Whether a request is for the admin API: `/admin` and below (a spelling
/// the edge would refuse is still the admin API's to refuse).
fn is_admin_path(path: &str) -> bool {
    path.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("/admin"))
        && (path.len() == 6 || path.as_bytes()[6] == b'/')
}

fn not_found(detail: &str) -> Response<Vec<u8>> {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": "not_found", "detail": detail}),
    )
}

impl OpsApp {
    /// Over the shared store and every cluster.
    pub(crate) fn new(
        store: Arc<Store>,
        clusters: Vec<Arc<Cluster>>,
        revocations: Arc<Revocations>,
        admin: Option<Arc<AdminApi>>,
    ) -> Self {
        OpsApp {
            store,
            clusters,
            revocations,
            admin,
        }
    }

    /// Why the gateway is not ready, if it is not.
    async fn not_ready(&self) -> Option<String> {
        if let Err(e) = self.store.ping().await {
            return Some(format!("redis: {e}"));
        }
        let now = crate::auth::access::now_unix();
        if self.revocations.stale(now) {
            let down = self.revocations.feed_down_for(now).unwrap_or_default();
            return Some(format!(
                "revocation feed down for {down} s, longer than an access token lives: revoked tokens may pass"
            ));
        }
        self.clusters
            .iter()
            .find(|c| !c.peer_health().iter().any(|(_, up)| *up))
            .map(|c| format!("upstream {}: no healthy peer", c.name))
    }

    fn update_peer_gauges(&self) {
        for c in &self.clusters {
            for (peer, up) in c.peer_health() {
                METRICS
                    .peer_up
                    .with_label_values(&[c.name.as_str(), peer.as_str()])
                    .set(i64::from(up));
            }
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = r.body().len().to_string().parse() {
        r.headers_mut().insert(http::header::CONTENT_LENGTH, v);
    }
    r
}

/// A JSON answer of the ops listener (and of the admin API on it), with its length.
pub(crate) fn json(status: StatusCode, v: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", v.to_string().into_bytes())
}

#[async_trait]
impl ServeHttp for OpsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if is_admin_path(session.req_header().uri.path()) {
            return match &self.admin {
                Some(admin) => admin.serve(session).await,
                None => not_found("the admin API is off: set admin.token_file"),
            };
        }
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            let mut r = json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"error": "method_not_allowed", "detail": "use GET"}),
            );
            r.headers_mut().insert(
                http::header::ALLOW,
                http::HeaderValue::from_static("GET, HEAD"),
            );
            return r;
        }
        match req.uri.path() {
            "/healthz" => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
            "/readyz" => match self.not_ready().await {
                None => json(StatusCode::OK, serde_json::json!({"status": "ready"})),
                Some(why) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "not_ready", "error": "not_ready", "detail": why}),
                ),
            },
            "/metrics" => {
                self.update_peer_gauges();
                reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    METRICS.render(),
                )
            }
            _ => not_found("try /healthz, /readyz or /metrics"),
        }
    }
}
