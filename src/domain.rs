//! Validated values a request carries: email, password, username, user id.

/// A user's numeric id. The number is reached through [`UserId::get`], so
/// every place that turns one into the other can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct UserId(u64);

impl UserId {
    /// The id `n`.
    pub(crate) const fn new(n: u64) -> UserId {
        UserId(n)
    }

    /// The number.
    pub(crate) const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Characters no email or username may hold anywhere: controls and format
/// characters (general categories Cc and Cf: NUL, the bidi embeddings, overrides
/// and isolates U+202A-U+202E and U+2066-U+2069, the zero-width U+200B-U+200F,
/// the BOM U+FEFF) and line and paragraph separators (Zl, Zp).
fn is_refused(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    )
}

/// Trim ordinary ASCII whitespace from both ends, refuse any [`is_refused`]
/// character in what is left, then trim other Unicode spaces (such as U+00A0)
/// and NFC-normalise.
fn clean(raw: &str) -> Result<String, &'static str> {
    use unicode_normalization::UnicodeNormalization;
    let s = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.chars().any(is_refused) {
        return Err("must not contain control, format or bidi characters (such as U+0000, U+200B or U+202E)");
    }
    Ok(s.trim().nfc().collect())
}

/// A session (refresh-token family): 128 random bits, shown as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(pub u128);

impl SessionId {
    /// A new random id.
    pub(crate) fn generate() -> SessionId {
        SessionId(uuid::Uuid::new_v4().as_u128())
    }

    /// Parse the 32-hex-digit form; anything else is no session id.
    pub(crate) fn parse(s: &str) -> Option<SessionId> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u128::from_str_radix(s, 16).ok().map(SessionId))
            .flatten()
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A value a client sent for `field` that is not valid, and why. Answered as
/// 400 `invalid_field` (`ErrorReply::InvalidField`, which this converts into);
/// the domain types know nothing of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidField {
    /// The field's name in the request.
    pub(crate) field: &'static str,
    /// What is wrong with it, for the client.
    pub(crate) reason: String,
}

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}` {}", self.field, self.reason)
    }
}

impl InvalidField {
    fn new(field: &'static str, reason: impl Into<String>) -> InvalidField {
        InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

/// A syntactically valid email address in one canonical spelling, so that
/// composed and decomposed (NFC/NFD) or differently cased spellings are one account.
///
/// The local part is NFC-normalised and lowercased. A non-ASCII local part
/// (RFC 6531) is accepted, as it always was. The domain is stored in its IDNA
/// ASCII form (UTS #46 ToASCII, which also maps case and width):
/// `Ann@Exämple.COM` is `ann@xn--exmple-cua.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Email(String);

