//! The HTTP/1 server that is authgate's own: it parks idle client connections outside Pingora's proxy state, tells h2c from HTTP/1, and hands each request to the fast path or to pingora-proxy.
//!
//! ```text
//! accepted connection (IdleParking::process_new: connection caps)
//!   ├─ TLS with ALPN h2, or http1_engine: pingora ─► Pingora's own loop
//!   └─ a task of its own (serve_http1), per request:
//!        wait for the first byte, parked (wait_for_request, idle timeout)
//!        ├─ first request, h2c on, cleartext: h2c::sniff
//!        │    └─ the whole preface ─► Pingora's HTTP/2 server
//!        ├─ read the head's first bytes (one deadline for the whole head)
//!        ├─ fast_path::classify says Fast ─► fast_path.rs (own upstream pool)
//!        └─ anything else ─► pingora-proxy, parsing the bytes already read
//! ```
//!
//! Pingora's HTTP/1 loop (`ServerApp` for any `HttpServerApp`) reads each request
//! inside `process_new_http`, whose boxed future holds the whole proxy state
//! machine, allocated while the connection merely waits for its next request;
//! with the accept task and a 4 KiB buffer that was ~39 kB per idle connection.
//! This wrapper runs the same loop in a task of its own and waits for each
//! request's first byte in a small future, so an idle keep-alive connection
//! costs 3-4 kB with the default 1 KiB read buffer (bench/RESULTS.md).
//!
//! This re-implements the keep-alive part of `pingora_core::apps::ServerApp for
//! HttpServerApp` (`process_new`), as of pingora-core 0.9.1; check it against
//! that function when upgrading Pingora (docs/pingora-upgrade.md).
//! `http1_engine: pingora` falls back to Pingora's own loop.

mod fast_path;
mod h2;
mod h2c;
mod upstream_pool;

pub(crate) use fast_path::FastPath;

use super::conn_limit::ConnectionLimits;
use async_trait::async_trait;
use bytes::BytesMut;
use fast_path::Verdict;
use h2c::Speaks;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The buffer a request's first read goes into: pingora-core's first header
/// buffer (`INIT_HEADER_BUF_SIZE`), which it then parses from in place.
const REQUEST_READ_BYTES: usize = 4096;

/// How `IdleParking` serves its connections.
pub(crate) struct Parking {
    /// A connection idle this long (before its first request or between
    /// requests) is closed.
    pub(crate) idle_timeout: Duration,
    /// False: every connection goes to Pingora's own loop, as without this
    /// wrapper (`http1_engine: pingora`).
    pub(crate) enabled: bool,
    /// Plain body-less requests are served by it (only when `enabled`).
    pub(crate) fast_path: Option<FastPath>,
    /// Every connection, whichever loop serves it, is first admitted here.
    pub(crate) limits: Arc<ConnectionLimits>,
    /// A request header must arrive whole within this of its first byte,
    /// however it trickles in (on plain TCP; on TLS, from its first read when
    /// the fast path is on).
    pub(crate) head_timeout: Duration,
    /// Each write to a client must finish within its size at this many bytes
    /// per second (at least 1 s), so a client that stops reading cannot hold
    /// a response, and its upstream connection, forever.
    pub(crate) min_send_rate: Option<usize>,
    /// A cleartext connection that opens with the HTTP/2 preface goes to
    /// Pingora's HTTP/2 server (the app must have `h2c` in its server
    /// options); any other stays here.
    pub(crate) h2c: bool,
}

/// An HTTP application whose idle HTTP/1 connections wait outside it.
pub(crate) struct IdleParking<A> {
    app: Arc<A>,
    parking: Parking,
}

impl<A> IdleParking<A> {
    /// Wrap `app`, serving its connections as `parking` says.
    pub(crate) fn new(app: A, parking: Parking) -> Self {
        IdleParking {
            app: Arc::new(app),
            parking,
        }
    }
}

