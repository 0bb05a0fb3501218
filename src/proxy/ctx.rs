//! Per-request state carried across the proxy phases.

use crate::api::Endpoint;
use crate::auth::access::TokenRejection;
use crate::domain::UserId;
use std::sync::Arc;
use std::time::Instant;

use super::routes::Route;

/// What the phases learn about one request.
pub struct RequestCtx {
    /// When the request started.
    pub started: Instant,
    /// Set when the request is for an auth endpoint.
    pub endpoint: Option<Endpoint>,
    /// Set when a route matched.
    pub route: Option<Arc<Route>>,
    /// The verified caller.
    pub user: Option<UserId>,
    /// Why the token was refused.
    pub rejection: Option<TokenRejection>,
    /// The client's X-Request-Id when sane, else a new one.
    pub request_id: String,
    /// The client's address by the trusted-proxy rule (the peer unless it is a trusted proxy).
    pub client_ip: Option<std::net::IpAddr>,
    /// The peer chosen for this try.
    pub peer: Option<std::net::SocketAddr>,
    /// A peer that failed to connect, avoided on the retry.
    pub failed_peer: Option<std::net::SocketAddr>,
    /// Retries taken.
    pub retries: u8,
}

impl RequestCtx {
    /// A fresh context.
    pub fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            endpoint: None,
            route: None,
            user: None,
            rejection: None,
            request_id: String::new(),
            client_ip: None,
            peer: None,
            failed_peer: None,
            retries: 0,
        }
    }

    /// The label of what served the request: an auth endpoint, a route prefix, or none.
    pub fn route_label(&self) -> &str {
        match (&self.endpoint, &self.route) {
            (Some(e), _) => e.label(),
            (None, Some(r)) => &r.label,
            (None, None) => "unmatched",
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
