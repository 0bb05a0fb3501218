//! A request's session cookie: verified without Redis while its access part is fresh, refreshed by the gateway when it has expired.
//!
//! Many tabs send one cookie at once; the refresh of `store/cookie_sessions.rs`
//! lets all of them through on one rotation, and a replay of a token rotated
//! longer ago than the grace time ends the session as refresh-token reuse does.
//! The access part is bound to the refresh token beside it, so an old access
//! part cannot be paired with a newer token to force a rotation per request.

use super::{cookie, Browser};
use crate::api::AuthApi;
use crate::auth::access::{now_unix, CookieAccess, Stamp, TokenRejection};
use crate::auth::refresh::{self, Fingerprint};
use crate::auth::revocations::{Identity, Revocation};
use crate::domain::{SessionId, UserId};
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::metrics::METRICS;
use crate::store::cookie_sessions::{Advance, Step};
use sha2::{Digest, Sha256};

/// Successors followed at most in one refresh (each is a rotation within the grace time).
const MAX_HOPS: usize = 4;

/// What a request's cookie says.
#[derive(Debug)]
pub(crate) enum CookieAuth {
    /// No session cookie.
    Absent,
    /// A live session: who, and the new cookie when it was refreshed.
    Valid {
        /// The caller, roles included.
        identity: Identity,
        /// `Set-Cookie` value for the refreshed cookie.
        refreshed: Option<String>,
    },
    /// Not served this time, but not shown to be bad either (a request that
    /// fell behind more rotations than it may follow): left as it is, since
    /// the browser may already hold a newer cookie.
    Unresolved,
    /// A cookie that is not (or no longer) a session: it is cleared.
    Invalid(TokenRejection),
}

