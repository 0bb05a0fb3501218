//! The `admin` section: the admin API's bearer token file and, optionally, an address of its own.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How the admin API is reached. Without `token_file` it is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// A file holding the admin bearer token (at least 32 bytes; not readable
    /// or writable by group or others). Without it the admin API is off and
    /// `/admin/*` on the ops listener is 404.
    pub token_file: Option<PathBuf>,
    /// Serve the admin API here instead of on the ops listener.
    pub listen: Option<SocketAddr>,
}
