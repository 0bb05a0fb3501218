//! Writing the gateway's own JSON answers: always Content-Length, never cached, request id echoed.

use super::RequestCtx;
use crate::error::ApiError;
use bytes::Bytes;
use http::StatusCode;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Write `body` as a complete JSON response. Write failures mean the client is gone; they are logged at debug.
pub async fn json(
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
    for (k, v) in extra {
        h.insert_header(*k, v.as_str())?;
    }
    Ok(h)
}

/// Answer with the JSON form of `err`.
pub async fn error(session: &mut Session, ctx: &RequestCtx, err: &ApiError) {
    // A rejected request's unread body would otherwise be drained to reuse the
    // connection, however large; closing is cheaper and safe.
    if err.closes_connection() || !session.is_body_done() {
        session.set_keepalive(None);
    }
    json(session, ctx, err.status(), &err.body(), &err.headers()).await;
}
