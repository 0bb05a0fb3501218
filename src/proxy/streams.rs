//! Revocation and time limits reaching open streams: register a WebSocket, a streamed response or a gRPC call with the identity it was opened with, and end it once a revocation cuts it (`auth::open_streams`) or its route's `max_stream_seconds` runs out.
//!
//! A WebSocket ends with close code 1008. The upstream socket's fd is
//! duplicated when the upstream connection is made (only for upgrade
//! requests); the stream is registered when the upstream answers 101, which
//! only an HTTP/1 upstream connection can, so a shared h2 connection is never
//! registered, let alone shut down.
//!
//! A response without a Content-Length (Server-Sent Events, any chunked or
//! close-delimited body) and every gRPC response is registered with a signal
//! that its body loop waits on: it then ends cleanly (the chunked terminator,
//! or END_STREAM), a gRPC call with `grpc-status` 16 UNAUTHENTICATED (revoked),
//! 7 PERMISSION_DENIED (a role change took away a role it was opened with) or
//! 4 DEADLINE_EXCEEDED (time limit) in its trailers. A response with a
//! Content-Length is a download of known size and is left to finish.

use super::RequestCtx;
use crate::auth::open_streams::{EndReason, StreamCut};
use crate::auth::revocations::Revocations;
use bytes::Bytes;
use pingora_core::protocols::http::HttpTask;
use pingora_http::ResponseHeader;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Close code 1008, "policy violation" (RFC 6455 §7.4.1).
const POLICY_VIOLATION: [u8; 2] = 1008u16.to_be_bytes();
const REVOKED: &[u8] = b"session revoked";
const TOO_LONG: &[u8] = b"stream time limit";
const IDLE: &[u8] = b"idle timeout";
const FORBIDDEN: &[u8] = b"roles changed";

/// A server-to-client close frame (unmasked, FIN, opcode 8) with code 1008
/// and the reason the gateway ended the stream.
fn close_frame(why: EndReason) -> Bytes {
    let reason = match why {
        EndReason::Revoked => REVOKED,
        EndReason::MaxDuration => TOO_LONG,
        EndReason::Idle => IDLE,
        EndReason::Forbidden => FORBIDDEN,
    };
    let mut f = Vec::with_capacity(4 + reason.len());
    // Payload under 126 bytes: the length fits the second byte.
    f.extend_from_slice(&[0x88, (2 + reason.len()) as u8]);
    f.extend_from_slice(&POLICY_VIOLATION);
    f.extend_from_slice(reason);
    Bytes::from(f)
}

/// End `cut` once `limit` has passed (`max_stream_seconds`), unless the
/// stream is over by then. The task holds only a weak handle: a stream that
/// ends earlier is dropped, with its socket, at once.
fn limit_lifetime(cut: &Arc<StreamCut>, limit: Duration) {
    let weak = Arc::downgrade(cut);
    tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        if let Some(cut) = weak.upgrade() {
            cut.end(EndReason::MaxDuration, "max_stream_seconds");
        }
    });
}

