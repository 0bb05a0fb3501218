//! Per-request state carried across the proxy phases.

use crate::api::Endpoint;
use crate::auth::access::TokenRejection;
use crate::auth::open_streams::{Registration, StreamCut};
use crate::auth::revocations::Identity;
use crate::auth::roles::Roles;
use crate::domain::UserId;
use crate::metrics::RequestMetrics;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::request_id::RequestId;
use super::routes::Route;

/// What the phases learn about one request.
pub(crate) struct RequestCtx {
    /// When the request started.
    pub started: Instant,
    /// Set when the request is for an auth endpoint.
    pub endpoint: Option<Endpoint>,
    /// Set when a route matched.
    pub route: Option<Arc<Route>>,
    /// The verified caller.
    pub user: Option<UserId>,
    /// The verified caller's roles (`X-User-Roles`).
    pub roles: Roles,
    /// Why the token was refused.
    pub rejection: Option<TokenRejection>,
    /// The client's X-Request-Id when sane, else a new one.
    pub request_id: RequestId,
    /// The client's address by the trusted-proxy rule (the peer unless it is a trusted proxy).
    pub client_ip: Option<std::net::IpAddr>,
    /// The peer chosen for this try.
    pub peer: Option<std::net::SocketAddr>,
    /// The peer of the failed try, avoided on the retry.
    pub failed_peer: Option<std::net::SocketAddr>,
    /// Retries taken.
    pub retries: u8,
    /// The client's `grpc-timeout`, as a deadline for the upstream's answer.
    pub deadline: Option<Instant>,
    /// The identity a proxied request was authorized with, for the stream its
    /// answer may open (`streams.rs`).
    pub stream_identity: Option<Identity>,
    /// A WebSocket upgrade request.
    pub upgrade: bool,
    /// A gRPC request (`content-type: application/grpc*`).
    pub grpc: bool,
    /// Our duplicate of the upgrade's upstream socket, until it is registered.
    pub upstream_fd: Option<OwnedFd>,
    /// The open stream's handle and registration; unregistered on drop.
    pub stream: Option<(Arc<StreamCut>, Option<Registration>)>,
    /// This upgrade's place under the WebSocket caps; given back on drop.
    pub websocket_slot: Option<super::websocket_caps::Slot>,
    /// The route's `max_stream_seconds`.
    pub stream_limit: Option<std::time::Duration>,
    /// The route's `websocket_idle_seconds`, for an upgrade request.
    pub idle_limit: Option<std::time::Duration>,
    /// When the open WebSocket last carried a frame, for `idle_limit`.
    pub activity: Option<Arc<super::streams::Activity>>,
    /// The 1008 close frame has gone to the client.
    pub close_sent: bool,
    /// What CORS adds to the answer.
    pub cors: super::cors::CorsHeaders,
    /// The session cookie's `Set-Cookie` for the answer: refreshed or cleared.
    pub set_cookie: Option<String>,
}

impl RequestCtx {
    /// A fresh context.
    pub(crate) fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            endpoint: None,
            route: None,
            user: None,
            roles: Roles::NONE,
            rejection: None,
            request_id: RequestId::None,
            client_ip: None,
            peer: None,
            failed_peer: None,
            retries: 0,
            deadline: None,
            stream_identity: None,
            upgrade: false,
            grpc: false,
            upstream_fd: None,
            stream: None,
            stream_limit: None,
            idle_limit: None,
            activity: None,
            websocket_slot: None,
            close_sent: false,
            cors: super::cors::CorsHeaders::Off,
            set_cookie: None,
        }
    }

    /// The label of what served the request: an auth endpoint, a route prefix, or none.
    pub(crate) fn route_label(&self) -> &str {
        match (&self.endpoint, &self.route) {
            (Some(e), _) => e.label(),
            (None, Some(r)) => &r.label,
            (None, None) => "unmatched",
        }
    }

    /// The metric handles of what served the request (same label as `route_label`).
    pub(crate) fn metrics(&self) -> &RequestMetrics {
        static BY_ENDPOINT: [OnceLock<RequestMetrics>; Endpoint::COUNT] =
            [const { OnceLock::new() }; Endpoint::COUNT];
        static UNMATCHED: OnceLock<RequestMetrics> = OnceLock::new();
        match (&self.endpoint, &self.route) {
            (Some(e), _) => BY_ENDPOINT
                .get(e.slot())
                .unwrap_or(&UNMATCHED)
                .get_or_init(|| RequestMetrics::new(e.label())),
            (None, Some(r)) => &r.metrics,
            (None, None) => UNMATCHED.get_or_init(|| RequestMetrics::new("unmatched")),
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_counts_under_its_own_label() {
        use Endpoint::*;
        let all = [
            Register, Login, Refresh, Logout, LogoutAll, Me, Password, Sessions, Session, Jwks,
            OpenApi,
        ];
        assert_eq!(all.len(), Endpoint::COUNT);
        for e in all {
            let ctx = RequestCtx {
                endpoint: Some(e),
                ..RequestCtx::new()
            };
            assert_eq!(ctx.metrics().label(), e.label());
        }
        assert_eq!(RequestCtx::new().metrics().label(), "unmatched");
    }
}
