//! Revoked sessions and per-user token generations, in memory, so the proxy path checks revocation without a Redis call.
//!
//! Every instance holds the same set, fed by Redis pub/sub and re-read from
//! Redis after each (re)subscription (`store::revocation_feed`). An entry is
//! kept only as long as a token it covers can still be valid: one access-token
//! lifetime after the revocation, plus [`CLOCK_SKEW_SECONDS`].
//!
//! Whether a token is covered never depends on a clock: a session revocation
//! names the session, and a user revocation names the user's token generation
//! (`gen`, counted up in the user record by every "end all sessions"), so a
//! token minted in the same second as the revocation, on any instance, is
//! judged by its generation alone. Clocks decide only how long entries are kept.

use crate::auth::roles::Roles;
use crate::domain::{SessionId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::open_streams::OpenStreams;

/// How far apart (seconds) the clocks of two instances may be without an entry
/// being dropped while a token it covers is still valid somewhere.
pub(crate) const CLOCK_SKEW_SECONDS: u64 = 60;

/// One revocation, as published and stored: `s <user> <sid> <at>`,
/// `g <user> <gen> <at>`, or `r <user> <gen> <at> <roles>`.
///
/// `at` (seconds, the publisher's clock) only bounds how long the entry is kept.
/// The user form is `g`, not the `u <user> <nbf>` of earlier versions: an
/// instance of either version ignores the other's form instead of misreading a
/// time as a generation (docs/upgrading.md).
///
/// A role change publishes `r` and then `g` of the same generation: `r` lets
/// open streams be judged by the new roles (`open_streams`), and
/// `g` is what instances from before `r` act on, so they still refuse the
/// old tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revocation {
    /// Every token of one session is revoked.
    Session {
        /// Whose.
        user: UserId,
        /// Which.
        sid: SessionId,
        /// When.
        at: u64,
    },
    /// Every token of the user whose generation is below `gen` is revoked.
    User {
        /// Whose.
        user: UserId,
        /// The user's generation after the revocation: tokens minted from now on carry it.
        gen: u64,
        /// When.
        at: u64,
    },
    /// The user's roles changed: tokens below `gen` are refused, as for
    /// `User`; a stream ends only if it was opened with a role not in `roles`.
    Roles {
        /// Whose.
        user: UserId,
        /// The user's generation after the change.
        gen: u64,
        /// When.
        at: u64,
        /// The roles from `gen` on.
        roles: Roles,
    },
}

impl Revocation {
    /// The wire form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Revocation::Session { user, sid, at } => format!("s {} {sid} {at}", user.get()),
            Revocation::User { user, gen, at } => format!("g {} {gen} {at}", user.get()),
            Revocation::Roles {
                user,
                gen,
                at,
                roles,
            } => format!("r {} {gen} {at} {}", user.get(), roles.as_str()),
        }
    }

    /// Parse the wire form; anything else is ignored by the caller.
    pub(crate) fn decode(s: &str) -> Option<Revocation> {
        let mut parts = s.split(' ');
        let kind = parts.next()?;
        let user = UserId::new(parts.next()?.parse().ok()?);
        let r = match kind {
            "s" => Revocation::Session {
                user,
                sid: SessionId::parse(parts.next()?)?,
                at: parts.next()?.parse().ok()?,
            },
            "g" => Revocation::User {
                user,
                gen: parts.next()?.parse().ok()?,
                at: parts.next()?.parse().ok()?,
            },
            "r" => Revocation::Roles {
                user,
                gen: parts.next()?.parse().ok()?,
                at: parts.next()?.parse().ok()?,
                roles: Roles::from_stored(parts.next()?).ok()?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(r)
    }

    /// Whether a token (or a stream opened with one) of `id` is covered.
    pub(crate) fn covers(&self, id: &Identity) -> bool {
        match *self {
            Revocation::Session { user, sid, .. } => id.user == user && id.sid == Some(sid),
            Revocation::User { user, gen, .. } | Revocation::Roles { user, gen, .. } => {
                id.user == user && id.gen < gen
            }
        }
    }

    /// The metric label of what it ended.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Revocation::Session { .. } => "session_revoked",
            Revocation::User { .. } => "user_revoked",
            Revocation::Roles { .. } => "roles_changed",
        }
    }

    /// Whose tokens and streams it covers.
    pub(crate) fn user(&self) -> UserId {
        match self {
            Revocation::Session { user, .. }
            | Revocation::User { user, .. }
            | Revocation::Roles { user, .. } => *user,
        }
    }

    /// When the revocation was made (seconds).
    pub(crate) fn at(&self) -> u64 {
        match self {
            Revocation::Session { at, .. }
            | Revocation::User { at, .. }
            | Revocation::Roles { at, .. } => *at,
        }
    }

    /// The order a re-read applies revocations in: by generation, and a role
    /// change before the `g` of its own generation, so that `g` finds the
    /// streams the new roles keep already judged. Not by `at`:
    /// instances' clocks differ, generations are counted in one place.
    pub(crate) fn replay_order(&self) -> (u64, u8) {
        match self {
            Revocation::Session { .. } => (0, 0),
            Revocation::Roles { gen, .. } => (*gen, 0),
            Revocation::User { gen, .. } => (*gen, 1),
        }
    }
}

