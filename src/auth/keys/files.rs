//! Key files: PKCS#8 PEM private keys, SPKI PEM public keys and HS256 secrets, read into
//! what jsonwebtoken and the JWKS need. Files holding a secret must be owner-only;
//! no key file, public ones included, nor its directory may be writable by others.

use crate::config::{KeyAlgorithm, Secret};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A key file that cannot be used, with the config key naming it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct KeyError {
    /// The config key (`tokens.keys[1].private_key_file`) or variable at fault.
    pub key: String,
    /// What is wrong, naming the file.
    pub reason: String,
}

pub(super) fn key_error(key: impl Into<String>, reason: impl Into<String>) -> KeyError {
    KeyError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// An EdDSA or ES256 key as read: the public key always, the private one if given.
pub(super) struct Asymmetric {
    /// PKCS#8 DER of the private key, for `EncodingKey::from_{ed,ec}_der`.
    pub(super) private_der: Option<Vec<u8>>,
    /// Ed25519: the 32-byte key; P-256: the 65-byte uncompressed SEC1 point.
    pub(super) public: Vec<u8>,
}

/// Refuse a key file, or the directory holding it, that group or others may
/// write: whoever can replace a key, public (verify-only) ones included, can
/// mint tokens for any user after the next reload. A directory with the sticky
/// bit (`/tmp`) is fine: others may add files there but not replace ours.
fn refuse_writable(key: &str, path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyError> {
    let shown = path.display();
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(key_error(
            key,
            format!(
                "{shown} is writable by group or others (mode {mode:04o}): whoever can write it can mint tokens; chmod go-w {shown}"
            ),
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_meta = std::fs::metadata(dir)
        .map_err(|e| key_error(key, format!("cannot read {}: {e}", dir.display())))?;
    let dir_mode = dir_meta.permissions().mode() & 0o7777;
    if dir_mode & 0o022 != 0 && dir_mode & 0o1000 == 0 {
        return Err(key_error(
            key,
            format!(
                "{} (the directory of {shown}) is writable by group or others (mode {:04o}): whoever can write it can replace the key; chmod go-w {}",
                dir.display(),
                dir_mode & 0o777,
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Read a file that holds a secret, refusing one that group or others may access:
/// whoever reads it can mint tokens for any user.
pub(super) fn read_private(key: &str, path: &Path) -> Result<Vec<u8>, KeyError> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| key_error(key, format!("cannot read {shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(
            key,
            format!(
                "{shown} is open to group or others (mode {mode:04o}); it must be readable by the gateway's user only: chmod 600 {shown}"
            ),
        ));
    }
    refuse_writable(key, path, &meta)?;
    std::fs::read(path).map_err(|e| key_error(key, format!("cannot read {shown}: {e}")))
}

fn read_text(key: &str, path: &Path, private: bool) -> Result<String, KeyError> {
    let bytes = if private {
        read_private(key, path)?
    } else {
        let meta = std::fs::metadata(path)
            .map_err(|e| key_error(key, format!("cannot read {}: {e}", path.display())))?;
        refuse_writable(key, path, &meta)?;
        std::fs::read(path)
            .map_err(|e| key_error(key, format!("cannot read {}: {e}", path.display())))?
    };
    String::from_utf8(bytes)
        .map_err(|_| key_error(key, format!("{} is not a PEM file", path.display())))
}

/// An HS256 secret from its own file.
pub(super) fn secret(key: &str, path: &Path) -> Result<Secret, KeyError> {
    let bytes = read_private(key, path)?;
    Secret::from_file_contents(bytes).map_err(|reason| key_error(key, reason))
}

/// An EdDSA or ES256 key from a private key file, a public key file or both (which must match).
/// Each file comes with the config key that names it.
pub(super) fn asymmetric(
    alg: KeyAlgorithm,
    private: Option<(&str, &Path)>,
    public: Option<(&str, &Path)>,
) -> Result<Asymmetric, KeyError> {
    let unusable = |key: &str, path: &Path, what: &str, why: String| {
        key_error(
            key,
            format!("{}: not {what} {} key ({why})", path.display(), alg.name()),
        )
    };
    let mut pair = None;
    if let Some((key, path)) = private {
        let pem = read_text(key, path, true)?;
        let parsed = match alg {
            KeyAlgorithm::EdDSA => ed_private(&pem),
            _ => ec_private(&pem),
        };
        pair = Some(parsed.map_err(|why| unusable(key, path, "a PKCS#8 PEM private", why))?);
    }
    if let Some((key, path)) = public {
        let pem = read_text(key, path, false)?;
        let parsed = match alg {
            KeyAlgorithm::EdDSA => ed_public(&pem),
            _ => ec_public(&pem),
        };
        let public = parsed.map_err(|why| unusable(key, path, "an SPKI PEM public", why))?;
        match &pair {
            Some(k) if k.public != public => {
                return Err(key_error(
                    key,
                    format!(
                        "{} is not the public half of private_key_file",
                        path.display()
                    ),
                ))
            }
            Some(_) => {}
            None => {
                pair = Some(Asymmetric {
                    private_der: None,
                    public,
                })
            }
        }
    }
    pair.ok_or_else(|| key_error("tokens.keys", "an EdDSA or ES256 key needs a key file"))
}

fn ed_private(pem: &str) -> Result<Asymmetric, String> {
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(Asymmetric {
        private_der: Some(der.as_bytes().to_vec()),
        public: key.verifying_key().to_bytes().to_vec(),
    })
}

fn ed_public(pem: &str) -> Result<Vec<u8>, String> {
    let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|e| e.to_string())?;
    Ok(key.to_bytes().to_vec())
}

fn ec_private(pem: &str) -> Result<Asymmetric, String> {
    let key = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(Asymmetric {
        private_der: Some(der.as_bytes().to_vec()),
        public: key.public_key().to_encoded_point(false).as_bytes().to_vec(),
    })
}

fn ec_public(pem: &str) -> Result<Vec<u8>, String> {
    let key = p256::PublicKey::from_public_key_pem(pem).map_err(|e| e.to_string())?;
    Ok(key.to_encoded_point(false).as_bytes().to_vec())
}
