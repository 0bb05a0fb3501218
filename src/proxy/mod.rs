//! The Pingora `ProxyHttp` implementation: each phase delegates to a module of its own.
//!
//! Long file: the `ProxyHttp` implementation is one trait impl, each hook a few lines delegating to a module of its own; its size is the number of Pingora hooks.
//!
//! Two drivers call the same `Gateway` phases: pingora-proxy, through
//! `impl ProxyHttp for Proxy` below, and the HTTP/1 fast path
//! (`h1/fast_path.rs`) for the plain body-less GET/HEAD requests that
//! `h1::fast_path::classify` gives it. Each hook the gateway implements:
//!
//! | pingora-proxy hook | `Gateway` method (or module) | fast path |
//! |---|---|---|
//! | `new_ctx` | `RequestCtx::new` | yes |
//! | `early_request_filter` | `early_request` | yes |
//! | `request_filter` | `filter_request` | yes |
//! | `upstream_peer` | `upstream_peer` | yes |
//! | `fail_to_connect` | `connect_failed` | yes |
//! | `error_while_proxy` | `proxy_failed` | yes |
//! | `upstream_request_filter` | `headers::prepare_upstream_request` | yes |
//! | `response_filter` | `filter_response` | yes |
//! | `response_end_signal` | `streams::end_signal` | yes |
//! | `fail_to_proxy` | `failure::answer` | yes |
//! | `request_summary` | `request_summary` | yes |
//! | `suppress_error_log` | `suppress_error_log` | yes |
//! | `logging` | `log_request` | yes |
//! | `response_end_task` | `streams::end_task` | no: it differs from a plain end of body only for gRPC, which is POST |
//! | `connected_to_upstream` | `streams::connected` | no: only upgrades need it, and `classify` sends upgrades to pingora-proxy |
//! | `request_body_filter` | `streams::touched` | no: `classify` sends every request with a body or an upgrade to pingora-proxy |
//! | `response_body_filter` | `streams::body` | no: it acts only on upgraded connections, which `classify` never gives the fast path |
//! | `init_downstream_modules` | none | no: it only leaves out Pingora's compression module, and the fast path runs no modules |
//!
//! Left to Pingora's default, which the fast path matches by doing nothing
//! of the kind (no cache, no subrequests, no custom messages, no trailers
//! of its own): `init_upstream_modules`, `allow_spawning_subrequest`,
//! `request_cache_filter`, `cache_key_callback`, `cache_miss`,
//! `cache_hit_filter`, `proxy_upstream_filter`, `response_cache_filter`,
//! `cache_vary_filter`, `cache_not_modified_filter`, `range_header_filter`,
//! `adjust_upstream_modules`, `upstream_response_filter`, `custom_forwarding`,
//! `downstream_custom_message_proxy_filter`,
//! `upstream_custom_message_proxy_filter`, `upstream_response_body_filter`,
//! `upstream_response_trailer_filter`, `response_trailer_filter`,
//! `persist_connection_context`, `on_connection_reuse`,
//! `suppress_proxy_warn_log`, `should_serve_stale`, `is_purge`,
//! `purge_action`, `purge_response_filter`.
//!
//! The rule, enforced by `hook_table_tests`: a hook implemented here has a
//! row; a "yes" row's method is called by the fast path; a "no" row says why
//! the fast path never needs it; and every hook of the vendored
//! pingora-proxy's trait is either a row or left to the default above, so a
//! Pingora upgrade that adds a hook fails that test until it is decided.

pub(crate) mod access_log;
mod admission;
mod auth_endpoint;
mod body;
mod browser_flow;
mod browser_pages;
pub(crate) mod conn_limit;
pub(crate) mod cors;
mod ctx;
mod ejection;
pub(crate) mod explain;
mod failure;
mod grpc_health;
mod grpc_timeout;
mod h1;
mod headers;
mod request_id;
mod respond;
mod retry;
pub(crate) mod routes;
mod streams;
pub(crate) mod upstreams;
mod websocket;
pub(crate) mod websocket_caps;

pub(crate) use ctx::RequestCtx;
pub(crate) use h1::{FastPath, IdleParking, Parking};