/// What a verified access token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The user.
    pub user: UserId,
    /// The session the token belongs to (absent in tokens issued before sessions existed).
    pub sid: Option<SessionId>,
    /// The user's token generation when it was minted (0 in tokens from before generations).
    pub gen: u64,
    /// The user's roles when it was minted. A role change counts the
    /// generation up, so a token's roles are never older than its generation.
    pub roles: Roles,
}

#[derive(Default)]
struct Sets {
    /// (user, session) -> drop the entry after this time.
    sessions: HashMap<(u64, u128), u64>,
    /// user -> (lowest generation still valid, drop after).
    users: HashMap<u64, (u64, u64)>,
}

/// The in-memory revocation set of this instance.
pub(crate) struct Revocations {
    sets: RwLock<Sets>,
    /// False while both sets are empty: the common case costs one atomic load.
    any: AtomicBool,
    access_ttl: u64,
    /// Since when (seconds) the feed has been down; 0 while it is up.
    down_since: AtomicU64,
    /// The streams a revocation must end as it is learnt.
    streams: Arc<OpenStreams>,
}

impl Revocations {
    /// An empty set for tokens that live `access_ttl` seconds; the feed counts
    /// as down until it first synchronises.
    pub(crate) fn new(access_ttl: u64, now: u64) -> Self {
        Revocations {
            sets: RwLock::new(Sets::default()),
            any: AtomicBool::new(false),
            access_ttl,
            down_since: AtomicU64::new(now.max(1)),
            streams: Arc::default(),
        }
    }

    /// This instance's open streams.
    pub(crate) fn streams(&self) -> &Arc<OpenStreams> {
        &self.streams
    }

    /// Record a revocation (from this instance or from the feed), and end
    /// the open streams it covers.
    pub(crate) fn apply(&self, r: Revocation) {
        // Recorded before the streams are scanned: a stream registering
        // meanwhile checks the set after registering (`proxy::streams`), so
        // one of the two sees it.
        self.record(&r);
        self.streams.revoke(&r);
    }

    fn record(&self, r: &Revocation) {
        // A token issued before `at` is valid through `at + ttl` on its
        // issuer's clock, which may be ahead of this one.
        let drop_after = r.at() + self.access_ttl + 1 + CLOCK_SKEW_SECONDS;
        let Ok(mut sets) = self.sets.write() else {
            return;
        };
        match r {
            Revocation::Session { user, sid, .. } => {
                let e = sets.sessions.entry((user.get(), sid.0)).or_insert(0);
                *e = (*e).max(drop_after);
            }
            Revocation::User { user, gen, .. } | Revocation::Roles { user, gen, .. } => {
                let e = sets.users.entry(user.get()).or_insert((0, 0));
                *e = (e.0.max(*gen), e.1.max(drop_after));
            }
        }
        self.any.store(true, Ordering::Release);
    }

