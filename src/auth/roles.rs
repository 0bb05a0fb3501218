//! Role names and a user's set of them: validated, sorted, deduplicated, and kept as the one string `X-User-Roles` carries.
//!
//! A set is stored, signed and forwarded in one canonical form (`a,b`, sorted,
//! no duplicates), so the token claim, the user record and the upstream header
//! never disagree, and checking a route is a scan of at most 32 short names on
//! a token that was already verified.

use std::fmt;
use std::sync::Arc;

/// Most roles one user may hold.
pub(crate) const MAX_ROLES: usize = 32;
/// Longest role name.
const MAX_ROLE_LEN: usize = 64;

/// Why a list of roles was refused; each names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleError {
    /// A name outside `[a-z0-9][a-z0-9_.:-]{0,63}`.
    InvalidName(String),
    /// More than [`MAX_ROLES`] distinct names.
    TooMany(usize),
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleError::InvalidName(n) => write!(
                f,
                "role {n:?} is not a valid role name ([a-z0-9][a-z0-9_.:-]{{0,63}})"
            ),
            RoleError::TooMany(n) => write!(f, "{n} roles, at most {MAX_ROLES} are allowed"),
        }
    }
}

impl std::error::Error for RoleError {}

/// Whether `name` is a role name: `[a-z0-9][a-z0-9_.:-]{0,63}`. Lowercase only,
/// so `Admin` and `admin` can never be two roles that look like one.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ROLE_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b':' | b'-')
        })
}

/// A set of roles (possibly empty), in canonical form.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Roles(Option<Arc<str>>);

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Roles {
    /// No roles.
    pub(crate) const NONE: Roles = Roles(None);

    /// The set of `names`: each validated, duplicates removed, sorted.
    pub(crate) fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Roles, RoleError> {
        let mut v: Vec<&str> = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref();
            if !valid_name(n) {
                return Err(RoleError::InvalidName(n.to_owned()));
            }
            v.push(n);
        }
        v.sort_unstable();
        v.dedup();
        if v.len() > MAX_ROLES {
            return Err(RoleError::TooMany(v.len()));
        }
        Ok(if v.is_empty() {
            Roles(None)
        } else {
            Roles(Some(v.join(",").into()))
        })
    }

    /// The set stored as `a,b` (the user record's `roles` field; `""` is none).
    pub(crate) fn from_stored(s: &str) -> Result<Roles, RoleError> {
        if s.is_empty() {
            return Ok(Roles(None));
        }
        let names: Vec<&str> = s.split(',').collect();
        Roles::from_names(&names)
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// `a,b`, or `""` for none: the stored form and the `X-User-Roles` value.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// The names, sorted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.as_deref().into_iter().flat_map(|s| s.split(','))
    }

    /// The names as a JSON array.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        self.iter().map(serde_json::Value::from).collect()
    }

    /// Whether any of `wanted` is held. Exact: `superadmin` is not `admin`.
    pub(crate) fn any_of(&self, wanted: &Roles) -> bool {
        self.iter().any(|r| wanted.iter().any(|w| w == r))
    }

    /// Whether every one of these is also in `other` (none: always).
    pub(crate) fn within(&self, other: &Roles) -> bool {
        self.iter().all(|r| other.iter().any(|o| o == r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for ok in [
            "a",
            "admin",
            "0",
            "billing:read",
            "team-a.ops_1",
            &"a".repeat(64),
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Admin",
            "-a",
            "_a",
            ".a",
            "a b",
            "a,b",
            "é",
            &"a".repeat(65),
            "a\n",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn canonical_form_is_sorted_and_deduplicated() {
        let r = Roles::from_names(&["staff", "admin", "staff"]).unwrap();
        assert_eq!(r.as_str(), "admin,staff");
        assert_eq!(Roles::from_stored("admin,staff").unwrap(), r);
        assert_eq!(Roles::from_names::<&str>(&[]).unwrap(), Roles::NONE);
        assert_eq!(Roles::from_stored("").unwrap(), Roles::NONE);
        assert!(Roles::from_stored("admin,,x").is_err());
    }

    #[test]
    fn matching_is_exact() {
        let held = Roles::from_names(&["superadmin", "staff"]).unwrap();
        assert!(!held.any_of(&Roles::from_names(&["admin"]).unwrap()));
        assert!(held.any_of(&Roles::from_names(&["admin", "staff"]).unwrap()));
        assert!(!Roles::NONE.any_of(&Roles::from_names(&["staff"]).unwrap()));
    }

    #[test]
    fn at_most_32() {
        let names: Vec<String> = (0..33).map(|i| format!("r{i}")).collect();
        assert_eq!(Roles::from_names(&names), Err(RoleError::TooMany(33)));
        assert!(Roles::from_names(&names[..32]).is_ok());
    }
}