/// When an open WebSocket last carried a frame either way.
pub(crate) struct Activity {
    since: tokio::time::Instant,
    /// Milliseconds from `since` to the last chunk.
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> tokio::time::Instant {
        self.since + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// End `cut` once it has carried nothing either way for `limit`
/// (`websocket_idle_seconds`). One timer per socket, re-armed from the last
/// activity rather than reset on every frame, so a busy socket costs a
/// store per chunk and a wake-up per `limit`.
fn limit_idleness(cut: &Arc<StreamCut>, limit: Duration) -> Arc<Activity> {
    let activity = Arc::new(Activity {
        since: tokio::time::Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let (weak, seen) = (Arc::downgrade(cut), activity.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep_until(seen.last() + limit).await;
            let Some(cut) = weak.upgrade() else { return };
            if cut.ended().is_some() {
                return;
            }
            if seen.last() + limit <= tokio::time::Instant::now() {
                cut.end(EndReason::Idle, "websocket_idle_seconds");
                return;
            }
        }
    });
    activity
}

/// A chunk crossed an open WebSocket, one way or the other.
pub(super) fn touched(ctx: &RequestCtx, body: &Option<Bytes>) {
    if let (Some(activity), Some(b)) = (&ctx.activity, body) {
        if !b.is_empty() {
            activity.touch();
        }
    }
}

/// `ErrorType::Custom` marker of an upgrade refused because its upstream
/// socket could not be duplicated (`failure::classify` answers 503 `busy`).
pub(super) const UNGUARDED_STREAM: &str = "UnguardedStream";

/// `ErrorType::Custom` marker pingora-proxy ends a request with once
/// `response_end_signal` has fired (vendor/pingora-proxy).
pub(super) const RESPONSE_ENDED: &str = "ResponseEnded";

/// At connect: keep our own duplicate of the upstream socket for a
/// WebSocket opened with a token. Only a duplicate: pingora keeps its fd.
///
/// Without the duplicate a revocation could not end the stream, so the
/// upgrade is refused before the request goes up (fail closed): out of file
/// descriptors, a client retries later rather than holding a session open
/// that logout cannot reach.
pub(super) fn connected(ctx: &mut RequestCtx, fd: RawFd) -> pingora_error::Result<()> {
    if !ctx.upgrade
        || (ctx.stream_identity.is_none() && ctx.stream_limit.is_none() && ctx.idle_limit.is_none())
    {
        return Ok(());
    }
    // SAFETY: pingora hands us the fd of the connection it holds open
    // across this call; we only duplicate it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match borrowed.try_clone_to_owned() {
        Ok(own) => {
            ctx.upstream_fd = Some(own);
            Ok(())
        }
        Err(e) => {
            log::warn!(
                "request {}: cannot duplicate the upstream socket of a WebSocket ({e}); refused, as a revocation could not end it",
                ctx.request_id
            );
            Err(pingora_error::Error::explain(
                pingora_error::ErrorType::Custom(UNGUARDED_STREAM),
                "cannot duplicate the upstream socket",
            ))
        }
    }
}

/// At the upstream's answer: a 101 makes the WebSocket open, a streamed
/// response begins a stream; either is registered. A revocation learnt
/// between the token check and now ends it at once.
pub(super) fn answered(ctx: &mut RequestCtx, response: &ResponseHeader, revocations: &Revocations) {
    let status = response.status.as_u16();
    let cut = if status == 101 {
        let Some(fd) = ctx.upstream_fd.take() else {
            return;
        };
        StreamCut::new(fd)
    } else if response.status.is_informational() {
        return;
    } else {
        ctx.upstream_fd = None;
        if ctx.stream.is_some()
            || (ctx.stream_identity.is_none() && ctx.stream_limit.is_none())
            || !is_streamed(response, ctx.grpc)
        {
            return;
        }
        StreamCut::signalled()
    };
    if let Some(limit) = ctx.stream_limit {
        limit_lifetime(&cut, limit);
    }
    if let (true, Some(limit)) = (status == 101, ctx.idle_limit) {
        ctx.activity = Some(limit_idleness(&cut, limit));
    }
    // A stream opened without a token (a public route) has no session to revoke.
    // Registered before the check: a revocation applied meanwhile either
    // finds the stream registered or is already in the set checked here
    // (`Revocations::apply` records it before it scans the streams).
    let registration = ctx.stream_identity.as_ref().map(|identity| {
        let registration = revocations
            .streams()
            .register(identity.clone(), cut.clone());
        if revocations.is_revoked(identity) {
            revocations.streams().cut_now(&cut);
        }
        registration
    });
    ctx.stream = Some((cut, registration));
}

/// Whether a response is a stream that may outlive its session: no
/// Content-Length (chunked, close-delimited, or HTTP/2 without one), or gRPC.
fn is_streamed(response: &ResponseHeader, grpc: bool) -> bool {
    grpc || !response.headers.contains_key(http::header::CONTENT_LENGTH)
        && !matches!(response.status.as_u16(), 204 | 304)
}

/// The signal a streamed response's body loop waits on, once it is registered.
pub(super) fn end_signal(ctx: &RequestCtx) -> Option<Arc<Notify>> {
    ctx.stream
        .as_ref()
        .and_then(|(cut, _)| cut.signal().cloned())
}

/// The last thing the client gets of a stream the gateway ended: gRPC's
/// status in trailers, otherwise the end of the body.
pub(super) fn end_task(ctx: &RequestCtx) -> HttpTask {
    let why = ctx.stream.as_ref().and_then(|(cut, _)| cut.ended());
    let (Some(why), true) = (why, ctx.grpc) else {
        return HttpTask::Done;
    };
    let (status, message) = match why {
        EndReason::Revoked => ("16", "session revoked"),
        EndReason::MaxDuration => ("4", "stream time limit"),
        // Only WebSockets have an idle limit; a gRPC call never gets here.
        EndReason::Idle => ("4", "idle timeout"),
        EndReason::Forbidden => ("7", "roles changed"),
    };
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static(status));
    trailers.insert("grpc-message", http::HeaderValue::from_static(message));
    HttpTask::Trailer(Some(Box::new(trailers)))
}

/// On each chunk from the upstream: once the revoked stream's upstream has
/// ended, the client gets the close frame.
pub(super) fn body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
    touched(ctx, body);
    if !end_of_stream || ctx.close_sent {
        return;
    }
    if let Some(why) = ctx.stream.as_ref().and_then(|(cut, _)| cut.ended()) {
        ctx.close_sent = true;
        // Whatever the upstream had sent last goes first.
        let frame = close_frame(why);
        *body = Some(match body.take() {
            Some(last) if !last.is_empty() => [last, frame].concat().into(),
            _ => frame,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_close_frame_carries_1008() {
        let f = close_frame(EndReason::Revoked);
        assert_eq!(&f[..4], &[0x88, 17, 0x03, 0xF0]);
        assert_eq!(&f[4..], REVOKED);
        let f = close_frame(EndReason::MaxDuration);
        assert_eq!(&f[..4], &[0x88, 19, 0x03, 0xF0]);
    }
}
