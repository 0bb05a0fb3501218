//! The `limits` section: how large and how slow an auth request body may be, and how many connections may be open.

use super::{above_zero, ConfigError};
use serde::Deserialize;

/// Size caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest body accepted by the auth endpoints.
    pub max_auth_body_bytes: usize,
    /// Total time a client gets to send an auth request body (not per read).
    pub auth_body_timeout_ms: u64,
    /// Total time a request header gets from its first byte (not per read).
    pub request_head_timeout_ms: u64,
    /// Slowest a client may read a response: each write to it must finish
    /// within its size at this rate (at least 1 s); 0 turns it off.
    pub min_send_bytes_per_second: usize,
    /// Most client connections open at once (none: no cap); more are closed at accept.
    pub max_connections: Option<usize>,
    /// Most client connections open at once from one address (none: no cap).
    pub max_connections_per_ip: Option<usize>,
    /// Most WebSockets one user may hold open on this instance (none: no cap); more are 429.
    pub max_websockets_per_user: Option<usize>,
    /// Most WebSockets one client address may hold open on this instance (none: no cap).
    pub max_websockets_per_ip: Option<usize>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_auth_body_bytes: 64 * 1024,
            auth_body_timeout_ms: 10_000,
            request_head_timeout_ms: 10_000,
            min_send_bytes_per_second: 1024,
            max_connections: None,
            max_connections_per_ip: None,
            max_websockets_per_user: None,
            max_websockets_per_ip: None,
        }
    }
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        above_zero("limits.max_auth_body_bytes", self.max_auth_body_bytes)?;
        above_zero("limits.auth_body_timeout_ms", self.auth_body_timeout_ms)?;
        above_zero(
            "limits.request_head_timeout_ms",
            self.request_head_timeout_ms,
        )?;
        if let Some(n) = self.max_connections {
            above_zero("limits.max_connections", n)?;
        }
        if let Some(n) = self.max_websockets_per_user {
            above_zero("limits.max_websockets_per_user", n)?;
        }
        if let Some(n) = self.max_websockets_per_ip {
            above_zero("limits.max_websockets_per_ip", n)?;
        }
        if let Some(n) = self.max_connections_per_ip {
            above_zero("limits.max_connections_per_ip", n)?;
        }
        Ok(())
    }
}
