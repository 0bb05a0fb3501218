//! Building the Redis client from `redis.*`: the URL, the cluster seeds, the TLS files; every error names the key at fault and never a file's contents.

use super::redis_conn::Target;
use crate::config::{HostPort, RedisConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why `redis.*` cannot make a client; each message starts with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// `redis.url` does not parse.
    #[error("redis.url: {0}")]
    Url(#[source] redis::RedisError),
    /// A TLS file cannot be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A TLS file holds no PEM block of the kind its key calls for.
    #[error("{key}: {} holds no PEM {what}", path.display())]
    NotPem {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// The redis crate refused a certificate.
    #[error("{key}: {}: {source}", path.display())]
    Certificate {
        /// `redis.tls_ca_file` or `redis.tls_cert_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The redis crate's reason.
        source: redis::RedisError,
    },
    /// The redis crate refused the private key. Its message may quote the key
    /// file, so none is kept.
    #[error("redis.tls_key_file: {}: not a usable PEM private key", .0.display())]
    PrivateKey(PathBuf),
}

/// `redis.url` parsed.
pub(super) fn url_info(cfg: &RedisConfig) -> Result<ConnectionInfo, RedisSetupError> {
    cfg.url
        .as_str()
        .into_connection_info()
        .map_err(RedisSetupError::Url)
}

/// `info` with its host and port replaced by `node`'s (scheme, TLS and credentials kept).
fn at_node(info: &ConnectionInfo, node: &HostPort) -> ConnectionInfo {
    // The URL form keeps IPv6 brackets; the address wants the bare literal.
    let host = node
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addr = match info.addr().clone() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port: node.port(),
            insecure,
            tls_params,
        },
        _ => ConnectionAddr::Tcp(host, node.port()),
    };
    info.clone().set_addr(addr)
}

/// The cluster client over `cluster_nodes`, plus a plain client per seed for pub/sub.
pub(super) fn cluster(
    cfg: &RedisConfig,
    info: &ConnectionInfo,
    timeout: Duration,
) -> Result<Target, RedisSetupError> {
    let seeds: Vec<ConnectionInfo> = cfg.cluster_nodes.iter().map(|n| at_node(info, n)).collect();
    let mut builder = ClusterClientBuilder::new(seeds.clone())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        // A call is bounded by `timeout` as a whole; retries inside it follow
        // MOVED/ASK and topology changes, they cannot make it wait longer.
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(200);
    if let Some(certs) = tls_certificates(cfg)? {
        builder = builder.certs(certs);
    }
    let nodes = seeds
        .into_iter()
        .map(|seed| client(cfg, seed))
        .collect::<Result<_, _>>()?;
    let client = builder.build().map_err(|e| tls_error(cfg, e))?;
    Ok(Target::Cluster {
        client: Box::new(client),
        nodes,
    })
}

/// The CA and client certificate of the `tls_*` files, if any are set.
fn tls_certificates(cfg: &RedisConfig) -> Result<Option<TlsCertificates>, RedisSetupError> {
    const CERT: &str = "-----BEGIN CERTIFICATE-----";
    // `BEGIN PRIVATE KEY`, `BEGIN EC PRIVATE KEY`, `BEGIN RSA PRIVATE KEY`.
    const KEY: &str = "PRIVATE KEY-----";
    let client_pair = cfg.tls_cert_file.as_ref().zip(cfg.tls_key_file.as_ref());
    if cfg.tls_ca_file.is_none() && client_pair.is_none() {
        return Ok(None);
    }
    let root_cert = match &cfg.tls_ca_file {
        Some(f) => Some(read_pem("redis.tls_ca_file", f, CERT, "certificate")?),
        None => None,
    };
    let client_tls = match client_pair {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: read_pem("redis.tls_cert_file", cert, CERT, "certificate")?,
            client_key: read_pem("redis.tls_key_file", key, KEY, "private key")?,
        }),
        None => None,
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// A plain client for `info`, or with `tls_*` files a TLS one trusting
/// `tls_ca_file` (else the system roots) and presenting `tls_cert_file` +
/// `tls_key_file` (if given).
pub(super) fn client(
    cfg: &RedisConfig,
    info: ConnectionInfo,
) -> Result<redis::Client, RedisSetupError> {
    match tls_certificates(cfg)? {
        None => redis::Client::open(info).map_err(RedisSetupError::Url),
        Some(certs) => redis::Client::build_with_tls(info, certs).map_err(|e| tls_error(cfg, e)),
    }
}

/// The setup error for the redis crate refusing the TLS material.
fn tls_error(cfg: &RedisConfig, source: redis::RedisError) -> RedisSetupError {
    // The redis crate parses the PEM when building; its message for a bad key
    // may quote the key file, so that case (and anything unforeseen) prints no detail.
    let msg = source.to_string();
    let path = |p: &Option<PathBuf>| p.clone().unwrap_or_default();
    if msg.contains("root certificate") || msg.contains("trust anchors") {
        RedisSetupError::Certificate {
            key: "redis.tls_ca_file",
            path: path(&cfg.tls_ca_file),
            source,
        }
    } else if msg.contains("client certificate") {
        RedisSetupError::Certificate {
            key: "redis.tls_cert_file",
            path: path(&cfg.tls_cert_file),
            source,
        }
    } else if cfg.tls_key_file.is_some() {
        RedisSetupError::PrivateKey(path(&cfg.tls_key_file))
    } else {
        RedisSetupError::Url(source)
    }
}

/// The bytes of a PEM file that must contain `marker` (a `what`); errors name `key`
/// and the file, never its contents.
fn read_pem(
    key: &'static str,
    path: &Path,
    marker: &str,
    what: &'static str,
) -> Result<Vec<u8>, RedisSetupError> {
    let bytes = std::fs::read(path).map_err(|source| RedisSetupError::Read {
        key,
        path: path.to_owned(),
        source,
    })?;
    if !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()) {
        return Err(RedisSetupError::NotPem {
            key,
            path: path.to_owned(),
            what,
        });
    }
    Ok(bytes)
}
