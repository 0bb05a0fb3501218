//! Thin wrappers over the internals the fuzz targets in `fuzz/` drive.
//!
//! Compiled with `--cfg fuzzing` (cargo-fuzz sets it) and in the library's
//! unit-test build, which `cargo clippy --all-targets` and `cargo test --lib`
//! compile: it cannot rot between fuzz runs. The release build has none of
//! it, so the library's public surface stays `config` and `startup`.
//! Each wrapper calls the code the gateway runs, in the order it runs it, and
//! returns plain values the targets can check properties on.

use crate::api;
use crate::auth::access::{self, AccessTokens};
use crate::auth::keys::KeyRing;
use crate::auth::revocations::Revocations;
use crate::config::{Config, KeyAlgorithm, KeyConfig, Secret};
use crate::domain::{Email, SessionId, UserId, Username};
use crate::edge::{authorization, host, path};
use crate::error::ErrorReply;
use std::borrow::Cow;
use std::sync::Arc;

/// An auth endpoint that reads a JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /register`: `email`, `password`.
    Register,
    /// `POST /login`: `email`, `password`.
    Login,
    /// `POST /refresh` and `POST /logout`: `refresh_token`.
    Refresh,
    /// `PUT /me`: `username`.
    Me,
    /// `POST /password`: `current_password`, `new_password`.
    Password,
}

/// What a handler goes on with once the body is read and its fields validated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The normalised email (register; login when it parses).
    pub email: Option<String>,
    /// The normalised username (`PUT /me`).
    pub username: Option<String>,
    /// The password (register, login) or new password (`/password`), verbatim.
    pub password: Option<String>,
    /// The SHA-256 fingerprint of a refresh token of the shape the gateway issues.
    pub refresh_fingerprint: Option<String>,
}

/// A refused body, as the client would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// The `error` code.
    pub code: &'static str,
    /// The `detail` sentence.
    pub detail: String,
    /// The field named by a missing- or invalid-field answer.
    pub field: Option<&'static str>,
}

fn refused(e: ErrorReply) -> Refused {
    let field = match &e {
        ErrorReply::MissingField(f) | ErrorReply::InvalidField { field: f, .. } => Some(*f),
        _ => None,
    };
    Refused {
        status: e.status().as_u16(),
        code: e.code(),
        detail: e.to_string(),
        field,
    }
}

/// Read `body` with `endpoint`'s handler's own `parse` (src/api/*.rs): all it
/// does before its first store call.
pub fn read_body(endpoint: Endpoint, body: &[u8]) -> Result<Accepted, Refused> {
    read_body_inner(endpoint, body).map_err(refused)
}

fn read_body_inner(endpoint: Endpoint, body: &[u8]) -> Result<Accepted, ErrorReply> {
    // The handlers' own parse functions: what runs here is what runs there
    // (for a JSON body; forms reach the same functions through `form.rs`).
    let fields = api::json::object(body)?;
    let body = &fields;
    let mut out = Accepted::default();
    match endpoint {
        Endpoint::Register => {
            let b = api::register::parse(body)?;
            out.email = Some(b.email.as_str().into());
            out.password = Some(b.password.expose().into());
        }
        Endpoint::Login => {
            let b = api::login::parse(body)?;
            out.email = b.email.map(|e| e.as_str().into());
            out.password = Some(b.password);
        }
        Endpoint::Refresh => {
            out.refresh_fingerprint = Some(api::refresh::parse(body)?.as_str().into());
        }
        Endpoint::Me => out.username = Some(api::me::parse(body)?.as_str().into()),
        Endpoint::Password => out.password = Some(api::password::parse(body)?.new.expose().into()),
    }
    Ok(out)
}

/// [`Email::parse`]: the stored form, or the refusal.
pub fn parse_email(raw: &str) -> Result<String, Refused> {
    Email::parse(raw)
        .map(|e| e.as_str().to_owned())
        .map_err(|e| refused(e.into()))
}

