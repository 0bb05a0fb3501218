//! Thin wrappers over the internals the fuzz targets in `fuzz/` drive.
//!
//! Compiled only with `--cfg fuzzing` (cargo-fuzz sets it): a normal build has
//! none of this, so the library's public surface stays `config` and `startup`.
//! Each wrapper calls the code the gateway runs, in the order it runs it, and
//! returns plain values the targets can check properties on.

use crate::api::json;
use crate::auth::access::{self, AccessTokens};
use crate::auth::keys::KeyRing;
use crate::auth::revocations::Revocations;
use crate::config::{Config, KeyAlgorithm, KeyConfig, Secret};
use crate::domain::{Email, Password, SessionId, UserId, Username};
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

/// Read `body` as `endpoint`'s handler does (src/api/*.rs), up to the first store call.
pub fn read_body(endpoint: Endpoint, body: &[u8]) -> Result<Accepted, Refused> {
    read_body_inner(endpoint, body).map_err(refused)
}

fn read_body_inner(endpoint: Endpoint, body: &[u8]) -> Result<Accepted, ErrorReply> {
    let obj = json::object(body)?;
    let mut out = Accepted::default();
    match endpoint {
        Endpoint::Register => {
            out.email = Some(Email::parse(&json::string(&obj, "email")?)?.as_str().into());
            let password = Password::parse(json::string(&obj, "password")?)?;
            out.password = Some(password.expose().into());
        }
        Endpoint::Login => {
            let raw = json::string(&obj, "email")?;
            out.password = Some(json::string(&obj, "password")?);
            out.email = Email::parse(&raw).ok().map(|e| e.as_str().into());
        }
        Endpoint::Refresh => {
            let token = json::string(&obj, "refresh_token")?;
            let fp = crate::auth::refresh::Fingerprint::of_token(&token)
                .ok_or(ErrorReply::InvalidRefreshToken)?;
            out.refresh_fingerprint = Some(fp.as_str().into());
        }
        Endpoint::Me => {
            let name = Username::parse(&json::string(&obj, "username")?)?;
            out.username = Some(name.as_str().into());
        }
        Endpoint::Password => {
            json::string(&obj, "current_password")?;
            let new = Password::parse_field(json::string(&obj, "new_password")?, "new_password")?;
            out.password = Some(new.expose().into());
        }
    }
    Ok(out)
}

/// [`Email::parse`]: the stored form, or the refusal.
pub fn parse_email(raw: &str) -> Result<String, Refused> {
    Email::parse(raw)
        .map(|e| e.as_str().to_owned())
        .map_err(refused)
}

/// [`Username::parse`]: the stored form, or the refusal.
pub fn parse_username(raw: &str) -> Result<String, Refused> {
    Username::parse(raw)
        .map(|u| u.as_str().to_owned())
        .map_err(refused)
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
        let mut cfg = Config::default();
        cfg.jwt_secret = Some(Secret::new(HS256_SECRET.to_vec()));
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
            .issue(UserId(user), SessionId(sid), 0)
            .map_err(|e| e.to_string())
    }

    /// [`AccessTokens::verify`]: the identity, or the rejection's label.
    pub fn verify(&self, token: &str) -> Result<Verified, &'static str> {
        self.tokens
            .verify(token)
            .map(|id| Verified {
                user: id.user.0,
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
