//! Serving an auth endpoint inside the proxy: method check, capped body, handler, JSON answer.

use super::body::read_capped;
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint, Reply, Request};
use crate::error::ApiError;
use crate::metrics::METRICS;
use pingora_proxy::Session;
use std::time::Duration;

/// A client gets this long to send an auth request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Answer one auth request completely, and count its outcome.
pub async fn serve(
    api: &AuthApi,
    max_body: usize,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
) {
    let Some(result) = outcome(api, max_body, endpoint, session).await else {
        // The client went away or stalled mid-body: nothing to answer.
        session.set_keepalive(None);
        return;
    };
    let code = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
    METRICS
        .auth
        .with_label_values(&[endpoint.name(), code])
        .inc();
    match result {
        Ok(reply) => respond::json(session, ctx, reply.status, &reply.body, &[]).await,
        Err(err) => {
            if let ApiError::InvalidToken(why) = &err {
                ctx.rejection = Some(*why);
            }
            respond::error(session, ctx, &err).await
        }
    }
}

/// What the endpoint answers; `None` when the body could not be read at all.
async fn outcome(
    api: &AuthApi,
    max_body: usize,
    endpoint: Endpoint,
    session: &mut Session,
) -> Option<Result<Reply, ApiError>> {
    let method = session.req_header().method.clone();
    if !endpoint.accepts(&method) {
        return Some(Err(ApiError::MethodNotAllowed {
            allow: endpoint.allow(),
        }));
    }
    let body = if endpoint.reads_body(&method) {
        session.set_read_timeout(Some(BODY_READ_TIMEOUT));
        match read_capped(session, max_body).await {
            Ok(b) => b,
            Err(e) => return e.into_api().map(Err),
        }
    } else {
        Default::default()
    };
    let authorization = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let req = Request {
        method: &method,
        authorization: authorization.as_deref(),
        body: &body,
    };
    Some(api.handle(endpoint, req).await)
}
