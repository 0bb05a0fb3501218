//! Access tokens: JWTs carrying `user_id`, `sub`, `iat`, `exp`, `sid`, `gen`, `roles`, `iss`, `aud`, signed
//! by the key ring's active key and verified from the signature alone.
//!
//! Long file: both uses of a token (a Bearer token, a session cookie's access part) are minted and verified here, from one claims type, one key-ring switch and its two caches, so neither can be taken for the other by a second decoder.

use super::keys::{KeyRing, NoKey, MAX_TOKEN_BYTES};
use super::revocations::{Identity, Revocations};
use super::roles::Roles;
use super::verified_cache::VerifiedCache;
use crate::domain::{SessionId, UserId};
use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why an access token was refused; also a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, or claims of the wrong shape.
    Malformed,
    /// Signed with another key.
    BadSignature,
    /// Signed with another algorithm (or `none`).
    WrongAlgorithm,
    /// Past `exp`.
    Expired,
    /// Before `nbf` (with the same zero leeway as `exp`).
    NotYetValid,
    /// Its header carries `crit`: the gateway understands no header extension,
    /// so RFC 7515 §4.1.11 requires refusing any `crit`, an empty list included.
    CriticalHeader,
    /// Its session was revoked (logout, reuse detected, password changed...).
    Revoked,
    /// Its `kid` names no key of the ring (or it has none where one is required).
    UnknownKey,
    /// `iss` missing or not this gateway's.
    WrongIssuer,
    /// `aud` missing or naming none of the configured audiences.
    WrongAudience,
    /// Longer than any token this gateway issues (refused before decoding).
    TooLarge,
}

impl TokenRejection {
    /// Stable label for logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenRejection::Missing => "missing",
            TokenRejection::Malformed => "malformed",
            TokenRejection::BadSignature => "bad_signature",
            TokenRejection::WrongAlgorithm => "wrong_algorithm",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not_yet_valid",
            TokenRejection::CriticalHeader => "unsupported_crit",
            TokenRejection::Revoked => "revoked",
            TokenRejection::UnknownKey => "unknown_key",
            TokenRejection::WrongIssuer => "wrong_issuer",
            TokenRejection::WrongAudience => "wrong_audience",
            TokenRejection::TooLarge => "too_large",
        }
    }
}

/// The claims authgate reads; `iss`, `aud` and `exp` are checked by jsonwebtoken.
#[derive(Debug, Deserialize)]
struct Claims {
    user_id: u64,
    #[serde(default)]
    sub: Option<String>,
    /// Required (a token without it is malformed), never read: revocation goes
    /// by generation, not by issue time.
    #[serde(rename = "iat")]
    _issued_at: u64,
    /// An integer on purpose, as `iat`: RFC 7519's NumericDate allows
    /// fractions, but jsonwebtoken-based upstreams refuse them, so a token the
    /// gateway passed would fail behind it (a fraction is `malformed`).
    exp: u64,
    /// Checked by jsonwebtoken (`validate_nbf`); read here only so that a
    /// non-integer one is refused like a non-integer `exp`.
    #[serde(default, rename = "nbf")]
    _not_before: Option<u64>,
    /// The session (refresh-token family) this token was issued in.
    #[serde(default)]
    sid: Option<String>,
    /// The user's token generation when it was minted (absent: 0, a token from
    /// before generations, revoked by any "end all sessions").
    #[serde(default)]
    gen: u64,
    /// The user's roles (absent: none). A token naming an invalid role is malformed.
    #[serde(default)]
    roles: Vec<String>,
    /// `cookie` in the access part of a browser session cookie, absent in a
    /// Bearer token: neither is ever taken for the other.
    #[serde(default, rename = "use")]
    token_use: Option<String>,
    /// A cookie's access part: which refresh token it was minted beside.
    #[serde(default)]
    rt: Option<String>,
}

/// A session cookie's access part, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieAccess {
    /// Valid now: who it speaks for.
    Fresh(Identity),
    /// Ours, but expired or revoked: the session to refresh, if it still lives.
    Stale(UserId, SessionId),
}

