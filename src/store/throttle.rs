//! Throttle counters, shared by every instance: a sliding window approximated by
//! two fixed buckets, the previous one weighted by how much of it still lies
//! inside the window (as Cloudflare's and nginx-plus's sliding-window limiters do).
//!
//! One bucket is one key, `thr:{<scope>:<sha256 of subject>}:<bucket number>`,
//! counted with INCR and expiring two windows after it was last counted, so
//! nothing is ever locked for good. An attempt is checked and counted in one
//! script per counter ([`Store::throttle_reserve`]), all sent at once: one round
//! trip, and of concurrent attempts no more pass than the limit allows, on any
//! number of instances. A counter's buckets share a hash tag and no script needs
//! two counters in one slot, so the calls work on Redis Cluster.

use super::{Store, StoreError};
use crate::config::Rate;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Check and count one event in one step: with the previous bucket `KEYS[1]` and
/// the current `KEYS[2]`, count it (INCR, expire after `ARGV[4]` s) unless the
/// window's estimate is at the limit `ARGV[1]` (window `ARGV[2]` ms, `ARGV[3]` ms into
/// the bucket). Answers `{counted (1/0), prev, curr}`.
static RESERVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local prev = tonumber(redis.call('GET', KEYS[1]) or '0')
local curr = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit, w, into = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if prev * (1 - into / w) + curr >= limit then return {0, prev, curr} end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {1, prev, curr}",
    )
});

/// Take back one event counted in `KEYS[1]`, never below zero.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0",
    )
});

/// Events counted by [`Store::throttle_reserve`]: the bucket key of each, so it
/// can be taken back ([`Store::throttle_release`]) when the attempt turns out
/// not to be one the rule counts (a correct password, for a failure rule).
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    /// (the counter's scope, the bucket key counted).
    keys: Vec<(&'static str, String)>,
}

impl Reserved {
    /// The events counted by the counters of `scopes`, taken out of this set.
    pub(crate) fn take(&mut self, scopes: &[&str]) -> Reserved {
        let (taken, kept) = std::mem::take(&mut self.keys)
            .into_iter()
            .partition(|(scope, _)| scopes.contains(scope));
        self.keys = kept;
        Reserved { keys: taken }
    }
}

/// Events of one kind (`scope`) by one subject (an account, an IP...), limited by `rate`.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    scope: &'static str,
    /// Hex SHA-256 of the subject: key names carry no email or address.
    subject: String,
    rate: Rate,
}

impl Counter {
    /// The counter of `scope` for `subject`.
    pub(crate) fn new(scope: &'static str, subject: &str, rate: Rate) -> Counter {
        Counter {
            scope,
            subject: hex::encode(Sha256::digest(subject.as_bytes())),
            rate,
        }
    }

    fn window_ms(&self) -> u64 {
        self.rate.window_seconds * 1000
    }

    /// The current bucket's number and how far into it `now_ms` is.
    fn position(&self, now_ms: u64) -> (u64, u64) {
        let w = self.window_ms();
        (now_ms / w, now_ms % w)
    }

    /// The key of bucket `n`.
    fn key(&self, store: &Store, n: u64) -> String {
        store.keys.throttle(self.scope, &self.subject, n)
    }
}

/// Seconds until `rate` lets one more event through, given `prev` events in the
/// previous bucket and `curr` in the current one, `into_ms` into it; `None` when
/// it lets one through now. The estimate of the events in the window ending
/// now is `prev * (1 - into/window) + curr`.
pub(crate) fn wait_seconds(rate: Rate, prev: u64, curr: u64, into_ms: u64) -> Option<u64> {
    let (w, limit) = ((rate.window_seconds * 1000) as f64, rate.limit as f64);
    let (prev, curr, t) = (prev as f64, curr as f64, into_ms as f64);
    if prev * (1.0 - t / w) + curr < limit {
        return None;
    }
    let wait_ms = if curr < limit {
        // Later in this bucket, once the previous one weighs little enough
        // (prev > 0 here, or the estimate would be below the limit).
        w * (1.0 - (limit - curr) / prev) - t
    } else {
        // In the next bucket, once this one (then the previous) weighs little enough.
        (w - t) + w * (1.0 - limit / curr)
    };
    // Strictly past the moment the estimate reaches the limit, in whole seconds.
    Some((wait_ms.max(0.0) / 1000.0).floor() as u64 + 1)
}

