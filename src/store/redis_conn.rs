//! One multiplexed, self-reconnecting Redis connection, opened lazily inside the serving runtime, every call bounded by a timeout.

use super::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis client whose every call ends within `timeout`.
pub struct Redis {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    timeout: Duration,
}

impl Redis {
    /// Parse the URL; nothing connects until the first call.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        Ok(Redis {
            client: redis::Client::open(url)?,
            conn: OnceCell::new(),
            timeout,
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

    /// Run one command or pipeline, giving up after the timeout.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let work = async {
            let mut conn = self.connection().await?;
            Ok::<T, StoreError>(cmd.query_async(&mut conn).await?)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| StoreError::Unavailable("timed out".into()))?
    }

    /// Run a Lua script, giving up after the timeout.
    pub async fn script<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let work = async {
            let mut conn = self.connection().await?;
            let mut inv = script.prepare_invoke();
            for k in keys {
                inv.key(*k);
            }
            for a in args {
                inv.arg(*a);
            }
            Ok::<T, StoreError>(inv.invoke_async(&mut conn).await?)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| StoreError::Unavailable("timed out".into()))?
    }
}
