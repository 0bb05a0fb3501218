//! The edge keys (`identity_headers`, `underscore_headers`, `trusted_proxies`): header names typed when the file is read.

use super::de::ConfigStr;
use http::HeaderName;

/// An entry of `identity_headers`, stored lowercase as `http` does.
impl ConfigStr for HeaderName {
    const EXPECTING: &'static str = "a header name";
    fn parse_config(s: &str) -> Result<Self, String> {
        HeaderName::from_bytes(s.as_bytes()).map_err(|_| format!("{s:?} is not a header name"))
    }
}
