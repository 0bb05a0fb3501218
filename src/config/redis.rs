//! The `redis` section: where the store lives (one Redis or a Cluster), its key prefix and timeout, and the TLS files for `rediss://`.

use super::{above_zero, invalid, readable, ConfigError, HostPort};
use serde::Deserialize;
use std::path::PathBuf;

/// Redis settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `rediss://`). With `cluster_nodes`, only its
    /// scheme and credentials are used.
    pub url: String,
    /// Seed nodes of a Redis Cluster; when any are given, the store is that
    /// cluster and `url`'s host and port are not used.
    pub cluster_nodes: Vec<HostPort>,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Upper bound on any single Redis call, connecting included.
    pub timeout_ms: u64,
    /// `rediss://` only: PEM CA bundle to trust instead of the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// `rediss://` only: PEM client certificate chain, for servers with `tls-auth-clients yes`.
    pub tls_cert_file: Option<PathBuf>,
    /// `rediss://` only: PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            cluster_nodes: Vec::new(),
            key_prefix: "authgate:".into(),
            timeout_ms: 1000,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl RedisConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("redis://") && !self.url.starts_with("rediss://") {
            return Err(invalid("redis.url", "expected redis://host:port/db"));
        }
        above_zero("redis.timeout_ms", self.timeout_ms)?;
        if !self.cluster_nodes.is_empty() {
            // A cluster has only database 0; a URL naming another is a mistake.
            let path = self.url.split_once("://").map_or("", |(_, rest)| rest);
            if let Some((_, db)) = path.rsplit_once('/') {
                if !db.is_empty() && db != "0" {
                    return Err(invalid(
                        "redis.url",
                        "a Redis Cluster has only database 0: end the URL with /0 or nothing",
                    ));
                }
            }
        }
        for (key, file) in [
            ("redis.tls_ca_file", &self.tls_ca_file),
            ("redis.tls_cert_file", &self.tls_cert_file),
            ("redis.tls_key_file", &self.tls_key_file),
        ] {
            if let Some(f) = file {
                if !self.url.starts_with("rediss://") {
                    return Err(invalid(key, "needs a rediss:// redis.url"));
                }
                readable(key, f)?;
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            let missing = if self.tls_cert_file.is_none() {
                "redis.tls_cert_file"
            } else {
                "redis.tls_key_file"
            };
            return Err(invalid(
                missing,
                "redis.tls_cert_file and redis.tls_key_file go together",
            ));
        }
        Ok(())
    }
}
