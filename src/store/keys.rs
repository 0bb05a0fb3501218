//! Key naming, in one place. User hashes carry a `{hash tag}` so per-user keys can share a Cluster slot.

use crate::auth::refresh::Fingerprint;
use crate::domain::{SessionId, UserId};

/// Builds every key the gateway uses.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (for example `authgate:`).
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// INCR counter handing out user ids.
    pub(crate) fn next_user_id(&self) -> String {
        format!("{}user:next_id", self.prefix)
    }

    /// Hash of one user: email, username, password_hash, created_at.
    pub(crate) fn user(&self, id: u64) -> String {
        format!("{}user:{{{id}}}", self.prefix)
    }

    /// Claim of an email address; holds the user id.
    pub(crate) fn email(&self, normalized: &str) -> String {
        format!("{}email:{normalized}", self.prefix)
    }

    /// One refresh token, by the SHA-256 of the token; holds `<user id>:<session id>`.
    /// Any slot: the session it names decides whether it is still good.
    pub(crate) fn refresh(&self, fingerprint: &Fingerprint) -> String {
        format!("{}rt:{}", self.prefix, fingerprint.as_str())
    }

    /// The lookup key of a fingerprint read back from a session hash.
    pub(crate) fn refresh_hex(&self, fingerprint_hex: &str) -> String {
        format!("{}rt:{fingerprint_hex}", self.prefix)
    }

    /// One session (refresh-token family), in the user's slot: a hash of its
    /// current and previous token, times, client IP and User-Agent.
    pub(crate) fn session(&self, user: UserId, sid: SessionId) -> String {
        format!("{}{sid}", self.session_prefix(user))
    }

    /// What every session key of `user` starts with (a script that ends sessions
    /// it finds in the user's index names them from it: same slot).
    pub(crate) fn session_prefix(&self, user: UserId) -> String {
        format!("{}user:{{{}}}:session:", self.prefix, user.get())
    }

    /// The user's live sessions by last use (a sorted set), in the user's slot.
    pub(crate) fn sessions(&self, user: UserId) -> String {
        format!("{}user:{{{}}}:sessions", self.prefix, user.get())
    }

    /// Revocations of the last access-token lifetime (a sorted set by time),
    /// read by every instance after (re)subscribing to the channel of the same name.
    pub(crate) fn revocations(&self) -> String {
        format!("{}revocations", self.prefix)
    }

    /// One throttle counter: failures or attempts of `scope` by the subject whose
    /// SHA-256 (hex) is `subject_hash`, in fixed bucket number `bucket` of its window.
    pub(crate) fn throttle(&self, scope: &str, subject_hash: &str, bucket: u64) -> String {
        // Tagged by scope and subject: both buckets of a counter share a slot.
        format!("{}thr:{{{scope}:{subject_hash}}}:{bucket}", self.prefix)
    }
}
