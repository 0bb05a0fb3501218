//! Serving an auth endpoint inside the proxy: method check, capped body, handler, JSON answer.

use super::body::read_capped;
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint, Request};
use crate::error::ApiError;
use crate::metrics::METRICS;
use pingora_proxy::Session;
use std::time::Duration;

/// A client gets this long to send an auth request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// After refusing an oversized body, read (and drop) a little more of it before the
/// connection closes: closing a socket with unread data sends a reset, which can
/// destroy the 413 before the client reads it (what nginx calls lingering close).
async fn linger(session: &mut Session) {
    const LINGER_BYTES: usize = 1024 * 1024;
    const LINGER_TIME: Duration = Duration::from_secs(1);
    let drain = async {
        let mut seen = 0;
        while seen < LINGER_BYTES {
            match session.read_request_body().await {
                Ok(Some(chunk)) => seen += chunk.len(),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Answer one auth request completely.
pub async fn serve(
    api: &AuthApi,
    max_body: usize,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
) {
    let method = session.req_header().method.clone();
    if !endpoint.accepts(&method) {
        let err = ApiError::MethodNotAllowed {
            allow: endpoint.allow(),
        };
        METRICS
            .auth
            .with_label_values(&[endpoint.name(), err.code()])
            .inc();
        respond::error(session, ctx, &err).await;
        return;
    }
    let body = if endpoint.reads_body(&method) {
        session.set_read_timeout(Some(BODY_READ_TIMEOUT));
        match read_capped(session, max_body).await {
            Ok(b) => b,
            Err(e) => {
                match e.into_api() {
                    Some(err) => {
                        METRICS
                            .auth
                            .with_label_values(&[endpoint.name(), err.code()])
                            .inc();
                        respond::error(session, ctx, &err).await;
                        linger(session).await;
                    }
                    None => session.set_keepalive(None),
                }
                return;
            }
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
    let result = api.handle(endpoint, req).await;
    let outcome = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
    METRICS
        .auth
        .with_label_values(&[endpoint.name(), outcome])
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
