//! Serving an auth endpoint inside the proxy: method check, capped body, handler, JSON answer.

use super::body::read_capped;
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint, Reply, Request};
use crate::auth::revocations::Identity;
use crate::error::ErrorReply;
use crate::metrics::METRICS;
use pingora_proxy::Session;
use std::time::Duration;

/// How much of an auth request body the gateway takes, and for how long it waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    /// Largest body accepted.
    pub max_bytes: usize,
    /// Time for the whole body, however it trickles in.
    pub deadline: Duration,
}

/// What serves a request to an auth endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handler {
    /// The endpoint's own handler (the JSON API).
    Endpoint,
    /// The browser's registration form: register, then sign in.
    RegisterAndSignIn,
}

/// Answer one auth request completely, and count its outcome. `cookie_caller`
/// is the caller a browser's session cookie proved, which stands in for a
/// Bearer token.
pub(super) async fn serve(
    api: &AuthApi,
    limits: BodyLimits,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
    cookie_caller: Option<Identity>,
) {
    let handler = Handler::Endpoint;
    let Some((result, _)) = call(
        api,
        limits,
        (endpoint, handler),
        session,
        ctx,
        cookie_caller,
    )
    .await
    else {
        // The client went away or stalled mid-body: nothing to answer.
        session.set_keepalive(None);
        return;
    };
    answer(api, endpoint, session, ctx, result).await;
}

/// Run the endpoint and count its outcome: its result and the body it read
/// (`None`: the body could not be read at all).
pub(super) async fn call(
    api: &AuthApi,
    limits: BodyLimits,
    (endpoint, handler): (Endpoint, Handler),
    session: &mut Session,
    ctx: &RequestCtx,
    cookie_caller: Option<Identity>,
) -> Option<(Result<Reply, ErrorReply>, bytes::BytesMut)> {
    let served = (endpoint, handler);
    let (result, body) =
        outcome(api, limits, served, session, ctx.client_ip, cookie_caller).await?;
    let code = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
    METRICS
        .auth
        .with_label_values(&[endpoint.name(), code])
        .inc();
    Some((result, body))
}

/// The JSON answer for an endpoint's result.
pub(super) async fn answer(
    api: &AuthApi,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
    result: Result<Reply, ErrorReply>,
) {
    match result {
        Ok(reply) if reply.body.is_null() => respond::empty(session, ctx, reply.status, &[]).await,
        Ok(reply) => {
            let cache = api
                .max_age(endpoint)
                .map(|s| ("Cache-Control", format!("public, max-age={s}")));
            respond::json(session, ctx, reply.status, &reply.body, cache.as_slice()).await
        }
        Err(err) => {
            if let ErrorReply::InvalidToken(why) = &err {
                ctx.rejection = Some(*why);
            }
            respond::error(session, ctx, &err).await
        }
    }
}

/// What the endpoint answers, and the body it read; `None` when the body
/// could not be read at all.
async fn outcome(
    api: &AuthApi,
    limits: BodyLimits,
    (endpoint, handler): (Endpoint, Handler),
    session: &mut Session,
    client_ip: Option<std::net::IpAddr>,
    cookie_caller: Option<Identity>,
) -> Option<(Result<Reply, ErrorReply>, bytes::BytesMut)> {
    let method = session.req_header().method.clone();
    if !endpoint.accepts(&method) {
        let allow = endpoint.allow().into();
        return Some((
            Err(ErrorReply::MethodNotAllowed { allow }),
            Default::default(),
        ));
    }
    let body = if endpoint.reads_body(&method) {
        // One deadline for the whole body: a per-read timeout lets a client
        // that sends a byte at a time hold the request open indefinitely.
        match tokio::time::timeout(limits.deadline, read_capped(session, limits.max_bytes)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return e.into_api().map(|e| (Err(e), Default::default())),
            Err(_) => return Some((Err(ErrorReply::RequestTimeout), Default::default())),
        }
    } else {
        Default::default()
    };
    let head = session.req_header();
    // The edge has already refused more than one.
    let authorization = head
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let user_agent = head
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec());
    let path = head.uri.path().to_owned();
    let req = Request {
        method: &method,
        path: &path,
        authorization: authorization.as_deref(),
        cookie_caller,
        body: &body,
        content_type: content_type.as_deref(),
        client_ip,
        user_agent: user_agent.as_deref(),
    };
    let result = match handler {
        Handler::Endpoint => api.handle(endpoint, req).await,
        Handler::RegisterAndSignIn => api.register_and_sign_in(req).await,
    };
    Some((result, body))
}
