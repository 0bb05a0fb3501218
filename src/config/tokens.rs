//! The `tokens` section: access and refresh token lifetimes, session lifetimes and cap, the
//! signing keys (`keys`, or the secret's file), `iss`/`aud`, the verified-token cache.

use super::{above_zero, invalid, ConfigError};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;

/// Token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access token (JWT) lifetime.
    pub access_ttl_seconds: u64,
    /// Refresh token lifetime, the session's idle lifetime: restarts on every refresh.
    pub refresh_ttl_seconds: u64,
    /// A session's absolute lifetime from login; rotation never extends it.
    /// 0: renewable without end, as the original service was.
    pub session_max_seconds: u64,
    /// A refresh token presented again within this many seconds of its rotation
    /// is a duplicate (401, nothing revoked); after it, theft (the session is revoked).
    pub reuse_grace_seconds: u64,
    /// Live sessions per user; a new login ends the least recently used beyond it.
    pub max_sessions_per_user: u64,
    /// File holding the HS256 secret (overridden by `AUTHGATE_JWT_SECRET`).
    pub jwt_secret_file: Option<PathBuf>,
    /// Verified access tokens remembered to skip re-verification; 0 disables.
    pub verify_cache_entries: usize,
    /// The signing key ring; empty: one HS256 key, the JWT secret.
    pub keys: Vec<KeyConfig>,
    /// `iss` of issued tokens, required on verified ones; default `http://<first listen address>`.
    pub issuer: Option<String>,
    /// `aud` of issued tokens; a verified token must name one of them.
    pub audience: Vec<String>,
    /// `Cache-Control: max-age` of `/.well-known/jwks.json`.
    pub jwks_max_age_seconds: u64,
    /// The claims of issued access tokens: `standard`, or `seed` for consumers
    /// of the original service (no `aud`; `token_type` and `jti`).
    pub shape: TokenShape,
}

/// What an issued access token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenShape {
    /// `iss`, `aud` and the rest; `aud` required on every token with a `kid`.
    #[default]
    Standard,
    /// As the original service's SimpleJWT tokens: no `aud` (PyJWT's
    /// `jwt.decode(token, secret, algorithms=["HS256"])` refuses a token with
    /// one), `token_type: "access"` and a `jti`; `aud` is then checked only
    /// when present. HS256-only rings: with an asymmetric key, `aud` is what
    /// keeps a staging token out of production.
    Seed,
}

/// A signing algorithm the gateway issues and verifies tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 signatures: a private key signs, the public key verifies.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// HMAC-SHA256 with a shared secret: whoever verifies can also sign.
    HS256,
}

impl KeyAlgorithm {
    /// The name in JWT headers and JWKS (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::ES256 => "ES256",
            KeyAlgorithm::HS256 => "HS256",
        }
    }
}

/// One key of the ring (`tokens.keys[i]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key id, written in every token's header (`kid`) and in the JWKS.
    pub kid: String,
    /// The algorithm, fixed per key: a token is verified with its key's, never its own header's.
    pub alg: KeyAlgorithm,
    /// PKCS#8 PEM private key (EdDSA, ES256); needed to sign, owner-only permissions.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// SPKI PEM public key (EdDSA, ES256): enough to verify; derived from the private key when absent.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// HS256 secret (32+ bytes), owner-only permissions; absent: the JWT secret
    /// (`AUTHGATE_JWT_SECRET`, `AUTHGATE_JWT_SECRET_FILE`, `tokens.jwt_secret_file`).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Signs new tokens; exactly one key is active, the others only verify.
    #[serde(default)]
    pub active: bool,
}

/// Longest `kid` accepted.
const MAX_KID_LEN: usize = 64;

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_ttl_seconds: 30,
            refresh_ttl_seconds: 30 * 24 * 3600,
            session_max_seconds: 30 * 24 * 3600,
            reuse_grace_seconds: 5,
            max_sessions_per_user: 50,
            jwt_secret_file: None,
            verify_cache_entries: 10_000,
            keys: Vec::new(),
            issuer: None,
            audience: vec!["authgate".into()],
            jwks_max_age_seconds: 300,
            shape: TokenShape::Standard,
        }
    }
}