/// The claims of a new token.
#[derive(Serialize)]
struct NewClaims<'a> {
    iss: &'a str,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a serde_json::Value>,
    /// Seed shape only: what SimpleJWT's consumers check.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    iat: u64,
    exp: u64,
    user_id: u64,
    sid: String,
    gen: u64,
    /// Absent when the user has none, so a token without roles is as it was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<&'a str>,
    /// `cookie` for a cookie's access part (which carries no roles).
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    token_use: Option<&'static str>,
    /// A cookie's binding to the refresh token beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    rt: Option<&'a str>,
}

/// What a token is for: a Bearer token, or the access part of a session
/// cookie bound to the refresh token beside it (so an old access part cannot
/// be paired with a newer token to force rotations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse<'a> {
    Bearer,
    Cookie(&'a str),
}

impl<'a> TokenUse<'a> {
    fn claim(self) -> Option<&'static str> {
        match self {
            TokenUse::Bearer => None,
            TokenUse::Cookie(_) => Some("cookie"),
        }
    }

    fn binding(self) -> Option<&'a str> {
        match self {
            TokenUse::Bearer => None,
            TokenUse::Cookie(b) => Some(b),
        }
    }
}

/// A key ring with the cache of tokens it verified: swapped together, so a token
/// verified by a key that a reload removed is not served from the cache.
struct Current {
    ring: KeyRing,
    cache: VerifiedCache,
    /// Session cookies verified fresh, keyed by the whole cookie value (so a
    /// hit vouches for the binding too); never consulted for Bearer tokens.
    cookies: VerifiedCache,
}

/// Installs a new key ring (SIGHUP); tokens signed by its keys verify from then on.
#[derive(Clone)]
pub(crate) struct KeySwitch(Arc<ArcSwap<Current>>);

impl KeySwitch {
    /// Make `ring` the one that signs and verifies, from the next request on.
    pub(crate) fn install(&self, ring: KeyRing) {
        self.0.store(Arc::new(Current::new(ring)));
    }
}

impl Current {
    fn new(ring: KeyRing) -> Current {
        Current {
            cache: VerifiedCache::new(ring.cache_entries()),
            cookies: VerifiedCache::new(ring.cache_entries()),
            ring,
        }
    }
}

/// What a new token states about its user beyond the id, as the user record
/// held it when the session was opened or rotated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The user's token generation.
    pub gen: u64,
    /// The user's roles.
    pub roles: Roles,
}