impl Browser {
    /// Verify, and if needed refresh, the session cookie among `headers`.
    pub(crate) async fn authenticate(
        &self,
        api: &AuthApi,
        headers: &http::HeaderMap,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<CookieAuth, ErrorReply> {
        let (access, token) = match self.verified(api, headers) {
            None => return Ok(CookieAuth::Absent),
            Some(Err(why)) => return Ok(CookieAuth::Invalid(why)),
            Some(Ok(found)) => found,
        };
        let (user, sid) = match access {
            CookieAccess::Fresh(mut identity) => {
                if let Some(roles) = self.cached_roles(identity.user.get(), identity.gen) {
                    identity.roles = roles;
                    return Ok(CookieAuth::Valid {
                        identity,
                        refreshed: None,
                    });
                }
                match api.store.stamp(identity.user).await? {
                    None => return Ok(CookieAuth::Invalid(TokenRejection::Revoked)),
                    Some(stamp) if stamp.gen == identity.gen => {
                        self.remember_roles(identity.user.get(), stamp.gen, &stamp.roles);
                        identity.roles = stamp.roles;
                        return Ok(CookieAuth::Valid {
                            identity,
                            refreshed: None,
                        });
                    }
                    // Minted before a role change this instance has not heard of yet.
                    Some(_) => match identity.sid {
                        Some(sid) => (identity.user, sid),
                        None => return Ok(CookieAuth::Invalid(TokenRejection::Malformed)),
                    },
                }
            }
            CookieAccess::Stale(user, sid) => (user, sid),
        };
        self.refresh(api, user, sid, token, client_ip).await
    }

    /// The session cookie among `headers`, verified without Redis: what its
    /// access part says and the refresh token beside it; `None` without one.
    fn verified(
        &self,
        api: &AuthApi,
        headers: &http::HeaderMap,
    ) -> Option<Result<(CookieAccess, uuid::Uuid), TokenRejection>> {
        let (value, access, refresh) = match cookie::find(headers, &self.cookie_name) {
            cookie::Found::None => return None,
            cookie::Found::Bad => return Some(Err(TokenRejection::Malformed)),
            cookie::Found::One {
                value,
                access,
                refresh,
            } => (value, access, refresh),
        };
        let Ok(token) = uuid::Uuid::try_parse(refresh) else {
            return Some(Err(TokenRejection::Malformed));
        };
        let checked = api.access.verify_cookie(value, access, || binding(&token));
        Some(checked.map(|access| (access, token)))
    }

    /// Trade the cookie's refresh token for a fresh cookie of the same session.
    async fn refresh(
        &self,
        api: &AuthApi,
        user: UserId,
        sid: SessionId,
        mut held: uuid::Uuid,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<CookieAuth, ErrorReply> {
        for hop in 0..MAX_HOPS {
            let presented = Fingerprint::of(&held);
            let (next, next_fp) = refresh::generate_uuid();
            let sealed = hex::encode(seal(&held, next.as_bytes()));
            let step = Step {
                user,
                sid,
                presented: &presented,
                next: &next_fp,
                sealed: &sealed,
                // A successor found through the grace entries is already the
                // new token: used as it is, never rotated again.
                presented_by_client: hop == 0,
            };
            let outcome = api
                .store
                .advance_cookie(&step, self.grace_ms, api.sessions.idle_ttl_ms)
                .await?;
            match outcome {
                Advance::Rotated(stamp, ttl) => {
                    return self.mint(api, user, sid, &next, stamp, ttl)
                }
                Advance::Current(stamp, ttl) => {
                    return self.mint(api, user, sid, &held, stamp, ttl)
                }
                Advance::Successor(sealed) => {
                    let Some(opened) = hex::decode(&sealed)
                        .ok()
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    else {
                        return Err(ErrorReply::internal("a sealed successor is not 16 bytes"));
                    };
                    held = uuid::Uuid::from_bytes(seal(&held, &opened));
                }
                Advance::Reused => {
                    METRICS.refresh_reuse.inc();
                    events::emit(
                        Event::RefreshReuseDetected,
                        Some(user),
                        Some(sid),
                        client_ip,
                    );
                    let at = now_unix();
                    let gone = [Revocation::Session { user, sid, at }];
                    api.access.revocations().apply(gone[0].clone());
                    api.store
                        .publish_revocations(&gone, api.access.ttl_seconds(), at)
                        .await?;
                    return Ok(CookieAuth::Invalid(TokenRejection::Revoked));
                }
                Advance::Stale => return Ok(CookieAuth::Unresolved),
                Advance::Gone => return Ok(CookieAuth::Invalid(TokenRejection::Revoked)),
            }
        }
        // Rotated more often than one request follows: served next time.
        Ok(CookieAuth::Unresolved)
    }

    /// A fresh cookie for the session, holding `token`, kept `ttl_ms`.
    fn mint(
        &self,
        api: &AuthApi,
        user: UserId,
        sid: SessionId,
        token: &uuid::Uuid,
        stamp: Stamp,
        ttl_ms: u64,
    ) -> Result<CookieAuth, ErrorReply> {
        let value = self.cookie_value(api, user, sid, stamp.gen, token)?;
        self.remember_roles(user.get(), stamp.gen, &stamp.roles);
        METRICS.cookie_refreshes.inc();
        Ok(CookieAuth::Valid {
            identity: Identity {
                user,
                sid: Some(sid),
                gen: stamp.gen,
                roles: stamp.roles,
            },
            refreshed: Some(self.set_cookie(&value, ttl_ms / 1000)),
        })
    }

    /// The cookie's value for a session whose refresh token is `refresh`.
    fn cookie_value(
        &self,
        api: &AuthApi,
        user: UserId,
        sid: SessionId,
        gen: u64,
        refresh: &uuid::Uuid,
    ) -> Result<String, ErrorReply> {
        let access = api
            .access
            .issue_cookie(user, sid, gen, &binding(refresh))
            .map_err(|e| ErrorReply::internal(format!("cannot sign a cookie: {e}")))?;
        Ok(format!("{access}.{}", refresh.hyphenated()))
    }

    /// `Set-Cookie` for a session a login just opened, from the token pair it
    /// answered with (the pair never reaches the browser).
    pub(crate) fn cookie_for_pair(
        &self,
        api: &AuthApi,
        pair: &serde_json::Value,
    ) -> Result<String, ErrorReply> {
        let field = |k: &str| pair.get(k).and_then(|v| v.as_str());
        let (Some(access), Some(refresh)) = (field("access_token"), field("refresh_token")) else {
            return Err(ErrorReply::internal(
                "a login answered without a token pair",
            ));
        };
        let refresh = uuid::Uuid::try_parse(refresh)
            .map_err(|_| ErrorReply::internal("a refresh token just issued is not a UUID"))?;
        let id = api.access.verify(access).map_err(|e| {
            ErrorReply::internal(format!("a token just issued does not verify: {e:?}"))
        })?;
        let sid = id
            .sid
            .ok_or_else(|| ErrorReply::internal("a token just issued has no session"))?;
        self.remember_roles(id.user.get(), id.gen, &id.roles);
        let value = self.cookie_value(api, id.user, sid, id.gen, &refresh)?;
        // A new session lives its idle lifetime, or less when it has an end.
        let idle = api.sessions.idle_ttl_ms;
        let max_age = api.sessions.max_lifetime_ms.map_or(idle, |m| m.min(idle)) / 1000;
        Ok(self.set_cookie(&value, max_age))
    }

    /// Whether the session cookie among `headers` is not one of ours at all
    /// (malformed, tampered with, another deployment's): checked without
    /// Redis where no identity is needed (a `public` route), to clear it.
    pub(crate) fn cookie_is_bad(&self, api: &AuthApi, headers: &http::HeaderMap) -> bool {
        matches!(self.verified(api, headers), Some(Err(_)))
    }

    /// The longest cookie this deployment can mint (the largest ids, its
    /// issuer, audience and key id): refused at start-up over
    /// [`cookie::MAX_COOKIE_VALUE`], or every sign-in would loop.
    pub(crate) fn longest_cookie(&self, api: &AuthApi) -> Result<usize, ErrorReply> {
        let sid = SessionId(u128::MAX);
        let value =
            self.cookie_value(api, UserId::new(1 << 53), sid, u64::MAX, &uuid::Uuid::max())?;
        Ok(value.len())
    }
}

/// What binds a cookie's access part to its refresh token: a hash of the
/// token under its own label, so it is neither the token nor its fingerprint.
fn binding(token: &uuid::Uuid) -> String {
    let digest = Sha256::new()
        .chain_update(b"authgate cookie binding v1\0")
        .chain_update(token.hyphenated().to_string().as_bytes())
        .finalize();
    hex::encode(&digest[..12])
}

/// `data` XOR a one-time pad derived from `key`: each token seals exactly one
/// successor, so the pad is never used twice, and only a holder of `key` can open it.
fn seal(key: &uuid::Uuid, data: &[u8; 16]) -> [u8; 16] {
    let pad = Sha256::new()
        .chain_update(b"authgate cookie successor v1\0")
        .chain_update(key.hyphenated().to_string().as_bytes())
        .finalize();
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = data[i] ^ pad[i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_successor_opens_only_with_its_token() {
        let (old, new) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let sealed = seal(&old, new.as_bytes());
        assert_ne!(&sealed, new.as_bytes());
        assert_eq!(&seal(&old, &sealed), new.as_bytes());
        assert_ne!(&seal(&uuid::Uuid::new_v4(), &sealed), new.as_bytes());
    }

    #[test]
    fn the_binding_is_neither_the_token_nor_its_fingerprint() {
        let t = uuid::Uuid::new_v4();
        let b = binding(&t);
        assert_eq!(b.len(), 24);
        assert!(!Fingerprint::of(&t).as_str().contains(&b));
        assert_ne!(binding(&uuid::Uuid::new_v4()), b);
    }
}
