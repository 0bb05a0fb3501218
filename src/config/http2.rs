//! The `http2` section: the limits an HTTP/2 client connection is held to (h2's SETTINGS).

use super::{above_zero, ConfigError};
use serde::Deserialize;

/// HTTP/2 limits, sent to each client in the connection's SETTINGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    /// Streams (requests) a client may have open at once on one connection
    /// (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM.
    pub max_concurrent_streams: u32,
    /// Largest decoded request header list, names and values plus 32 bytes per
    /// field (SETTINGS_MAX_HEADER_LIST_SIZE); larger is answered 431.
    pub max_header_list_bytes: u32,
}

impl Default for Http2Config {
    /// Pingora's bounded defaults (`default_h2_options`): 100 streams, 64 KiB.
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: 100,
            max_header_list_bytes: 64 * 1024,
        }
    }
}

impl Http2Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        above_zero("http2.max_concurrent_streams", self.max_concurrent_streams)?;
        above_zero("http2.max_header_list_bytes", self.max_header_list_bytes)
    }
}
