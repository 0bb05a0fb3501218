//! Rings and hand-made tokens for unit tests: key files in a private temp directory.

use super::KeyRing;
use crate::auth::access::now_unix;
use crate::config::{Config, Secret};
use crate::keygen::{generate, Alg};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The secret of HS256 test rings.
pub(crate) const SECRET: [u8; 32] = [7; 32];

/// A new key pair of `alg`, written as `<dir>/<kid>.pem` (0600) and `<kid>.pub.pem`; the private PEM.
pub(crate) fn key_files(alg: Alg, kid: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("authgate-unit-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = generate(alg).unwrap();
    let private = dir.join(format!("{kid}.pem"));
    std::fs::write(&private, &pair.private_pem).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.join(format!("{kid}.pub.pem")), &pair.public_pem).unwrap();
    (private, pair.private_pem)
}

/// The ring of a config file's text, with the test secret as the JWT secret.
pub(crate) fn ring(yaml: &str) -> Result<KeyRing, super::KeyError> {
    let mut cfg = Config::from_yaml(yaml, std::path::Path::new("x.yaml")).unwrap();
    cfg.validate().unwrap();
    cfg.jwt_secret = Some(Secret::new(SECRET.to_vec()));
    KeyRing::from_config(&cfg)
}

/// The claims the gateway issues for user 1, good for a minute, with `iss` and `aud` as given.
pub(crate) fn claims(iss: &str, aud: &str) -> Value {
    let now = now_unix();
    json!({"user_id": 1, "sub": "1", "iat": now, "exp": now + 60, "iss": iss, "aud": aud})
}

/// A token over `claims` with header `{alg, kid}`, signed with `key` (a private PEM, or HS256 bytes).
pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, key: &[u8], claims: &Value) -> String {
    let encoding = match alg {
        Algorithm::EdDSA => {
            let pem = std::str::from_utf8(key).unwrap();
            let k = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).unwrap();
            EncodingKey::from_ed_der(k.to_pkcs8_der().unwrap().as_bytes())
        }
        Algorithm::ES256 => {
            let pem = std::str::from_utf8(key).unwrap();
            let k = p256::SecretKey::from_pkcs8_pem(pem).unwrap();
            EncodingKey::from_ec_der(k.to_pkcs8_der().unwrap().as_bytes())
        }
        _ => EncodingKey::from_secret(key),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}