use crate::api::{AuthApi, Endpoint};
use crate::auth::access::AccessTokens;
use crate::edge::EdgeRules;
use crate::error::ErrorReply;
use crate::metrics::METRICS;
use async_trait::async_trait;
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_error::{Error, Result};
use pingora_http::RequestHeader;
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use routes::RouteTable;
use std::sync::Arc;

/// The gateway: auth API, route table, token check.
pub(crate) struct Gateway {
    /// The auth endpoints and the token verifier.
    pub api: Arc<AuthApi>,
    /// Where non-auth requests go.
    pub routes: RouteTable,
    /// The rules every request passes before routing.
    pub edge: EdgeRules,
    /// Idle timeout of client connections.
    pub keepalive_seconds: u64,
    /// Cap on auth request bodies.
    pub max_auth_body: usize,
    /// Total time to receive an auth request body.
    pub auth_body_timeout: std::time::Duration,
    /// Write the JSON access log.
    pub access_log: bool,
    /// The `cors` section, when set.
    pub cors: Option<cors::Cors>,
    /// Open WebSockets per user and per address.
    pub websocket_caps: Arc<websocket_caps::WebSocketCaps>,
    /// Browser mode (the login page, the session cookie), when on.
    pub browser: Option<Arc<crate::browser::Browser>>,
}

impl Gateway {
    fn access(&self) -> &AccessTokens {
        &self.api.access
    }

