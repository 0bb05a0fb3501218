//! Caps on open WebSockets per user and per client address (`limits.max_websockets_per_user`, `limits.max_websockets_per_ip`), counted on this instance.
//!
//! A slot is taken when the upgrade is admitted, before anything goes up, and
//! given back when the request ends (its `Slot` is dropped with the request's
//! context), so concurrent upgrades cannot overshoot the cap between the
//! check and the 101. Counts are per instance: N instances let a user hold up
//! to N times the cap (docs/websockets.md).

use crate::domain::UserId;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which cap refused an upgrade (the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CapRefusal {
    /// The user holds `max_websockets_per_user` already.
    PerUser,
    /// The client address holds `max_websockets_per_ip` already.
    PerIp,
}

impl CapRefusal {
    /// The label of `authgate_websocket_refusals_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            CapRefusal::PerUser => "max_websockets_per_user",
            CapRefusal::PerIp => "max_websockets_per_ip",
        }
    }
}

#[derive(Default)]
struct Counts {
    users: HashMap<UserId, usize>,
    ips: HashMap<IpAddr, usize>,
}

/// The caps and this instance's open WebSockets under them.
pub(crate) struct WebSocketCaps {
    per_user: Option<usize>,
    per_ip: Option<usize>,
    counts: Mutex<Counts>,
}

/// One open (or opening) WebSocket's place under the caps; dropping it gives the place back.
pub(crate) struct Slot {
    caps: Arc<WebSocketCaps>,
    user: Option<UserId>,
    ip: Option<IpAddr>,
}

fn give_back<K: Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = map.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.caps.counts.lock() {
            if let Some(u) = self.user {
                give_back(&mut c.users, u);
            }
            if let Some(ip) = self.ip {
                give_back(&mut c.ips, ip);
            }
        }
    }
}

impl WebSocketCaps {
    /// Caps of `per_user` and `per_ip` open WebSockets (none: no cap).
    pub(crate) fn new(per_user: Option<usize>, per_ip: Option<usize>) -> Arc<Self> {
        Arc::new(WebSocketCaps {
            per_user,
            per_ip,
            counts: Mutex::default(),
        })
    }

    /// Take a place for a WebSocket of `user` (none: a public route) from
    /// `ip`, or say which cap is full. No cap set: no slot is needed.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        user: Option<UserId>,
        ip: Option<IpAddr>,
    ) -> Result<Option<Slot>, CapRefusal> {
        if self.per_user.is_none() && self.per_ip.is_none() {
            return Ok(None);
        }
        let Ok(mut c) = self.counts.lock() else {
            return Ok(None);
        };
        let user = user.filter(|_| self.per_user.is_some());
        let ip = ip.filter(|_| self.per_ip.is_some());
        if let (Some(u), Some(cap)) = (user, self.per_user) {
            if c.users.get(&u).copied().unwrap_or(0) >= cap {
                return Err(CapRefusal::PerUser);
            }
        }
        if let (Some(a), Some(cap)) = (ip, self.per_ip) {
            if c.ips.get(&a).copied().unwrap_or(0) >= cap {
                return Err(CapRefusal::PerIp);
            }
        }
        if let Some(u) = user {
            *c.users.entry(u).or_default() += 1;
        }
        if let Some(a) = ip {
            *c.ips.entry(a).or_default() += 1;
        }
        Ok(Some(Slot {
            caps: Arc::clone(self),
            user,
            ip,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_refuses_past_its_count_and_a_dropped_slot_frees_its_place() {
        let caps = WebSocketCaps::new(Some(2), Some(3));
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = caps.acquire(Some(UserId::new(1)), Some(ip)).unwrap();
        let _b = caps.acquire(Some(UserId::new(1)), Some(ip)).unwrap();
        assert_eq!(
            caps.acquire(Some(UserId::new(1)), Some(ip)).err(),
            Some(CapRefusal::PerUser)
        );
        let _c = caps.acquire(Some(UserId::new(2)), Some(ip)).unwrap();
        assert_eq!(
            caps.acquire(Some(UserId::new(3)), Some(ip)).err(),
            Some(CapRefusal::PerIp)
        );
        drop(a);
        assert!(caps.acquire(Some(UserId::new(1)), Some(ip)).is_ok());
        assert!(WebSocketCaps::new(None, None)
            .acquire(None, None)
            .unwrap()
            .is_none());
    }
}
