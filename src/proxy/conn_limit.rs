//! Connection caps checked at accept: one for the whole process, one per client address, each refusal counted by reason.
//!
//! Without them a client can hold as many connections as the process has file
//! descriptors, each pinning memory (and, mid-request, an upstream
//! connection). A refused connection is closed before anything is read from
//! it. The per-address count keys on the TCP peer: at accept there is no
//! request, so no `X-Forwarded-For` to believe.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was refused: the `reason` label of `authgate_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `limits.max_connections` are open.
    Total,
    /// `limits.max_connections_per_ip` are open from this address.
    PerIp,
}

impl Refusal {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerIp => "max_connections_per_ip",
        }
    }
}

/// The caps and the connections they count; `None` is no cap.
#[derive(Debug, Default)]
pub(crate) struct ConnectionLimits {
    max_total: Option<usize>,
    max_per_ip: Option<usize>,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// An admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub(crate) struct Permit {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    /// Caps as configured.
    pub(crate) fn new(max_total: Option<usize>, max_per_ip: Option<usize>) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            ..ConnectionLimits::default()
        })
    }

    /// Admit a connection from `peer` (`None`: not an IP socket, only the
    /// total applies), or say why not.
    pub(crate) fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Permit, Refusal> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        if self.max_total.is_some_and(|max| before >= max) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        let ip = match (self.max_per_ip, peer) {
            (Some(max), Some(ip)) => {
                let ip = ip.to_canonical();
                let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
                let n = map.entry(ip).or_insert(0);
                if *n >= max {
                    drop(map);
                    self.total.fetch_sub(1, Ordering::AcqRel);
                    return Err(Refusal::PerIp);
                }
                *n += 1;
                Some(ip)
            }
            _ => None,
        };
        Ok(Permit {
            limits: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut map = self
                .limits
                .per_ip
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn each_cap_refuses_and_a_closed_connection_frees_its_place() {
        let l = ConnectionLimits::new(Some(3), Some(2));
        let a1 = l.admit(ip("10.0.0.1")).unwrap();
        let _a2 = l.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(l.admit(ip("10.0.0.1")).unwrap_err(), Refusal::PerIp);
        let _b = l.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(l.admit(ip("10.0.0.3")).unwrap_err(), Refusal::Total);
        drop(a1);
        let _a3 = l.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(l.admit(None).unwrap_err(), Refusal::Total);
    }

    #[test]
    fn no_caps_admit_everything_and_keep_no_addresses() {
        let l = ConnectionLimits::new(None, None);
        let permits: Vec<_> = (0..100).map(|_| l.admit(ip("10.0.0.1")).unwrap()).collect();
        assert!(l.per_ip.lock().unwrap().is_empty());
        drop(permits);
        assert_eq!(l.total.load(Ordering::Acquire), 0);
    }
}
