//! The Redis connection: one Redis or a Redis Cluster, multiplexed and self-reconnecting, opened lazily inside the serving runtime, every call bounded by a timeout.
//!
//! Cluster routing (slots, the key of a command) is `redis_slots.rs`; building
//! the client from `redis.*` (URL, seeds, TLS files) is `redis_setup.rs`.

use super::redis_setup::{client, cluster, url_info, RedisSetupError};
use super::redis_slots::{key_slot, parse_slots, routing_key, SlotMap};
use super::StoreError;
use crate::config::RedisConfig;
use crate::metrics::METRICS;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionAddr, RedisFuture};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A Redis client whose every call ends within `timeout`.
pub(crate) struct Redis {
    target: Target,
    conn: OnceLock<Conn>,
    /// The connection being opened, awaited by every call until it is.
    connecting: Mutex<Option<Connecting>>,
    timeout: Duration,
    /// Where the next pub/sub connection starts looking (cluster: a seed index).
    next_node: AtomicUsize,
    /// The node named on `authgate_redis_errors_total`: a single Redis's address.
    node: String,
    /// Cluster: which node served each slot when last asked, to name the node
    /// of a failed call.
    slots: Arc<Mutex<SlotMap>>,
}

/// Opening the connection, in a task of its own: a call that gives up at its
/// timeout leaves it running for the next, so a connect slower than one call's
/// timeout (a cluster's CLUSTER SLOTS and node connections on a loaded machine)
/// still finishes instead of starting over with every call.
type Connecting = Shared<BoxFuture<'static, Result<Conn, String>>>;

/// What the store talks to.
#[derive(Clone)]
pub(super) enum Target {
    Single(Box<redis::Client>),
    /// The cluster, and a plain client per seed node for pub/sub: a published
    /// message reaches every node of a cluster, so any live one will do.
    Cluster {
        client: Box<ClusterClient>,
        nodes: Vec<redis::Client>,
    },
}

