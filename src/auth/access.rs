//! Access tokens: HS256 JWTs carrying `user_id`, `sub`, `iat`, `exp`, issued and verified from the signature alone.

use super::revocations::{Identity, Revocations};
use super::verified_cache::VerifiedCache;
use crate::config::Secret;
use crate::domain::{SessionId, UserId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why an access token was refused; also a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
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
    /// Its session was revoked (logout, reuse detected, password changed...).
    Revoked,
}

impl TokenRejection {
    /// Stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRejection::Missing => "missing",
            TokenRejection::Malformed => "malformed",
            TokenRejection::BadSignature => "bad_signature",
            TokenRejection::WrongAlgorithm => "wrong_algorithm",
            TokenRejection::Expired => "expired",
            TokenRejection::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    user_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    iat: u64,
    exp: u64,
    /// The session (refresh-token family) this token was issued in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// Issues and verifies access tokens with one HS256 key.
pub struct AccessTokens {
    cache: VerifiedCache,
    revocations: Arc<Revocations>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: u64,
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AccessTokens {
    /// Keys from the secret; tokens live `ttl_seconds`; up to `cache_entries` verified tokens are remembered.
    /// A token whose session or user is in `revocations` is refused.
    pub fn new(
        secret: &Secret,
        ttl_seconds: u64,
        cache_entries: usize,
        revocations: Arc<Revocations>,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Lifetimes are 30 s; the library's 60 s default leeway would double them.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        AccessTokens {
            cache: VerifiedCache::new(cache_entries),
            revocations,
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            ttl_seconds,
        }
    }

    /// A fresh token for `user` in session `sid`.
    pub fn issue(
        &self,
        user: UserId,
        sid: SessionId,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now_unix();
        let claims = Claims {
            user_id: user.0,
            sub: Some(user.0.to_string()),
            iat,
            exp: iat + self.ttl_seconds,
            sid: Some(sid.to_string()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Who a token speaks for, if its signature, algorithm and expiry check out
    /// and its session has not been revoked (checked in memory, every time).
    pub fn verify(&self, token: &str) -> Result<Identity, TokenRejection> {
        let id = match self.cache.get(token, now_unix()) {
            Some(verdict) => verdict?,
            None => {
                let (id, exp) = self.verify_signed(token)?;
                self.cache.insert(token, id, exp);
                id
            }
        };
        if self.revocations.is_revoked(&id) {
            return Err(TokenRejection::Revoked);
        }
        Ok(id)
    }

    /// The revocation set this verifier consults.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    fn verify_signed(&self, token: &str) -> Result<(Identity, u64), TokenRejection> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRejection::Expired,
                ErrorKind::InvalidSignature => TokenRejection::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenRejection::WrongAlgorithm
                }
                _ => TokenRejection::Malformed,
            })?;
        // `exp` is checked with second granularity by the library; a token that
        // expires this very second is already refused there.
        if let Some(sub) = &data.claims.sub {
            if sub.parse::<u64>().ok() != Some(data.claims.user_id) {
                return Err(TokenRejection::Malformed);
            }
        }
        let sid = match &data.claims.sid {
            Some(s) => Some(SessionId::parse(s).ok_or(TokenRejection::Malformed)?),
            None => None,
        };
        let id = Identity {
            user: UserId(data.claims.user_id),
            sid,
            iat: data.claims.iat,
        };
        Ok((id, data.claims.exp))
    }

    /// Lifetime of new tokens.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(crate) fn bearer_token(header: Option<&[u8]>) -> Result<&str, TokenRejection> {
    let value = header.ok_or(TokenRejection::Missing)?;
    let value = std::str::from_utf8(value)
        .map_err(|_| TokenRejection::Malformed)?
        .trim();
    let (scheme, token) = value.split_once(' ').ok_or(TokenRejection::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenRejection::Missing);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: u8) -> AccessTokens {
        AccessTokens::new(
            &Secret::new(vec![key; 32]),
            30,
            100,
            Arc::new(Revocations::new(30, now_unix())),
        )
    }

    fn tokens() -> AccessTokens {
        with_key(7)
    }

    fn user_of(t: &AccessTokens, jwt: &str) -> Result<UserId, TokenRejection> {
        t.verify(jwt).map(|id| id.user)
    }

    #[test]
    fn round_trip() {
        let t = tokens();
        let sid = SessionId(0x1234);
        let jwt = t.issue(UserId(42), sid).unwrap();
        let id = t.verify(&jwt).unwrap();
        assert_eq!((id.user, id.sid), (UserId(42), Some(sid)));
    }

    #[test]
    fn a_revoked_session_is_refused_even_from_the_cache() {
        let t = tokens();
        let sid = SessionId(9);
        let jwt = t.issue(UserId(5), sid).unwrap();
        assert!(t.verify(&jwt).is_ok());
        t.revocations()
            .apply(crate::auth::revocations::Revocation::Session {
                user: UserId(5),
                sid,
                at: now_unix(),
            });
        assert_eq!(t.verify(&jwt), Err(TokenRejection::Revoked));
    }

    #[test]
    fn other_key_is_bad_signature() {
        let jwt = with_key(8).issue(UserId(1), SessionId(1)).unwrap();
        assert_eq!(tokens().verify(&jwt), Err(TokenRejection::BadSignature));
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
        assert!(tokens().verify(&jwt).is_err());
    }

    #[test]
    fn expired_is_expired() {
        let t = tokens();
        let claims = Claims {
            user_id: 1,
            sub: Some("1".into()),
            iat: 0,
            exp: now_unix() - 1,
            sid: None,
        };
        let jwt =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &t.encoding).unwrap();
        assert_eq!(t.verify(&jwt), Err(TokenRejection::Expired));
    }

    #[test]
    fn a_cached_token_still_expires_and_a_tampered_one_misses() {
        let t = tokens();
        let claims = Claims {
            user_id: 3,
            sub: Some("3".into()),
            iat: 0,
            exp: now_unix() + 1,
            sid: None,
        };
        let jwt =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &t.encoding).unwrap();
        assert_eq!(user_of(&t, &jwt), Ok(UserId(3)));
        assert_eq!(user_of(&t, &jwt), Ok(UserId(3)), "served from the cache");
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

    fn b64(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
