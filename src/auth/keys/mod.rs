//! The signing key ring: which key signs new tokens, which key verifies a given token
//! (the one its `kid` names, with that key's algorithm only), the claims every token
//! carries (`iss`, `aud`), and the public keys published as a JWKS.
//!
//! A ring is built whole from the config and replaced whole on SIGHUP (`reload.rs`);
//! it never changes after it is built.

mod files;
pub(crate) mod reload;
#[cfg(test)]
pub(crate) mod testing;

pub(crate) use files::KeyError;

/// Read any file that holds a secret (a key, the admin token) by the one rule
/// for such files: readable by the gateway's user only, in a directory others
/// cannot write. `key` names the config key in the error.
pub(crate) fn read_secret_file(key: &str, path: &std::path::Path) -> Result<Vec<u8>, KeyError> {
    files::read_private(key, path)
}

use crate::config::{Config, KeyAlgorithm, Secret, TokenShape};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use files::key_error;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Tokens longer than this are refused before any decoding (ours are ~300 bytes).
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// One key of the ring.
struct Key {
    kid: String,
    alg: KeyAlgorithm,
    /// `{alg, kid, typ: JWT}`: the header of every token this key signs.
    header: Header,
    /// Present for keys that can sign.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    /// This key's algorithm only; `exp`, `iss` and `aud` required.
    validation: Validation,
    /// The public key as a JWK (asymmetric keys only).
    jwk: Option<Value>,
}

/// Why a token's header names no usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoKey {
    /// Not a JWT header, or an algorithm jsonwebtoken does not know (`none`).
    Malformed,
    /// No key with that `kid`, or no `kid` where one is required.
    UnknownKey,
    /// The header's `alg` is not its key's.
    WrongAlgorithm,
    /// The header has `crit` (RFC 7515 §4.1.11): no extension is understood here.
    Critical,
}

/// The keys, the claims they sign, the JWKS.
pub(crate) struct KeyRing {
    keys: Vec<Key>,
    /// Index of the key that signs.
    active: usize,
    /// Set when the ring is a single HS256 key: the validation for tokens without `kid`.
    legacy: Option<Validation>,
    issuer: String,
    /// `aud` as issued: a string for one audience, a list for several.
    audience: Value,
    /// `tokens.shape`: seed tokens carry no `aud`, and `token_type`, `jti`.
    shape: TokenShape,
    /// `{"keys": [...]}`, public keys only.
    jwks: Value,
    jwks_max_age: u64,
    /// Verified tokens remembered per ring (`tokens.verify_cache_entries`).
    cache_entries: usize,
}