#[async_trait]
impl<A> ServerApp for IdleParking<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let permit = match self.parking.limits.admit(peer) {
            Ok(p) => p,
            Err(why) => {
                crate::metrics::METRICS
                    .connections_refused
                    .with_label_values(&[why.as_str()])
                    .inc();
                // Dropped unread: closed at accept.
                return None;
            }
        };
        // Counted until it closes, so a graceful shutdown can end once none is left.
        let open = crate::shutdown::Connection::open();
        if !self.parking.enabled {
            // `open` and `permit` are dropped when this returns.
            return self.app.process_new(stream, shutdown).await;
        }
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            // Served in the accept task, as Pingora's own loop serves it.
            self.h2(stream, shutdown).await;
            return None;
        }
        // Pingora's accept task is ~9 kB (its future has room for a TLS handshake)
        // and lives as long as the connection. Serving from a task of our own lets
        // it end now. Same runtime, so shutdown and upgrades treat it alike.
        let this = Arc::clone(self);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            this.serve_http1(stream, &shutdown).await;
            drop(open);
            drop(permit);
        });
        None
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> IdleParking<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// Pingora's HTTP/1 keep-alive loop, waiting for each request outside it;
    /// with `h2c`, a cleartext connection's first bytes may make it HTTP/2's.
    async fn serve_http1(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) {
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut may_be_h2c = self.parking.h2c && stream.get_ssl_digest().is_none();
        loop {
            let Some(byte_seen) =
                wait_for_request(&mut stream, self.parking.idle_timeout, shutdown).await
            else {
                return;
            };
            let head_deadline = byte_seen.then(|| self.head_deadline());
            if std::mem::take(&mut may_be_h2c) {
                // The preface is part of the head: the same deadline. A
                // shutdown ends the wait for the rest of it, as it ends the
                // wait for a first byte.
                let deadline = head_deadline.unwrap_or_else(|| self.head_deadline());
                match until_shutdown(h2c::sniff(&mut stream, deadline), shutdown).await {
                    Some(Speaks::Http1) => {}
                    Some(Speaks::Gone) | None => return,
                    Some(Speaks::Http2) => {
                        // The handshake reads the preface from the rewound bytes.
                        self.h2(stream, shutdown).await;
                        return;
                    }
                }
            }
            let reused = match &self.parking.fast_path {
                // Shutting down: Pingora's loop reads the request, or gives up
                // on it, under its own shutdown rules.
                Some(fast) if !*shutdown.borrow() => {
                    // Boxed, as Pingora's boxes `process_new_http`: inline, the
                    // request's whole state (sessions both ways, headers) would
                    // make this task's future, held by every idle connection,
                    // ~11 kB larger (bench/idle-connections.sh: 72 -> 189 MB).
                    Box::pin(self.serve_fast_or_handoff(
                        fast,
                        stream,
                        settings.take(),
                        head_deadline,
                        shutdown,
                    ))
                    .await
                }
                _ => {
                    self.to_pingora(stream, None, settings.take(), head_deadline, shutdown)
                        .await
                }
            };
            let Some(reused) = reused else {
                return;
            };
            (stream, settings) = reused.consume();
        }
    }

    /// Read the request's first bytes: the fast path serves them if it may,
    /// pingora-proxy otherwise, parsing the same bytes.
    async fn serve_fast_or_handoff(
        &self,
        fast: &FastPath,
        mut stream: Stream,
        settings: Option<HttpPersistentSettings>,
        mut head_deadline: Option<tokio::time::Instant>,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let mut read = BytesMut::with_capacity(REQUEST_READ_BYTES);
        // The peek has seen a byte on plain TCP (and kept it: the first read may
        // return only that byte); a TLS stream cannot peek, so its first read is
        // where it waits, and where a shutdown must end the wait as Pingora's
        // own loop would. Until its first byte the idle timeout applies, from
        // then on one deadline for the whole header, not one per read.
        let mut deadline = head_deadline.unwrap_or_else(|| {
            tokio::time::Instant::now()
                .checked_add(self.parking.idle_timeout)
                .unwrap_or_else(far_future)
        });
        let verdict = loop {
            let waiting = read.is_empty();
            let more = tokio::time::timeout_at(deadline, stream.read_buf(&mut read));
            let got = if waiting {
                until_shutdown(more, shutdown).await?
            } else {
                more.await
            };
            match got {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
            if head_deadline.is_none() {
                let d = self.head_deadline();
                (head_deadline, deadline) = (Some(d), d);
            }
            match fast_path::classify(&read) {
                // A header larger than the first buffer is pingora-proxy's to read.
                Verdict::NeedMore if read.len() < REQUEST_READ_BYTES => continue,
                Verdict::NeedMore => break Verdict::Pingora,
                v => break v,
            }
        };
        if verdict == Verdict::Fast {
            let mut session = pingora_proxy::Session::new_h1(stream);
            self.prepare(
                &mut session.downstream_session,
                settings,
                head_deadline,
                shutdown,
            );
            set_prefix(&mut session.downstream_session, read);
            fast.serve(session, shutdown).await
        } else {
            self.to_pingora(stream, Some(read), settings, head_deadline, shutdown)
                .await
        }
    }

    /// Pingora's own handling of one request on `stream`, parsing `read` (bytes
    /// of it already taken off the stream), if any, first.
    async fn to_pingora(
        &self,
        stream: Stream,
        read: Option<BytesMut>,
        settings: Option<HttpPersistentSettings>,
        head_deadline: Option<tokio::time::Instant>,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let mut session = ServerSession::new_http1(stream);
        self.prepare(&mut session, settings, head_deadline, shutdown);
        if let Some(read) = read {
            set_prefix(&mut session, read);
        }
        self.app.process_new_http(session, shutdown).await
    }

    /// The keep-alive state a session starts with: carried over from the
    /// previous request, or what Pingora's own loop sets on a new connection
    /// (the gateway narrows it per request in `early_request`), and the
    /// deadline for the rest of the request header.
    fn prepare(
        &self,
        session: &mut ServerSession,
        settings: Option<HttpPersistentSettings>,
        head_deadline: Option<tokio::time::Instant>,
        shutdown: &ShutdownWatch,
    ) {
        if let ServerSession::H1(h1) = session {
            h1.set_request_head_deadline(head_deadline);
            h1.set_min_send_rate(self.parking.min_send_rate);
        }
        match settings {
            Some(s) => s.apply_to_session(session),
            None => {
                let keepalive =
                    (!*shutdown.borrow()).then_some(self.parking.idle_timeout.as_secs());
                session.set_keepalive(keepalive);
                session.set_keepalive_reuses_remaining(
                    self.app
                        .server_options()
                        .and_then(|o| o.keepalive_request_limit),
                );
            }
        }
    }
}

