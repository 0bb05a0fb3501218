//! Refresh tokens: random UUIDs handed to clients and stored only as their SHA-256 [`Fingerprint`].

use sha2::{Digest, Sha256};

/// A new random refresh token, with its fingerprint.
pub(crate) fn generate() -> (String, Fingerprint) {
    let (id, fp) = generate_uuid();
    (id.to_string(), fp)
}

/// A new random refresh token as a UUID (a browser session's, which the
/// gateway keeps as bytes to seal), with its fingerprint.
pub(crate) fn generate_uuid() -> (uuid::Uuid, Fingerprint) {
    let id = uuid::Uuid::new_v4();
    (id, Fingerprint::of(&id))
}

/// What Redis holds for a refresh token: the hex SHA-256 of its canonical form.
///
/// A type of its own so a raw token can never be passed where its hash is
/// meant (and stored in clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a presented token, if it has the shape of one we issue.
    /// Anything that is not a UUID is refused before it costs a Redis round trip.
    pub(crate) fn of_token(token: &str) -> Option<Fingerprint> {
        uuid::Uuid::try_parse(token.trim())
            .ok()
            .map(|id| Fingerprint::of(&id))
    }

    /// The fingerprint of a token already read as a UUID. Hashes the
    /// canonical form, so case variants of one token are one token.
    pub(crate) fn of(id: &uuid::Uuid) -> Fingerprint {
        let canonical = id.hyphenated().to_string();
        Fingerprint(hex::encode(Sha256::digest(canonical.as_bytes())))
    }

    /// The hex digest, for key names.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_hides_the_token() {
        let (t, f) = generate();
        assert_eq!(Some(&f), Fingerprint::of_token(&t).as_ref());
        assert_eq!(Some(&f), Fingerprint::of_token(&t.to_uppercase()).as_ref());
        assert!(!f.as_str().contains(&t));
        assert_eq!(f.as_str().len(), 64);
        assert!(Fingerprint::of_token("not-a-token").is_none());
    }
}