/// [`Username::parse`]: the stored form, or the refusal.
pub fn parse_username(raw: &str) -> Result<String, Refused> {
    Username::parse(raw)
        .map(|u| u.as_str().to_owned())
        .map_err(|e| refused(e.into()))
}

/// The HS256 secret of the fuzzing key rings.
pub const HS256_SECRET: [u8; 32] = [7; 32];
/// The seed of the fuzzing ring's Ed25519 key (kid `ed`, verify only).
pub const ED25519_SEED: [u8; 32] = [9; 32];
/// The `iss` the fuzzing rings issue and require.
pub const ISSUER: &str = "https://authgate.fuzz";
/// The `aud` the fuzzing rings issue and require.
pub const AUDIENCE: &str = "authgate";

/// An access-token verifier over a fixed test key ring, as the gateway builds it.
pub struct Verifier {
    tokens: AccessTokens,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// `user_id`.
    pub user: u64,
    /// `sid`, when the token has one.
    pub sid: Option<u128>,
}

impl Verifier {
    /// `legacy`: the JWT secret alone (one HS256 key, tokens without `kid` accepted).
    /// Otherwise two keys: `hs` (HS256, the secret, signs) and `ed` (EdDSA,
    /// verify only, its public key written to a private temp directory).
    pub fn new(legacy: bool) -> Result<Verifier, String> {
        let mut cfg = Config {
            jwt_secret: Some(Secret::new(HS256_SECRET.to_vec())),
            ..Config::default()
        };
        cfg.tokens.issuer = Some(ISSUER.into());
        cfg.tokens.audience = vec![AUDIENCE.into()];
        if !legacy {
            use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};
            let key = ed25519_dalek::SigningKey::from_bytes(&ED25519_SEED);
            let pem = key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| e.to_string())?;
            let dir =
                std::env::temp_dir().join(format!("authgate-fuzz-keys-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let public = dir.join("ed.pub.pem");
            std::fs::write(&public, pem).map_err(|e| e.to_string())?;
            let key = |kid: &str, alg, public_key_file, active| KeyConfig {
                kid: kid.into(),
                alg,
                private_key_file: None,
                public_key_file,
                secret_file: None,
                active,
            };
            cfg.tokens.keys = vec![
                key("hs", KeyAlgorithm::HS256, None, true),
                key("ed", KeyAlgorithm::EdDSA, Some(public), false),
            ];
        }
        cfg.validate().map_err(|e| e.to_string())?;
        let ring = KeyRing::from_config(&cfg).map_err(|e| e.to_string())?;
        let now = access::now_unix();
        let tokens = AccessTokens::new(ring, 30, Arc::new(Revocations::new(30, now)));
        Ok(Verifier { tokens })
    }

    /// A token for `user` in session `sid`, signed by the active key.
    pub fn issue(&self, user: u64, sid: u128) -> Result<String, String> {
        self.tokens
            .issue(UserId::new(user), SessionId(sid), &access::Stamp::default())
            .map_err(|e| e.to_string())
    }

    /// [`AccessTokens::verify`]: the identity, or the rejection's label.
    pub fn verify(&self, token: &str) -> Result<Verified, &'static str> {
        self.tokens
            .verify(token)
            .map(|id| Verified {
                user: id.user.get(),
                sid: id.sid.map(|s| s.0),
            })
            .map_err(|r| r.as_str())
    }
}

/// The edge's check of the `Authorization` headers (src/edge/authorization.rs):
/// `Err(())` when ambiguous, else the single value if any. Values that are not
/// valid header values are skipped, as no HTTP parser would hand them over.
#[allow(clippy::result_unit_err)]
pub fn edge_authorization(values: &[&[u8]]) -> Result<Option<Vec<u8>>, ()> {
    let mut headers = http::HeaderMap::new();
    for v in values {
        if let Ok(v) = http::HeaderValue::from_bytes(v) {
            headers.append(http::header::AUTHORIZATION, v);
        }
    }
    authorization::single(&headers)
        .map(|v| v.map(<[u8]>::to_vec))
        .map_err(|_| ())
}

