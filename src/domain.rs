//! Validated values a request carries: email, password, username, user id.

use crate::error::ApiError;

/// A user's numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u64);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A syntactically valid email address, trimmed and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Trim, lowercase and validate (RFC 5321 syntax via `email_address`, plus a dotted domain).
    pub fn parse(raw: &str) -> Result<Email, ApiError> {
        let bad = |reason: &str| ApiError::invalid_field("email", reason);
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(bad("must not be empty"));
        }
        if s.len() > 254 {
            return Err(bad("must be at most 254 characters"));
        }
        let parsed: email_address::EmailAddress =
            s.parse().map_err(|_| bad("is not a valid email address"))?;
        // `email_address` accepts quoted locals, IP literals and dotless domains; a
        // sign-up form wants an ordinary mailbox on a real domain.
        let (local, domain) = (parsed.local_part(), parsed.domain());
        let ordinary = !local.starts_with('"')
            && !domain.starts_with('[')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        if !ordinary {
            return Err(bad("is not a valid email address"));
        }
        Ok(Email(s))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as the user typed it: 8 to 128 characters, never altered.
pub struct Password(String);

impl Password {
    /// Check the length (in characters) and keep the text as it is.
    pub fn parse(raw: String) -> Result<Password, ApiError> {
        let n = raw.chars().count();
        if n < 8 {
            return Err(ApiError::invalid_field(
                "password",
                "must be at least 8 characters",
            ));
        }
        if n > 128 {
            return Err(ApiError::invalid_field(
                "password",
                "must be at most 128 characters",
            ));
        }
        Ok(Password(raw))
    }

    /// The text, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A display name: 1 to 150 of letters, digits and `@.+-_` (Django's username rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Trim and validate.
    pub fn parse(raw: &str) -> Result<Username, ApiError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ApiError::invalid_field("username", "must not be empty"));
        }
        if s.chars().count() > 150 {
            return Err(ApiError::invalid_field(
                "username",
                "must be at most 150 characters",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
        {
            return Err(ApiError::invalid_field(
                "username",
                "may contain only letters, digits and @ . + - _",
            ));
        }
        Ok(Username(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for e in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@[127.0.0.1]",
            "ann@exa_mple.com",
        ] {
            assert!(Email::parse(e).is_err(), "{e:?} accepted");
        }
    }

    #[test]
    fn password_length_is_counted_in_characters_and_kept_verbatim() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("é".repeat(128)).is_ok());
        assert!(Password::parse("é".repeat(129)).is_err());
        assert_eq!(
            Password::parse("  spaced  ".into()).unwrap().expose(),
            "  spaced  "
        );
    }

    #[test]
    fn username_rules() {
        assert!(Username::parse("ann.b+c@d-e_f").is_ok());
        assert!(Username::parse("ann b").is_err());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(&"a".repeat(151)).is_err());
    }
}
