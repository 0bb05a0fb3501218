//! Knowing when this process is on its way out (upgrade hand-over or shutdown), so
//! responses start saying `Connection: close`, and leaving as soon as nothing is in flight.
//!
//! Pingora drops idle keep-alive connections only when shutdown begins, which
//! during a graceful upgrade is 5 s after the listeners were handed over. A
//! client that sends on such a connection at that moment loses the request.
//! Closing connections after their current response from the hand-over on
//! moves every client to the new process before that.
//!
//! Pingora's graceful stop (SIGTERM, and SIGQUIT after its 5 s hand-over pause)
//! stops accepting, then always sleeps `grace_period_seconds` before it stops
//! its runtimes, however little is left to do. The gateway counts the client
//! connections it serves ([`Connection`]); once the grace period has begun and
//! none is left, it ends the grace period early (`grace_period::end`, a small
//! addition to the vendored pingora-core). The grace period stays the upper
//! bound: Pingora's own timer ends it for connections still open then.
//!
//! There is one way out of a serving process, whatever the signal: Pingora's
//! `run` returns (after stopping its runtimes), then [`exit_path`] writes out
//! what must not be lost (the access log and the security events) and `main`
//! returns, so every `Drop` runs. Nothing calls `process::exit` (which skipped
//! Pingora's shutdown and every `Drop`).

use pingora_core::server::{ExecutionPhase, ShutdownWatch};
use pingora_core::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

static LEAVING: AtomicBool = AtomicBool::new(false);
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Whether the process is handing over its listeners or shutting down.
pub(crate) fn leaving() -> bool {
    LEAVING.load(Ordering::Relaxed)
}

/// A client connection being served (from the hand-off by Pingora's accept loop
/// until it closes): while one is held, shutdown waits.
pub(crate) struct Connection(());

impl Connection {
    /// Count one more open client connection until the guard is dropped.
    pub(crate) fn open() -> Connection {
        OPEN.fetch_add(1, Ordering::SeqCst);
        Connection(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Client connections open now.
fn open_connections() -> usize {
    OPEN.load(Ordering::SeqCst)
}

/// The one exit path of a serving process, once Pingora's `run` has returned
/// (every signal, and the grace period ended early): write out the access log
/// and the security events still queued. `main` then returns.
pub(crate) fn exit_path() {
    crate::proxy::access_log::flush();
    log::info!("authgate exiting");
}

/// Follows the server's phases. A background service rather than a thread
/// started at build time: a thread started before Pingora daemonises (`-d`
/// forks) would not exist in the serving process.
pub(crate) struct Watcher {
    phases: Mutex<Option<Receiver<ExecutionPhase>>>,
    grace: Duration,
}

impl Watcher {
    /// Watch `phases`; `grace` is `grace_period_seconds` (Pingora's upper bound).
    pub(crate) fn new(phases: Receiver<ExecutionPhase>, grace: Duration) -> Watcher {
        Watcher {
            phases: Mutex::new(Some(phases)),
            grace,
        }
    }
}

#[async_trait::async_trait]
impl BackgroundService for Watcher {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let Some(phases) = self.phases.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let grace = self.grace;
        // A thread of its own: the runtime this runs on is stopped during shutdown.
        let spawned = std::thread::Builder::new()
            .name("authgate-shutdown".into())
            .spawn(move || follow(phases, grace));
        if let Err(e) = spawned {
            log::warn!("cannot watch for shutdown; connections will not be closed early: {e}");
        }
    }
}

fn follow(mut phases: Receiver<ExecutionPhase>, grace: Duration) {
    loop {
        match phases.blocking_recv() {
            Ok(
                ExecutionPhase::GracefulUpgradeTransferringFds
                | ExecutionPhase::GracefulUpgradeCloseTimeout
                | ExecutionPhase::GracefulTerminate
                | ExecutionPhase::ShutdownStarted,
            ) => {
                if !LEAVING.swap(true, Ordering::Relaxed) {
                    log::info!("leaving: closing client connections after their current response");
                }
            }
            // Sent once the listeners stopped accepting, on SIGTERM and on SIGQUIT
            // (after the hand-over pause), never on SIGINT.
            Ok(ExecutionPhase::ShutdownGracePeriod) => {
                LEAVING.store(true, Ordering::Relaxed);
                drain(grace);
                return;
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// Wait until no client connection is open, then end the grace period so that
/// Pingora goes on to stop its runtimes and return; give up (and leave the
/// end to Pingora's timer) when the grace period is over.
fn drain(grace: Duration) {
    const POLL: Duration = Duration::from_millis(10);
    // A connection accepted just before the listeners stopped may not have
    // reached the gateway yet: it must be seen idle a few polls in a row.
    const QUIET_POLLS: u32 = 5;
    let started = Instant::now();
    let mut quiet = 0;
    while started.elapsed() < grace {
        if open_connections() == 0 {
            quiet += 1;
            if quiet >= QUIET_POLLS {
                log::info!(
                    "graceful shutdown: no connection left after {:?}, exiting",
                    started.elapsed()
                );
                pingora_core::server::grace_period::end();
                return;
            }
        } else {
            quiet = 0;
        }
        std::thread::sleep(POLL);
    }
    log::warn!(
        "graceful shutdown: {} connection(s) still open after the grace period",
        open_connections()
    );
}
