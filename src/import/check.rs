//! What each record must be to become a user, checked without Redis: an id, an
//! email normalised as registration does, a password hash the gateway verifies.

use super::source::Record;
use crate::auth::django::DjangoHash;
use crate::domain::{Email, Username};
use std::collections::HashMap;

/// Why a record is not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// Not readable as a user: no numeric pk, no password field, a bad date, wrong field count.
    Malformed,
    /// No email, or an empty one.
    MissingEmail,
    /// An email registration would refuse.
    InvalidEmail,
    /// A password hasher the gateway does not verify (such as `md5`).
    UnsupportedHash,
    /// Another record of the file has the same normalised email.
    DuplicateEmail,
    /// Another record of the file has the same pk.
    DuplicateId,
    /// The id is another imported account, or a deleted user's, in Redis.
    IdTaken,
    /// The id is an account registered here (skipped only under `--allow-id-overlap`).
    IdRegistered,
    /// The email belongs to another account in Redis.
    EmailTaken,
}

impl Reason {
    /// The name in reports and summaries.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::MissingEmail => "missing_email",
            Reason::InvalidEmail => "invalid_email",
            Reason::UnsupportedHash => "unsupported_hash",
            Reason::DuplicateEmail => "duplicate_email",
            Reason::DuplicateId => "duplicate_id",
            Reason::IdTaken => "id_taken",
            Reason::IdRegistered => "id_registered",
            Reason::EmailTaken => "email_taken",
        }
    }
}

/// A record that is not imported, and why in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skip {
    pub(crate) reason: Reason,
    pub(crate) detail: String,
}

fn skip(reason: Reason, detail: impl Into<String>) -> Skip {
    Skip {
        reason,
        detail: detail.into(),
    }
}

/// A record ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub(crate) id: u64,
    /// Normalised by [`Email::parse`], as at registration.
    pub(crate) email: String,
    /// The Django username if it is a valid display name, else `""`.
    pub(crate) username: String,
    /// Why the username was not kept, when it was not.
    pub(crate) username_dropped: Option<String>,
    /// The Django hash as exported.
    pub(crate) password_hash: String,
    /// `date_joined` in Unix seconds, or the time of the import without one.
    pub(crate) created_at: u64,
    /// `is_active: false`: imported as disabled.
    pub(crate) disabled: bool,
    /// Django's unusable password (`!...`): imported, can never log in.
    pub(crate) unusable: bool,
}

/// Check `r`; `now` stands in for a missing `date_joined`.
pub(crate) fn check(r: &Record, now: u64) -> Result<Checked, Skip> {
    if let Some(why) = &r.malformed {
        return Err(skip(Reason::Malformed, why.clone()));
    }
    let id = match r.pk.as_deref().map(str::trim) {
        Some(pk) => pk.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
            skip(
                Reason::Malformed,
                format!("pk {pk:?} is not a positive integer"),
            )
        })?,
        None => return Err(skip(Reason::Malformed, "no pk")),
    };
    let password_hash = r
        .password
        .clone()
        .ok_or_else(|| skip(Reason::Malformed, "no password field (not a user object?)"))?;
    let email = match r.email.as_deref() {
        Some(e) if !e.trim().is_empty() => Email::parse(e)
            .map_err(|e| skip(Reason::InvalidEmail, e.to_string()))?
            .as_str()
            .to_owned(),
        _ => return Err(skip(Reason::MissingEmail, "no email")),
    };
    let unusable = match DjangoHash::parse(&password_hash) {
        Ok(h) => matches!(h, DjangoHash::Unusable),
        Err(why) => return Err(skip(Reason::UnsupportedHash, why)),
    };
    let created_at = match r.date_joined.as_deref() {
        Some(d) => unix_seconds(d).ok_or_else(|| {
            skip(
                Reason::Malformed,
                format!("date_joined {d:?} is not a date"),
            )
        })?,
        None => now,
    };
    let raw_username = r.username.as_deref().unwrap_or("");
    let (username, username_dropped) = if raw_username.trim().is_empty() {
        (String::new(), None)
    } else {
        match Username::parse(raw_username) {
            Ok(u) => (u.as_str().to_owned(), None),
            Err(e) => (String::new(), Some(e.to_string())),
        }
    };
    Ok(Checked {
        id,
        email,
        username,
        username_dropped,
        password_hash,
        created_at,
        disabled: r.is_active == Some(false),
        unusable,
    })
}

/// `date_joined` as Django's JSON writes it (`2019-03-04T05:06:00.123Z`, or
/// without a zone under `USE_TZ = False`, taken as UTC), or as PostgreSQL's CSV
/// does (`2019-03-04 05:06:00.123+00`).
fn unix_seconds(s: &str) -> Option<u64> {
    use chrono::{DateTime, NaiveDateTime};
    let s = s.trim();
    let at = DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|d| d.timestamp())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                .map(|d| d.and_utc().timestamp())
        })
        .ok()?;
    Some(u64::try_from(at).unwrap_or(0))
}

