//! Refresh tokens: random UUIDs handed to clients and stored only as their SHA-256.

use sha2::{Digest, Sha256};

/// A new random refresh token.
pub fn generate() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The storage fingerprint of a token, if it has the shape of one we issue.
///
/// Anything that is not a UUID is refused before it costs a Redis round trip.
pub fn fingerprint(token: &str) -> Option<String> {
    let id = uuid::Uuid::try_parse(token.trim()).ok()?;
    // Hash the canonical form so case variants of one token are one token.
    let canonical = id.hyphenated().to_string();
    Some(hex::encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_hides_the_token() {
        let t = generate();
        let f = fingerprint(&t).unwrap();
        assert_eq!(f, fingerprint(&t.to_uppercase()).unwrap());
        assert!(!f.contains(&t));
        assert_eq!(f.len(), 64);
        assert!(fingerprint("not-a-token").is_none());
    }
}