    /// Per-connection housekeeping, before anything is decided about the request.
    ///
    /// The one answer to "when does a client connection stay open?": after each
    /// answer, for up to `keepalive_timeout_seconds` of idleness (also before
    /// its first request: `h1/mod.rs`), unless
    /// - the process is leaving (upgrade hand-over or shutdown): every answer
    ///   from then on says `Connection: close` (here);
    /// - an error answer leaves a request body unread that is too large or
    ///   slow to drain (`respond::error`), including 413 and 408;
    /// - the auth request body broke off mid-way (`auth_endpoint::serve`);
    /// - proxying failed (`failure::answer`: Pingora closes it);
    /// - the client said `Connection: close`, or HTTP/1.0 without keep-alive (Pingora).
    pub(crate) fn early_request(&self, session: &mut Session, ctx: &mut RequestCtx) {
        // Without this, an idle client connection is kept forever.
        if crate::shutdown::leaving() {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(self.keepalive_seconds));
        }
        ctx.request_id = request_id::RequestId::from_client(
            session
                .req_header()
                .headers
                .get("x-request-id")
                .map(|v| v.as_bytes()),
        );
        ctx.client_ip = headers::client_ip(session, &self.edge.trusted_proxies);
    }

    /// The edge, the auth endpoints, routing and the token check: true when the
    /// request was answered here, false when it goes to `ctx.route`'s upstream.
    pub(crate) async fn filter_request(&self, session: &mut Session, ctx: &mut RequestCtx) -> bool {
        // Every later decision, and the upstream, sees the request as the edge leaves it.
        let host = match self.edge.inspect(session.req_header()) {
            Ok(inspection) => match headers::apply(session, inspection) {
                Ok(host) => host,
                Err(e) => {
                    respond::error(session, ctx, &e).await;
                    return true;
                }
            },
            Err(why) => {
                respond::error(session, ctx, &ErrorReply::Refused(why)).await;
                return true;
            }
        };

        let preflight = match self.cors_verdict(session.req_header(), ctx) {
            Ok(preflight) => preflight,
            Err(why) => {
                ctx.cors = cors::CorsHeaders::Vary;
                refuse_cors(session, ctx, why).await;
                return true;
            }
        };

        let path = session.req_header().uri.path();
        if path.starts_with(browser_pages::RESERVED_PREFIX) {
            browser_pages::reserved(session, ctx, self.browser.as_deref()).await;
            return true;
        }
        if let Some(endpoint) = Endpoint::for_path(path) {
            ctx.endpoint = Some(endpoint);
            if let Some(origin) = &preflight {
                self.answer_preflight(session, ctx, origin, Some(endpoint.allow()))
                    .await;
                return true;
            }
            let limits = auth_endpoint::BodyLimits {
                max_bytes: self.max_auth_body,
                deadline: self.auth_body_timeout,
            };
            match self.browser.as_deref() {
                Some(browser) => {
                    browser_flow::serve_endpoint(&self.api, browser, limits, endpoint, session, ctx)
                        .await
                }
                None => auth_endpoint::serve(&self.api, limits, endpoint, session, ctx, None).await,
            }
            return true;
        }

        let Some(route) = self.routes.find(host.as_deref(), path) else {
            respond::error(session, ctx, &ErrorReply::NoRoute).await;
            return true;
        };
        ctx.route = Some(route.clone());
        // Before admission: a preflight carries no credentials, and is never forwarded.
        if let Some(origin) = &preflight {
            self.answer_preflight(session, ctx, origin, route.allow())
                .await;
            return true;
        }

        // A browser's WebSocket brings its token in the query: taken out of
        // the target here, so no upstream and no later phase sees it.
        let upgrade = websocket::is_upgrade(session.req_header());
        let mut query_authorization = None;
        if upgrade {
            let req = session.req_header();
            match websocket::query_token(req.uri.path(), req.uri.query(), &req.headers) {
                Ok(None) => {}
                Ok(Some(found)) => {
                    let Ok(uri) = found.target.parse::<http::Uri>() else {
                        respond::error(session, ctx, &ErrorReply::MalformedRequest).await;
                        return true;
                    };
                    session.req_header_mut().set_uri(uri);
                    query_authorization = Some(found.authorization);
                }
                Err(why) => {
                    respond::error(session, ctx, &ErrorReply::Refused(why)).await;
                    return true;
                }
            }
        }
        // Browser mode: the session cookie counts where no token was sent,
        // and never reaches the upstream.
        let mut by_cookie = None;
        if let Some(browser) = self.browser.as_deref() {
            let token_sent = query_authorization.is_some()
                || session
                    .req_header()
                    .headers
                    .contains_key(http::header::AUTHORIZATION);
            let route_auth = (route.auth, token_sent, upgrade);
            match browser_flow::route_caller(&self.api, browser, route_auth, session, ctx).await {
                Ok(id) => by_cookie = id,
                Err(()) => return true,
            }
        }
        let authorization = match &query_authorization {
            Some(a) => Some(a.as_bytes()),
            None => session
                .req_header()
                .headers
                .get(http::header::AUTHORIZATION)
                .map(|h| h.as_bytes()),
        };
        let admitted = match by_cookie {
            Some(id) => Ok(Some(id)),
            None => admission::admit(route.auth, authorization, |t| self.access().verify(t)),
        };
        let identity = match admitted {
            Ok(identity) => identity,
            Err(why) => {
                if why == crate::auth::access::TokenRejection::Missing {
                    if let Some(browser) = self.browser.as_deref() {
                        if browser_flow::redirect_to_login(session, ctx, browser).await {
                            return true;
                        }
                    }
                }
                ctx.rejection = Some(why);
                respond::error(session, ctx, &ErrorReply::InvalidToken(why)).await;
                return true;
            }
        };
        // Cross-site WebSocket hijacking: a page of another site opening a
        // socket with the user's credentials.
        if upgrade
            && !websocket::origin_allowed(&session.req_header().headers, &route.websocket_origins)
        {
            METRICS
                .websocket_refusals
                .with_label_values(&["origin_not_allowed"])
                .inc();
            respond::error(session, ctx, &ErrorReply::OriginNotAllowed).await;
            return true;
        }
        if upgrade {
            let user = identity.as_ref().map(|id| id.user);
            match self.websocket_caps.acquire(user, ctx.client_ip) {
                Ok(slot) => ctx.websocket_slot = slot,
                Err(cap) => {
                    METRICS
                        .websocket_refusals
                        .with_label_values(&[cap.label()])
                        .inc();
                    respond::error(session, ctx, &ErrorReply::TooManyWebSockets).await;
                    return true;
                }
            }
        }
        ctx.deadline = grpc_timeout::deadline(session.req_header(), ctx.started);
        let refusal =
            admission::route_rules(route, identity.as_ref(), &session.req_header().method);
        ctx.upgrade = upgrade;
        ctx.grpc = respond::is_grpc(session.req_header());
        ctx.stream_limit = route.max_stream;
        ctx.idle_limit = route.websocket_idle.filter(|_| upgrade);
        if let Some(id) = identity {
            ctx.stream_identity = Some(id.clone());
            ctx.user = Some(id.user);
            ctx.roles = id.roles;
        }
        let reply = match refusal {
            Ok(()) => return false,
            Err(admission::RouteRefusal::Role) => {
                METRICS
                    .role_refusals
                    .with_label_values(&[route.label.as_str()])
                    .inc();
                ErrorReply::Forbidden
            }
            Err(admission::RouteRefusal::Method(allow)) => ErrorReply::MethodNotAllowed {
                allow: allow.to_owned().into(),
            },
        };
        respond::error(session, ctx, &reply).await;
        true
    }

    /// CORS's say on the request (`ctx.cors` set for its answer): the origin
    /// of a preflight to answer here, or a refusal.
    fn cors_verdict(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
    ) -> std::result::Result<Option<String>, cors::CorsRefusal> {
        let Some(rules) = &self.cors else {
            return Ok(None);
        };
        match rules.inspect(req) {
            cors::Verdict::Pass(headers) => {
                ctx.cors = headers;
                Ok(None)
            }
            cors::Verdict::Preflight(origin) => Ok(Some(origin)),
            cors::Verdict::Refuse(why) => Err(why),
        }
    }

    /// 204 with the allow headers, or 403 without `Access-Control-Allow-Origin`.
    async fn answer_preflight(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        origin: &str,
        methods: Option<&str>,
    ) {
        let Some(rules) = &self.cors else { return };
        match rules.preflight(origin, &session.req_header().headers, methods) {
            Ok(answer) => {
                // The answer carries its own CORS headers, none to replace.
                ctx.cors = cors::CorsHeaders::Off;
                respond::empty(session, ctx, http::StatusCode::NO_CONTENT, &answer).await;
            }
            Err(why) => {
                ctx.cors = cors::CorsHeaders::Vary;
                refuse_cors(session, ctx, why).await;
            }
        }
    }

    /// The peer for this try of the chosen route.
    pub(crate) fn upstream_peer(&self, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let route = ctx.route.clone().ok_or_else(|| {
            Error::explain(pingora_error::ErrorType::InternalError, "no route chosen")
        })?;
        let mut peer = route.cluster.select_peer(ctx.failed_peer)?;
        if let Some(deadline) = ctx.deadline {
            // No wait for the upstream outlasts the client's deadline; one
            // already past times out at once (504, DEADLINE_EXCEEDED).
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            for t in [
                &mut peer.options.read_timeout,
                &mut peer.options.write_timeout,
            ] {
                *t = Some(t.map_or(left, |t| t.min(left)));
            }
        }
        // Kept as an address and formatted only if logged: this runs on every request.
        ctx.peer = peer.address().as_inet().copied();
        Ok(peer)
    }

    /// A failed connect: nothing of the request was sent, so it goes once more,
    /// to another peer, whatever its method (`retry.rs`); a peer that refused or
    /// reset is ejected at once (`ejection.rs`).
    pub(crate) fn connect_failed(&self, ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
        let peers = ctx.route.as_ref().map_or(0, |r| r.cluster.peer_count());
        if retry::ejects(&e) {
            if let (Some(route), Some(peer)) = (&ctx.route, ctx.peer) {
                route.cluster.eject(peer);
            }
        }
        let reason = retry::after_connect_failure(ctx.retries, peers);
        self.retry_if(ctx, &mut e, reason);
        e
    }

    /// A failure on an established or reused upstream connection: tried again
    /// on another peer only where that is harmless (`retry::after_proxy_failure`);
    /// every other failure is final, whatever Pingora had marked on it.
    pub(crate) fn proxy_failed(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        peer: &HttpPeer,
        e: Box<Error>,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let attempt = retry::Attempt {
            retries: ctx.retries,
            idempotent: session.req_header().method.is_idempotent(),
            // Even a 1xx: the client would see a second one.
            response_begun: session.response_written().is_some(),
            body_lost: session.as_ref().retry_buffer_truncated(),
        };
        let reason = retry::after_proxy_failure(&e, &attempt);
        self.retry_if(ctx, &mut e, reason);
        e
    }

    fn retry_if(&self, ctx: &mut RequestCtx, e: &mut Error, reason: Option<retry::Reason>) {
        match reason {
            Some(reason) => {
                ctx.retries += 1;
                ctx.failed_peer = ctx.peer.take();
                METRICS
                    .upstream_retries
                    .with_label_values(&[reason.label()])
                    .inc();
                e.set_retry(true);
            }
            None => e.set_retry(false),
        }
    }

    /// The upstream's copy of the response header, before it goes to the client.
    pub(crate) fn filter_response(
        &self,
        upstream_response: &mut pingora_http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        streams::answered(ctx, upstream_response, self.access().revocations());
        upstream_response.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        if let Some(browser) = &self.browser {
            browser_flow::own_set_cookie(upstream_response, browser, ctx)?;
        }
        cors::apply(upstream_response, &ctx.cors)
    }

    /// Pingora's own error lines end with this summary; its default carries the
    /// query string and the Host header, either of which may hold a secret.
    pub(crate) fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        let req = session.req_header();
        format!(
            "{} {} (request {})",
            req.method,
            req.uri.path(),
            ctx.request_id
        )
    }

    /// Clients hanging up are routine, not errors worth a log line each.
    pub(crate) fn suppress_error_log(&self, error: &Error) -> bool {
        matches!(error.esource(), pingora_error::ErrorSource::Downstream)
    }

    /// Metrics and the access-log line, once per request however it ended.
    pub(crate) fn log_request(&self, session: &Session, ctx: &RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        ctx.metrics().record(status, elapsed);
        if ctx.endpoint.is_none() {
            if let Some(r) = ctx.rejection {
                METRICS
                    .token_rejections
                    .with_label_values(&[r.as_str()])
                    .inc();
            }
        }
        if self.access_log {
            access_log::write(session, ctx, ctx.route_label(), status, elapsed);
        }
    }
}

