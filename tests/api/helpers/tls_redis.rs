//! A redis-server that speaks only TLS, with certificates from [`Pki`].

use super::pki::Pki;
use super::process::{free_port, spawn_tied, wait_for_port};
use super::redis::which_redis;
use std::path::Path;
use std::process::{Child, Command};

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
        let mut child = spawn_tied(&which_redis(), &args, &[], &log, false);
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
