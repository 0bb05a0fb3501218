//! SIGHUP: read the config file and every key file again and install the new key ring
//! (`tokens.keys`, `issuer`, `audience`, the JWKS). Anything wrong keeps the ring in
//! service and logs why. Other settings take a graceful upgrade (`-u`) to change.

use super::KeyRing;
use crate::auth::access::KeySwitch;
use crate::config::Config;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

/// A background service: it runs in the serving process (after Pingora has
/// daemonised), so the handler is installed where the signal is sent.
pub(crate) struct KeyReloader {
    /// The config file to read again; `None` (a config not read from a file): nothing to reload.
    source: Option<PathBuf>,
    switch: KeySwitch,
}

impl KeyReloader {
    /// Reload from `source` into `switch`.
    pub(crate) fn new(source: Option<PathBuf>, switch: KeySwitch) -> Self {
        KeyReloader { source, switch }
    }

    /// Read everything again; install the new ring or keep the old one.
    fn reload(&self) {
        let Some(path) = &self.source else {
            log::warn!("SIGHUP: no config file to read the signing keys from");
            return;
        };
        let ring = Config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|cfg| KeyRing::from_config(&cfg).map_err(|e| e.to_string()));
        match ring {
            Ok(ring) => {
                log::info!("SIGHUP: signing keys reloaded: {}", ring.describe());
                self.switch.install(ring);
            }
            Err(e) => log::error!("SIGHUP: keeping the current signing keys: {e}"),
        }
    }
}

#[async_trait]
impl BackgroundService for KeyReloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot watch for SIGHUP; signing keys reload only on restart: {e}");
                return;
            }
        };
        log::info!("SIGHUP reloads the signing keys");
        loop {
            tokio::select! {
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    self.reload();
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