async fn refuse_cors(session: &mut Session, ctx: &RequestCtx, why: cors::CorsRefusal) {
    METRICS
        .cors_refusals
        .with_label_values(&[why.label()])
        .inc();
    respond::error(session, ctx, &ErrorReply::Cors(why)).await;
}

/// The gateway as pingora-proxy's application: each phase delegates to a
/// `Gateway` method, or for the upstream request and failure answers to
/// `headers` and `failure`; the fast path (`h1/fast_path.rs`) calls the same ones
/// for plain body-less requests.
pub(crate) struct Proxy(pub(crate) Arc<Gateway>);

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    // Pingora's default adds a response-compression module at level 0: it changes
    // nothing but still runs its filters on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.0.early_request(session, ctx);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        Ok(self.0.filter_request(session, ctx).await)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        self.0.upstream_peer(ctx)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        self.0.connect_failed(ctx, e)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        _client_reused: bool,
    ) -> Box<Error> {
        self.0.proxy_failed(session, ctx, peer, e)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        headers::prepare_upstream_request(session, upstream_request, ctx, &self.0.edge)
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        streams::connected(ctx, fd)
    }

    fn response_end_signal(&self, ctx: &RequestCtx) -> Option<Arc<tokio::sync::Notify>> {
        streams::end_signal(ctx)
    }

    fn response_end_task(&self, ctx: &mut RequestCtx) -> pingora_core::protocols::http::HttpTask {
        streams::end_task(ctx)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        streams::touched(ctx, body);
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        streams::body(ctx, body, end_of_stream);
        Ok(None)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut pingora_http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.0.filter_response(upstream_response, ctx)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        failure::answer(session, e, ctx).await
    }

    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        self.0.request_summary(session, ctx)
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        self.0.suppress_error_log(error)
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        self.0.log_request(session, ctx);
    }
}