/// Issues and verifies access tokens with the current key ring.
pub(crate) struct AccessTokens {
    current: KeySwitch,
    revocations: Arc<Revocations>,
    ttl_seconds: u64,
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AccessTokens {
    /// Tokens signed and verified with `ring`, living `ttl_seconds`.
    /// A token whose session or user is in `revocations` is refused.
    pub(crate) fn new(ring: KeyRing, ttl_seconds: u64, revocations: Arc<Revocations>) -> Self {
        AccessTokens {
            current: KeySwitch(Arc::new(ArcSwap::from_pointee(Current::new(ring)))),
            revocations,
            ttl_seconds,
        }
    }

    /// The handle that replaces the key ring at run time.
    pub(crate) fn key_switch(&self) -> KeySwitch {
        self.current.clone()
    }

    /// A fresh token for `user` in session `sid`, at the user's token
    /// generation and roles `stamp` (read from the user record in the step
    /// that opened or rotated the session), signed by the active key.
    pub(crate) fn issue(
        &self,
        user: UserId,
        sid: SessionId,
        stamp: &Stamp,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.mint(user, sid, stamp, TokenUse::Bearer)
    }

    /// The access part of a session cookie: as [`AccessTokens::issue`], but
    /// marked for cookies and without roles, so a cookie stays small whatever
    /// the user holds (the roles come from [`crate::browser`]'s cache).
    /// `binding` names the refresh token the cookie holds beside it.
    pub(crate) fn issue_cookie(
        &self,
        user: UserId,
        sid: SessionId,
        gen: u64,
        binding: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let stamp = Stamp {
            gen,
            roles: Roles::NONE,
        };
        self.mint(user, sid, &stamp, TokenUse::Cookie(binding))
    }

    fn mint(
        &self,
        user: UserId,
        sid: SessionId,
        stamp: &Stamp,
        token_use: TokenUse<'_>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let current = self.current.0.load();
        let ring = &current.ring;
        let (header, key) = ring
            .signer()
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
        let iat = now_unix();
        let claims = NewClaims {
            iss: ring.issuer(),
            sub: user.get().to_string(),
            aud: ring.audience(),
            token_type: ring.seed_shape().then_some("access"),
            jti: ring.seed_shape().then(new_jti),
            iat,
            exp: iat + self.ttl_seconds,
            user_id: user.get(),
            sid: sid.to_string(),
            gen: stamp.gen,
            roles: stamp.roles.iter().collect(),
            token_use: token_use.claim(),
            rt: token_use.binding(),
        };
        jsonwebtoken::encode(header, &claims, key)
    }

    /// Who a token speaks for, if its key, signature, algorithm, claims and expiry
    /// check out and its session has not been revoked (checked in memory, every time,
    /// also for a token the cache remembers).
    pub(crate) fn verify(&self, token: &str) -> Result<Identity, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TooLarge);
        }
        let current = self.current.0.load();
        let id = match current.cache.get(token, now_unix()) {
            Some(verdict) => verdict?,
            None => {
                let (id, exp) = verify_signed(&current.ring, token, TokenUse::Bearer)?;
                current.cache.insert(token, id.clone(), exp);
                id
            }
        };
        if self.revocations.is_revoked(&id) {
            return Err(TokenRejection::Revoked);
        }
        Ok(id)
    }

    /// What a session cookie's access part says, checked as
    /// [`AccessTokens::verify`] checks a Bearer token but for its expiry: a
    /// signed part that has expired or been revoked still names its session,
    /// which the gateway may then refresh. Its roles are empty (the caller
    /// looks them up). `value` is the whole cookie value, the key of a cache
    /// of its own (the Bearer cache never answers for a cookie). A part not
    /// minted beside the refresh token `binding` names is malformed.
    pub(crate) fn verify_cookie(
        &self,
        value: &str,
        token: &str,
        binding: impl FnOnce() -> String,
    ) -> Result<CookieAccess, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TooLarge);
        }
        let current = self.current.0.load();
        let now = now_unix();
        let id = match current.cookies.get(value, now) {
            Some(Ok(id)) => id,
            // Expired since (refreshable), or never seen: verified in full.
            _ => {
                // Hashed only on a miss: a hit is keyed by the whole value.
                let binding = binding();
                let (id, exp) = verify_signed(&current.ring, token, TokenUse::Cookie(&binding))?;
                if exp <= now {
                    let sid = id.sid.ok_or(TokenRejection::Malformed)?;
                    return Ok(CookieAccess::Stale(id.user, sid));
                }
                current.cookies.insert(value, id.clone(), exp);
                id
            }
        };
        let Some(sid) = id.sid else {
            return Err(TokenRejection::Malformed);
        };
        if self.revocations.is_revoked(&id) {
            return Ok(CookieAccess::Stale(id.user, sid));
        }
        Ok(CookieAccess::Fresh(id))
    }

    /// The public keys as a JWK Set, and for how many seconds it may be cached.
    pub(crate) fn jwks(&self) -> (serde_json::Value, u64) {
        let current = self.current.0.load();
        let (jwks, max_age) = current.ring.jwks();
        (jwks.clone(), max_age)
    }

    /// The revocation set this verifier consults.
    pub(crate) fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// Lifetime of new tokens.
    pub(crate) fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }
}

