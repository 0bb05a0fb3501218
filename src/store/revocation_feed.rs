//! Revocations between instances: published (a sorted set kept for a token lifetime, and a pub/sub message), and followed by every instance (pub/sub, re-read in full after each (re)subscription).

use super::{Store, StoreError};
use crate::auth::access::now_unix;
use crate::auth::revocations::{Revocation, Revocations, CLOCK_SKEW_SECONDS};
use crate::metrics::METRICS;
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// Seconds between full re-reads while following.
const RESYNC_EVERY_TICKS: u64 = 5;

impl Store {
    /// Tell every instance (and this one's future re-reads) about revocations:
    /// kept in a sorted set for one access-token lifetime, and published.
    pub(crate) async fn publish_revocations(
        &self,
        revocations: &[Revocation],
        access_ttl_s: u64,
        now_s: u64,
    ) -> Result<(), StoreError> {
        if revocations.is_empty() {
            return Ok(());
        }
        let key = self.keys.revocations();
        let mut pipe = redis::pipe();
        for r in revocations {
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(r.at())
                .arg(r.encode())
                .ignore();
        }
        // Kept for a token lifetime past the revocation, and as long again as
        // another instance's clock may be behind this one's.
        let keep = access_ttl_s + 1 + CLOCK_SKEW_SECONDS;
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({}", now_s.saturating_sub(keep)))
            .ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(keep + 1).ignore();
        for r in revocations {
            pipe.cmd("PUBLISH").arg(&key).arg(r.encode()).ignore();
        }
        self.redis.pipeline(&pipe).await
    }

    /// Every revocation still kept, for a re-synchronising feed. The whole set,
    /// not a window by this instance's clock: writers keep it pruned, and applying
    /// an old entry again is harmless (what it covers has expired or is revoked).
    pub(crate) async fn recent_revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let entries: Vec<String> = self
            .redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.keys.revocations())
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        Ok(entries
            .iter()
            .filter_map(|e| Revocation::decode(e))
            .collect())
    }
}

/// A background service that keeps this instance's revocation set current.
pub(crate) struct RevocationFeed {
    /// A store of its own: its connections live on the feed's runtime, not the proxy's.
    store: Store,
    revocations: Arc<Revocations>,
}

impl RevocationFeed {
    /// Feed `revocations` from `store`.
    pub(crate) fn new(store: Store, revocations: Arc<Revocations>) -> Self {
        RevocationFeed { store, revocations }
    }

    /// Apply every revocation still kept, in `Revocation::replay_order`
    /// (the sorted set orders a role change's `g` before its `r`).
    async fn replay(&self) -> Result<(), StoreError> {
        let mut kept = self.store.recent_revocations().await?;
        kept.sort_by_key(Revocation::replay_order);
        for r in kept {
            self.revocations.apply(r);
        }
        Ok(())
    }

    /// Subscribe, then re-read what is kept of what was published
    /// (in this order, so nothing published in between is missed), then follow.
    async fn follow(&self) -> Result<(), StoreError> {
        let mut pubsub = self.store.redis.pubsub().await?;
        pubsub.subscribe(self.store.keys.revocations()).await?;
        self.replay().await?;
        self.revocations.feed_up();
        METRICS.revocation_feed_up.set(1);
        log::info!("revocation feed: following");
        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else {
                        return Err(StoreError::Unavailable("subscription closed".into()));
                    };
                    match msg.get_payload::<String>().ok().as_deref().and_then(Revocation::decode) {
                        Some(r) => self.revocations.apply(r),
                        None => log::warn!("revocation feed: ignoring a message of unknown form"),
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    // A subscription can go quiet without closing (a half-dead
                    // connection): re-read the sorted set over the ordinary
                    // connection every few seconds, and treat a failure as the
                    // feed being down.
                    if ticks.is_multiple_of(RESYNC_EVERY_TICKS) {
                        self.replay().await?;
                    }
                    self.revocations.prune(now_unix());
                    METRICS.revocations_held.set(self.revocations.len() as i64);
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for RevocationFeed {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = std::time::Instant::now();
            tokio::select! {
                r = self.follow() => {
                    if let Err(e) = r {
                        log::warn!("revocation feed: {e}; reconnecting");
                    }
                }
                _ = shutdown.changed() => return,
            }
            self.revocations.feed_down(now_unix());
            METRICS.revocation_feed_up.set(0);
            if started.elapsed() > Duration::from_secs(5) {
                backoff = Duration::from_millis(100);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}