/// An open connection of either kind; both multiplex and reconnect by themselves.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Redis {
    /// Parse the URL (and seed nodes) and read the TLS files (if any); nothing
    /// connects until the first call. The error names the config key at fault.
    pub(crate) fn new(cfg: &RedisConfig) -> Result<Self, RedisSetupError> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let info = url_info(cfg)?;
        let (target, node) = if cfg.cluster_nodes.is_empty() {
            let node = match info.addr() {
                ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                    format!("{host}:{port}")
                }
                other => other.to_string(),
            };
            (Target::Single(Box::new(client(cfg, info)?)), node)
        } else {
            (cluster(cfg, &info, timeout)?, "unknown".to_owned())
        };
        Ok(Redis {
            target,
            conn: OnceLock::new(),
            connecting: Mutex::new(None),
            timeout,
            next_node: AtomicUsize::new(0),
            node,
            slots: Arc::default(),
        })
    }

    /// Whether this is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    /// The connection, opened on first use. Opening here rather than at start-up
    /// ties its driver task to the runtime that serves requests, and lets the
    /// gateway start (and proxy) while Redis is still down.
    async fn connection(&self) -> Result<Conn, StoreError> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        let connecting = {
            let mut slot = self.connecting.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| {
                let task = tokio::spawn(connect(
                    self.target.clone(),
                    self.timeout,
                    self.slots.clone(),
                ));
                async move { task.await.unwrap_or_else(|e| Err(e.to_string())) }
                    .boxed()
                    .shared()
            })
            .clone()
        };
        match connecting.clone().await {
            Ok(conn) => Ok(self.conn.get_or_init(|| conn).clone()),
            Err(e) => {
                // The next call tries again (unless another already did).
                let mut slot = self.connecting.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_some_and(|s| s.ptr_eq(&connecting)) {
                    *slot = None;
                }
                Err(StoreError::Unavailable(e))
            }
        }
    }

    /// `work` on the connection, given up after the timeout (connecting
    /// included); a failure is counted against the node serving the key
    /// `key` names (asked only then, and only on a cluster).
    async fn bounded<'k, T, F>(
        &self,
        key: impl FnOnce() -> Option<&'k [u8]>,
        work: impl FnOnce(Conn) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let run = async { Ok::<T, StoreError>(work(self.connection().await?).await?) };
        let result = tokio::time::timeout(self.timeout, run)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("timed out".into())));
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.count_error(key);
        }
        result
    }

    /// Count a failed call on `authgate_redis_errors_total{node}`. On a cluster
    /// the node is the one the last-read slot map gives for the call's key; the
    /// map is re-read (off this call's path, at most once a second) since a
    /// failure is when it may have changed.
    fn count_error<'k>(&self, key: impl FnOnce() -> Option<&'k [u8]>) {
        let Target::Cluster { .. } = self.target else {
            METRICS.redis_errors.with_label_values(&[&self.node]).inc();
            return;
        };
        let stale = {
            let map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let node = key()
                .and_then(|k| map.node_of(key_slot(k)))
                .unwrap_or("unknown");
            METRICS.redis_errors.with_label_values(&[node]).inc();
            map.read_at
                .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        };
        if let (true, Some(conn)) = (stale, self.conn.get().cloned()) {
            self.slots.lock().unwrap_or_else(|p| p.into_inner()).read_at = Some(Instant::now());
            tokio::spawn(read_slot_map(conn, self.slots.clone(), self.timeout));
        }
    }

    /// Run one command, giving up after the timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.bounded(
            || routing_key(cmd),
            |mut conn| async move {
                match cmd.query_async(&mut conn).await {
                    // A store script Redis lacks: once more with its source.
                    Err(e) if super::no_script(&e) => match super::with_source(cmd) {
                        Some(eval) => eval.query_async(&mut conn).await,
                        None => Err(e),
                    },
                    r => r,
                }
            },
        )
        .await
    }

    /// Run a pipeline (one round trip), giving up after the timeout. On a
    /// cluster the whole pipeline goes to the node of its first key: every key
    /// in it must share that key's slot.
    pub(crate) async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.bounded(
            || pipe.cmd_iter().find_map(routing_key),
            |mut conn| async move { pipe.query_async(&mut conn).await },
        )
        .await
    }

    /// Two commands in one round trip whose keys may lie in different slots: one
    /// pipeline on a single Redis; on a cluster, each sent to its own node, together.
    /// When Redis lacks a script of the pair, both are sent again: neither may
    /// be a command that must not run twice.
    pub(crate) async fn both<A, B>(
        &self,
        a: &redis::Cmd,
        b: &redis::Cmd,
    ) -> Result<(A, B), StoreError>
    where
        A: redis::FromRedisValue,
        B: redis::FromRedisValue,
    {
        if self.is_cluster() {
            return tokio::try_join!(self.query(a), self.query(b));
        }
        let pair = |a: redis::Cmd, b: redis::Cmd| {
            let mut pipe = redis::pipe();
            pipe.add_command(a).add_command(b);
            pipe
        };
        self.bounded(
            || routing_key(a).or_else(|| routing_key(b)),
            |mut conn| async move {
                match pair(a.clone(), b.clone()).query_async(&mut conn).await {
                    // A store script Redis lacks: both once more, scripts with
                    // their source (the other command is a SET or a read,
                    // which may run twice).
                    Err(e) if super::no_script(&e) => {
                        let with_source =
                            |c: &redis::Cmd| super::with_source(c).unwrap_or_else(|| c.clone());
                        pair(with_source(a), with_source(b))
                            .query_async(&mut conn)
                            .await
                    }
                    r => r,
                }
            },
        )
        .await
    }

    /// A dedicated pub/sub connection (subscriptions cannot share the
    /// multiplexed one). On a cluster, to the first seed node that answers,
    /// starting after the one used last, so a failed node is not retried first.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, StoreError> {
        let nodes = match &self.target {
            Target::Single(client) => std::slice::from_ref(client.as_ref()),
            Target::Cluster { nodes, .. } => nodes.as_slice(),
        };
        let mut last = StoreError::Unavailable("no node to subscribe on".into());
        for _ in 0..nodes.len() {
            let i = self.next_node.fetch_add(1, Ordering::Relaxed) % nodes.len();
            match tokio::time::timeout(self.timeout, nodes[i].get_async_pubsub()).await {
                Ok(Ok(pubsub)) => return Ok(pubsub),
                Ok(Err(e)) => last = e.into(),
                Err(_) => last = StoreError::Unavailable("timed out".into()),
            }
        }
        Err(last)
    }

    /// Run a Lua script, giving up after the timeout.
    pub(crate) async fn script<T: redis::FromRedisValue>(
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
        self.invoke(keys.first().copied().unwrap_or_default(), &inv)
            .await
    }

    /// Load `script` (on a cluster, into every master), so that calls sent
    /// together do not each meet NOSCRIPT and load it again.
    pub(crate) async fn load(&self, script: &redis::Script) -> Result<(), StoreError> {
        let _: String = self
            .bounded(
                || None,
                |mut conn| async move { script.load_async(&mut conn).await },
            )
            .await?;
        Ok(())
    }

    /// Run a prepared script call whose first key is `key` (loading the script
    /// if Redis lacks it), giving up after the timeout.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        key: &str,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.bounded(
            || Some(key.as_bytes()),
            |mut conn| async move { call.invoke_async(&mut conn).await },
        )
        .await
    }
}

/// Open a connection to `target` (see [`Connecting`]).
async fn connect(
    target: Target,
    timeout: Duration,
    slots: Arc<Mutex<SlotMap>>,
) -> Result<Conn, String> {
    match target {
        Target::Single(client) => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_with_config(*client, config)
                .await
                .map(Conn::Single)
                .map_err(|e| e.to_string())
        }
        Target::Cluster { client, .. } => {
            let conn = Conn::Cluster(
                client
                    .get_async_connection()
                    .await
                    .map_err(|e| e.to_string())?,
            );
            tokio::spawn(read_slot_map(conn.clone(), slots, timeout));
            Ok(conn)
        }
    }
}

/// Read `CLUSTER SLOTS` into `slots`; on failure keep the old map.
async fn read_slot_map(mut conn: Conn, slots: Arc<Mutex<SlotMap>>, timeout: Duration) {
    let cmd = redis::cmd("CLUSTER").arg("SLOTS").to_owned();
    let read = cmd.query_async(&mut conn);
    if let Ok(Ok(v)) = tokio::time::timeout(timeout, read).await {
        let ranges = parse_slots(&v);
        if !ranges.is_empty() {
            let mut map = slots.lock().unwrap_or_else(|p| p.into_inner());
            map.ranges = ranges;
            map.read_at = Some(Instant::now());
        }
    }
}