/// A fresh token id (128 random bits, hex), as SimpleJWT's `jti`.
fn new_jti() -> String {
    use rand_core::RngCore;
    let mut id = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// Verify `token` with the key its header names; its identity and `exp`.
fn verify_signed(
    ring: &KeyRing,
    token: &str,
    token_use: TokenUse<'_>,
) -> Result<(Identity, u64), TokenRejection> {
    let (key, validation) = match ring.choose(token) {
        Ok(chosen) => chosen,
        Err(NoKey::Malformed) => return Err(TokenRejection::Malformed),
        Err(NoKey::UnknownKey) => return Err(TokenRejection::UnknownKey),
        Err(NoKey::WrongAlgorithm) => return Err(TokenRejection::WrongAlgorithm),
        Err(NoKey::Critical) => return Err(TokenRejection::CriticalHeader),
    };
    // A cookie's expired access part still names the session to refresh.
    let relaxed;
    let validation = if token_use != TokenUse::Bearer {
        let mut v = validation.clone();
        v.validate_exp = false;
        relaxed = v;
        &relaxed
    } else {
        validation
    };
    let data =
        jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenRejection::Expired,
            ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
            ErrorKind::InvalidSignature => TokenRejection::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenRejection::WrongAlgorithm
            }
            ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
            ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenRejection::WrongIssuer,
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenRejection::WrongAudience,
            _ => TokenRejection::Malformed,
        })?;
    // `exp` is checked with second granularity by the library; a token that
    // expires this very second is already refused there.
    if data.claims.token_use.as_deref() != token_use.claim()
        || data.claims.rt.as_deref() != token_use.binding()
    {
        return Err(TokenRejection::Malformed);
    }
    if let Some(sub) = &data.claims.sub {
        if sub.parse::<u64>().ok() != Some(data.claims.user_id) {
            return Err(TokenRejection::Malformed);
        }
    }
    let sid = match &data.claims.sid {
        Some(s) => Some(SessionId::parse(s).ok_or(TokenRejection::Malformed)?),
        None => None,
    };
    let roles = Roles::from_names(&data.claims.roles).map_err(|_| TokenRejection::Malformed)?;
    let id = Identity {
        user: UserId::new(data.claims.user_id),
        sid,
        gen: data.claims.gen,
        roles,
    };
    Ok((id, data.claims.exp))
}

