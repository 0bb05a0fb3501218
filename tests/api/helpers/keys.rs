//! Signing keys for tests: key pairs made by the real `authgate keygen`, tokens signed by hand.

use super::process::scratch_dir;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// A key pair written by `authgate keygen`.
pub struct KeyFiles {
    /// Its key id.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: &'static str,
    /// The PKCS#8 PEM private key (mode 0600).
    pub private: PathBuf,
    /// The SPKI PEM public key.
    pub public: PathBuf,
}

impl KeyFiles {
    /// `authgate keygen --alg ALG --kid KID --out <new private dir>`.
    pub fn generate(alg: &'static str, kid: &str) -> KeyFiles {
        let out = scratch_dir().join("keys");
        let run = Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["keygen", "--alg", alg, "--kid", kid, "--out"])
            .arg(&out)
            .output()
            .expect("run authgate keygen");
        assert!(run.status.success(), "keygen: {run:?}");
        KeyFiles {
            kid: kid.to_owned(),
            alg,
            private: out.join(format!("{kid}.pem")),
            public: out.join(format!("{kid}.pub.pem")),
        }
    }

    /// Its `tokens.keys` entry (flow style, one line), signing or verify-only.
    pub fn entry(&self, active: bool) -> String {
        format!(
            "    - {{kid: {}, alg: {}, private_key_file: {}, active: {active}}}\n",
            self.kid,
            self.alg,
            self.private.display()
        )
    }

    /// A token over `claims` signed with this key, with `kid` in its header (if given).
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let pem = std::fs::read_to_string(&self.private).expect("read private key");
        let (alg, der) = match self.alg {
            "EdDSA" => {
                let k = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("Ed25519 PEM");
                (Algorithm::EdDSA, k.to_pkcs8_der().expect("DER"))
            }
            _ => {
                let k = p256::SecretKey::from_pkcs8_pem(&pem).expect("P-256 PEM");
                (Algorithm::ES256, k.to_pkcs8_der().expect("DER"))
            }
        };
        let key = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(der.as_bytes()),
            _ => EncodingKey::from_ec_der(der.as_bytes()),
        };
        sign_with(alg, kid, &key, claims)
    }
}

/// `tokens:` with `keys:` made of `entries` and any more `tokens` lines after them.
pub fn tokens_yaml(entries: &[String], more: &str) -> String {
    format!("tokens:\n  keys:\n{}{more}", entries.concat())
}

/// A token over `claims` with header `{alg, kid, typ: JWT}`.
pub fn sign_with(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign test token")
}

/// The claims the gateway issues for `user`, good for five minutes, with `iss` and `aud` as given.
pub fn claims(user: u64, iss: &str, aud: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    json!({"user_id": user, "sub": user.to_string(), "iat": now, "exp": now + 300, "iss": iss, "aud": aud})
}

/// The JSON of a token's header or claims (`part` 0 or 1).
pub fn token_part(jwt: &str, part: usize) -> Value {
    use base64::Engine;
    let b64 = jwt.split('.').nth(part).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}
