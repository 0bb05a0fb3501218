//! Upstream clusters: peers load-balanced round robin by pingora-load-balancing, optionally health-checked.

use crate::config::{HealthCheckKind, UpstreamConfig};
use pingora_core::services::background::{background_service, GenBackgroundService};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_load_balancing::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::failure::NO_HEALTHY_PEER;

/// The background task that health-checks one cluster.
pub(crate) type HealthCheckTask = GenBackgroundService<LoadBalancer<RoundRobin>>;

/// A named set of peers.
pub struct Cluster {
    /// Name from the config.
    pub name: String,
    lb: Arc<LoadBalancer<RoundRobin>>,
    tls: bool,
    /// SNI per resolved address: the configured `sni`, or the host the peer was written with.
    sni: HashMap<SocketAddr, String>,
    connect_timeout: Duration,
    read_timeout: Duration,
    idle_timeout: Duration,
}

/// Why a cluster cannot be built; `Display` says what, `key` which key below `upstreams.<name>`.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A peer's host does not resolve.
    #[error("cannot resolve {peer:?}: {source}")]
    Resolve {
        /// The peer as configured.
        peer: String,
        /// The resolver's answer.
        source: std::io::Error,
    },
    /// pingora-load-balancing refused the resolved addresses.
    #[error("{0}")]
    Backends(#[source] std::io::Error),
}

impl ClusterError {
    /// The key at fault, relative to `upstreams.<name>` (empty: the cluster itself).
    pub fn key(&self) -> &'static str {
        match self {
            ClusterError::Resolve { .. } => ".peers",
            ClusterError::Backends(_) => "",
        }
    }
}

impl Cluster {
    /// Build a cluster (resolving its peers); with a health check, also the task that must run it.
    pub fn from_config(
        name: &str,
        cfg: &UpstreamConfig,
    ) -> std::result::Result<(Cluster, Option<HealthCheckTask>), ClusterError> {
        let mut sni = HashMap::new();
        let mut addrs = Vec::new();
        for peer in &cfg.peers {
            let written = peer.to_string();
            let resolved =
                std::net::ToSocketAddrs::to_socket_addrs(written.as_str()).map_err(|source| {
                    ClusterError::Resolve {
                        peer: written.clone(),
                        source,
                    }
                })?;
            let host = peer.host().trim_matches(['[', ']']);
            for addr in resolved {
                sni.insert(addr, cfg.sni.clone().unwrap_or_else(|| host.to_owned()));
                addrs.push(addr);
            }
        }
        let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(addrs.iter().copied())
            .map_err(ClusterError::Backends)?;
        let (lb, task) = match &cfg.health_check {
            None => (Arc::new(lb), None),
            Some(hc) => {
                let host = cfg
                    .sni
                    .clone()
                    .or_else(|| sni.values().next().cloned())
                    .unwrap_or_default();
                match hc.kind {
                    HealthCheckKind::Tcp => lb.set_health_check(TcpHealthCheck::new()),
                    HealthCheckKind::Http => {
                        let mut check = HttpHealthCheck::new(&host, cfg.tls);
                        check.req.set_uri(http::Uri::from(hc.path.clone()));
                        lb.set_health_check(Box::new(check));
                    }
                }
                lb.health_check_frequency = Some(Duration::from_secs(hc.interval_seconds));
                lb.parallel_health_check = true;
                let task = background_service(&format!("health check {name}"), lb);
                (task.task(), Some(task))
            }
        };
        Ok((
            Cluster {
                name: name.to_owned(),
                lb,
                tls: cfg.tls,
                sni,
                connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
                read_timeout: Duration::from_millis(cfg.read_timeout_ms),
                idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
            },
            task,
        ))
    }

    /// The next healthy peer, avoiding `avoid` (a peer that just failed) when another is healthy.
    pub fn select_peer(&self, avoid: Option<SocketAddr>) -> Result<Box<HttpPeer>> {
        let pick = |skip: Option<SocketAddr>| {
            self.lb.select_with(b"", 256, |b: &Backend, healthy| {
                healthy && (skip.is_none() || b.addr.as_inet() != skip.as_ref())
            })
        };
        let backend = pick(avoid).or_else(|| pick(None)).ok_or_else(|| {
            Error::explain(
                ErrorType::Custom(NO_HEALTHY_PEER),
                format!("cluster {}", self.name),
            )
        })?;
        let addr = backend.addr.as_inet().copied().ok_or_else(|| {
            Error::explain(
                ErrorType::InternalError,
                "unix socket peers are not supported",
            )
        })?;
        let sni = if self.tls {
            self.sni.get(&addr).cloned().unwrap_or_default()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(addr, self.tls, sni);
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        peer.options.write_timeout = Some(self.read_timeout);
        peer.options.idle_timeout = Some(self.idle_timeout);
        Ok(Box::new(peer))
    }

    /// Each peer and whether it is currently healthy.
    pub fn peer_health(&self) -> Vec<(String, bool)> {
        let backends = self.lb.backends();
        backends
            .get_backend()
            .iter()
            .map(|b| (b.addr.to_string(), backends.ready(b)))
            .collect()
    }

    /// A one-peer cluster for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Cluster {
        let cfg = UpstreamConfig {
            peers: vec![crate::config::HostPort::new("127.0.0.1", 1)],
            connect_timeout_ms: 100,
            read_timeout_ms: 100,
            idle_timeout_ms: 100,
            ..UpstreamConfig::default()
        };
        Cluster::from_config("test", &cfg)
            .map(|(c, _)| c)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
