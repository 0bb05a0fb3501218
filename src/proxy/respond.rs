//! Writing the gateway's own JSON answers: always Content-Length, never cached, request id echoed.

use super::RequestCtx;
use crate::error::ErrorReply;
use bytes::Bytes;
use http::StatusCode;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Write `body` as a complete JSON response. Write failures mean the client is gone; they are logged at debug.
pub(super) async fn json(
    session: &mut Session,
    ctx: &RequestCtx,
    status: StatusCode,
    body: &serde_json::Value,
    extra: &[(&'static str, String)],
) {
    let bytes = Bytes::from(body.to_string());
    let header = match build_header(status, bytes.len(), ctx, extra) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot build response header: {e}");
            return;
        }
    };
    if let Err(e) = session.write_response_header(Box::new(header), false).await {
        log::debug!("client gone before the response header: {e}");
        return;
    }
    if let Err(e) = session.write_response_body(Some(bytes), true).await {
        log::debug!("client gone before the response body: {e}");
    }
}

/// A complete answer with no body (204), with `extra` headers.
pub(super) async fn empty(
    session: &mut Session,
    ctx: &RequestCtx,
    status: StatusCode,
    extra: &[(&'static str, String)],
) {
    let header = match build_header(status, 0, ctx, extra) {
        Ok(mut h) => {
            // 204 carries neither a body nor its type or length.
            h.remove_header("Content-Type");
            h.remove_header("Content-Length");
            h
        }
        Err(e) => {
            log::error!("cannot build response header: {e}");
            return;
        }
    };
    if let Err(e) = session.write_response_header(Box::new(header), true).await {
        log::debug!("client gone before the response header: {e}");
    }
}

fn build_header(
    status: StatusCode,
    len: usize,
    ctx: &RequestCtx,
    extra: &[(&'static str, String)],
) -> pingora_error::Result<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(4 + extra.len()))?;
    h.insert_header("Content-Type", "application/json")?;
    h.insert_header("Content-Length", len.to_string())?;
    // Bodies carry tokens and personal data: no shared or browser cache may keep them.
    h.insert_header("Cache-Control", "no-store")?;
    if !ctx.request_id.is_empty() {
        h.insert_header("X-Request-Id", ctx.request_id.as_str())?;
    }
    super::cors::apply(&mut h, &ctx.cors)?;
    for (k, v) in extra {
        h.insert_header(*k, v.as_str())?;
    }
    Ok(h)
}

/// Largest unread request body drained to keep a connection open after a refusal.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long a client gets to send that body.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answer with the JSON form of `err`; its cause, if any, is logged here and only here.
pub(super) async fn error(session: &mut Session, ctx: &RequestCtx, err: &ErrorReply) {
    err.record(ctx.request_id.as_str());
    if session.downstream_session.is_http2() {
        // The answer ends only its own stream: an unread body is reset with
        // it (RST_STREAM) when the session ends, the connection and its other
        // streams go on. Nothing to drain for reuse or linger for, and a
        // refusal must not wait for DATA (auth is decided on HEADERS alone).
        json(session, ctx, err.status(), &err.body(), &err.headers()).await;
        return;
    }
    let reuse = !err.closes_connection() && drain_small_body(session).await;
    if !reuse {
        // Draining an unread body of unknown or large size to reuse the
        // connection would let a client make us read gigabytes: close instead.
        session.set_keepalive(None);
    }
    json(session, ctx, err.status(), &err.body(), &err.headers()).await;
    if !reuse && !session.is_body_done() {
        linger(session).await;
    }
}

/// Before closing on an unread body, read (and drop) a little more of it:
/// closing a socket with unread data sends a reset, which can destroy the
/// answer before the client reads it (what nginx calls lingering close).
async fn linger(session: &mut Session) {
    const LINGER_BYTES: usize = 1024 * 1024;
    const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(1);
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

/// Read and drop a small unread request body, so the connection can serve the next request.
/// False when the body is large, of unknown length, or does not arrive in time.
async fn drain_small_body(session: &mut Session) -> bool {
    if session.is_body_done() {
        return true;
    }
    let small = super::body::declared_length(session).is_some_and(|n| n <= DRAIN_LIMIT);
    small
        && tokio::time::timeout(DRAIN_TIMEOUT, session.drain_request_body())
            .await
            .is_ok_and(|r| r.is_ok())
}
