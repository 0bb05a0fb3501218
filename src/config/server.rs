//! The top-level server keys: listen addresses, TLS listeners, threads, and the run directory for the upgrade socket and pid file.

use super::de::{self, ConfigStr};
use super::{invalid, readable, Config, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

impl ConfigStr for SocketAddr {
    const EXPECTING: &'static str = "an address, ip:port";
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|_| format!("expected ip:port, got {s:?}"))
    }
}

/// `ops_listen`: an address, or empty for no ops listener.
impl ConfigStr for Option<SocketAddr> {
    const EXPECTING: &'static str = "an address, ip:port, or '' for none";
    fn parse_config(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(None);
        }
        SocketAddr::parse_config(s).map(Some)
    }
}

/// HTTPS listeners (rustls).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Addresses (ip:port).
    #[serde(deserialize_with = "de::list")]
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// Protocols offered by ALPN: `h2`, `http/1.1` (default both, `h2`
    /// preferred; `[http/1.1]` turns HTTP/2 off, `[h2]` refuses HTTP/1 clients
    /// that use ALPN).
    #[serde(default = "default_alpn")]
    pub alpn: Vec<Alpn>,
}

/// A protocol the HTTPS listener offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Alpn {
    /// HTTP/2.
    #[serde(rename = "h2")]
    H2,
    /// HTTP/1.1.
    #[serde(rename = "http/1.1")]
    Http11,
}

fn default_alpn() -> Vec<Alpn> {
    vec![Alpn::H2, Alpn::Http11]
}

impl TlsConfig {
    /// Pingora's ALPN choice for `alpn` (validated: one or both protocols).
    pub fn pingora_alpn(&self) -> pingora_core::protocols::ALPN {
        use pingora_core::protocols::ALPN;
        match (
            self.alpn.contains(&Alpn::H2),
            self.alpn.contains(&Alpn::Http11),
        ) {
            (true, true) => ALPN::H2H1,
            (true, false) => ALPN::H2,
            _ => ALPN::H1,
        }
    }
}

impl TlsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.alpn.is_empty() {
            return Err(invalid(
                "tls.alpn",
                "at least one of h2, http/1.1 is needed",
            ));
        }
        if (1..self.alpn.len()).any(|i| self.alpn[..i].contains(&self.alpn[i])) {
            return Err(invalid("tls.alpn", "a protocol is listed twice"));
        }
        readable("tls.cert_file", &self.cert_file)?;
        readable("tls.key_file", &self.key_file)
    }
}

/// The top-level keys that are not a section of their own.
pub(super) fn validate(cfg: &Config) -> Result<(), ConfigError> {
    if cfg.listen.is_empty() {
        return Err(invalid("listen", "at least one address is needed"));
    }
    if let Some(tls) = &cfg.tls {
        tls.validate()?;
    }
    if let Some(f) = &cfg.upstream_ca_file {
        readable("upstream_ca_file", f)?;
    }
    if cfg.threads == 0 {
        return Err(invalid("threads", "must be at least 1"));
    }
    Ok(())
}

impl Config {
    /// Put the upgrade socket and pid file in the private run directory unless configured.
    pub fn fill_run_paths(&mut self) {
        let dir = crate::run_dir::default_dir();
        if self.upgrade_sock.is_empty() {
            self.upgrade_sock = dir.join("upgrade.sock").to_string_lossy().into_owned();
        }
        if self.pid_file.is_empty() {
            self.pid_file = dir.join("authgate.pid").to_string_lossy().into_owned();
        }
    }

    /// Create the default run directory if it is used, and refuse directories
    /// others can write to; called before serving, not by `-t`.
    pub fn prepare_run_dir(&self) -> Result<(), ConfigError> {
        let dir = crate::run_dir::default_dir();
        for (key, file) in [
            ("upgrade_sock", &self.upgrade_sock),
            ("pid_file", &self.pid_file),
        ] {
            let file = Path::new(file);
            if file.parent() == Some(dir.as_path()) {
                crate::run_dir::create_private(&dir).map_err(|e| invalid(key, e))?;
            }
            crate::run_dir::check_private(key, file).map_err(|e| invalid(key, e))?;
        }
        Ok(())
    }
}