impl KeyRing {
    /// The ring `cfg` describes: `tokens.keys`, or the JWT secret alone as one HS256 key.
    /// Reads every key file; refuses secrets others may read.
    pub(crate) fn from_config(cfg: &Config) -> Result<KeyRing, KeyError> {
        let t = &cfg.tokens;
        let issuer = t.issuer.clone().unwrap_or_else(|| default_issuer(cfg));
        // Seed-shaped tokens carry no `aud`: required only on standard ones.
        let required: &[&str] = match t.shape {
            TokenShape::Standard => &["exp", "iss", "aud"],
            TokenShape::Seed => &["exp", "iss"],
        };
        let checks = |alg| validation(alg, &issuer, &t.audience, required);
        let mut keys = Vec::new();
        let mut active = 0;
        if t.keys.is_empty() {
            let secret = cfg.jwt_secret.as_ref().ok_or_else(|| {
                key_error("AUTHGATE_JWT_SECRET", "no JWT secret and no tokens.keys")
            })?;
            keys.push(hmac_key(
                secret_kid(secret),
                secret,
                checks(KeyAlgorithm::HS256),
            ));
        }
        for (i, k) in t.keys.iter().enumerate() {
            let name = |field: &str| format!("tokens.keys[{i}].{field}");
            let key = match k.alg {
                KeyAlgorithm::HS256 => {
                    let secret = match &k.secret_file {
                        Some(path) => files::secret(&name("secret_file"), path)?,
                        None => cfg.jwt_secret.clone().ok_or_else(|| {
                            key_error(name("secret_file"), "no secret_file and no JWT secret")
                        })?,
                    };
                    hmac_key(k.kid.clone(), &secret, checks(k.alg))
                }
                alg => {
                    let (private, public) = (name("private_key_file"), name("public_key_file"));
                    let pair = files::asymmetric(
                        alg,
                        k.private_key_file.as_deref().map(|p| (private.as_str(), p)),
                        k.public_key_file.as_deref().map(|p| (public.as_str(), p)),
                    )?;
                    asymmetric_key(k.kid.clone(), alg, &pair, checks(alg))
                }
            };
            if k.active {
                active = i;
            }
            keys.push(key);
        }
        let audience = match t.audience.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let legacy = match keys.as_slice() {
            [only] if only.alg == KeyAlgorithm::HS256 => {
                Some(validation(only.alg, &issuer, &t.audience, &["exp"]))
            }
            _ => None,
        };
        let jwks = json!({ "keys": keys.iter().filter_map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        Ok(KeyRing {
            keys,
            active,
            legacy,
            issuer,
            audience,
            shape: t.shape,
            jwks,
            jwks_max_age: t.jwks_max_age_seconds,
            cache_entries: t.verify_cache_entries,
        })
    }

    /// The key a token's header names, with the validation that goes with it: by
    /// its `kid`, everything checked and `iss`, `aud` required. Without a `kid`
    /// only when the ring is a single HS256 key: a token from before key ids (and
    /// before `iss`/`aud`), whose claims are checked only when present.
    pub(crate) fn choose(&self, token: &str) -> Result<(&DecodingKey, &Validation), NoKey> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| NoKey::Malformed)?;
        // jsonwebtoken reads `crit` but never enforces it; any value (an empty
        // list included, which the RFC forbids) names nothing this gateway knows.
        if header.crit.is_some() {
            return Err(NoKey::Critical);
        }
        let Some(kid) = header.kid.as_deref() else {
            return match (&self.legacy, self.keys.first()) {
                (Some(v), Some(key)) if header.alg == Algorithm::HS256 => Ok((&key.decoding, v)),
                (Some(_), _) => Err(NoKey::WrongAlgorithm),
                _ => Err(NoKey::UnknownKey),
            };
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(NoKey::UnknownKey)?;
        // The key decides the algorithm; the header only has to agree with it.
        if header.alg != algorithm(key.alg) {
            return Err(NoKey::WrongAlgorithm);
        }
        Ok((&key.decoding, &key.validation))
    }

    /// The header and key new tokens are signed with.
    pub(crate) fn signer(&self) -> Option<(&Header, &EncodingKey)> {
        let key = self.keys.get(self.active)?;
        Some((&key.header, key.encoding.as_ref()?))
    }

    /// `iss` of new tokens.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `aud` of new tokens (none for the seed shape).
    pub(crate) fn audience(&self) -> Option<&Value> {
        (self.shape == TokenShape::Standard).then_some(&self.audience)
    }

    /// Whether new tokens take the seed shape (`token_type`, `jti`, no `aud`).
    pub(crate) fn seed_shape(&self) -> bool {
        self.shape == TokenShape::Seed
    }

    /// The JWK Set of the ring's public keys, and how long it may be cached.
    pub(crate) fn jwks(&self) -> (&Value, u64) {
        (&self.jwks, self.jwks_max_age)
    }

    /// Size of the verified-token cache that goes with this ring.
    pub(crate) fn cache_entries(&self) -> usize {
        self.cache_entries
    }

    /// One line for the log: each key's id and algorithm, the active one marked.
    pub(crate) fn describe(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let role = if i == self.active {
                    "signs"
                } else {
                    "verifies"
                };
                format!("{} ({}, {role})", k.kid, k.alg.name())
            })
            .collect();
        format!("{}; iss {}", keys.join(", "), self.issuer)
    }
}

fn algorithm(alg: KeyAlgorithm) -> Algorithm {
    match alg {
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::HS256 => Algorithm::HS256,
    }
}

/// `exp` always and `nbf` when present (no leeway for either: lifetimes are
/// 30 s, the library's 60 s default would double them); the `required` claims
/// (of `exp`, `iss`, `aud`) must be there, `iss` and `aud` are checked when present.
fn validation(
    alg: KeyAlgorithm,
    issuer: &str,
    audience: &[String],
    required: &[&str],
) -> Validation {
    let mut v = Validation::new(algorithm(alg));
    v.leeway = 0;
    v.validate_nbf = true;
    v.set_required_spec_claims(required);
    v.set_issuer(&[issuer]);
    v.set_audience(audience);
    v
}

fn new_key(kid: String, alg: KeyAlgorithm, decoding: DecodingKey, validation: Validation) -> Key {
    let mut header = Header::new(algorithm(alg));
    header.kid = Some(kid.clone());
    Key {
        kid,
        alg,
        header,
        encoding: None,
        decoding,
        validation,
        jwk: None,
    }
}

fn hmac_key(kid: String, secret: &Secret, validation: Validation) -> Key {
    let decoding = DecodingKey::from_secret(secret.expose());
    Key {
        encoding: Some(EncodingKey::from_secret(secret.expose())),
        ..new_key(kid, KeyAlgorithm::HS256, decoding, validation)
    }
}

