//! Knowing when this process is on its way out (upgrade hand-over or shutdown), so responses start saying `Connection: close`.
//!
//! Pingora drops idle keep-alive connections only when shutdown begins, which
//! during a graceful upgrade is 5 s after the listeners were handed over. A
//! client that sends on such a connection at that moment loses the request.
//! Closing connections after their current response from the hand-over on
//! moves every client to the new process before that.

use pingora_core::server::ExecutionPhase;
use std::sync::atomic::{AtomicBool, Ordering};

static LEAVING: AtomicBool = AtomicBool::new(false);

/// Whether the process is handing over its listeners or shutting down.
pub(crate) fn leaving() -> bool {
    LEAVING.load(Ordering::Relaxed)
}

/// Follow the server's phases on a small thread of its own.
pub(crate) fn watch(mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>) {
    let spawned = std::thread::Builder::new()
        .name("authgate-shutdown".into())
        .spawn(move || loop {
            match phases.blocking_recv() {
                Ok(
                    ExecutionPhase::GracefulUpgradeTransferringFds
                    | ExecutionPhase::GracefulUpgradeCloseTimeout
                    | ExecutionPhase::GracefulTerminate
                    | ExecutionPhase::ShutdownStarted,
                ) => {
                    log::info!("leaving: closing client connections after their current response");
                    LEAVING.store(true, Ordering::Relaxed);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot watch for shutdown; connections will not be closed early: {e}");
    }
}
