//! Upstream clusters: peers load-balanced round robin by pingora-load-balancing, optionally health-checked.

use crate::config::{HealthCheckKind, UpstreamConfig, UpstreamProtocol};
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

use super::ejection::Ejections;
use super::failure::NO_HEALTHY_PEER;
use super::grpc_health::GrpcHealthCheck;

/// The background task that health-checks one cluster.
pub(crate) type HealthCheckTask = GenBackgroundService<LoadBalancer<RoundRobin>>;

/// A named set of peers.
pub(crate) struct Cluster {
    /// Name from the config.
    pub name: String,
    lb: Arc<LoadBalancer<RoundRobin>>,
    tls: bool,
    /// HTTP versions for the peer options: (max, min).
    http_versions: (u8, u8),
    /// SNI per resolved address: the configured `sni`, or the host the peer was written with.
    sni: HashMap<SocketAddr, String>,
    connect_timeout: Duration,
    read_timeout: Duration,
    idle_timeout: Duration,
    /// Peers skipped for a while after a refused or reset connect (passive health).
    ejections: Ejections,
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
    pub(crate) fn from_config(
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
                    HealthCheckKind::Grpc => {
                        let sni = if cfg.tls { host.clone() } else { String::new() };
                        let template = peer_template(
                            HttpPeer::new("0.0.0.0:0", cfg.tls, sni),
                            cfg,
                            http_versions(cfg.protocol),
                        );
                        lb.set_health_check(GrpcHealthCheck::new(template, &host, &hc.service));
                    }
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
                http_versions: http_versions(cfg.protocol),
                sni,
                connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
                read_timeout: Duration::from_millis(cfg.read_timeout_ms),
                idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
                ejections: Ejections::new(&addrs),
            },
            task,
        ))
    }

    /// The next healthy peer, avoiding `avoid` (a peer that just failed) when
    /// another is healthy, and ejected peers (`eject`) while another is not.
    pub(crate) fn select_peer(&self, avoid: Option<SocketAddr>) -> Result<Box<HttpPeer>> {
        let pick = |skip: Option<SocketAddr>, ejected_at: Option<u64>| {
            self.lb.select_with(b"", 256, |b: &Backend, healthy| {
                let addr = b.addr.as_inet();
                healthy
                    && (skip.is_none() || addr != skip.as_ref())
                    && ejected_at
                        .is_none_or(|now| addr.is_none_or(|a| !self.ejections.is_ejected(a, now)))
            })
        };
        let backend = match self.ejections.active() {
            // The usual case: nothing ejected, one atomic load.
            None => pick(avoid, None).or_else(|| pick(None, None)),
            // A peer that is not ejected first, even the one to avoid: it failed
            // on a connection, the ejected ones on connecting. With every
            // healthy peer ejected, the ejections are ignored rather than
            // turning them all into 503s.
            now @ Some(_) => pick(avoid, now)
                .or_else(|| pick(None, now))
                .or_else(|| pick(avoid, None))
                .or_else(|| pick(None, None)),
        }
        .ok_or_else(|| {
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
        peer.options
            .set_http_version(self.http_versions.0, self.http_versions.1);
        Ok(Box::new(peer))
    }

    /// How many peers the cluster has (resolved addresses).
    pub(crate) fn peer_count(&self) -> usize {
        self.ejections.len()
    }

    /// Skip `peer` for `ejection::EJECT_FOR`: its connect was refused or reset.
    pub(crate) fn eject(&self, peer: SocketAddr) {
        if self.ejections.eject(&peer) {
            log::warn!(
                "cluster {}: peer {peer} ejected for {:?} after a failed connect",
                self.name,
                super::ejection::EJECT_FOR
            );
            crate::metrics::METRICS
                .peer_ejections
                .with_label_values(&[self.name.as_str(), peer.to_string().as_str()])
                .inc();
        }
    }

    /// Each peer and whether it is currently healthy.
    pub(crate) fn peer_health(&self) -> Vec<(String, bool)> {
        let backends = self.lb.backends();
        backends
            .get_backend()
            .iter()
            .map(|b| (b.addr.to_string(), backends.ready(b)))
            .collect()
    }

    /// A one-peer cluster for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Cluster {
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

/// HTTP versions for the peer options: (max, min).
fn http_versions(protocol: UpstreamProtocol) -> (u8, u8) {
    match protocol {
        UpstreamProtocol::Http1 => (1, 1),
        // Over plain TCP, min 2 makes Pingora's connector speak h2c with
        // prior knowledge (no Upgrade dance), as gRPC servers expect.
        UpstreamProtocol::H2 => (2, 2),
        UpstreamProtocol::Auto => (2, 1),
    }
}

/// `peer` with the cluster's timeouts and HTTP versions, as `select_peer` sets them.
fn peer_template(mut peer: HttpPeer, cfg: &UpstreamConfig, versions: (u8, u8)) -> HttpPeer {
    peer.options.connection_timeout = Some(Duration::from_millis(cfg.connect_timeout_ms));
    peer.options.read_timeout = Some(Duration::from_millis(cfg.read_timeout_ms));
    peer.options.write_timeout = Some(Duration::from_millis(cfg.read_timeout_ms));
    peer.options.idle_timeout = Some(Duration::from_millis(cfg.idle_timeout_ms));
    peer.options.set_http_version(versions.0, versions.1);
    peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostPort;
    use pingora_core::upstreams::peer::Peer;

    fn two_peers() -> Cluster {
        let cfg = UpstreamConfig {
            peers: vec![HostPort::new("127.0.0.1", 1), HostPort::new("127.0.0.1", 2)],
            ..UpstreamConfig::default()
        };
        Cluster::from_config("two", &cfg)
            .map(|(c, _)| c)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn picked(c: &Cluster, avoid: Option<SocketAddr>) -> SocketAddr {
        let peer = c.select_peer(avoid).unwrap_or_else(|e| panic!("{e}"));
        *peer.address().as_inet().expect("an inet peer")
    }

    #[test]
    fn an_ejected_peer_is_skipped_until_every_peer_is() {
        let c = two_peers();
        let (one, two): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        c.eject(one);
        for _ in 0..6 {
            assert_eq!(picked(&c, None), two);
        }
        // The peer to avoid failed on a connection, the ejected one on
        // connecting: the former is the better bet.
        assert_eq!(picked(&c, Some(two)), two);
        // Every peer ejected: the ejections are ignored, not a 503.
        c.eject(two);
        let both: Vec<SocketAddr> = (0..4).map(|_| picked(&c, None)).collect();
        assert!(both.contains(&one) && both.contains(&two), "{both:?}");
        assert_eq!(c.peer_count(), 2);
    }
}