impl Store {
    /// Check and count one event against each of `counters`, atomically per
    /// counter: `Ok(Ok(reserved))` when every one let it through (each has counted
    /// it), `Ok(Err(seconds))` with the longest wait when any refused (then none
    /// keeps it). One round trip (two when refused).
    pub(crate) async fn throttle_reserve(
        &self,
        counters: &[Counter],
        now_ms: u64,
    ) -> Result<Result<Reserved, u64>, StoreError> {
        if counters.is_empty() {
            return Ok(Ok(Reserved::default()));
        }
        let calls: Vec<(String, redis::ScriptInvocation<'static>)> = counters
            .iter()
            .map(|c| {
                let (n, into) = c.position(now_ms);
                let curr = c.key(self, n);
                let mut call = RESERVE.prepare_invoke();
                call.key(c.key(self, n.saturating_sub(1)))
                    .key(&curr)
                    .arg(c.rate.limit)
                    .arg(c.window_ms())
                    .arg(into)
                    .arg(2 * c.rate.window_seconds);
                (curr, call)
            })
            .collect();
        let answers: Vec<(u8, u64, u64)> = futures_util::future::try_join_all(
            calls.iter().map(|(key, call)| self.redis.invoke(key, call)),
        )
        .await?;
        let mut reserved = Reserved::default();
        let mut wait = None;
        for ((c, (key, _)), (counted, prev, curr)) in counters.iter().zip(&calls).zip(answers) {
            if counted == 1 {
                reserved.keys.push((c.scope, key.clone()));
            } else {
                let w = wait_seconds(c.rate, prev, curr, c.position(now_ms).1).unwrap_or(1);
                wait = Some(wait.map_or(w, |m: u64| m.max(w)));
            }
        }
        match wait {
            None => Ok(Ok(reserved)),
            Some(w) => {
                self.throttle_release(reserved).await?;
                Ok(Err(w))
            }
        }
    }

    /// Take back events counted by [`Store::throttle_reserve`]. One round trip;
    /// none for nothing reserved.
    pub(crate) async fn throttle_release(&self, reserved: Reserved) -> Result<(), StoreError> {
        futures_util::future::try_join_all(reserved.keys.iter().map(|(_, k)| async move {
            self.redis.script::<u8>(&RELEASE, &[k.as_str()], &[]).await
        }))
        .await?;
        Ok(())
    }

    /// Forget `counters` (both buckets of the window ending now). One round trip; none for no counters.
    pub(crate) async fn throttle_clear(
        &self,
        counters: &[Counter],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.each_counter(counters, |pipe, c| {
            let (n, _) = c.position(now_ms);
            pipe.cmd("DEL")
                .arg(c.key(self, n.saturating_sub(1)))
                .arg(c.key(self, n))
                .ignore();
        })
        .await
    }

    /// A pipeline of what `add` writes for each counter, its answers ignored.
    /// A counter's keys share a slot; different counters may not, so each has its
    /// own pipeline, all sent at once (one round trip on either topology).
    async fn each_counter(
        &self,
        counters: &[Counter],
        add: impl Fn(&mut redis::Pipeline, &Counter),
    ) -> Result<(), StoreError> {
        let pipes: Vec<redis::Pipeline> = counters
            .iter()
            .map(|c| {
                let mut pipe = redis::pipe();
                add(&mut pipe, c);
                pipe
            })
            .collect();
        futures_util::future::try_join_all(pipes.iter().map(|p| self.redis.pipeline::<()>(p)))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_PER_100S: Rate = Rate {
        limit: 5,
        window_seconds: 100,
    };

    #[test]
    fn under_the_limit_passes() {
        assert_eq!(wait_seconds(FIVE_PER_100S, 0, 4, 0), None);
        // Half of the previous bucket still counts: 6 * 0.5 + 1 = 4.
        assert_eq!(wait_seconds(FIVE_PER_100S, 6, 1, 50_000), None);
    }

    #[test]
    fn at_the_limit_in_this_bucket_waits_into_the_next() {
        // 5 now, 10 s into the bucket: 90 s to its end; then 5 * (1 - t/100) < 5 at once.
        assert_eq!(wait_seconds(FIVE_PER_100S, 0, 5, 10_000), Some(91));
        // 10 now: the next bucket must be half over too.
        assert_eq!(wait_seconds(FIVE_PER_100S, 0, 10, 10_000), Some(141));
    }

    #[test]
    fn over_through_the_previous_bucket_waits_for_its_weight_to_fall() {
        // 8 * (1 - t/100) + 2 < 5  <=>  t > 62.5 s; 20 s in: 42.5 s more, 43 whole.
        assert_eq!(wait_seconds(FIVE_PER_100S, 8, 2, 20_000), Some(43));
    }

    #[test]
    fn the_wait_lets_exactly_one_more_through() {
        for (prev, curr, into) in [(8, 2, 20_000), (0, 5, 10_000), (7, 4, 50_000), (20, 0, 1)] {
            let wait = wait_seconds(FIVE_PER_100S, prev, curr, into).unwrap();
            let later = into + wait * 1000;
            let (p, c, t) = if later >= 100_000 {
                (curr, 0, later - 100_000)
            } else {
                (prev, curr, later)
            };
            assert_eq!(
                wait_seconds(FIVE_PER_100S, p, c, t),
                None,
                "{prev} {curr} {into}"
            );
            // ... and not a second earlier.
            let sooner = later - 1000;
            let (p, c, t) = if sooner >= 100_000 {
                (curr, 0, sooner - 100_000)
            } else {
                (prev, curr, sooner)
            };
            assert!(
                wait_seconds(FIVE_PER_100S, p, c, t).is_some(),
                "{prev} {curr} {into}"
            );
        }
    }

    #[test]
    fn key_names_hide_the_subject() {
        let c = Counter::new("login_per_account", "ann@example.com", FIVE_PER_100S);
        let store_keys = crate::store::Keys::new("authgate:");
        let key = store_keys.throttle(c.scope, &c.subject, 7);
        assert!(key.starts_with("authgate:thr:{login_per_account:"), "{key}");
        assert!(key.ends_with(":7"), "{key}");
        assert!(!key.contains("ann"), "{key}");
    }
}