impl<A> IdleParking<A> {
    /// When a request header whose first byte has just arrived must be complete.
    fn head_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
            .checked_add(self.parking.head_timeout)
            .unwrap_or_else(far_future)
    }
}

/// A deadline that never comes, for an idle timeout too large to add to now.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// Have `session` parse `read`, bytes of its request already taken off the stream, first.
///
/// After `prepare`: settings carried over from the previous request hold no
/// prefix of their own, since HTTP/1.1 pipelining stays off (`wait_for_request`).
fn set_prefix(session: &mut ServerSession, read: BytesMut) {
    if let ServerSession::H1(h1) = session {
        h1.set_pipelined_prefix(read);
    }
}

/// Wait until the client has sent something: `Some(true)` when a byte is known
/// to have arrived, `Some(false)` to go on without knowing (a TLS stream, or
/// shutting down with a request perhaps already sent), `None` to close (idle
/// timeout, client gone, or the server shutting down while idle, which is
/// what Pingora does with connections idle in its own loop).
///
/// Pingora's `Stream::try_peek` reads the byte and rewinds it, so the request is
/// parsed whole afterwards; streams that cannot peek (TLS) return at once and
/// Pingora's own timeouts apply to them. HTTP/1.1 pipelining stays off (Pingora's
/// default): with it on, a next request already read into the persistent
/// settings' prefix would wait here for bytes the client has already sent.
async fn wait_for_request(
    stream: &mut Stream,
    idle: Duration,
    shutdown: &ShutdownWatch,
) -> Option<bool> {
    if *shutdown.borrow() {
        // Still serve a request already sent; do not wait for one.
        return Some(false);
    }
    let mut first = [0u8; 1];
    match until_shutdown(
        tokio::time::timeout(idle, stream.try_peek(&mut first)),
        shutdown,
    )
    .await
    {
        Some(Ok(Ok(seen))) => Some(seen),
        _ => None,
    }
}

/// `work`, unless the server starts shutting down first (`None`); work that
/// is ready at once wins, so bytes a client has already sent are still read.
async fn until_shutdown<F: std::future::Future>(
    work: F,
    shutdown: &ShutdownWatch,
) -> Option<F::Output> {
    let mut shutdown = shutdown.clone();
    tokio::select! {
        biased;
        done = work => Some(done),
        _ = shutdown.wait_for(|down| *down) => None,
    }
}