/// The token of an `Authorization` value as the verifier is handed it
/// ([`access::bearer_token`]), or the rejection's label.
pub fn bearer_token(value: Option<&[u8]>) -> Result<&str, &'static str> {
    access::bearer_token(value).map_err(|r| r.as_str())
}

/// [`path::canonical`]: the canonical path and whether it came back borrowed
/// (unchanged), or the refusal's sentence.
pub fn canonical_path(p: &str) -> Result<(String, bool), &'static str> {
    match path::canonical(p) {
        Ok(Cow::Borrowed(s)) => Ok((s.to_owned(), true)),
        Ok(Cow::Owned(s)) => Ok((s, false)),
        Err(e) => Err(e.detail()),
    }
}

/// [`host::canonical_host`] of a `Host` value or target authority.
pub fn canonical_host(authority: &[u8]) -> Result<String, &'static str> {
    host::canonical_host(authority)
        .map(Cow::into_owned)
        .map_err(host::HostError::detail)
}

/// [`host::route_host`] of a route's `host:` value.
pub fn route_host(value: &str) -> Result<String, &'static str> {
    host::route_host(value).map_err(host::HostError::detail)
}

/// [`host::routing_host`]: the host a request is routed by.
pub fn routing_host(
    host_header: Option<&[u8]>,
    target_authority: Option<&[u8]>,
) -> Result<String, &'static str> {
    host::routing_host(host_header, target_authority)
        .map(Cow::into_owned)
        .map_err(host::HostError::detail)
}

