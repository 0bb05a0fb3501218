//! Revocation and time limits reaching open WebSockets: register an upgraded stream with the identity it was opened with, and end it with close code 1008 once a revocation cuts it (`auth::open_streams`) or its route's `max_stream_seconds` runs out.
//!
//! The upstream socket's fd is duplicated when the upstream connection is
//! made (only for upgrade requests); the stream is registered when the
//! upstream answers 101, which only an HTTP/1 upstream connection can, so a
//! shared h2 connection is never registered, let alone shut down.

use super::RequestCtx;
use crate::auth::open_streams::{EndReason, StreamCut};
use crate::auth::revocations::Revocations;
use crate::metrics::METRICS;
use bytes::Bytes;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// Close code 1008, "policy violation" (RFC 6455 §7.4.1).
const POLICY_VIOLATION: [u8; 2] = 1008u16.to_be_bytes();
const REVOKED: &[u8] = b"session revoked";
const TOO_LONG: &[u8] = b"stream time limit";

/// A server-to-client close frame (unmasked, FIN, opcode 8) with code 1008
/// and the reason the gateway ended the stream.
fn close_frame(why: EndReason) -> Bytes {
    let reason = match why {
        EndReason::Revoked => REVOKED,
        EndReason::MaxDuration => TOO_LONG,
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
        if weak
            .upgrade()
            .is_some_and(|c| c.end(EndReason::MaxDuration))
        {
            METRICS
                .streams_closed
                .with_label_values(&["max_stream_seconds"])
                .inc();
        }
    });
}

/// `ErrorType::Custom` marker of an upgrade refused because its upstream
/// socket could not be duplicated (`failure::classify` answers 503 `busy`).
pub(super) const UNGUARDED_STREAM: &str = "UnguardedStream";

/// At connect: keep our own duplicate of the upstream socket for a
/// WebSocket opened with a token. Only a duplicate: pingora keeps its fd.
///
/// Without the duplicate a revocation could not end the stream, so the
/// upgrade is refused before the request goes up (fail closed): out of file
/// descriptors, a client retries later rather than holding a session open
/// that logout cannot reach.
pub(super) fn connected(ctx: &mut RequestCtx, fd: RawFd) -> pingora_error::Result<()> {
    if ctx.stream_identity.is_none() && ctx.stream_limit.is_none() {
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

/// At the upstream's answer: a 101 makes the stream open, so register it.
/// A revocation learnt between the token check and now ends it at once.
pub(super) fn answered(ctx: &mut RequestCtx, status: u16, revocations: &Revocations) {
    if status != 101 {
        ctx.upstream_fd = None;
        return;
    }
    let Some(fd) = ctx.upstream_fd.take() else {
        return;
    };
    let cut = StreamCut::new(fd);
    if let Some(limit) = ctx.stream_limit {
        limit_lifetime(&cut, limit);
    }
    // A stream opened without a token (a public route) has no session to revoke.
    let registration = ctx.stream_identity.clone().map(|identity| {
        let revoked = revocations.is_revoked(&identity);
        let registration = revocations.streams().register(identity, cut.clone());
        if revoked {
            revocations.streams().cut_now(&cut);
        }
        registration
    });
    ctx.stream = Some((cut, registration));
}

/// On each chunk from the upstream: once the revoked stream's upstream has
/// ended, the client gets the close frame.
pub(super) fn body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
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
