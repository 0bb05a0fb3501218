//! Key naming, in one place. User hashes carry a `{hash tag}` so per-user keys can share a Cluster slot.

use crate::auth::refresh::Fingerprint;

/// Builds every key the gateway uses.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (for example `authgate:`).
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// INCR counter handing out user ids.
    pub fn next_user_id(&self) -> String {
        format!("{}user:next_id", self.prefix)
    }

    /// Hash of one user: email, username, password_hash, created_at.
    pub fn user(&self, id: u64) -> String {
        format!("{}user:{{{id}}}", self.prefix)
    }

    /// Claim of an email address; holds the user id.
    pub fn email(&self, normalized: &str) -> String {
        format!("{}email:{normalized}", self.prefix)
    }

    /// One refresh token, by the SHA-256 of the token; holds the user id.
    pub fn refresh(&self, fingerprint: &Fingerprint) -> String {
        format!("{}rt:{}", self.prefix, fingerprint.as_str())
    }
}
