//! Redis: the only durable state. Every atomic step touches one key, so the same calls work on Redis Cluster.

pub(crate) mod import;
mod keys;
mod redis_conn;
mod refresh_tokens;
pub(crate) mod revocation_feed;
pub(crate) mod sessions;
pub(crate) mod throttle;
pub(crate) mod users;

pub(crate) use keys::Keys;
pub(crate) use redis_conn::{Redis, RedisSetupError};
pub(crate) use users::Profile;

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not reachable, or did not answer within the timeout.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// A key holds something this code did not write.
    #[error("unexpected data in redis: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.kind() == redis::ErrorKind::UnexpectedReturnType {
            StoreError::Corrupt(e.to_string())
        } else {
            StoreError::Unavailable(e.to_string())
        }
    }
}

/// Users and sessions on one Redis connection.
pub struct Store {
    redis: Redis,
    keys: Keys,
}

impl Store {
    /// A store over `redis` with keys under `prefix`.
    pub fn new(redis: Redis, prefix: &str) -> Self {
        Store {
            redis,
            keys: Keys::new(prefix),
        }
    }

    /// Whether Redis answers a PING now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.redis.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
