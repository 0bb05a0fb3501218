//! Reading an auth request body whole, refusing it early once it passes the cap.

use crate::error::ErrorReply;
use bytes::BytesMut;
use pingora_proxy::Session;

/// Why the body could not be had.
pub(super) enum BodyError {
    /// Over the cap: answer 413 and close.
    TooLarge(usize),
    /// The client went away or stalled; nothing can be answered.
    Broken,
}

impl BodyError {
    /// The answer for this failure, if one can still be sent.
    pub(super) fn into_api(self) -> Option<ErrorReply> {
        match self {
            BodyError::TooLarge(limit) => Some(ErrorReply::BodyTooLarge { limit }),
            BodyError::Broken => None,
        }
    }
}

/// The body length the client declared in Content-Length, if it is a number.
pub(super) fn declared_length(session: &Session) -> Option<u64> {
    session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The whole request body, at most `limit` bytes.
pub(super) async fn read_capped(
    session: &mut Session,
    limit: usize,
) -> Result<BytesMut, BodyError> {
    let declared = declared_length(session);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // Clients that wait for 100 Continue would otherwise stall until their own timeout:
    // Pingora answers it only when proxying.
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue && session.write_continue_response().await.is_err() {
        return Err(BodyError::Broken);
    }
    // Sized from Content-Length only up to the cap (checked above), and no
    // more than a typical body up front: the rest grows as bytes really arrive.
    let initial = declared
        .map_or(1024, |n| n as usize)
        .min(limit)
        .min(16 * 1024);
    let mut buf = BytesMut::with_capacity(initial);
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf),
            Err(e) => {
                log::debug!("reading auth request body failed: {e}");
                return Err(BodyError::Broken);
            }
        }
    }
}