impl Email {
    /// Trim ASCII whitespace, refuse control, format and bidi characters anywhere,
    /// normalise as above, and validate: RFC 5321 syntax via `email_address`, no
    /// quoted local part, no IP literal, a dotted domain, at most 254 octets.
    pub(crate) fn parse(raw: &str) -> Result<Email, InvalidField> {
        use unicode_normalization::UnicodeNormalization;
        let bad = |reason: &str| InvalidField::new("email", reason);
        let invalid = || bad("is not a valid email address");
        let s = clean(raw).map_err(bad)?;
        if s.is_empty() {
            return Err(bad("must not be empty"));
        }
        // `email_address` takes any non-ASCII character in a local part, spaces such
        // as U+3000 included; an address has no spaces of any kind.
        if s.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        // `email_address` accepts quoted locals, IP literals and dotless domains; a
        // sign-up form wants an ordinary mailbox on a real domain.
        if local.starts_with('"') || domain.starts_with('[') {
            return Err(invalid());
        }
        let local: String = local.to_lowercase().nfc().collect();
        // UTS #46 does its own case mapping (Σ to σ, where `to_lowercase` may give ς),
        // so the domain goes to it as typed. STD3 rules allow only letters, digits and
        // hyphens; the DNS length check refuses empty labels and a trailing dot.
        let domain = idna::uts46::Uts46::new()
            .to_ascii(
                domain.as_bytes(),
                idna::uts46::AsciiDenyList::STD3,
                idna::uts46::Hyphens::CheckFirstLast,
                idna::uts46::DnsLength::Verify,
            )
            .map_err(|_| invalid())?;
        let dotted = domain.contains('.')
            && domain.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !dotted {
            return Err(invalid());
        }
        let s = format!("{local}@{domain}");
        if s.len() > 254 {
            return Err(bad("must be at most 254 bytes"));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        email_address::EmailAddress::parse_with_options(&s, options).map_err(|_| invalid())?;
        Ok(Email(s))
    }

    /// The normalised address.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as the user typed it: 8 to 128 characters, never altered.
pub(crate) struct Password(String);

impl Password {
    /// Check the length (in characters) and keep the text as it is.
    pub(crate) fn parse(raw: String) -> Result<Password, InvalidField> {
        Password::parse_field(raw, "password")
    }

    /// [`Password::parse`] for a body field of another name, which a refusal names:
    /// `/password` reads `new_password`, and was answered "field `password` must be
    /// at least 8 characters" for a body without any `password` (found by
    /// fuzz/fuzz_targets/auth_json.rs).
    pub(crate) fn parse_field(raw: String, field: &'static str) -> Result<Password, InvalidField> {
        let n = raw.chars().count();
        if n < 8 {
            return Err(InvalidField::new(field, "must be at least 8 characters"));
        }
        if n > 128 {
            return Err(InvalidField::new(field, "must be at most 128 characters"));
        }
        Ok(Password(raw))
    }

    /// The text, for hashing.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A display name such as `John Smith`: 1 to 150 characters after trimming and
/// NFC normalisation; spaces, letters, digits and punctuation are all fine, but
/// control, format and bidi characters and line separators are refused anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Username(String);

impl Username {
    /// Trim, refuse control, format and bidi characters, NFC-normalise, then count.
    pub(crate) fn parse(raw: &str) -> Result<Username, InvalidField> {
        let bad = |reason: &str| InvalidField::new("username", reason);
        let s = clean(raw).map_err(bad)?;
        if s.is_empty() {
            return Err(bad("must not be empty"));
        }
        if s.chars().count() > 150 {
            return Err(bad("must be at most 150 characters"));
        }
        Ok(Username(s))
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control, format, bidi and separator characters refused anywhere.
    const REFUSED: [char; 16] = [
        '\u{0000}', '\u{001B}', '\u{007F}', '\u{0085}', // Cc
        '\u{202A}', '\u{202E}', '\u{2066}',
        '\u{2069}', // Cf: bidi embeddings, overrides, isolates
        '\u{200B}', '\u{200D}', '\u{200F}', '\u{FEFF}', // Cf: zero-width, RLM, BOM
        '\u{00AD}', '\u{2060}', // Cf: soft hyphen, word joiner
        '\u{2028}', '\u{2029}', // Zl, Zp
    ];

    fn refused_for(r: Result<impl std::fmt::Debug, InvalidField>, field: &str) -> bool {
        matches!(r, Err(InvalidField { field: f, .. }) if f == field)
    }

    #[test]
    fn email_is_normalised() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        assert_eq!(
            Email::parse(" \t\r\nann@EXAMPLE.com\n").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for e in [
            "",
            "  ",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@[127.0.0.1]",
            "\"ann\"@example.com",
            "ann@exa_mple.com",
            "ann@example.com.",
            "ann@example..com",
            "ann@-example.com",
            "Ann <ann@example.com>",
            "ann@ex ample.com",
            "an\u{3000}n@example.com",
            "an\u{A0}n@example.com",
        ] {
            assert!(refused_for(Email::parse(e), "email"), "{e:?} accepted");
        }
    }

    #[test]
    fn control_format_and_bidi_characters_are_refused_anywhere_in_an_email() {
        for c in REFUSED {
            for e in [
                format!("an{c}n@example.com"),
                format!("ann@exa{c}mple.com"),
                format!("ann@example.com{c}"),
                format!("{c}ann@example.com"),
                format!(" {c} ann@example.com"),
                format!("ann{c}@example.com"),
                format!("ann@{c}example.com"),
            ] {
                assert!(refused_for(Email::parse(&e), "email"), "{e:?} accepted");
            }
        }
        // Inner ASCII whitespace is not trimmed away: it is still refused.
        assert!(Email::parse("ann\t@example.com").is_err());
        // U+202E in the local part and in the domain, as an attacker would write it.
        assert!(Email::parse("moc.elpmaxe@\u{202E}nna").is_err());
        assert!(Email::parse("ann@\u{202E}moc.elpmaxe").is_err());
    }

    #[test]
    fn nfc_and_nfd_spellings_are_one_email() {
        let composed = Email::parse("Ann@Ex\u{E4}mple.com").unwrap();
        let decomposed = Email::parse("ANN@EXA\u{308}MPLE.com").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(composed.as_str(), "ann@xn--exmple-cua.com");
        // A non-ASCII local part (RFC 6531) is accepted, NFC-normalised and lowercased.
        let nfc = Email::parse("Jos\u{E9}@example.com").unwrap();
        let nfd = Email::parse("JOSE\u{301}@example.com").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(nfc.as_str(), "jos\u{E9}@example.com");
    }

    #[test]
    fn email_domains_are_stored_in_idna_ascii_form() {
        for (raw, stored) in [
            ("Ann@Ex\u{E4}mple.COM", "ann@xn--exmple-cua.com"),
            ("ANN@EX\u{C4}MPLE.COM", "ann@xn--exmple-cua.com"),
            ("ann@XN--EXMPLE-CUA.com", "ann@xn--exmple-cua.com"),
            ("ann@EXAMPLE.com", "ann@example.com"),
            ("ann@\u{FF45}\u{FF58}ample.com", "ann@example.com"),
            (
                "ann@b\u{FC}cher.\u{4E2D}\u{56FD}",
                "ann@xn--bcher-kva.xn--fiqs8s",
            ),
        ] {
            assert_eq!(Email::parse(raw).unwrap().as_str(), stored, "{raw:?}");
        }
        // UTS #46 maps capital sigma to σ, not to the final ς `to_lowercase` would give.
        assert_eq!(
            Email::parse("ann@\u{391}\u{3A3}.com").unwrap(),
            Email::parse("ann@\u{3B1}\u{3C3}.com").unwrap()
        );
        assert!(
            Email::parse("ann@xn--.com").is_err(),
            "empty punycode label"
        );
    }

    #[test]
    fn email_length_is_checked_after_normalisation() {
        let domain = format!("{}.{}.{}", "b".repeat(63), "c".repeat(63), "d".repeat(61));
        let ok = format!("{}@{domain}", "a".repeat(64));
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok());
        assert!(Email::parse(&format!("{ok}d")).is_err());
        // Full-width letters take three bytes as typed but one once mapped.
        let wide = format!(
            "{}@{}.{}.{}",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "\u{FF44}".repeat(61)
        );
        assert!(wide.len() > 254);
        assert_eq!(Email::parse(&wide).unwrap().as_str(), ok);
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

    /// Regression (fuzz target auth_json): the refusal names the field the client sent.
    #[test]
    fn a_refused_password_names_its_field() {
        for (raw, field) in [
            ("short", "new_password"),
            ("x".repeat(129).as_str(), "new_password"),
        ] {
            let r = Password::parse_field(raw.into(), field);
            assert!(refused_for(r, "new_password"), "{raw:?}");
        }
        assert!(refused_for(Password::parse("short".into()), "password"));
    }

    #[test]
    fn username_is_a_display_name() {
        for (raw, stored) in [
            ("John Smith", "John Smith"),
            ("  John Smith \t", "John Smith"),
            ("ann.b+c@d-e_f", "ann.b+c@d-e_f"),
            ("O'Brien, Jr. (the 2nd)!", "O'Brien, Jr. (the 2nd)!"),
            ("\u{5F20}\u{4F1F}", "\u{5F20}\u{4F1F}"),
            ("Zo\u{EB}", "Zo\u{EB}"),
            ("Zoe\u{308}", "Zo\u{EB}"),
        ] {
            assert_eq!(Username::parse(raw).unwrap().as_str(), stored, "{raw:?}");
        }
        for raw in ["", "  ", "\t\n", "\u{A0}"] {
            assert!(refused_for(Username::parse(raw), "username"), "{raw:?}");
        }
    }

    #[test]
    fn username_refuses_control_format_and_bidi_characters() {
        for c in REFUSED {
            for raw in [
                format!("John{c}Smith"),
                format!("{c}John"),
                format!("John{c}"),
                format!("John Smith {c} "),
            ] {
                assert!(refused_for(Username::parse(&raw), "username"), "{raw:?}");
            }
        }
        assert!(Username::parse("John\tSmith").is_err());
        assert!(Username::parse("John\nSmith").is_err());
    }

    #[test]
    fn username_length_is_counted_after_nfc() {
        // 300 code points as sent, 150 characters once e + U+0301 compose to é.
        let nfd = "e\u{301}".repeat(150);
        let name = Username::parse(&nfd).unwrap();
        assert_eq!(name.as_str(), "\u{E9}".repeat(150));
        assert_eq!(name.as_str().chars().count(), 150);
        assert!(Username::parse(&"a".repeat(150)).is_ok());
        assert!(refused_for(Username::parse(&"a".repeat(151)), "username"));
        assert!(Username::parse(&"e\u{301}".repeat(151)).is_err());
    }
}
