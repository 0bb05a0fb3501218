//! The auth API's JSON bodies: parsing and field validation as register, login,
//! refresh/logout, `PUT /me` and `/password` do it: authgate::fuzz_api::read_body
//! calls each handler's own `parse` (src/api/*.rs), not a copy.
//!
//! Input: the first byte picks the endpoint, the rest is the body. The rest is
//! also fed to the email and username rules directly, as a raw string.
//!
//! Properties:
//! - an accepted email round-trips (parsing its stored form gives itself), is
//!   lowercase in its domain, ASCII in its domain, at most 254 bytes, one `@`
//!   split, and holds no control/format/separator character;
//! - an accepted username has no Cc/Cf/Zl/Zp character, is NFC, trimmed,
//!   1..=150 characters, and round-trips;
//! - a password is kept verbatim (the JSON string itself) with 8..=128 characters;
//! - a refresh-token fingerprint is 64 lowercase hex digits;
//! - a body register accepts, login accepts with the same email and password;
//! - a refusal is a 400 naming one of the endpoint's own fields (or 401
//!   `invalid_refresh_token` for a token of the wrong shape), and its detail
//!   never repeats a body that holds a JSON string.
#![no_main]

use authgate::fuzz_api::{parse_email, parse_username, read_body, Endpoint};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::is_nfc;
use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};

const ENDPOINTS: [Endpoint; 5] = [
    Endpoint::Register,
    Endpoint::Login,
    Endpoint::Refresh,
    Endpoint::Me,
    Endpoint::Password,
];

fn refused_char(c: char) -> bool {
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    )
}

fn fields(e: Endpoint) -> &'static [&'static str] {
    match e {
        Endpoint::Register | Endpoint::Login => &["email", "password"],
        Endpoint::Refresh => &["refresh_token"],
        Endpoint::Me => &["username"],
        Endpoint::Password => &["current_password", "new_password"],
    }
}

fn check_email(stored: &str) {
    assert!(stored.len() <= 254, "{stored:?} longer than 254 bytes");
    assert!(
        !stored.chars().any(refused_char),
        "{stored:?} holds a refused char"
    );
    assert!(
        !stored.chars().any(char::is_whitespace),
        "{stored:?} holds a space"
    );
    let (local, domain) = stored.rsplit_once('@').expect("an @");
    assert!(!local.is_empty(), "{stored:?}: empty local part");
    assert!(domain.contains('.'), "{stored:?}: dotless domain");
    assert!(
        domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
        "{stored:?}: domain not lowercase ASCII LDH"
    );
    assert!(is_nfc(local), "{stored:?}: local part not NFC");
    assert_eq!(
        parse_email(stored).as_deref(),
        Ok(stored),
        "stored email does not round-trip"
    );
}

fn check_username(stored: &str) {
    assert!(
        !stored.chars().any(refused_char),
        "{stored:?} holds a refused char"
    );
    assert!(is_nfc(stored), "{stored:?} is not NFC");
    assert_eq!(stored.trim(), stored, "{stored:?} is not trimmed");
    let n = stored.chars().count();
    assert!((1..=150).contains(&n), "{stored:?}: {n} characters");
    assert_eq!(
        parse_username(stored).as_deref(),
        Ok(stored),
        "stored username does not round-trip"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let endpoint = ENDPOINTS[usize::from(which) % ENDPOINTS.len()];

    if let Ok(raw) = std::str::from_utf8(body) {
        if let Ok(e) = parse_email(raw) {
            check_email(&e);
        }
        if let Ok(u) = parse_username(raw) {
            check_username(&u);
        }
    }

    match read_body(endpoint, body) {
        Ok(acc) => {
            let obj: serde_json::Value =
                serde_json::from_slice(body).expect("accepted body is JSON");
            if let Some(e) = &acc.email {
                check_email(e);
            }
            if let Some(u) = &acc.username {
                check_username(u);
            }
            if let Some(p) = &acc.password {
                let field = if endpoint == Endpoint::Password {
                    "new_password"
                } else {
                    "password"
                };
                assert_eq!(obj[field].as_str(), Some(p.as_str()), "password altered");
                if endpoint != Endpoint::Login {
                    let n = p.chars().count();
                    assert!(
                        (8..=128).contains(&n),
                        "password of {n} characters accepted"
                    );
                }
            }
            if let Some(fp) = &acc.refresh_fingerprint {
                assert_eq!(fp.len(), 64);
                assert!(fp
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            }
            if endpoint == Endpoint::Register {
                let login =
                    read_body(Endpoint::Login, body).expect("login refuses what register accepts");
                assert_eq!(login.email, acc.email);
                assert_eq!(login.password, acc.password);
            }
        }
        Err(r) => {
            if r.status == 401 {
                assert_eq!(endpoint, Endpoint::Refresh);
                assert_eq!(r.code, "invalid_refresh_token");
            } else {
                assert_eq!(r.status, 400, "{r:?}");
                assert!(
                    matches!(r.code, "malformed_json" | "missing_field" | "invalid_field"),
                    "{r:?}"
                );
            }
            if let Some(f) = r.field {
                assert!(fields(endpoint).contains(&f), "{endpoint:?} names {f}");
            }
            if matches!(r.code, "missing_field" | "invalid_field") {
                assert!(r.field.is_some(), "{r:?} names no field");
            }
            if let Ok(s) = std::str::from_utf8(body) {
                // A JSON string of the body (a password, say) is never echoed.
                let s = s.trim();
                if s.len() >= 8 && s.contains('"') {
                    assert!(!r.detail.contains(s), "detail repeats the body: {r:?}");
                }
            }
        }
    }
});