/// The canonical path as docs/edge.md and src/edge/path.rs describe it,
/// computed another way, for the `canonical_path` target to check
/// [`canonical_path`] against: `None` where the gateway must refuse.
///
/// Written from the rules, not from the code: a byte-by-byte decode, then
/// slashes merged, then RFC 3986 §5.2.4's `remove_dot_segments` (the
/// input-buffer algorithm, where path.rs splits on `/` and keeps a stack).
pub fn reference_canonical_path(input: &str) -> Option<String> {
    let unreserved = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
    let control = |c: u8| c < 0x20 || c == 0x7f;
    let b = input.as_bytes();
    if b.first() != Some(&b'/') {
        return None;
    }
    // 1. Escapes: unreserved decoded, others upper-cased; separators, controls,
    //    malformed escapes and the raw bytes with no single meaning refused.
    let mut decoded = String::with_capacity(input.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' || c == b';' || control(c) {
            return None;
        }
        if c != b'%' {
            let ch = input.get(i..)?.chars().next()?;
            decoded.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let digits = b.get(i + 1..i + 3)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let v = u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        if v == b'/' || v == b'\\' || control(v) {
            return None;
        }
        if unreserved(v) {
            decoded.push(char::from(v));
        } else {
            decoded.push_str(&format!("%{v:02X}"));
        }
        i += 3;
    }
    // 2. A `%` (now `%25`) that would form an escape with what follows: two
    //    decodings would read two different paths.
    let d = decoded.as_bytes();
    let double = decoded.match_indices("%25").any(|(at, _)| {
        d.get(at + 3).is_some_and(u8::is_ascii_hexdigit)
            && d.get(at + 4).is_some_and(u8::is_ascii_hexdigit)
    });
    if double {
        return None;
    }
    // 3. Runs of `/` merged into one.
    let mut merged = String::with_capacity(decoded.len());
    for ch in decoded.chars() {
        if !(ch == '/' && merged.ends_with('/')) {
            merged.push(ch);
        }
    }
    // 4. RFC 3986 §5.2.4 remove_dot_segments, on an absolute path.
    let mut rest: &str = merged.as_str();
    let mut out = String::with_capacity(merged.len());
    let pop = |out: &mut String| {
        let cut = out.rfind('/').unwrap_or(0);
        out.truncate(cut);
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("../") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if rest.starts_with("/./") {
            rest = &rest[2..];
        } else if rest == "/." {
            rest = "/";
        } else if rest.starts_with("/../") {
            rest = &rest[3..];
            pop(&mut out);
        } else if rest == "/.." {
            rest = "/";
            pop(&mut out);
        } else if rest == "." || rest == ".." {
            rest = "";
        } else {
            // The first segment, with its leading `/`, up to the next `/`.
            let end = rest
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == '/')
                .map_or(rest.len(), |(at, _)| at);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_by_the_handlers_parsers() {
        let ok = read_body(
            Endpoint::Register,
            br#"{"email":" Ann@Example.COM ","password":"long enough"}"#,
        )
        .unwrap();
        assert_eq!(ok.email.as_deref(), Some("ann@example.com"));
        assert_eq!(ok.password.as_deref(), Some("long enough"));
        let short = read_body(
            Endpoint::Register,
            br#"{"email":"a@example.com","password":"short"}"#,
        )
        .unwrap_err();
        assert_eq!((short.status, short.field), (400, Some("password")));
        let login = read_body(
            Endpoint::Login,
            br#"{"email":"not an email","password":"x"}"#,
        )
        .unwrap();
        assert_eq!((login.email, login.password.as_deref()), (None, Some("x")));
        let token = read_body(Endpoint::Refresh, br#"{"refresh_token":"nope"}"#).unwrap_err();
        assert_eq!(token.code, "invalid_refresh_token");
        let me = read_body(Endpoint::Me, br#"{"username":"  ann  "}"#).unwrap();
        assert_eq!(me.username.as_deref(), Some("ann"));
        let missing =
            read_body(Endpoint::Password, br#"{"new_password":"long enough"}"#).unwrap_err();
        assert_eq!(missing.field, Some("current_password"));
    }

    /// Both resolvers on `p`: the same path, or both refuse.
    fn agree(p: &str) {
        let gateway = canonical_path(p).ok().map(|(c, _)| c);
        assert_eq!(gateway, reference_canonical_path(p), "{p:?}");
    }

    #[test]
    fn the_reference_resolver_agrees_on_the_documented_cases() {
        for p in [
            "/",
            "/api/x/",
            "/pub/../api/admin",
            "/pub/%2e%2e/api/admin",
            "/pub//../api/admin",
            "/pub/./x",
            "/a/b/..",
            "/a/b/.",
            "/..",
            "/../../etc",
            "//api//x",
            "/api//",
            "/a/.b/..c/...",
            "/api/%61dmin",
            "/a%3fb",
            "/%c3%a9",
            "/100%25",
            "/é/../x",
            "",
            "*",
            "api/x",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/a;b",
            "/a%2",
            "/a%zz",
            "/%252e",
            "/%25%32%65",
            "/a/%2E/b",
            "/.well-known/x",
            "/./",
            "/a/./..",
        ] {
            agree(p);
        }
        assert_eq!(reference_canonical_path("/a/b/..").as_deref(), Some("/a/"));
        assert_eq!(reference_canonical_path("/a%2fb"), None);
    }

    #[test]
    fn the_reference_resolver_agrees_on_generated_paths() {
        // A deterministic generator over the characters the rules are about: a
        // small fuzz run that every `cargo test` does.
        const PARTS: [&str; 16] = [
            "/", "/", ".", "..", "%2e", "%2E", "%25", "%2f", "%41", "%3b", "a", "é", ";", "%", "2",
            "\\",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut p = String::from("/");
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut r = x;
            for _ in 0..(r % 9) {
                r /= 16;
                p.push_str(PARTS[(r % 16) as usize]);
            }
            agree(&p);
        }
    }
}