    /// Whether a token with this identity has been revoked.
    pub(crate) fn is_revoked(&self, id: &Identity) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let Ok(sets) = self.sets.read() else {
            // A poisoned lock means a panic mid-update: refuse rather than guess.
            return true;
        };
        if let Some(sid) = id.sid {
            if sets.sessions.contains_key(&(id.user.get(), sid.0)) {
                return true;
            }
        }
        sets.users
            .get(&id.user.get())
            .is_some_and(|(gen, _)| id.gen < *gen)
    }

    /// Drop entries no valid token can be covered by any more.
    pub(crate) fn prune(&self, now: u64) {
        let Ok(mut sets) = self.sets.write() else {
            return;
        };
        sets.sessions.retain(|_, drop_after| *drop_after > now);
        sets.users.retain(|_, (_, drop_after)| *drop_after > now);
        let any = !sets.sessions.is_empty() || !sets.users.is_empty();
        self.any.store(any, Ordering::Release);
    }

    /// Entries held now (for metrics and tests).
    pub(crate) fn len(&self) -> usize {
        self.sets
            .read()
            .map_or(0, |s| s.sessions.len() + s.users.len())
    }

    /// Whether nothing is held.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The feed is following the channel again (after a full re-read).
    pub(crate) fn feed_up(&self) {
        self.down_since.store(0, Ordering::Release);
    }

    /// The feed lost its subscription at `now`.
    pub(crate) fn feed_down(&self, now: u64) {
        let _ =
            self.down_since
                .compare_exchange(0, now.max(1), Ordering::AcqRel, Ordering::Acquire);
    }

    /// How long the feed has been down, if it is.
    pub(crate) fn feed_down_for(&self, now: u64) -> Option<u64> {
        match self.down_since.load(Ordering::Acquire) {
            0 => None,
            since => Some(now.saturating_sub(since)),
        }
    }

    /// Whether revocations may have been missed: the feed has been down longer
    /// than a token lives, so a revoked token may pass here.
    pub(crate) fn stale(&self, now: u64) -> bool {
        self.feed_down_for(now).is_some_and(|d| d > self.access_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: u64, sid: Option<u128>, gen: u64) -> Identity {
        Identity {
            user: UserId::new(user),
            sid: sid.map(SessionId),
            gen,
            roles: Roles::NONE,
        }
    }

    #[test]
    fn wire_form_round_trips() {
        for r in [
            Revocation::Session {
                user: UserId::new(7),
                sid: SessionId(0xabc),
                at: 100,
            },
            Revocation::User {
                user: UserId::new(7),
                gen: 3,
                at: 100,
            },
            Revocation::Roles {
                user: UserId::new(7),
                gen: 4,
                at: 100,
                roles: Roles::from_names(&["staff", "admin"]).unwrap(),
            },
            Revocation::Roles {
                user: UserId::new(7),
                gen: 5,
                at: 100,
                roles: Roles::NONE,
            },
        ] {
            assert_eq!(Revocation::decode(&r.encode()), Some(r.clone()), "{r:?}");
        }
        for bad in [
            "",
            "s 7",
            "x 7 1",
            "u x 1",
            "s 7 zz 1",
            "g 7 1",
            "g 7 1 2 extra",
            "r 7 1 2",
            "r 7 1 2 Not-A-Role",
            "r 7 1 2 admin extra",
            // The time-based user form of earlier versions is not misread as a generation.
            "u 7 1700000000",
        ] {
            assert_eq!(Revocation::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn sessions_and_generations_are_revoked_until_their_tokens_expire() {
        let r = Revocations::new(30, 1000);
        assert!(!r.is_revoked(&id(7, Some(1), 0)));
        r.apply(Revocation::Session {
            user: UserId::new(7),
            sid: SessionId(1),
            at: 1000,
        });
        assert!(r.is_revoked(&id(7, Some(1), 0)));
        assert!(!r.is_revoked(&id(7, Some(2), 0)), "other session");
        assert!(!r.is_revoked(&id(8, Some(1), 0)), "other user, same sid");
        r.apply(Revocation::User {
            user: UserId::new(9),
            gen: 2,
            at: 1000,
        });
        assert!(
            r.is_revoked(&id(9, None, 0)),
            "a token from before generations"
        );
        assert!(r.is_revoked(&id(9, Some(3), 1)));
        assert!(
            !r.is_revoked(&id(9, Some(3), 2)),
            "minted at the new generation"
        );
        // An older revocation arriving late does not lower the generation.
        r.apply(Revocation::User {
            user: UserId::new(9),
            gen: 1,
            at: 1001,
        });
        assert!(r.is_revoked(&id(9, Some(3), 1)));
        let keep = 1000 + 30 + CLOCK_SKEW_SECONDS;
        r.prune(keep);
        assert_eq!(r.len(), 2, "still within one token lifetime and the skew");
        r.prune(keep + 2);
        assert!(r.is_empty());
        assert!(!r.is_revoked(&id(7, Some(1), 0)));
    }

    #[test]
    fn a_role_change_refuses_older_tokens_and_replays_before_its_g() {
        let r = Revocations::new(30, 1000);
        let roles = Revocation::Roles {
            user: UserId::new(9),
            gen: 4,
            at: 1000,
            roles: Roles::NONE,
        };
        r.apply(roles.clone());
        assert!(r.is_revoked(&id(9, Some(1), 3)));
        assert!(!r.is_revoked(&id(9, Some(1), 4)));
        let g = |gen| Revocation::User {
            user: UserId::new(9),
            gen,
            at: 2000 - gen,
        };
        // The sorted set gives `g 9 4` before `r 9 4`, and a clock ahead may
        // date an older generation later: replayed by generation, `r` first.
        let mut kept = vec![g(4), roles.clone(), g(3)];
        kept.sort_by_key(Revocation::replay_order);
        assert_eq!(kept, [g(3), roles, g(4)]);
    }

    #[test]
    fn feed_staleness() {
        let r = Revocations::new(30, 1000);
        assert!(!r.stale(1030));
        assert!(r.stale(1031));
        r.feed_up();
        assert!(!r.stale(5000));
        r.feed_down(5000);
        r.feed_down(5010);
        assert_eq!(r.feed_down_for(5020), Some(20));
    }
}
