//! HTTP/2 connections (ALPN h2, or h2c) with the fast path on: plain body-less streams are served in the connection's own task, every other stream by pingora-proxy in a task of its own.
//!
//! Pingora's HTTP/2 server (`ServerApp::process_new` for any `HttpServerApp`
//! and `accept_downstream_sessions`, pingora-core 0.9.1) spawns a task per
//! stream running the whole `process_new_http`: pingora-proxy's state
//! machine, its two halves joined by a channel, Pingora's upstream pool with
//! a watcher task per released connection. A GET or HEAD whose HEADERS frame
//! ended the stream has none of that to do, exactly as on HTTP/1: such a
//! stream goes through the same `Gateway` phases in `fast_path.rs`, polled by
//! this loop beside the connection itself, so the answers of the streams that
//! are ready together go out in one write, with no task and no cross-task
//! wake-up per request.
//!
//! The rest is Pingora's accept loop as that function has it: the
//! handshake, the malformed-stream budget (`from_h2_conn_with_malformed_budget`),
//! a GOAWAY on shutdown with streams still accepted while the connection
//! drains, and the idle timeout counted only while no stream is open. Check
//! it against `accept_downstream_sessions` when upgrading Pingora
//! (docs/pingora-upgrade.md). With the fast path off, Pingora's own loop
//! serves the connection.

use super::fast_path::{self, Verdict};
use super::IdleParking;
use futures_util::stream::{FuturesUnordered, StreamExt};
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::v2::server::{
    self as h2_server, H2Accept, HttpSession as H2Stream,
};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Digest, Stream};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

impl<A> IdleParking<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// An HTTP/2 connection: with the fast path on, served here; without it,
    /// by Pingora's own loop.
    pub(super) async fn h2(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) {
        if self.parking.fast_path.is_some() {
            self.serve_h2(stream, shutdown).await;
        } else {
            self.app.process_new(stream, shutdown).await;
        }
    }

    /// Serve `stream`, which speaks HTTP/2 (negotiated by ALPN, or an h2c
    /// preface still unread on it), until the client, an error, the idle
    /// timeout or a shutdown closes it.
    async fn serve_h2(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) {
        // What Pingora's own loop records of the connection for every stream.
        let digest = Arc::new(Digest {
            ssl_digest: stream.get_ssl_digest(),
            timing_digest: stream.get_timing_digest(),
            proxy_digest: stream.get_proxy_digest(),
            socket_digest: stream.get_socket_digest(),
        });
        let mut conn = match h2_server::handshake(stream, self.app.h2_options()).await {
            Ok(c) => c,
            Err(e) => {
                // As Pingora's loop: the handshake error carries no request bytes.
                log::error!("H2 handshake error {e}");
                return;
            }
        };
        let idle_timeout = self.app.server_options().and_then(|o| o.h2_idle_timeout);
        let idle = tokio::time::sleep(idle_timeout.unwrap_or(Duration::ZERO));
        tokio::pin!(idle);
        let mut streams = FuturesUnordered::new();
        let mut malformed = 0usize;
        let mut signal = shutdown.clone();
        let mut draining = false;
        loop {
            let accepted = tokio::select! {
                // Shutdown first, so a signal is seen deterministically; then
                // the streams in flight, so every answer that is ready is
                // queued before the connection is polled to write them.
                biased;
                _ = signal.changed(), if !draining => {
                    conn.graceful_shutdown();
                    draining = true;
                    continue;
                }
                Some(()) = streams.next(), if !streams.is_empty() => {
                    if streams.is_empty() {
                        if let Some(t) = idle_timeout {
                            idle.as_mut().reset(tokio::time::Instant::now() + t);
                        }
                    }
                    continue;
                }
                // Cancel-safe (Pingora's loop relies on it too).
                a = H2Stream::from_h2_conn_with_malformed_budget(&mut conn, Arc::clone(&digest), &mut malformed) => a,
                // Idle with nothing in flight: dropping `conn` closes the socket now.
                _ = &mut idle, if idle_timeout.is_some() && streams.is_empty() && !draining => return,
            };
            match accepted {
                // Clients often just close the TCP connection: not an error to log.
                Err(e) => {
                    log::debug!("H2 error when accepting new stream {e}");
                    break;
                }
                Ok(None) => break,
                // Already answered or reset by Pingora; keep serving the rest.
                Ok(Some(H2Accept::Rejected)) => {}
                Ok(Some(H2Accept::Session(s))) => streams.push(self.serve_h2_stream(s, shutdown)),
            }
        }
        // The connection has closed: what is left in flight ends on its own
        // (its writes fail), as a spawned stream's task would.
        while streams.next().await.is_some() {}
    }

    /// One request stream: served here when `classify_h2` says so and the
    /// server is not shutting down; otherwise by pingora-proxy in a task of
    /// its own (as Pingora's loop does), awaited so the connection counts it
    /// as open.
    async fn serve_h2_stream(self: &Arc<Self>, h2_stream: H2Stream, shutdown: &ShutdownWatch) {
        match &self.parking.fast_path {
            Some(fast)
                if !*shutdown.borrow() && fast_path::classify_h2(&h2_stream) == Verdict::Fast =>
            {
                // Boxed: inline, the whole request state would be part of
                // every stream's slot in `streams` and copied into it.
                Box::pin(fast.serve(pingora_proxy::Session::new_h2(h2_stream), shutdown)).await;
            }
            _ => {
                let app = Arc::clone(&self.app);
                let shutdown = shutdown.clone();
                let task = tokio::spawn(async move {
                    app.process_new_http(ServerSession::new_http2(h2_stream), &shutdown)
                        .await;
                });
                // A panic in it is the task's alone, as in Pingora's loop.
                let _ = task.await;
            }
        }
    }
}
