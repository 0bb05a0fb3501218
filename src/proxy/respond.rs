//! Writing the gateway's own answers: JSON (always Content-Length, never cached, request id echoed), or a gRPC status to a gRPC request.

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
    complete(session, ctx, status, "application/json", bytes, extra).await;
}

/// Write a complete response of `content_type` (the login page, its stylesheet).
pub(super) async fn complete(
    session: &mut Session,
    ctx: &RequestCtx,
    status: StatusCode,
    content_type: &'static str,
    bytes: Bytes,
    extra: &[(&'static str, String)],
) {
    let header = match build_header(status, content_type, bytes.len(), ctx, extra) {
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

/// A redirect to `location`, with an empty body.
pub(super) async fn redirect(
    session: &mut Session,
    ctx: &RequestCtx,
    status: StatusCode,
    location: String,
) {
    let extra = [("Location", location)];
    let kind = "text/plain; charset=utf-8";
    complete(session, ctx, status, kind, Bytes::new(), &extra).await;
}

/// A complete answer with no body (204), with `extra` headers.
pub(super) async fn empty(
    session: &mut Session,
    ctx: &RequestCtx,
    status: StatusCode,
    extra: &[(&'static str, String)],
) {
    let header = match build_header(status, "application/json", 0, ctx, extra) {
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
    content_type: &'static str,
    len: usize,
    ctx: &RequestCtx,
    extra: &[(&'static str, String)],
) -> pingora_error::Result<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(4 + extra.len()))?;
    h.insert_header("Content-Type", content_type)?;
    h.insert_header("Content-Length", len.to_string())?;
    // Bodies carry tokens and personal data: no shared or browser cache may keep them.
    h.insert_header("Cache-Control", "no-store")?;
    if !ctx.request_id.is_empty() {
        h.insert_header("X-Request-Id", ctx.request_id.as_str())?;
    }
    super::cors::apply(&mut h, &ctx.cors)?;
    if let Some(cookie) = &ctx.set_cookie {
        h.append_header("Set-Cookie", cookie.as_str())?;
    }
    for (k, v) in extra {
        h.insert_header(*k, v.as_str())?;
    }
    Ok(h)
}

/// Largest unread request body drained to keep a connection open after a refusal.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long a client gets to send that body.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answer with the JSON form of `err` (its gRPC form to a gRPC request); its
/// cause, if any, is logged here and only here.
pub(super) async fn error(session: &mut Session, ctx: &RequestCtx, err: &ErrorReply) {
    err.record(ctx.request_id.as_str());
    if is_grpc(session.req_header()) {
        if !session.downstream_session.is_http2() {
            // Not a gRPC transport: nothing of the body is read, so close.
            session.set_keepalive(None);
        }
        grpc(session, ctx, err).await;
        return;
    }
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

/// Whether the request is gRPC (`application/grpc`, `application/grpc+proto`...):
/// its client reads only a gRPC status, never a JSON body.
pub(super) fn is_grpc(req: &pingora_http::RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..16))
        .is_some_and(|t| t.eq_ignore_ascii_case("application/grpc"))
}

/// A trailers-only gRPC answer: HTTP 200 whose one HEADERS frame carries
/// `grpc-status` and `grpc-message`, and ends the stream.
async fn grpc(session: &mut Session, ctx: &RequestCtx, err: &ErrorReply) {
    let h2 = session.downstream_session.is_http2();
    let header = match grpc_header(err, ctx, h2) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot build response header: {e}");
            return;
        }
    };
    // `Session::write_response_header` never sets END_STREAM on an HTTP/2
    // HEADERS frame (an empty DATA frame ends the stream later), and a gRPC
    // client takes such headers for the leading ones, not for trailers-only.
    let task = pingora_core::protocols::http::HttpTask::Header(Box::new(header), true);
    if let Err(e) = session
        .downstream_session
        .response_duplex_vec(vec![task])
        .await
    {
        log::debug!("client gone before the response header: {e}");
    }
}

fn grpc_header(
    err: &ErrorReply,
    ctx: &RequestCtx,
    h2: bool,
) -> pingora_error::Result<ResponseHeader> {
    let mut h = ResponseHeader::build(StatusCode::OK, Some(5))?;
    if !h2 {
        h.insert_header("Content-Length", "0")?;
    }
    h.insert_header("Content-Type", "application/grpc")?;
    h.insert_header("grpc-status", err.grpc_code().to_string())?;
    h.insert_header("grpc-message", grpc_message(&err.to_string()))?;
    if !ctx.request_id.is_empty() {
        h.insert_header("X-Request-Id", ctx.request_id.as_str())?;
    }
    if let Some(cookie) = &ctx.set_cookie {
        h.append_header("Set-Cookie", cookie.as_str())?;
    }
    Ok(h)
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%`.
fn grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(
            grpc_message("no route for this path"),
            "no route for this path"
        );
        assert_eq!(grpc_message("50% \u{e9}\n"), "50%25 %C3%A9%0A");
    }

    #[test]
    fn grpc_requests_are_known_by_their_content_type() {
        let req = |ct: Option<&str>| {
            let mut r = pingora_http::RequestHeader::build("POST", b"/a.B/C", None).unwrap();
            if let Some(ct) = ct {
                r.insert_header("content-type", ct).unwrap();
            }
            r
        };
        for grpc in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC",
        ] {
            assert!(is_grpc(&req(Some(grpc))), "{grpc}");
        }
        for not in [None, Some("application/json"), Some("application/gr")] {
            assert!(!is_grpc(&req(not)), "{not:?}");
        }
    }
}