fn asymmetric_key(
    kid: String,
    alg: KeyAlgorithm,
    pair: &files::Asymmetric,
    validation: Validation,
) -> Key {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let (decoding, encoding, mut jwk) = match alg {
        KeyAlgorithm::EdDSA => (
            DecodingKey::from_ed_der(&pair.public),
            pair.private_der.as_deref().map(EncodingKey::from_ed_der),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&pair.public)}),
        ),
        // The uncompressed SEC1 point: 0x04, x (32 bytes), y (32 bytes).
        _ => (
            DecodingKey::from_ec_der(&pair.public),
            pair.private_der.as_deref().map(EncodingKey::from_ec_der),
            json!({"kty": "EC", "crv": "P-256", "x": b64(&pair.public[1..33]), "y": b64(&pair.public[33..])}),
        ),
    };
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg.name());
    jwk["use"] = json!("sig");
    Key {
        encoding,
        jwk: Some(jwk),
        ..new_key(kid, alg, decoding, validation)
    }
}

/// The key id of the JWT secret alone: derived from it, so every instance with
/// the same secret agrees, and one-way, so it says nothing about the secret.
fn secret_kid(secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(b"authgate kid\0");
    h.update(secret.expose());
    format!("hs256-{}", &hex::encode(h.finalize())[..12])
}

/// `http://<first listen address>` (`https://` when only TLS listeners are set).
fn default_issuer(cfg: &Config) -> String {
    match (cfg.listen.first(), &cfg.tls) {
        (Some(addr), _) => format!("http://{addr}"),
        (None, Some(tls)) => tls
            .listen
            .first()
            .map_or_else(|| "authgate".into(), |a| format!("https://{a}")),
        (None, None) => "authgate".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{key_files, ring};
    use crate::keygen::Alg;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_jwks_holds_public_keys_only() {
        let (ed, _) = key_files(Alg::EdDSA, "jwks-ed");
        let (ec, _) = key_files(Alg::ES256, "jwks-ec");
        let yaml = format!(
            "tokens:\n  jwks_max_age_seconds: 60\n  keys:\n    - {{kid: e, alg: EdDSA, private_key_file: {}, active: true}}\n    - {{kid: p, alg: ES256, public_key_file: {}}}\n    - {{kid: h, alg: HS256}}\n",
            ed.display(),
            ec.with_file_name("jwks-ec.pub.pem").display()
        );
        let r = ring(&yaml).unwrap();
        let (jwks, max_age) = r.jwks();
        assert_eq!(max_age, 60);
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{jwks}");
        let (e, p) = (&keys[0], &keys[1]);
        assert_eq!(
            (&e["kty"], &e["crv"], &e["kid"], &e["alg"], &e["use"]),
            (
                &"OKP".into(),
                &"Ed25519".into(),
                &"e".into(),
                &"EdDSA".into(),
                &"sig".into()
            )
        );
        assert_eq!(e["x"].as_str().unwrap().len(), 43);
        assert_eq!(
            (&p["kty"], &p["crv"], &p["alg"]),
            (&"EC".into(), &"P-256".into(), &"ES256".into())
        );
        assert_eq!(
            (
                p["x"].as_str().unwrap().len(),
                p["y"].as_str().unwrap().len()
            ),
            (43, 43)
        );
        assert!(!jwks.to_string().contains("\"d\""));
        assert!(r
            .describe()
            .contains("e (EdDSA, signs), p (ES256, verifies), h (HS256, verifies)"));
    }

    #[test]
    fn key_files_open_to_others_or_mismatched_are_refused() {
        let (ed, _) = key_files(Alg::EdDSA, "perm-ed");
        std::fs::set_permissions(&ed, std::fs::Permissions::from_mode(0o640)).unwrap();
        let yaml = format!(
            "tokens: {{keys: [{{kid: e, alg: EdDSA, private_key_file: {}, active: true}}]}}",
            ed.display()
        );
        let err = ring(&yaml).err().unwrap().to_string();
        assert!(
            err.contains("tokens.keys[0].private_key_file")
                && err.contains(&format!("chmod 600 {}", ed.display())),
            "{err}"
        );
        let (other, _) = key_files(Alg::EdDSA, "perm-other");
        let yaml = format!(
            "tokens: {{keys: [{{kid: e, alg: EdDSA, private_key_file: {}, public_key_file: {}, active: true}}]}}",
            other.display(),
            ed.with_file_name("perm-ed.pub.pem").display()
        );
        let err = ring(&yaml).err().unwrap().to_string();
        assert!(
            err.contains("tokens.keys[0].public_key_file") && err.contains("not the public half"),
            "{err}"
        );
        let yaml = format!(
            "tokens: {{keys: [{{kid: e, alg: ES256, private_key_file: {}, active: true}}]}}",
            other.display()
        );
        let err = ring(&yaml).err().unwrap().to_string();
        assert!(err.contains("not a PKCS#8 PEM private ES256 key"), "{err}");
    }
}
