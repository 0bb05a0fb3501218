//! Passive health: a peer whose connect was refused or reset is skipped for a while, without waiting for the next active check.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an ejected peer is skipped. Long enough that a dead peer costs a
/// connect attempt (and a retry) only every few seconds, short enough that a
/// peer back from a restart gets traffic soon even without an active check.
pub(super) const EJECT_FOR: Duration = Duration::from_secs(5);

/// When each peer of one cluster may be picked again, in milliseconds since
/// `epoch` (0: never ejected). A fixed list of atomics: `select_peer` reads it
/// on every request without a lock or an allocation.
pub(super) struct Ejections {
    epoch: Instant,
    /// The latest end of any ejection: while it is past, nothing is ejected and
    /// `select_peer` skips the per-peer look-up (one load per request).
    any_until: AtomicU64,
    until: Box<[(SocketAddr, AtomicU64)]>,
}

impl Ejections {
    /// No peer of `peers` ejected.
    pub(super) fn new(peers: &[SocketAddr]) -> Self {
        Ejections {
            epoch: Instant::now(),
            any_until: AtomicU64::new(0),
            until: peers.iter().map(|a| (*a, AtomicU64::new(0))).collect(),
        }
    }

    /// How many peers are tracked.
    pub(super) fn len(&self) -> usize {
        self.until.len()
    }

    fn now_ms(&self) -> u64 {
        // +1 so that "now" is never 0, the value meaning "never ejected".
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// The current time when some peer may be ejected now; `None` (the usual
    /// answer, from one atomic load) when none is.
    pub(super) fn active(&self) -> Option<u64> {
        let any = self.any_until.load(Ordering::Relaxed);
        if any == 0 {
            return None;
        }
        let now = self.now_ms();
        (now < any).then_some(now)
    }

    /// Whether `addr` is ejected at `now` (from `active`).
    pub(super) fn is_ejected(&self, addr: &SocketAddr, now: u64) -> bool {
        self.until
            .iter()
            .any(|(a, until)| a == addr && now < until.load(Ordering::Relaxed))
    }

    /// Skip `addr` for `EJECT_FOR`; true when it was not ejected already (a new
    /// ejection, worth counting), false for an unknown address or a renewal.
    pub(super) fn eject(&self, addr: &SocketAddr) -> bool {
        let Some((_, until)) = self.until.iter().find(|(a, _)| a == addr) else {
            return false;
        };
        let now = self.now_ms();
        let end = now.saturating_add(u64::try_from(EJECT_FOR.as_millis()).unwrap_or(u64::MAX));
        let before = until.swap(end, Ordering::Relaxed);
        self.any_until.fetch_max(end, Ordering::Relaxed);
        before <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ejected_peer_is_skipped_and_only_it() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let e = Ejections::new(&[a, b]);
        assert!(e.active().is_none());
        assert!(e.eject(&a), "a first ejection counts");
        assert!(!e.eject(&a), "a renewal does not");
        let now = e.active().expect("an ejection is active");
        assert!(e.is_ejected(&a, now));
        assert!(!e.is_ejected(&b, now));
        let later = now + u64::try_from(EJECT_FOR.as_millis()).unwrap() + 1;
        assert!(!e.is_ejected(&a, later), "ejections end");
        let unknown: SocketAddr = "127.0.0.1:3".parse().unwrap();
        assert!(!e.eject(&unknown));
    }
}
