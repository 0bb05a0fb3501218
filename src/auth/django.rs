//! Password hashes exported from Django (`django.contrib.auth.hashers`), read at
//! import and verified at a migrated user's first login, after which the gateway
//! stores argon2id in their place.
//!
//! The stored forms, `<algorithm>$<fields>` as in Django's `password` column:
//! - `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (Django's default) and `pbkdf2_sha1$...`;
//! - `argon2$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`: a PHC string after the prefix;
//! - `bcrypt_sha256$$2b$<cost>$<salt+hash>`: bcrypt of the hex SHA-256 of the password
//!   (`bcrypt$$2b$...`: bcrypt of the password itself);
//! - `scrypt$<N>$<salt>$<r>$<p>$<base64 hash>`;
//! - `!<anything>`, or empty: an unusable password, which matches nothing.
//!
//! Every comparison of derived bytes is constant-time (`subtle` for scrypt;
//! ring's `pbkdf2::verify`, `password-hash` and `bcrypt` compare so themselves).

use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

/// The most memory one stored hash may make a verification use (argon2 `m`,
/// scrypt 128·r·N): 256 MiB, on each hashing thread. Django's defaults need
/// 100 MiB (argon2) and 16 MiB (scrypt).
const MAX_MEMORY_BYTES: u64 = 256 << 20;

/// Ceilings on the work one stored hash may ask of a login, a few times
/// Django's current defaults (pbkdf2 1 000 000 iterations, bcrypt cost 12,
/// argon2 t=2 p=8, scrypt p=5): an export with absurd costs would otherwise
/// let each login attempt hold a hashing thread for minutes.
const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;
const MAX_BCRYPT_COST: u32 = 15;
const MAX_ARGON2_PASSES: u32 = 16;
const MAX_ARGON2_LANES: u32 = 64;
const MAX_SCRYPT_P: u32 = 16;

/// Shortest argon2 or scrypt digest accepted (Django writes 32 and 64 bytes):
/// a short digest is matched by many passwords.
const MIN_DIGEST_BYTES: usize = 16;

