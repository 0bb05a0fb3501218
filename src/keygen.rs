//! `authgate keygen`: a new EdDSA (Ed25519) or ES256 (P-256) key pair for `tokens.keys`,
//! as PEM files (PKCS#8 private, owner-only; SPKI public), and the YAML entry naming them.

use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use p256::pkcs8::LineEnding;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The algorithms a key pair can be made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Alg {
    /// Ed25519 (the recommended default: small, fast, deterministic signatures).
    #[value(name = "EdDSA")]
    EdDSA,
    /// ECDSA P-256 with SHA-256, for verifiers without Ed25519.
    #[value(name = "ES256")]
    ES256,
}

/// `authgate keygen --alg EdDSA --out DIR`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Signature algorithm.
    #[arg(long, value_enum, default_value = "EdDSA")]
    pub alg: Alg,
    /// Directory for `<kid>.pem` (private, mode 0600) and `<kid>.pub.pem`; created (0700) if missing.
    #[arg(long)]
    pub out: PathBuf,
    /// Key id; default: the algorithm and a hash of the public key (`eddsa-1a2b3c4d5e6f`).
    #[arg(long)]
    pub kid: Option<String>,
}

/// A key pair in PEM.
pub struct KeyPair {
    /// PKCS#8 private key.
    pub private_pem: String,
    /// SPKI public key.
    pub public_pem: String,
    /// Default key id, derived from the public key.
    pub kid: String,
}

/// Why no key pair was written.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The key could not be encoded (never expected).
    #[error("cannot encode the key: {0}")]
    Encode(String),
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A new key pair from the operating system's random source.
pub fn generate(alg: Alg) -> Result<KeyPair, KeygenError> {
    let ((private_pem, public_pem), public_raw) = match alg {
        Alg::EdDSA => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let public = key.verifying_key();
            // PKCS#8 v1 (RFC 8410's `PrivateKeyInfo`, the seed alone), as
            // `openssl genpkey` writes it: dalek's own encoding of a signing key
            // is v2 (`OneAsymmetricKey` with the public key attached), which
            // Python's `cryptography` does not read.
            let v1 = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: seed,
                public_key: None,
            };
            (pem(&v1, &public)?, public.to_bytes().to_vec())
        }
        Alg::ES256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            let public = key.public_key();
            (pem(&key, &public)?, public.to_sec1_bytes().to_vec())
        }
    };
    let prefix = match alg {
        Alg::EdDSA => "eddsa",
        Alg::ES256 => "es256",
    };
    let kid = format!(
        "{prefix}-{}",
        &hex::encode(Sha256::digest(&public_raw))[..12]
    );
    Ok(KeyPair {
        private_pem,
        public_pem,
        kid,
    })
}

/// The PKCS#8 PEM of `private` and the SPKI PEM of `public`.
fn pem(
    private: &impl EncodePrivateKey,
    public: &impl EncodePublicKey,
) -> Result<(String, String), KeygenError> {
    let failed = |e: &dyn std::fmt::Display| KeygenError::Encode(e.to_string());
    let private = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed(&e))?;
    let public = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| failed(&e))?;
    Ok((private.to_string(), public))
}

/// Write a new key pair into `args.out`, never over an existing file; the config entry to paste.
pub fn run(args: &KeygenArgs) -> Result<String, KeygenError> {
    let pair = generate(args.alg)?;
    let kid = args.kid.clone().unwrap_or(pair.kid);
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| KeygenError::Write { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.out)
        .map_err(failed(&args.out))?;
    let private = args.out.join(format!("{kid}.pem"));
    let public = args.out.join(format!("{kid}.pub.pem"));
    write_new(&private, &pair.private_pem, 0o600).map_err(failed(&private))?;
    write_new(&public, &pair.public_pem, 0o644).map_err(failed(&public))?;
    let alg = match args.alg {
        Alg::EdDSA => "EdDSA",
        Alg::ES256 => "ES256",
    };
    Ok(format!(
        "wrote {} (private, mode 0600) and {}\n\
         add under tokens.keys (verify-only first; `active: true` once every instance has it):\n  \
         - {{kid: {kid}, alg: {alg}, private_key_file: {}, active: false}}\n",
        private.display(),
        public.display(),
        private.display(),
    ))
}

/// Create `path` with `mode` (never an existing file) and write `text` to it.
fn write_new(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_an_owner_only_private_key_and_never_overwrites() {
        let out = std::env::temp_dir().join(format!("authgate-keygen-{}", std::process::id()));
        let args = KeygenArgs {
            alg: Alg::ES256,
            out: out.clone(),
            kid: Some("k1".into()),
        };
        let said = run(&args).unwrap();
        assert!(said.contains("kid: k1, alg: ES256"), "{said}");
        let mode = |f: &str| std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("k1.pem"), 0o600);
        assert!(std::fs::read_to_string(out.join("k1.pem"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(std::fs::read_to_string(out.join("k1.pub.pem"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(run(&args).is_err(), "overwrote an existing key");
        std::fs::remove_dir_all(out).unwrap();
    }
}
