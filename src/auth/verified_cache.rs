//! A bounded cache of access tokens whose signature already checked out, so a client's
//! repeated requests skip the signature check (an HMAC, or an Ed25519/P-256
//! verification at many times its cost: bench/RESULTS.md) and the JSON work. Keyed by
//! the whole token (signature included), so only byte-identical tokens hit; expiry is
//! still checked on every hit, and revocation by the caller after it. One cache per
//! key ring (`access::Current`).

use crate::auth::access::TokenRejection;
use crate::auth::revocations::Identity;
use quick_cache::sync::Cache;

/// Verified tokens: token → (identity, exp).
pub(crate) struct VerifiedCache {
    inner: Option<Cache<Box<str>, (Identity, u64)>>,
}

impl VerifiedCache {
    /// A cache of at most `entries` tokens; 0 disables it.
    pub(crate) fn new(entries: usize) -> Self {
        VerifiedCache {
            inner: (entries > 0).then(|| Cache::new(entries)),
        }
    }

    /// The cached verdict for `token` at time `now`: `None` when not cached.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Result<Identity, TokenRejection>> {
        let (id, exp) = self.inner.as_ref()?.get(token)?;
        // Same rule as the verifier (leeway 0): valid through the second of `exp`.
        Some(if exp < now {
            Err(TokenRejection::Expired)
        } else {
            Ok(id)
        })
    }

    /// Remember a token that verified.
    pub(crate) fn insert(&self, token: &str, id: Identity, exp: u64) {
        if let Some(c) = &self.inner {
            c.insert(token.into(), (id, exp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    #[test]
    fn hits_honour_expiry_and_misses_are_none() {
        let c = VerifiedCache::new(10);
        let id = Identity {
            user: UserId::new(7),
            sid: None,
            gen: 0,
            roles: crate::auth::roles::Roles::NONE,
        };
        c.insert("a.b.c", id.clone(), 100);
        assert_eq!(c.get("a.b.c", 100), Some(Ok(id)));
        assert_eq!(c.get("a.b.c", 101), Some(Err(TokenRejection::Expired)));
        assert_eq!(c.get("a.b.d", 50), None);
        assert_eq!(VerifiedCache::new(0).get("a.b.c", 0), None);
    }
}