/// A Django password hash, its fields read and checked.
#[derive(Debug)]
pub(crate) enum DjangoHash<'a> {
    /// `pbkdf2_sha256` or `pbkdf2_sha1`.
    Pbkdf2 {
        /// SHA-1 rather than SHA-256.
        sha1: bool,
        iterations: std::num::NonZeroU32,
        salt: &'a str,
        hash: Vec<u8>,
    },
    /// `argon2`: the PHC string after the prefix.
    Argon2(PasswordHash<'a>),
    /// `bcrypt_sha256` (`sha256`) or `bcrypt`: the modular-crypt `$2b$...` string.
    Bcrypt { sha256: bool, mcf: &'a str },
    /// `scrypt`.
    Scrypt {
        params: scrypt::Params,
        salt: &'a str,
        hash: Vec<u8>,
    },
    /// `!...` or empty: no password can match.
    Unusable,
}

impl<'a> DjangoHash<'a> {
    /// Read `encoded`, or say why it is not a Django hash the gateway verifies.
    pub(crate) fn parse(encoded: &'a str) -> Result<DjangoHash<'a>, String> {
        if encoded.is_empty() || encoded.starts_with('!') {
            return Ok(DjangoHash::Unusable);
        }
        let (algorithm, rest) = encoded
            .split_once('$')
            .ok_or("not a Django password hash (no `algorithm$`)")?;
        let malformed = |what: &str| format!("malformed {algorithm} hash: {what}");
        match algorithm {
            "pbkdf2_sha256" | "pbkdf2_sha1" => {
                let [iterations, salt, hash] = fields(rest).ok_or_else(|| malformed("fields"))?;
                let iterations = iterations
                    .parse::<u32>()
                    .ok()
                    .and_then(std::num::NonZeroU32::new)
                    .ok_or_else(|| malformed("iterations"))?;
                if iterations.get() > MAX_PBKDF2_ITERATIONS {
                    return Err(malformed(&format!(
                        "more than {MAX_PBKDF2_ITERATIONS} iterations"
                    )));
                }
                let sha1 = algorithm == "pbkdf2_sha1";
                let hash = base64(hash).ok_or_else(|| malformed("hash"))?;
                // Django's digest is as long as the hash function's output; a
                // shorter one would be matched by one password in 256^len.
                let full = if sha1 { 20 } else { 32 };
                if hash.len() != full {
                    return Err(malformed(&format!(
                        "a {}-byte digest where {algorithm} makes {full}",
                        hash.len()
                    )));
                }
                Ok(DjangoHash::Pbkdf2 {
                    sha1,
                    iterations,
                    salt,
                    hash,
                })
            }
            "argon2" => {
                let phc = &encoded[algorithm.len()..];
                let parsed = PasswordHash::new(phc).map_err(|e| malformed(&e.to_string()))?;
                let params =
                    argon2::Params::try_from(&parsed).map_err(|e| malformed(&e.to_string()))?;
                if u64::from(params.m_cost()) * 1024 > MAX_MEMORY_BYTES {
                    return Err(malformed("more than 256 MiB of memory"));
                }
                if params.t_cost() > MAX_ARGON2_PASSES || params.p_cost() > MAX_ARGON2_LANES {
                    return Err(malformed(&format!(
                        "more than {MAX_ARGON2_PASSES} passes or {MAX_ARGON2_LANES} lanes"
                    )));
                }
                if parsed.hash.is_some_and(|h| h.len() < MIN_DIGEST_BYTES) {
                    return Err(malformed(&format!(
                        "a digest shorter than {MIN_DIGEST_BYTES} bytes"
                    )));
                }
                if argon2::Algorithm::new(parsed.algorithm.as_str()).is_err()
                    || parsed.salt.is_none()
                    || parsed.hash.is_none()
                {
                    return Err(malformed("not an argon2 PHC string"));
                }
                Ok(DjangoHash::Argon2(parsed))
            }
            "bcrypt_sha256" | "bcrypt" => {
                // `$2b$12$` + 22 characters of salt + 31 of hash.
                let well_formed = rest.len() == 60
                    && rest.starts_with("$2")
                    && rest.as_bytes().get(3) == Some(&b'$')
                    && rest
                        .get(4..6)
                        .and_then(|c| c.parse::<u32>().ok())
                        .is_some_and(|c| (4..=MAX_BCRYPT_COST).contains(&c));
                if !well_formed {
                    return Err(malformed(&format!(
                        "not a $2b$ bcrypt string of cost 4 to {MAX_BCRYPT_COST}"
                    )));
                }
                Ok(DjangoHash::Bcrypt {
                    sha256: algorithm == "bcrypt_sha256",
                    mcf: rest,
                })
            }
            "scrypt" => {
                let [n, salt, r, p, hash] = fields(rest).ok_or_else(|| malformed("fields"))?;
                let n: u64 = n.parse().map_err(|_| malformed("N"))?;
                let r: u32 = r.parse().map_err(|_| malformed("r"))?;
                let p: u32 = p.parse().map_err(|_| malformed("p"))?;
                if !n.is_power_of_two() || n < 2 {
                    return Err(malformed("N is not a power of 2"));
                }
                if 128 * u64::from(r) * n > MAX_MEMORY_BYTES {
                    return Err(malformed("more than 256 MiB of memory"));
                }
                if p > MAX_SCRYPT_P {
                    return Err(malformed(&format!("p above {MAX_SCRYPT_P}")));
                }
                let hash = base64(hash).ok_or_else(|| malformed("hash"))?;
                if hash.len() < MIN_DIGEST_BYTES {
                    return Err(malformed(&format!(
                        "a digest shorter than {MIN_DIGEST_BYTES} bytes"
                    )));
                }
                let log_n = n.trailing_zeros() as u8;
                let params = scrypt::Params::new(log_n, r, p, hash.len())
                    .map_err(|_| malformed("parameters"))?;
                Ok(DjangoHash::Scrypt { params, salt, hash })
            }
            other => Err(format!("unsupported password hasher {other:?}")),
        }
    }

    /// Whether `password` is the one this hash was made from.
    pub(crate) fn verify(&self, password: &str) -> bool {
        let pw = password.as_bytes();
        match self {
            DjangoHash::Pbkdf2 {
                sha1,
                iterations,
                salt,
                hash,
            } => {
                let algorithm = if *sha1 {
                    ring::pbkdf2::PBKDF2_HMAC_SHA1
                } else {
                    ring::pbkdf2::PBKDF2_HMAC_SHA256
                };
                // Compares in constant time.
                ring::pbkdf2::verify(algorithm, *iterations, salt.as_bytes(), pw, hash).is_ok()
            }
            // Algorithm, version and parameters come from the hash.
            DjangoHash::Argon2(parsed) => argon2::Argon2::default()
                .verify_password(pw, parsed)
                .is_ok(),
            DjangoHash::Bcrypt { sha256, mcf } => {
                let verified = if *sha256 {
                    use sha2::Digest as _;
                    bcrypt::verify(hex::encode(sha2::Sha256::digest(pw)), mcf)
                } else {
                    bcrypt::verify(pw, mcf)
                };
                verified.unwrap_or(false)
            }
            DjangoHash::Scrypt { params, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(pw, salt.as_bytes(), params, &mut out).is_ok()
                    && bool::from(out.ct_eq(hash))
            }
            DjangoHash::Unusable => false,
        }
    }
}

/// Exactly `N` `$`-separated fields (the last may not hold a `$`).
fn fields<const N: usize>(s: &str) -> Option<[&str; N]> {
    let parts: Vec<&str> = s.split('$').collect();
    parts.try_into().ok()
}

/// Standard, padded base64 as Python's `base64.b64encode` writes it.
fn base64(s: &str) -> Option<Vec<u8>> {
    BASE64.decode(s).ok().filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_and_unknown() {
        assert!(matches!(
            DjangoHash::parse("!abc"),
            Ok(DjangoHash::Unusable)
        ));
        assert!(matches!(DjangoHash::parse(""), Ok(DjangoHash::Unusable)));
        assert!(!DjangoHash::parse("!x").unwrap().verify("x"));
        let e = DjangoHash::parse("md5$salt$0123").unwrap_err();
        assert!(e.contains("unsupported password hasher \"md5\""), "{e}");
        assert!(DjangoHash::parse("pbkdf2_sha256$0$salt$aGFzaA==").is_err());
        assert!(DjangoHash::parse("pbkdf2_sha256$10$salt").is_err());
        assert!(DjangoHash::parse("scrypt$1000$salt$8$1$aGFzaA==").is_err());
        assert!(DjangoHash::parse("bcrypt_sha256$$2b$12$short").is_err());
        assert!(DjangoHash::parse(
            "argon2$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        )
        .is_err());
    }

    /// Hashes made by Django itself (tests/fixtures/make_django_users.py), one per hasher.
    #[test]
    fn every_hasher_of_the_django_fixture() {
        let dump: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/django_users.json")).unwrap();
        let mut seen = Vec::new();
        for user in dump.as_array().unwrap() {
            let encoded = user["fields"]["password"].as_str().unwrap();
            let Ok(hash) = DjangoHash::parse(encoded) else {
                assert!(encoded.starts_with("md5$"), "{encoded}");
                continue;
            };
            if matches!(hash, DjangoHash::Unusable) {
                continue;
            }
            let hasher = encoded.split('$').next().unwrap();
            if seen.contains(&hasher) {
                continue;
            }
            seen.push(hasher);
            assert!(
                hash.verify(&format!("django {hasher} password")),
                "{encoded}"
            );
            assert!(
                !hash.verify(&format!("django {hasher} passworD")),
                "{encoded}"
            );
            assert!(!hash.verify(""), "{encoded}");
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            [
                "argon2",
                "bcrypt",
                "bcrypt_sha256",
                "pbkdf2_sha1",
                "pbkdf2_sha256",
                "scrypt"
            ]
        );
    }
}
