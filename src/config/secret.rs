//! The JWT signing secret: read from the environment or a file, never from the YAML itself, and never printed.

use super::{invalid, Config, ConfigError, KeyAlgorithm};
use std::fmt;
use std::path::PathBuf;

/// Shortest JWT secret accepted: HS256 wants at least as many key bytes as its output.
pub const MIN_SECRET_BYTES: usize = 32;

/// The secret itself, in the environment.
pub(super) const SECRET_VAR: &str = "AUTHGATE_JWT_SECRET";
/// A file holding the secret, named in the environment.
pub(super) const SECRET_FILE_VAR: &str = "AUTHGATE_JWT_SECRET_FILE";

/// A secret that never prints itself.
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wrap raw key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    /// The raw bytes, for building keys.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret in `bytes` if it is long enough and not obviously guessable;
    /// the rule it breaks (never the bytes) if not.
    pub fn checked(bytes: Vec<u8>) -> Result<Secret, String> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the JWT secret must be at least {MIN_SECRET_BYTES} bytes, it has {}",
                bytes.len()
            ));
        }
        let distinct = distinct_bytes(&bytes);
        if distinct < MIN_DISTINCT_BYTES {
            return Err(format!(
                "the JWT secret must hold at least {MIN_DISTINCT_BYTES} distinct byte values, it has {distinct}: generate one with `openssl rand -base64 48`"
            ));
        }
        if let Some(period) = repeat_period(&bytes) {
            return Err(format!(
                "the JWT secret is a pattern of {period} bytes repeated: its strength is that of the pattern; generate one with `openssl rand -base64 48`"
            ));
        }
        Ok(Secret(bytes))
    }

    /// The secret a file holds: a trailing newline from `echo > file` is not part of the key.
    pub fn from_file_contents(mut bytes: Vec<u8>) -> Result<Secret, String> {
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Secret::checked(bytes)
    }
}

/// Fewest distinct byte values a JWT secret may hold: a 32-byte string of one
/// letter (or of a few) is long but guessable. Random base64 of 32 bytes holds
/// about 26.
const MIN_DISTINCT_BYTES: usize = 16;

fn distinct_bytes(bytes: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|s| **s).count()
}

/// The shortest period `p` (at most half the length) with `bytes[i] == bytes[i - p]`
/// throughout, if any: `abcd...pabcd...p` repeats a 16-byte pattern.
fn repeat_period(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len() / 2).find(|&p| bytes[p..].iter().zip(bytes).all(|(a, b)| a == b))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

impl Config {
    /// The JWT secret: `AUTHGATE_JWT_SECRET`, else `AUTHGATE_JWT_SECRET_FILE`, else
    /// `tokens.jwt_secret_file`. Required unless `tokens.keys` names every secret itself.
    pub fn load_secret(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        // An empty variable (as `${VAR:-}` in compose files yields) counts as unset.
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let (key, secret) = if let Some(v) = get(SECRET_VAR) {
            (SECRET_VAR, Secret::checked(v.into_bytes()))
        } else {
            let (key, file) = match get(SECRET_FILE_VAR) {
                Some(f) => (SECRET_FILE_VAR, PathBuf::from(f)),
                None => match &self.tokens.jwt_secret_file {
                    Some(f) => ("tokens.jwt_secret_file", f.clone()),
                    None if !self.needs_secret() => return Ok(()),
                    None => {
                        return Err(invalid(
                            SECRET_VAR,
                            "no JWT secret: set AUTHGATE_JWT_SECRET, AUTHGATE_JWT_SECRET_FILE or tokens.jwt_secret_file (or signing keys in tokens.keys)",
                        ))
                    }
                },
            };
            let bytes = std::fs::read(&file)
                .map_err(|e| invalid(key, format!("cannot read {}: {e}", file.display())))?;
            (key, Secret::from_file_contents(bytes))
        };
        self.jwt_secret = Some(secret.map_err(|reason| invalid(key, reason))?);
        Ok(())
    }

    /// Whether some key is the JWT secret: no `tokens.keys` (the secret is the
    /// only key), or an HS256 key there without a `secret_file` of its own.
    fn needs_secret(&self) -> bool {
        let keys = &self.tokens.keys;
        keys.is_empty()
            || keys
                .iter()
                .any(|k| k.alg == KeyAlgorithm::HS256 && k.secret_file.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::from_pairs;

    #[test]
    fn short_secret_is_refused() {
        let mut c = Config::default();
        let err = c
            .load_secret(from_pairs(&[("AUTHGATE_JWT_SECRET", "short")]))
            .unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains("short"), "secret leaked: {err}");
    }

    #[test]
    fn low_entropy_secrets_are_refused_by_rule() {
        let one_letter = "a".repeat(40);
        let few = "abcdefghijklmno".repeat(3);
        let pattern = "0123456789abcdefghij".repeat(2);
        for (secret, rule) in [
            (one_letter.as_str(), "distinct byte values"),
            (few.as_str(), "distinct byte values"),
            (pattern.as_str(), "pattern of 20 bytes repeated"),
        ] {
            let err = Secret::checked(secret.as_bytes().to_vec()).unwrap_err();
            assert!(err.contains(rule), "{err}");
        }
        assert!(Secret::checked(b"test-secret-0123456789abcdef0123456789abcdef".to_vec()).is_ok());
    }

    #[test]
    fn the_secret_is_optional_when_the_ring_names_its_keys() {
        let yaml = "tokens: {keys: [{kid: a, alg: EdDSA, private_key_file: a.pem, active: true}]}";
        let mut c = Config::from_yaml(yaml, std::path::Path::new("x.yaml")).unwrap();
        c.load_secret(from_pairs(&[])).unwrap();
        assert!(c.jwt_secret.is_none());
        let yaml = "tokens: {keys: [{kid: a, alg: HS256, active: true}]}";
        let mut c = Config::from_yaml(yaml, std::path::Path::new("x.yaml")).unwrap();
        let err = c.load_secret(from_pairs(&[])).unwrap_err();
        assert!(err.to_string().contains("AUTHGATE_JWT_SECRET"), "{err}");
    }
}