/// Records of the file that share a key (a normalised email, an id), found in a
/// first pass so that every record of a group is skipped, the first one too.
/// An entry is 20 to 28 bytes: this is the memory an import grows with.
#[derive(Debug)]
pub(crate) struct Groups<K> {
    /// Key → (records with it, the first's position, the second's).
    seen: HashMap<K, (u32, u32, u32)>,
}

impl<K: std::hash::Hash + Eq> Groups<K> {
    pub(crate) fn new() -> Self {
        Groups {
            seen: HashMap::new(),
        }
    }

    /// The record at `at` has `key`.
    pub(crate) fn add(&mut self, key: K, at: u64) {
        let at = u32::try_from(at).unwrap_or(u32::MAX);
        let e = self.seen.entry(key).or_insert((0, at, 0));
        e.0 = e.0.saturating_add(1);
        if e.0 == 2 {
            e.2 = at;
        }
    }

    /// If other records share `key` with the one at `at`, where one of them is.
    pub(crate) fn other(&self, key: &K, at: u64) -> Option<u64> {
        let at = u32::try_from(at).unwrap_or(u32::MAX);
        match self.seen.get(key) {
            Some(&(n, first, second)) if n > 1 => {
                Some(u64::from(if first == at { second } else { first }))
            }
            _ => None,
        }
    }
}

/// A fixed-size stand-in for an email in [`Groups`] (128 bits of its SHA-256).
pub(crate) fn email_key(email: &str) -> [u8; 16] {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(email.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pk: &str, email: &str, password: &str) -> Record {
        Record {
            at: 1,
            pk: Some(pk.into()),
            email: Some(email.into()),
            username: Some("ann".into()),
            password: Some(password.into()),
            ..Record::default()
        }
    }

    const HASH: &str = "pbkdf2_sha256$1000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=";

    #[test]
    fn a_good_record() {
        let mut r = record("7", " Ann@Exämple.COM ", HASH);
        r.date_joined = Some("2019-03-04T05:06:00.123Z".into());
        r.is_active = Some(false);
        let c = check(&r, 99).unwrap();
        assert_eq!(c.id, 7);
        assert_eq!(c.email, "ann@xn--exmple-cua.com");
        assert_eq!(c.username, "ann");
        assert_eq!(c.created_at, 1_551_675_960);
        assert!(c.disabled && !c.unusable);
        let r = record("8", "b@example.com", "!unusable");
        let c = check(&r, 99).unwrap();
        assert!(c.unusable && !c.disabled);
        assert_eq!(c.created_at, 99);
    }

    #[test]
    fn reasons() {
        let reason = |r: &Record| check(r, 0).map(|_| ()).map_err(|s| s.reason);
        assert_eq!(
            reason(&record("x", "a@example.com", HASH)),
            Err(Reason::Malformed)
        );
        assert_eq!(
            reason(&record("0", "a@example.com", HASH)),
            Err(Reason::Malformed)
        );
        assert_eq!(reason(&record("1", " ", HASH)), Err(Reason::MissingEmail));
        assert_eq!(
            reason(&record("1", "nope", HASH)),
            Err(Reason::InvalidEmail)
        );
        assert_eq!(
            reason(&record("1", "a@example.com", "md5$s$0123")),
            Err(Reason::UnsupportedHash)
        );
        let mut r = record("1", "a@example.com", HASH);
        r.date_joined = Some("yesterday".into());
        assert_eq!(reason(&r), Err(Reason::Malformed));
        r.password = None;
        r.date_joined = None;
        assert_eq!(reason(&r), Err(Reason::Malformed));
        let mut r = record("1", "a@example.com", HASH);
        r.username = Some("a\u{202e}b".into());
        let c = check(&r, 0).unwrap();
        assert_eq!(c.username, "");
        assert!(c.username_dropped.is_some());
    }

    #[test]
    fn dates() {
        assert_eq!(unix_seconds("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(unix_seconds("1970-01-01T01:01:00+01:00"), Some(60));
        assert_eq!(unix_seconds("1970-01-01T00:01:00.5"), Some(60));
        assert_eq!(unix_seconds("1970-01-01 00:01:00.123+00"), Some(60));
        assert_eq!(unix_seconds("1970-01-01 00:01:00"), Some(60));
        assert_eq!(unix_seconds("1960-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("soon"), None);
    }

    #[test]
    fn groups_name_another_member() {
        let mut g = Groups::new();
        g.add(1u64, 10);
        g.add(2, 11);
        g.add(1, 12);
        g.add(1, 13);
        assert_eq!(g.other(&1, 10), Some(12));
        assert_eq!(g.other(&1, 12), Some(10));
        assert_eq!(g.other(&1, 13), Some(10));
        assert_eq!(g.other(&2, 11), None);
    }
}
