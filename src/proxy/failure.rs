//! Proxy failures turned into JSON answers: 503 no healthy peer, 504 upstream timeout, 502 anything else upstream, 400 a client that broke the protocol.

use super::{respond, RequestCtx};
use crate::error::ErrorReply;
use pingora_error::{Error, ErrorSource, ErrorType};
use pingora_proxy::{FailToProxy, Session};

/// `ErrorType::Custom` marker raised by cluster selection when no peer is healthy.
pub(super) const NO_HEALTHY_PEER: &str = "NoHealthyPeer";

/// The answer for a failed proxy attempt; `None` when the client is gone and nothing can be sent.
pub(super) fn classify(e: &Error) -> Option<ErrorReply> {
    match (e.esource(), e.etype()) {
        (_, ErrorType::Custom(NO_HEALTHY_PEER)) => Some(ErrorReply::NoHealthyUpstream),
        (_, ErrorType::Custom(super::streams::UNGUARDED_STREAM)) => Some(ErrorReply::Busy),
        // The gateway ended a stream itself (revoked, or its time was up): the
        // client has had its last word already.
        (_, ErrorType::Custom(super::streams::RESPONSE_ENDED)) => None,
        // Before the connect kinds below: Pingora reports a client byte sent
        // where no body may come ("Sent data after end of body") as a
        // ConnectError on the downstream side, which is the client's fault,
        // not the upstream's.
        (
            ErrorSource::Downstream,
            ErrorType::ReadError
            | ErrorType::WriteError
            | ErrorType::ConnectionClosed
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout,
        ) => None,
        (ErrorSource::Downstream, _) => Some(ErrorReply::MalformedRequest),
        (
            ErrorSource::Upstream,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
        ) => Some(ErrorReply::UpstreamTimeout),
        (_, ErrorType::ConnectTimedout) => Some(ErrorReply::UpstreamTimeout),
        (ErrorSource::Upstream, _) => Some(ErrorReply::BadGateway),
        (
            _,
            ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::TLSHandshakeFailure,
        ) => Some(ErrorReply::BadGateway),
        _ => Some(ErrorReply::internal(format!("proxying failed: {e}"))),
    }
}

/// Whether the client has been sent no answer yet but 1xx ones, so an error answer can still go.
pub(super) fn nothing_final_written(session: &Session) -> bool {
    session
        .response_written()
        .is_none_or(|r| r.status.is_informational())
}

/// Write the JSON answer for `e` if nothing was sent yet.
pub(super) async fn answer(session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
    let Some(err) = classify(e) else {
        return FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        };
    };
    if matches!(e.esource(), ErrorSource::Downstream) {
        // The client broke the exchange: not worth a warning, and no mark
        // against the upstream.
        log::info!("client error for request {}: {e}", ctx.request_id);
        crate::metrics::METRICS
            .client_errors
            .with_label_values(&[err.code()])
            .inc();
    } else {
        // Internal errors are logged by `respond::error`, with their cause.
        if !matches!(err, ErrorReply::Internal(_)) {
            log::warn!(
                "proxy failure for request {} to {:?}: {e}",
                ctx.request_id,
                ctx.peer
            );
        }
        crate::metrics::METRICS
            .upstream_errors
            .with_label_values(&[err.code()])
            .inc();
    }
    let code = err.status().as_u16();
    if nothing_final_written(session) {
        // Pingora closes the connection after a failed proxy attempt; say so, or
        // a client may send its next request on a socket that is about to close.
        session.set_keepalive(None);
        respond::error(session, ctx, &err).await;
    }
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}
