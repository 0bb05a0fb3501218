//! The `upstreams` section: named clusters of `host:port` peers, their timeouts, TLS and health checks.

use super::de::{self, ConfigStr};
use super::{above_zero, invalid, ConfigError};
use http::uri::PathAndQuery;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;

/// One upstream cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Each peer; required (a cluster without one is refused by `validate`).
    pub peers: Vec<HostPort>,
    /// Speak TLS to the peers.
    pub tls: bool,
    /// SNI (and certificate name) for TLS peers; defaults to the peer host.
    pub sni: Option<String>,
    /// The HTTP version spoken to the peers.
    pub protocol: UpstreamProtocol,
    /// Connect timeout.
    pub connect_timeout_ms: u64,
    /// Timeout for each read from the peer (the response header included).
    pub read_timeout_ms: u64,
    /// How long an idle pooled connection to the peer is kept.
    pub idle_timeout_ms: u64,
    /// Active health check; none means every peer is always considered up.
    pub health_check: Option<HealthCheckConfig>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            peers: Vec::new(),
            tls: false,
            sni: None,
            protocol: UpstreamProtocol::Http1,
            connect_timeout_ms: 2_000,
            read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            health_check: None,
        }
    }
}

impl UpstreamConfig {
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.peers.is_empty() {
            return Err(invalid(
                format!("upstreams.{name}.peers"),
                "at least one peer is needed",
            ));
        }
        if self.protocol == UpstreamProtocol::Auto && !self.tls {
            // Without TLS there is no ALPN to choose by: the connector would
            // guess, and a wrong guess is a broken connection, not a fallback.
            return Err(invalid(
                format!("upstreams.{name}.protocol"),
                "auto needs tls: true (ALPN chooses); over plain TCP say h2 or http1",
            ));
        }
        if let Some(hc) = &self.health_check {
            if hc.kind == HealthCheckKind::Grpc && self.protocol == UpstreamProtocol::Http1 {
                // The gRPC health protocol runs over HTTP/2 only.
                return Err(invalid(
                    format!("upstreams.{name}.health_check.kind"),
                    "a grpc check speaks HTTP/2: set protocol: h2 (or auto with tls: true)",
                ));
            }
            if hc.kind != HealthCheckKind::Grpc && !hc.service.is_empty() {
                return Err(invalid(
                    format!("upstreams.{name}.health_check.service"),
                    "only a kind: grpc check names a service",
                ));
            }
            if hc.kind == HealthCheckKind::Http && self.protocol == UpstreamProtocol::H2 {
                // The HTTP check speaks HTTP/1.1: an h2-only peer would
                // always look down.
                return Err(invalid(
                    format!("upstreams.{name}.health_check.kind"),
                    "an http check speaks HTTP/1.1, which a protocol: h2 cluster does not; use kind: tcp",
                ));
            }
            above_zero(
                &format!("upstreams.{name}.health_check.interval_seconds"),
                hc.interval_seconds,
            )?;
            if !hc.path.as_str().starts_with('/') {
                return Err(invalid(
                    format!("upstreams.{name}.health_check.path"),
                    "must start with /",
                ));
            }
        }
        Ok(())
    }
}

/// A peer as written, `host:port`: the host is non-empty (a name, an IPv4
/// address or a bracketed IPv6 one) and resolved when the gateway is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// A peer from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostPort {
            host: host.into(),
            port,
        }
    }
    /// The host as written (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => match port.parse() {
                Ok(port) => Ok(HostPort::new(host, port)),
                Err(_) => Err(format!("expected host:port, got {s:?}")),
            },
            _ => Err(format!("expected host:port, got {s:?}")),
        }
    }
}

impl ConfigStr for HostPort {
    const EXPECTING: &'static str = "a peer, host:port";
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::one(d)
    }
}

/// The HTTP version spoken to a cluster's peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only: h2c (prior knowledge) over plain TCP, ALPN `h2` over TLS.
    H2,
    /// ALPN offers `h2` and `http/1.1`; the peer chooses (TLS only).
    Auto,
}

/// Active health check for a cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// `http` (GET `path`, expects 2xx), `tcp` (connect only) or `grpc`
    /// (the gRPC health protocol).
    pub kind: HealthCheckKind,
    /// Path (and query) for `http` checks.
    #[serde(deserialize_with = "de::one")]
    pub path: PathAndQuery,
    /// Seconds between checks.
    pub interval_seconds: u64,
    /// For `grpc` checks, the service asked about (empty: the server as a whole).
    pub service: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            path: PathAndQuery::from_static("/"),
            interval_seconds: 5,
            service: String::new(),
        }
    }
}

impl ConfigStr for PathAndQuery {
    const EXPECTING: &'static str = "a path, like /healthz";
    fn parse_config(s: &str) -> Result<Self, String> {
        s.parse().map_err(|e| format!("{e}"))
    }
}

/// How a peer is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckKind {
    /// HTTP GET.
    Http,
    /// TCP connect.
    Tcp,
    /// `grpc.health.v1.Health/Check` over HTTP/2, expects `SERVING`.
    Grpc,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_need_a_host_and_a_port() {
        let p: HostPort = "[::1]:8080".parse().unwrap();
        assert_eq!((p.host(), p.port()), ("[::1]", 8080));
        assert_eq!(p.to_string(), "[::1]:8080");
        for bad in ["nohost", ":80", "a:", "a:65536", "a:x"] {
            let err = bad.parse::<HostPort>().unwrap_err();
            assert!(err.contains("expected host:port"), "{bad}: {err}");
        }
    }
}
