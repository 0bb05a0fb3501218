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

/// One Lua script of the store: called by its SHA1 (EVALSHA), its source sent
/// only when Redis answers NOSCRIPT (a restarted Redis, a promoted replica, a
/// cluster node never asked), and then cached there again by that EVAL. With
/// the source on every call, Redis spent 2.4 us more CPU per call of a
/// 1.4 KB script (bench/RESULTS.md, "One Lua convention"). Scripts called
/// as a `redis::ScriptInvocation` (throttles, users, the import) follow the
/// same convention through `redis::Script`; `Lua` is for those whose call
/// must be a plain command, to share a round trip (`Redis::both`).
pub(crate) struct Lua {
    sha: String,
}

/// Every script's source by its SHA1, for the NOSCRIPT fallback.
static SOURCES: std::sync::LazyLock<
    std::sync::RwLock<std::collections::HashMap<String, &'static str>>,
> = std::sync::LazyLock::new(Default::default);

impl Lua {
    /// The script `source` (its SHA1 computed, and recorded for the fallback).
    pub(crate) fn new(source: &'static str) -> Lua {
        let sha = redis::Script::new(source).get_hash().to_owned();
        if let Ok(mut sources) = SOURCES.write() {
            sources.insert(sha.clone(), source);
        }
        Lua { sha }
    }
}

/// Whether Redis answered that it does not have a script.
fn no_script(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// `script` over `keys` as one EVALSHA; its arguments follow (`.arg`).
fn eval(script: &Lua, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.sha).arg(keys.len()).arg(keys);
    cmd
}

/// `cmd` as an EVAL of the script's source, when it is an EVALSHA of one of
/// the store's scripts (what a NOSCRIPT answer is retried with); else `None`.
fn with_source(cmd: &redis::Cmd) -> Option<redis::Cmd> {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => &[][..],
    });
    if !args.next()?.eq_ignore_ascii_case(b"EVALSHA") {
        return None;
    }
    let sha = std::str::from_utf8(args.next()?).ok()?;
    let source = *SOURCES.read().ok()?.get(sha)?;
    let mut eval = redis::cmd("EVAL");
    eval.arg(source);
    for a in args {
        eval.arg(a);
    }
    Some(eval)
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
