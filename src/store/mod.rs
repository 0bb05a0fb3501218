//! Redis: the only durable state. Every atomic step touches one key or keys of one hash tag, so the same calls work on Redis Cluster.

pub(crate) mod accounts;
pub(crate) mod cookie_sessions;
pub(crate) mod import;
mod keys;
mod redis_conn;
mod redis_setup;
mod redis_slots;
mod refresh_tokens;
pub(crate) mod revocation_feed;
pub(crate) mod sessions;
pub(crate) mod throttle;
pub(crate) mod users;

use keys::Keys;
pub(crate) use redis_conn::Redis;
pub(crate) use redis_setup::RedisSetupError;
pub(crate) use users::Profile;

/// `script` over `keys` as one EVAL. With the source: Redis compiles a script
/// once and caches it by hash, and EVAL never meets EVALSHA's NOSCRIPT (a
/// replica promoted by a failover, a restarted Redis).
fn eval(script: &str, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys);
    cmd
}

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
pub(crate) struct Store {
    redis: Redis,
    keys: Keys,
}

impl Store {
    /// A store over `redis` with keys under `prefix`.
    pub(crate) fn new(redis: Redis, prefix: &str) -> Self {
        Store {
            redis,
            keys: Keys::new(prefix),
        }
    }

    /// Whether the store can serve now: a single Redis answers PING; a cluster
    /// reports `cluster_state:ok` with all 16384 slots served.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        if !self.redis.is_cluster() {
            let _: String = self.redis.query(&redis::cmd("PING")).await?;
            return Ok(());
        }
        let info: String = self.redis.query(redis::cmd("CLUSTER").arg("INFO")).await?;
        cluster_ready(&info)
    }
}

/// Whether `CLUSTER INFO` output says every slot is served.
fn cluster_ready(info: &str) -> Result<(), StoreError> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or("?")
    };
    let (state, slots_ok) = (field("cluster_state"), field("cluster_slots_ok"));
    if state == "ok" && slots_ok == "16384" {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "cluster_state:{state}, cluster_slots_ok:{slots_ok} of 16384"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_is_ready_only_with_every_slot_served() {
        let ok = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n";
        assert!(cluster_ready(ok).is_ok());
        let failing = "cluster_state:fail\r\ncluster_slots_ok:10923\r\n";
        let e = cluster_ready(failing).unwrap_err().to_string();
        assert!(
            e.contains("cluster_state:fail, cluster_slots_ok:10923 of 16384"),
            "{e}"
        );
        assert!(cluster_ready("").is_err());
    }
}