/// The token of an `Authorization: Bearer <token>` header value.
///
/// Only ASCII whitespace is trimmed, as HTTP and the edge (`edge::authorization`)
/// do: `str::trim` also removed Unicode spaces (U+00A0, U+3000...), so
/// `Bearer <valid>\u{A0}` was verified as `<valid>` while the upstream was
/// handed `<valid>\u{A0}` (found by fuzz/fuzz_targets/bearer_jwt.rs).
pub(crate) fn bearer_token(header: Option<&[u8]>) -> Result<&str, TokenRejection> {
    let value = header.ok_or(TokenRejection::Missing)?;
    let value = std::str::from_utf8(value)
        .map_err(|_| TokenRejection::Malformed)?
        .trim_ascii();
    let (scheme, token) = value.split_once(' ').ok_or(TokenRejection::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Missing);
    }
    let token = token.trim_ascii();
    if token.is_empty() {
        return Err(TokenRejection::Missing);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::testing::{claims, key_files, ring, sign, SECRET};
    use crate::keygen::Alg;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::Algorithm;

    const ISS: &str = "http://127.0.0.1:8080";

    fn over(ring: KeyRing) -> AccessTokens {
        AccessTokens::new(ring, 30, Arc::new(Revocations::new(30, now_unix())))
    }

    /// The JWT secret alone: one HS256 key.
    fn tokens() -> AccessTokens {
        over(ring("").unwrap())
    }

    fn user_of(t: &AccessTokens, jwt: &str) -> Result<UserId, TokenRejection> {
        t.verify(jwt).map(|id| id.user)
    }

    fn header_and_claims(jwt: &str) -> (serde_json::Value, serde_json::Value) {
        let part = |i: usize| {
            let b = URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(i).unwrap())
                .unwrap();
            serde_json::from_slice(&b).unwrap()
        };
        (part(0), part(1))
    }

    #[test]
    fn round_trip_per_algorithm() {
        let (ed, _) = key_files(Alg::EdDSA, "rt-ed");
        let (ec, _) = key_files(Alg::ES256, "rt-ec");
        for (yaml, alg, kid) in [
            (String::new(), "HS256", None),
            (
                format!("tokens: {{keys: [{{kid: e, alg: EdDSA, private_key_file: {}, active: true}}]}}", ed.display()),
                "EdDSA",
                Some("e"),
            ),
            (
                format!("tokens: {{keys: [{{kid: p, alg: ES256, private_key_file: {}, active: true}}], audience: [a, b], issuer: https://id.example}}", ec.display()),
                "ES256",
                Some("p"),
            ),
        ] {
            let t = over(ring(&yaml).unwrap());
            let sid = SessionId(0x1234);
            let jwt = t.issue(UserId::new(42), sid, &Stamp::default()).unwrap();
            let id = t.verify(&jwt).unwrap();
            assert_eq!((id.user, id.sid), (UserId::new(42), Some(sid)));
            let (header, claims) = header_and_claims(&jwt);
            assert_eq!(header["alg"], alg);
            assert_eq!(header["typ"], "JWT");
            match kid {
                Some(kid) => assert_eq!(header["kid"], kid),
                None => assert!(header["kid"].as_str().unwrap().starts_with("hs256-")),
            }
            if alg == "ES256" {
                assert_eq!(claims["iss"], "https://id.example");
                assert_eq!(claims["aud"], serde_json::json!(["a", "b"]));
            } else {
                assert_eq!(claims["iss"], ISS);
                assert_eq!(claims["aud"], "authgate");
            }
            assert_eq!(claims["sub"], "42");
        }
    }

    #[test]
    fn a_token_is_checked_with_the_key_and_algorithm_its_kid_names() {
        let (a, a_pem) = key_files(Alg::EdDSA, "kid-a");
        let (_, b_pem) = key_files(Alg::EdDSA, "kid-b");
        let (c, c_pem) = key_files(Alg::ES256, "kid-c");
        let b_pub = a.with_file_name("kid-b.pub.pem");
        let yaml = format!(
            "tokens:\n  keys:\n    - {{kid: a, alg: EdDSA, private_key_file: {}, active: true}}\n    - {{kid: b, alg: EdDSA, public_key_file: {}}}\n    - {{kid: c, alg: ES256, private_key_file: {}}}\n",
            a.display(),
            b_pub.display(),
            c.display()
        );
        let t = over(ring(&yaml).unwrap());
        let good = claims(ISS, "authgate");
        fn ed(kid: Option<&str>, pem: &str, c: &serde_json::Value) -> String {
            sign(Algorithm::EdDSA, kid, pem.as_bytes(), c)
        }
        assert!(t.verify(&ed(Some("a"), &a_pem, &good)).is_ok());
        assert!(
            t.verify(&ed(Some("b"), &b_pem, &good)).is_ok(),
            "verify-only key"
        );
        assert!(t
            .verify(&sign(Algorithm::ES256, Some("c"), c_pem.as_bytes(), &good))
            .is_ok());
        let a_pub = std::fs::read(a.with_file_name("kid-a.pub.pem")).unwrap();
        for (jwt, why) in [
            (ed(Some("b"), &a_pem, &good), TokenRejection::BadSignature),
            (ed(Some("z"), &a_pem, &good), TokenRejection::UnknownKey),
            (ed(None, &a_pem, &good), TokenRejection::UnknownKey),
            (
                sign(Algorithm::ES256, Some("a"), c_pem.as_bytes(), &good),
                TokenRejection::WrongAlgorithm,
            ),
            (
                sign(Algorithm::HS256, Some("a"), &a_pub, &good),
                TokenRejection::WrongAlgorithm,
            ),
            (
                sign(Algorithm::HS256, None, &SECRET, &good),
                TokenRejection::UnknownKey,
            ),
            (
                ed(Some("a"), &a_pem, &claims("http://evil", "authgate")),
                TokenRejection::WrongIssuer,
            ),
            (
                ed(Some("a"), &a_pem, &claims(ISS, "other")),
                TokenRejection::WrongAudience,
            ),
        ] {
            assert_eq!(t.verify(&jwt), Err(why), "{jwt}");
        }
        for (claim, why) in [
            ("aud", TokenRejection::WrongAudience),
            ("iss", TokenRejection::WrongIssuer),
        ] {
            let mut without = good.clone();
            without.as_object_mut().unwrap().remove(claim);
            assert_eq!(t.verify(&ed(Some("a"), &a_pem, &without)), Err(why));
        }
        let mut big = good.clone();
        big["pad"] = serde_json::json!("x".repeat(MAX_TOKEN_BYTES));
        assert_eq!(
            t.verify(&ed(Some("a"), &a_pem, &big)),
            Err(TokenRejection::TooLarge)
        );
    }

    #[test]
    fn the_secret_alone_still_takes_tokens_without_kid_iss_or_aud() {
        let t = tokens();
        let now = now_unix();
        let seed = serde_json::json!({"user_id": 4, "sub": "4", "iat": now, "exp": now + 60});
        assert_eq!(
            user_of(&t, &sign(Algorithm::HS256, None, &SECRET, &seed)),
            Ok(UserId::new(4))
        );
        let wrong = claims("http://evil", "authgate");
        assert_eq!(
            t.verify(&sign(Algorithm::HS256, None, &SECRET, &wrong)),
            Err(TokenRejection::WrongIssuer),
            "claims are checked when present"
        );
        let kid = header_and_claims(
            &t.issue(UserId::new(1), SessionId(1), &Stamp::default())
                .unwrap(),
        )
        .0["kid"]
            .clone();
        let seed_with_kid = t.verify(&sign(Algorithm::HS256, kid.as_str(), &SECRET, &seed));
        assert!(
            matches!(
                seed_with_kid,
                Err(TokenRejection::WrongIssuer | TokenRejection::WrongAudience)
            ),
            "a token with a kid is a new one: iss and aud required ({seed_with_kid:?})"
        );
        assert_eq!(
            t.verify(&sign(Algorithm::HS256, None, &[8; 32], &seed)),
            Err(TokenRejection::BadSignature)
        );
    }

    #[test]
    fn a_new_ring_drops_the_cached_tokens_of_removed_keys() {
        let (a, _) = key_files(Alg::EdDSA, "swap-a");
        let (b, _) = key_files(Alg::EdDSA, "swap-b");
        let entry = |kid: &str, path: &std::path::Path, active| {
            format!(
                "    - {{kid: {kid}, alg: EdDSA, private_key_file: {}, active: {active}}}\n",
                path.display()
            )
        };
        let t = over(ring(&format!("tokens:\n  keys:\n{}", entry("a", &a, true))).unwrap());
        let old = t
            .issue(UserId::new(1), SessionId(1), &Stamp::default())
            .unwrap();
        assert!(t.verify(&old).is_ok());
        let both = format!(
            "tokens:\n  keys:\n{}{}",
            entry("a", &a, false),
            entry("b", &b, true)
        );
        t.key_switch().install(ring(&both).unwrap());
        let new = t
            .issue(UserId::new(1), SessionId(1), &Stamp::default())
            .unwrap();
        assert_eq!(header_and_claims(&new).0["kid"], "b");
        assert!(t.verify(&old).is_ok() && t.verify(&new).is_ok());
        t.key_switch()
            .install(ring(&format!("tokens:\n  keys:\n{}", entry("b", &b, true))).unwrap());
        assert_eq!(t.verify(&old), Err(TokenRejection::UnknownKey));
        assert!(t.verify(&new).is_ok());
    }

    #[test]
    fn a_revoked_session_is_refused_even_from_the_cache() {
        let t = tokens();
        let sid = SessionId(9);
        let jwt = t.issue(UserId::new(5), sid, &Stamp::default()).unwrap();
        assert!(t.verify(&jwt).is_ok());
        t.revocations()
            .apply(crate::auth::revocations::Revocation::Session {
                user: UserId::new(5),
                sid,
                at: now_unix(),
            });
        assert_eq!(t.verify(&jwt), Err(TokenRejection::Revoked));
    }

    #[test]
    fn a_cookie_part_is_never_a_bearer_token_and_its_cache_keeps_the_rules() {
        let t = tokens();
        let (user, sid) = (UserId::new(5), SessionId(9));
        let part = t.issue_cookie(user, sid, 0, "bind").unwrap();
        let bind = || "bind".to_owned();
        let value = format!("{part}.tok");
        assert_eq!(
            t.verify(&part),
            Err(TokenRejection::Malformed),
            "not a Bearer token"
        );
        let bearer = t.issue(user, sid, &Stamp::default()).unwrap();
        assert_eq!(
            t.verify_cookie("x", &bearer, bind),
            Err(TokenRejection::Malformed)
        );
        for _ in 0..2 {
            // The second answer comes from the cache.
            assert!(matches!(
                t.verify_cookie(&value, &part, bind),
                Ok(CookieAccess::Fresh(_))
            ));
        }
        // Another binding is another cache key, and verified in full: refused.
        assert_eq!(
            t.verify_cookie(&format!("{part}.other"), &part, || "other".into()),
            Err(TokenRejection::Malformed)
        );
        t.revocations()
            .apply(crate::auth::revocations::Revocation::Session {
                user,
                sid,
                at: now_unix(),
            });
        assert_eq!(
            t.verify_cookie(&value, &part, bind),
            Ok(CookieAccess::Stale(user, sid))
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let jwt = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&format!(
                r#"{{"user_id":1,"sub":"1","iat":0,"exp":{}}}"#,
                now_unix() + 60
            ))
        );
        assert_eq!(tokens().verify(&jwt), Err(TokenRejection::Malformed));
    }

    #[test]
    fn expired_is_expired() {
        let t = tokens();
        let claims = serde_json::json!({"user_id": 1, "sub": "1", "iat": 0, "exp": now_unix() - 1});
        let jwt = sign(Algorithm::HS256, None, &SECRET, &claims);
        assert_eq!(t.verify(&jwt), Err(TokenRejection::Expired));
    }

    #[test]
    fn a_cached_token_still_expires_and_a_tampered_one_misses() {
        let t = tokens();
        let claims = serde_json::json!({"user_id": 3, "sub": "3", "iat": 0, "exp": now_unix() + 1});
        let jwt = sign(Algorithm::HS256, None, &SECRET, &claims);
        assert_eq!(user_of(&t, &jwt), Ok(UserId::new(3)));
        assert_eq!(
            user_of(&t, &jwt),
            Ok(UserId::new(3)),
            "served from the cache"
        );
        let mut tampered = jwt.clone();
        tampered.push('x');
        assert!(t.verify(&tampered).is_err());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(t.verify(&jwt), Err(TokenRejection::Expired));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some(b"Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some(b"bearer  abc ")), Ok("abc"));
        assert_eq!(
            bearer_token(Some(b"Basic abc")),
            Err(TokenRejection::Missing)
        );
        assert_eq!(bearer_token(None), Err(TokenRejection::Missing));
    }

    /// Regression (fuzz target bearer_jwt): Unicode spaces around the token are
    /// part of it, as the edge and the upstream see it, so such a token is refused
    /// rather than verified without them.
    #[test]
    fn only_ascii_whitespace_is_trimmed_around_the_token() {
        let t = tokens();
        let jwt = t
            .issue(UserId::new(5), SessionId(9), &Stamp::default())
            .unwrap();
        for (pad_before, pad_after) in [("", "\u{A0}"), ("\u{3000}", ""), ("\u{2003}", "\u{85}")] {
            let value = format!("Bearer {pad_before}{jwt}{pad_after}");
            let token = bearer_token(Some(value.as_bytes())).unwrap();
            assert_eq!(token, format!("{pad_before}{jwt}{pad_after}"));
            assert_eq!(t.verify(token), Err(TokenRejection::Malformed), "{value:?}");
        }
        let value = format!(" \tBearer  {jwt} \t");
        assert_eq!(bearer_token(Some(value.as_bytes())), Ok(jwt.as_str()));
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }
}
