//! One multiplexed, self-reconnecting Redis connection, opened lazily inside the serving runtime, every call bounded by a timeout.

use super::StoreError;
use crate::config::RedisConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ClientTlsConfig, IntoConnectionInfo, TlsCertificates};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis client whose every call ends within `timeout`.
pub struct Redis {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    timeout: Duration,
}

impl Redis {
    /// Parse the URL and read the TLS files (if any); nothing connects until the
    /// first call. The error names the config key at fault.
    pub fn new(cfg: &RedisConfig) -> Result<Self, RedisSetupError> {
        Ok(Redis {
            client: client(cfg)?,
            conn: OnceCell::new(),
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
    }

    /// The connection, opened on first use. Opening here rather than at start-up
    /// ties its driver task to the runtime that serves requests, and lets the
    /// gateway start (and proxy) while Redis is still down.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await?;
        Ok(conn.clone())
    }

    /// `work` on the connection, given up after the timeout (connecting included).
    async fn bounded<T, F>(
        &self,
        work: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let run = async { Ok::<T, StoreError>(work(self.connection().await?).await?) };
        tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| StoreError::Unavailable("timed out".into()))?
    }

    /// Run one command, giving up after the timeout.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.bounded(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Run a pipeline (one round trip), giving up after the timeout.
    pub async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.bounded(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// A dedicated pub/sub connection (subscriptions cannot share the multiplexed one).
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, StoreError> {
        tokio::time::timeout(self.timeout, self.client.get_async_pubsub())
            .await
            .map_err(|_| StoreError::Unavailable("timed out".into()))?
            .map_err(StoreError::from)
    }

    /// Run a Lua script, giving up after the timeout.
    pub async fn script<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        self.invoke(&inv).await
    }

    /// Run a prepared script call (loading the script if Redis lacks it), giving up after the timeout.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.bounded(|mut conn| async move { call.invoke_async(&mut conn).await })
            .await
    }
}

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

/// A plain client, or with `tls_*` files a TLS one trusting `tls_ca_file` (else the
/// system roots) and presenting `tls_cert_file` + `tls_key_file` (if given).
fn client(cfg: &RedisConfig) -> Result<redis::Client, RedisSetupError> {
    const CERT: &str = "-----BEGIN CERTIFICATE-----";
    // `BEGIN PRIVATE KEY`, `BEGIN EC PRIVATE KEY`, `BEGIN RSA PRIVATE KEY`.
    const KEY: &str = "PRIVATE KEY-----";
    let info = cfg
        .url
        .as_str()
        .into_connection_info()
        .map_err(RedisSetupError::Url)?;
    let client_pair = cfg.tls_cert_file.as_ref().zip(cfg.tls_key_file.as_ref());
    if cfg.tls_ca_file.is_none() && client_pair.is_none() {
        return redis::Client::open(info).map_err(RedisSetupError::Url);
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
    redis::Client::build_with_tls(
        info,
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|source| {
        // The redis crate parses the PEM here; its message for a bad key may quote
        // the key file, so that case (and anything unforeseen) prints no detail.
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
        } else {
            RedisSetupError::PrivateKey(path(&cfg.tls_key_file))
        }
    })
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
