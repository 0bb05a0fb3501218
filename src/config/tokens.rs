//! The `tokens` section: access and refresh token lifetimes, session lifetimes and cap, the secret's file, the verified-token cache.

use super::{above_zero, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// Token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access token (JWT) lifetime.
    pub access_ttl_seconds: u64,
    /// Refresh token lifetime, the session's idle lifetime: restarts on every refresh.
    pub refresh_ttl_seconds: u64,
    /// A session's absolute lifetime from login; rotation never extends it.
    /// 0: renewable without end, as the original service was.
    pub session_max_seconds: u64,
    /// A refresh token presented again within this many seconds of its rotation
    /// is a duplicate (401, nothing revoked); after it, theft (the session is revoked).
    pub reuse_grace_seconds: u64,
    /// Live sessions per user; a new login ends the least recently used beyond it.
    pub max_sessions_per_user: u64,
    /// File holding the HS256 secret (overridden by `AUTHGATE_JWT_SECRET`).
    pub jwt_secret_file: Option<PathBuf>,
    /// Verified access tokens remembered to skip re-verification; 0 disables.
    pub verify_cache_entries: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_ttl_seconds: 30,
            refresh_ttl_seconds: 30 * 24 * 3600,
            session_max_seconds: 30 * 24 * 3600,
            reuse_grace_seconds: 5,
            max_sessions_per_user: 50,
            jwt_secret_file: None,
            verify_cache_entries: 10_000,
        }
    }
}

impl TokenConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        above_zero("tokens.access_ttl_seconds", self.access_ttl_seconds)?;
        above_zero("tokens.max_sessions_per_user", self.max_sessions_per_user)?;
        above_zero("tokens.refresh_ttl_seconds", self.refresh_ttl_seconds)
    }
}