#[cfg(test)]
mod hook_table_tests {
    //! The hook table at the top of this file, checked against the code.
    mod tests {
        use std::collections::BTreeSet;

        const THIS: &str = include_str!("mod.rs");
        const FAST_PATH: &str = include_str!("h1/fast_path.rs");
        const TRAIT: &str = include_str!("../../vendor/pingora-proxy/src/proxy_trait.rs");

        /// The first backticked word of `cell`, without a path.
        fn name(cell: &str) -> Option<&str> {
            let word = cell.split('`').nth(1)?;
            Some(word.rsplit("::").next().unwrap_or(word))
        }

        /// (hook, method, fast path cell, method as written) for each row.
        fn rows() -> Vec<(String, Option<String>, String, Option<String>)> {
            THIS.lines()
                .take_while(|l| l.starts_with("//!"))
                .filter(|l| l.starts_with("//! | `"))
                .map(|l| {
                    let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                    (
                        name(cells[1]).unwrap().to_owned(),
                        name(cells[2]).map(str::to_owned),
                        cells[3].to_owned(),
                        cells[2].split('`').nth(1).map(str::to_owned),
                    )
                })
                .collect()
        }

        /// The hooks left to Pingora's default, as the doc lists them.
        fn defaults() -> BTreeSet<String> {
            let doc: String = THIS
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .collect::<Vec<_>>()
                .join(" ");
            let list = doc
                .split("Left to Pingora's default")
                .nth(1)
                .and_then(|rest| rest.split("The rule").next())
                .unwrap();
            let list = list.split("):").nth(1).unwrap();
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        }

