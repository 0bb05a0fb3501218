//! When a failed try goes again to another peer: a failed connect (any method, nothing was sent), or an idempotent request whose connection failed before its response began.
//!
//! One retry per request, whatever the cluster's size: a request costs at most
//! two upstream tries, so an outage at most doubles the load on the peers left
//! (no retry storm), and with the failed peer ejected at once (`ejection.rs`)
//! the second try goes to a live peer unless two die together. Envoy's default
//! is the same (`num_retries: 1`); nginx tries every peer, which a large cluster
//! that is failing as a whole pays for with one connect per peer per request.

use pingora_error::{Error, ErrorSource, ErrorType};

/// Retries a request may take.
pub(super) const MAX_RETRIES: u8 = 1;

/// Why a try was repeated: the label of `authgate_upstream_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// The connect failed (refused, reset, timed out, TLS): no byte of the request left.
    ConnectFailed,
    /// An idempotent request on a connection that broke before the response began.
    BeforeResponse,
}

impl Reason {
    /// The metric label.
    pub(super) fn label(self) -> &'static str {
        match self {
            Reason::ConnectFailed => "connect_failed",
            Reason::BeforeResponse => "before_response",
        }
    }
}

/// A connect failure that says the peer is down (refused, reset, unreachable),
/// so it is ejected: not a timeout, which an overloaded live peer can cause, nor
/// a TLS failure or a local error, which say nothing about the peer's liveness.
pub(super) fn ejects(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectRefused | ErrorType::ConnectNoRoute | ErrorType::ConnectError
    )
}

/// A failed connect is tried again while the budget lasts (nothing was sent),
/// when the cluster has another peer: the same one again would only double
/// the client's wait for the same refusal or timeout.
pub(super) fn after_connect_failure(retries: u8, peers: usize) -> Option<Reason> {
    (retries < MAX_RETRIES && peers > 1).then_some(Reason::ConnectFailed)
}

/// What the request is, for `after_proxy_failure`.
pub(super) struct Attempt {
    /// Retries taken so far.
    pub retries: u8,
    /// GET, HEAD, PUT, DELETE, OPTIONS, TRACE: repeating it is harmless.
    pub idempotent: bool,
    /// The client has been sent some of the response: a second one cannot follow.
    pub response_begun: bool,
    /// Part of the request body is gone and cannot be sent again.
    pub body_lost: bool,
}

/// A failure on an established (or reused) connection is tried again only for
/// an idempotent request, when the connection itself broke (closed, reset, a
/// read or write error: not a timeout, which would double the wait, nor a bad
/// answer, which another peer would likely give too) and the client has no
/// answer yet. A non-idempotent request may have reached the upstream: never.
/// In a one-peer cluster the retry goes to that peer on a new connection,
/// which is what a pooled connection the peer had just closed needs.
pub(super) fn after_proxy_failure(e: &Error, a: &Attempt) -> Option<Reason> {
    let broke = matches!(e.esource(), ErrorSource::Upstream)
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        );
    (broke && a.idempotent && !a.response_begun && !a.body_lost && a.retries < MAX_RETRIES)
        .then_some(Reason::BeforeResponse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(t: ErrorType) -> Box<Error> {
        Error::new(t).into_up()
    }

    const GET: Attempt = Attempt {
        retries: 0,
        idempotent: true,
        response_begun: false,
        body_lost: false,
    };

    #[test]
    fn a_failed_connect_is_retried_once_for_any_method() {
        assert_eq!(after_connect_failure(0, 2), Some(Reason::ConnectFailed));
        assert_eq!(after_connect_failure(MAX_RETRIES, 2), None);
        assert_eq!(after_connect_failure(0, 1), None, "no other peer");
    }

    #[test]
    fn a_broken_connection_is_retried_only_for_an_unanswered_idempotent_request() {
        let reset = up(ErrorType::ReadError);
        assert_eq!(
            after_proxy_failure(&reset, &GET),
            Some(Reason::BeforeResponse)
        );
        assert_eq!(
            after_proxy_failure(&up(ErrorType::ConnectionClosed), &GET),
            Some(Reason::BeforeResponse)
        );
        let post = Attempt {
            idempotent: false,
            ..GET
        };
        assert_eq!(
            after_proxy_failure(&reset, &post),
            None,
            "may have reached it"
        );
        let begun = Attempt {
            response_begun: true,
            ..GET
        };
        assert_eq!(after_proxy_failure(&reset, &begun), None);
        let lost = Attempt {
            body_lost: true,
            ..GET
        };
        assert_eq!(after_proxy_failure(&reset, &lost), None);
        let again = Attempt {
            retries: MAX_RETRIES,
            ..GET
        };
        assert_eq!(after_proxy_failure(&reset, &again), None);
        assert_eq!(
            after_proxy_failure(&up(ErrorType::ReadTimedout), &GET),
            None
        );
        let client = Error::new(ErrorType::ReadError).into_down();
        assert_eq!(
            after_proxy_failure(&client, &GET),
            None,
            "the client's fault"
        );
    }

    #[test]
    fn only_a_peer_that_refused_or_reset_is_ejected() {
        assert!(ejects(&up(ErrorType::ConnectRefused)));
        assert!(ejects(&up(ErrorType::ConnectError)));
        assert!(!ejects(&up(ErrorType::ConnectTimedout)));
        assert!(!ejects(&up(ErrorType::TLSHandshakeFailure)));
    }
}