impl TokenConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        above_zero("tokens.access_ttl_seconds", self.access_ttl_seconds)?;
        above_zero("tokens.max_sessions_per_user", self.max_sessions_per_user)?;
        above_zero("tokens.refresh_ttl_seconds", self.refresh_ttl_seconds)?;
        if self.issuer.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err(invalid("tokens.issuer", "must not be empty"));
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            return Err(invalid(
                "tokens.audience",
                "must list at least one non-empty name",
            ));
        }
        if self.shape == TokenShape::Seed && self.keys.iter().any(|k| k.alg != KeyAlgorithm::HS256)
        {
            return Err(invalid(
                "tokens.shape",
                "seed tokens carry no aud, so they are for HS256-only rings: with an EdDSA or ES256 key, aud is what keeps another deployment's tokens out; use shape: standard",
            ));
        }
        self.validate_keys()
    }

    fn validate_keys(&self) -> Result<(), ConfigError> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let mut kids = HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            let key = |field: &str| format!("tokens.keys[{i}].{field}");
            let kid_ok = !k.kid.is_empty()
                && k.kid.len() <= MAX_KID_LEN
                && k.kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !kid_ok {
                return Err(invalid(
                    key("kid"),
                    format!("1 to {MAX_KID_LEN} letters, digits, `.`, `_` or `-`"),
                ));
            }
            if !kids.insert(k.kid.as_str()) {
                return Err(invalid(key("kid"), format!("{:?} is used twice", k.kid)));
            }
            let asymmetric = k.alg != KeyAlgorithm::HS256;
            if asymmetric && k.secret_file.is_some() {
                return Err(invalid(
                    key("secret_file"),
                    "an EdDSA or ES256 key takes private_key_file and/or public_key_file",
                ));
            }
            if !asymmetric && (k.private_key_file.is_some() || k.public_key_file.is_some()) {
                return Err(invalid(
                    key("secret_file"),
                    "an HS256 key takes secret_file only",
                ));
            }
            if asymmetric && k.private_key_file.is_none() && k.public_key_file.is_none() {
                return Err(invalid(
                    key("private_key_file"),
                    "set private_key_file (to sign) or public_key_file (to verify only)",
                ));
            }
            if k.active && asymmetric && k.private_key_file.is_none() {
                return Err(invalid(
                    key("private_key_file"),
                    "the active key signs, so it needs its private key",
                ));
            }
        }
        match self.keys.iter().filter(|k| k.active).count() {
            1 => Ok(()),
            n => Err(invalid(
                "tokens.keys",
                format!("exactly one key must be `active: true` (it signs), found {n}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn check(yaml: &str) -> Result<(), String> {
        let c = Config::from_yaml(yaml, Path::new("x.yaml")).map_err(|e| e.to_string())?;
        c.tokens.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn a_ring_needs_one_active_key_with_the_right_files() {
        let ok = "tokens:\n  keys:\n    - {kid: a, alg: EdDSA, private_key_file: a.pem, active: true}\n    - {kid: b, alg: ES256, public_key_file: b.pub}\n    - {kid: c, alg: HS256}\n";
        check(ok).unwrap();
        for (yaml, says) in [
            ("tokens: {keys: [{kid: a, alg: EdDSA, private_key_file: a}]}", "found 0"),
            (
                "tokens: {keys: [{kid: a, alg: HS256, active: true}, {kid: b, alg: HS256, active: true}]}",
                "found 2",
            ),
            (
                "tokens: {keys: [{kid: a, alg: HS256, active: true}, {kid: a, alg: HS256}]}",
                "tokens.keys[1].kid",
            ),
            ("tokens: {keys: [{kid: 'a b', alg: HS256, active: true}]}", "tokens.keys[0].kid"),
            (
                "tokens: {keys: [{kid: a, alg: EdDSA, public_key_file: a, active: true}]}",
                "needs its private key",
            ),
            ("tokens: {keys: [{kid: a, alg: ES256, active: true}]}", "public_key_file"),
            (
                "tokens: {keys: [{kid: a, alg: HS256, private_key_file: a, active: true}]}",
                "secret_file only",
            ),
            (
                "tokens: {keys: [{kid: a, alg: EdDSA, secret_file: a, active: true}]}",
                "tokens.keys[0].secret_file",
            ),
            ("tokens: {keys: [{kid: a, alg: RS256, active: true}]}", "RS256"),
            ("tokens: {audience: []}", "tokens.audience"),
            ("tokens: {issuer: ''}", "tokens.issuer"),
        ] {
            let err = check(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