        /// The `fn` names of the block that starts with `header`, up to
        /// its closing brace at the start of a line.
        fn fns_of(text: &str, header: &str) -> BTreeSet<String> {
            let body = text.split(header).nth(1).unwrap();
            let body = body.split("\n}").next().unwrap();
            body.lines()
                .filter_map(|l| {
                    let l = l.trim_start();
                    let l = l.strip_prefix("async ").unwrap_or(l);
                    let rest = l.strip_prefix("fn ")?;
                    Some(rest.split(['(', '<']).next()?.to_owned())
                })
                .collect()
        }

        #[test]
        fn every_hook_has_a_row_and_the_fast_path_calls_what_it_needs() {
            let rows = rows();
            let in_table: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
            let implemented = fns_of(THIS, "impl ProxyHttp for Proxy {");
            assert_eq!(
                implemented, in_table,
                "implemented hooks vs the table's rows"
            );
            let impl_body = THIS.split("impl ProxyHttp for Proxy {").nth(1).unwrap();
            for (hook, method, fast, written) in &rows {
                if let Some(m) = method {
                    assert!(
                        impl_body.contains(&format!("{m}(")),
                        "{hook} does not call {m}"
                    );
                }
                match fast.as_str() {
                    "yes" => {
                        let m = method.as_ref().unwrap();
                        assert!(
                            FAST_PATH.contains(&format!("{m}(")),
                            "the table says the fast path calls {m} ({hook}); it does not"
                        );
                    }
                    no => {
                        assert!(
                            no.starts_with("no: ") && no.len() > 20,
                            "{hook}: a row the fast path does not call says why: {no:?}"
                        );
                        if let (Some(w), Some(m)) = (written, method) {
                            assert!(
                                !FAST_PATH.contains(&format!("{w}("))
                                    && !FAST_PATH.contains(&format!(".{m}(")),
                                "{hook}: the fast path calls {w}, so its row says yes"
                            );
                        }
                    }
                }
            }
        }

        #[test]
        fn every_hook_of_pingora_proxy_is_a_row_or_left_to_its_default() {
            let all = fns_of(TRAIT, "pub trait ProxyHttp {");
            let rows: BTreeSet<String> = rows().into_iter().map(|r| r.0).collect();
            let defaults = defaults();
            assert!(
                rows.is_disjoint(&defaults),
                "{:?}",
                rows.intersection(&defaults)
            );
            let decided: BTreeSet<String> = rows.union(&defaults).cloned().collect();
            assert_eq!(
                all, decided,
                "pingora-proxy's hooks vs those decided here (a new hook needs a row or a place in the defaults)"
            );
        }
    }
}
