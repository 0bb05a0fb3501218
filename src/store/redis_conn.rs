//! The Redis connection: one Redis or a Redis Cluster, multiplexed and self-reconnecting, opened lazily inside the serving runtime, every call bounded by a timeout.
//!
//! Long file: the connection, cluster routing and error metrics are not split by job yet (#25 item 5 asks for it).

use super::StoreError;
use crate::config::{HostPort, RedisConfig};
use crate::metrics::METRICS;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisFuture,
    TlsCertificates,
};
use std::path::{Path, PathBuf};
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

/// Slot ranges and their masters, from `CLUSTER SLOTS`.
#[derive(Default)]
struct SlotMap {
    ranges: Vec<(u16, u16, String)>,
    read_at: Option<Instant>,
}

impl SlotMap {
    fn node_of(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, node)| node.as_str())
    }
}

/// `CLUSTER SLOTS` as (first slot, last slot, master `host:port`).
fn parse_slots(v: &redis::Value) -> Vec<(u16, u16, String)> {
    use redis::Value;
    let Value::Array(ranges) = v else {
        return Vec::new();
    };
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        _ => None,
    };
    ranges
        .iter()
        .filter_map(|r| {
            let Value::Array(r) = r else { return None };
            let Some(Value::Array(master)) = r.get(2) else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let port = master.get(1).and_then(int)?;
            Some((int(r.first()?)?, int(r.get(1)?)?, format!("{host}:{port}")))
        })
        .collect()
}

/// A key's cluster slot: CRC16 of its `{hash tag}` if it has a non-empty one, else of the key.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % 16384
}

/// The key a command routes by: the first key of EVAL/EVALSHA, else its first argument.
fn routing_key(cmd: &redis::Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => &[][..],
    });
    let name = args.next()?;
    if name.eq_ignore_ascii_case(b"EVAL") || name.eq_ignore_ascii_case(b"EVALSHA") {
        let _script = args.next()?;
        let numkeys = args.next()?;
        if numkeys == b"0" {
            return None;
        }
    }
    args.next()
}

/// Opening the connection, in a task of its own: a call that gives up at its
/// timeout leaves it running for the next, so a connect slower than one call's
/// timeout (a cluster's CLUSTER SLOTS and node connections on a loaded machine)
/// still finishes instead of starting over with every call.
type Connecting = Shared<BoxFuture<'static, Result<Conn, String>>>;

/// What the store talks to.
#[derive(Clone)]
enum Target {
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
            |mut conn| async move { cmd.query_async(&mut conn).await },
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
        let mut pipe = redis::pipe();
        pipe.add_command(a.clone()).add_command(b.clone());
        self.pipeline(&pipe).await
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
fn url_info(cfg: &RedisConfig) -> Result<ConnectionInfo, RedisSetupError> {
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
fn cluster(
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
fn client(cfg: &RedisConfig, info: ConnectionInfo) -> Result<redis::Client, RedisSetupError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    #[test]
    fn key_slots_are_redis_cluster_slots() {
        // `CLUSTER KEYSLOT` answers from the Redis documentation.
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"authgate:user:{7}:sessions"), key_slot(b"7"));
        // An empty tag is no tag.
        assert_eq!(
            key_slot(b"a{}b"),
            crc16::State::<crc16::XMODEM>::calculate(b"a{}b") % 16384
        );
    }

    #[test]
    fn commands_route_by_their_first_key() {
        assert_eq!(routing_key(redis::cmd("GET").arg("k")), Some(&b"k"[..]));
        let mut eval = redis::cmd("EVAL");
        eval.arg("return 1").arg(2).arg("a").arg("b");
        assert_eq!(routing_key(&eval), Some(&b"a"[..]));
        let mut keyless = redis::cmd("EVAL");
        keyless.arg("return 1").arg(0);
        assert_eq!(routing_key(&keyless), None);
    }

    #[test]
    fn cluster_slots_name_each_range_master() {
        let node =
            |host: &str, port| Value::Array(vec![Value::BulkString(host.into()), Value::Int(port)]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 6379),
                node("10.0.0.4", 6379),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 6380),
            ]),
            Value::Int(7),
        ]);
        let map = SlotMap {
            ranges: parse_slots(&reply),
            read_at: None,
        };
        assert_eq!(map.node_of(0), Some("10.0.0.1:6379"));
        assert_eq!(map.node_of(5461), Some("10.0.0.2:6380"));
        assert_eq!(map.ranges.len(), 2);
    }
}
