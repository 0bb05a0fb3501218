//! redis-server processes of our own: the store every test shares (or a cluster), or a private
//! one to stop and restart.

use super::process::{free_port, scratch_dir, spawn_tied, wait_for_port};
use super::redis_cluster::RedisCluster;
use std::process::{Child, Command};
use std::sync::OnceLock;

/// A redis-server of our own.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Start one on a free port.
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// Start one on `port` (used to bring a stopped one back).
    pub fn start_on(port: u16) -> RedisServer {
        let dir = scratch_dir();
        let log = dir.join("redis.log");
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut child = spawn_tied(&which_redis(), &args, &[], &log, false);
        wait_for_port(port, &mut child, "redis-server", &log);
        RedisServer { port, child }
    }

    /// `redis://127.0.0.1:port/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kill it (as a crash would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Run a redis command through redis-cli and return its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The keys matching `pattern` (SCAN), one a line.
    pub fn keys(&self, pattern: &str) -> String {
        self.cli(&["--scan", "--pattern", pattern])
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The redis-server binary: `AUTHGATE_TEST_REDIS_SERVER`, or the usual install paths.
pub(super) fn which_redis() -> String {
    if let Ok(p) = std::env::var("AUTHGATE_TEST_REDIS_SERVER") {
        return p;
    }
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = format!("{dir}/redis-server");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!("redis-server is not installed: run scripts/test.sh (it installs it) or `apt-get install redis-server`");
}

/// The Redis every test shares: one redis-server, or with `AUTHGATE_TEST_REDIS=cluster`
/// a Redis Cluster, so the whole suite runs on either topology.
pub enum SharedRedis {
    /// `AUTHGATE_TEST_REDIS` unset or `single`.
    Single(RedisServer),
    /// `AUTHGATE_TEST_REDIS=cluster`.
    Cluster(RedisCluster),
}

impl SharedRedis {
    /// The `redis.url` to configure.
    pub fn url(&self) -> String {
        match self {
            SharedRedis::Single(r) => r.url(),
            SharedRedis::Cluster(c) => c.url(),
        }
    }

    /// The `redis.cluster_nodes` to configure: none for a single redis-server.
    pub fn cluster_nodes(&self) -> Vec<String> {
        match self {
            SharedRedis::Single(_) => vec![],
            SharedRedis::Cluster(c) => c.seed_nodes(),
        }
    }

    /// Run a redis command through redis-cli (following a cluster's redirects); its output.
    pub fn cli(&self, args: &[&str]) -> String {
        match self {
            SharedRedis::Single(r) => r.cli(args),
            SharedRedis::Cluster(c) => c.cli(args),
        }
    }

    /// The keys matching `pattern` (SCAN, on every master of a cluster), one a line.
    pub fn keys(&self, pattern: &str) -> String {
        match self {
            SharedRedis::Single(r) => r.keys(pattern),
            SharedRedis::Cluster(c) => c.keys(pattern),
        }
    }
}

/// True when `AUTHGATE_TEST_REDIS=cluster` selects the cluster pass.
fn cluster_pass() -> bool {
    match std::env::var("AUTHGATE_TEST_REDIS").as_deref() {
        Err(_) | Ok("") | Ok("single") => false,
        Ok("cluster") => true,
        Ok(other) => panic!("AUTHGATE_TEST_REDIS={other}: expected `single` or `cluster`"),
    }
}

/// The Redis shared by every test; tests keep apart by key prefix.
pub fn shared_redis() -> &'static SharedRedis {
    static R: OnceLock<SharedRedis> = OnceLock::new();
    R.get_or_init(|| {
        if cluster_pass() {
            SharedRedis::Cluster(RedisCluster::start())
        } else {
            SharedRedis::Single(RedisServer::start())
        }
    })
}

/// A Redis Cluster shared by the tests that only read and write it (no node
/// stopped): the shared store itself in the cluster pass, else one started for
/// this process on first use. One cluster per pass, not one per test.
pub fn shared_cluster() -> &'static RedisCluster {
    static C: OnceLock<RedisCluster> = OnceLock::new();
    match shared_redis() {
        SharedRedis::Cluster(c) => c,
        SharedRedis::Single(_) => C.get_or_init(RedisCluster::start),
    }
}
