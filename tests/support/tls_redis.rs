//! A TLS-only redis-server, with a CA, a server certificate (127.0.0.1, localhost) and a
//! client certificate made at test time by rcgen.

use super::{free_port, scratch_dir, spawn_tied, wait_for_port, which_redis};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// PEM files of one test PKI.
pub struct Pki {
    /// The directory holding them.
    pub dir: PathBuf,
    /// The CA certificate.
    pub ca: PathBuf,
    /// Server certificate for 127.0.0.1 and localhost, signed by the CA.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// Client certificate, signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl Pki {
    /// A fresh CA with a server and a client certificate, in a new scratch directory.
    pub fn generate() -> Pki {
        let dir = scratch_dir();
        let write = |name: &str, pem: &str| {
            let p = dir.join(name);
            std::fs::write(&p, pem).expect("write PEM file");
            p
        };
        let (ca_pem, issuer) = ca("authgate test CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            "localhost",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &issuer,
            "authgate",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Pki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            dir,
        }
    }
}

/// The PEM certificate of a new CA that signed nothing else, in its own scratch directory.
pub fn unrelated_ca() -> PathBuf {
    let p = scratch_dir().join("other-ca.pem");
    std::fs::write(&p, ca("some other CA").0).expect("write PEM file");
    p
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (cert.pem(), Issuer::new(params, key))
}

/// (certificate PEM, key PEM) of a leaf signed by `issuer`.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("sign the leaf");
    (cert.pem(), key.serialize_pem())
}

/// A redis-server of our own that speaks only TLS.
pub struct TlsRedis {
    /// Its TLS port.
    pub port: u16,
    /// Its certificates (and the client's).
    pub pki: Pki,
    child: Child,
}

impl TlsRedis {
    /// Start one on a free port; `auth_clients` is its `tls-auth-clients`: with it,
    /// a client must present a certificate signed by the CA.
    pub fn start(auth_clients: bool) -> TlsRedis {
        let pki = Pki::generate();
        let port = free_port();
        let log = pki.dir.join("redis.log");
        let path = |p: &Path| p.to_str().expect("utf-8 temp dir").to_owned();
        let args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&pki.server_cert),
            "--tls-key-file".into(),
            path(&pki.server_key),
            "--tls-ca-cert-file".into(),
            path(&pki.ca),
            "--tls-auth-clients".into(),
            if auth_clients { "yes" } else { "no" }.into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            path(&pki.dir),
        ];
        let mut child = spawn_tied(&which_redis(), &args, &[], &log);
        wait_for_port(port, &mut child, "redis-server (TLS)", &log);
        TlsRedis { port, pki, child }
    }

    /// `rediss://127.0.0.1:port/0`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    /// Run a redis command through `redis-cli --tls` (with the client certificate).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("--tls")
            .arg("--cacert")
            .arg(&self.pki.ca)
            .arg("--cert")
            .arg(&self.pki.client_cert)
            .arg("--key")
            .arg(&self.pki.client_key)
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
