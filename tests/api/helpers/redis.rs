//! redis-server processes of our own: one shared by every test, or a private one to stop and restart.

use super::process::{free_port, scratch_dir, spawn_tied, wait_for_port};
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
        let mut child = spawn_tied(&which_redis(), &args, &[], &log);
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

/// The redis-server shared by every test; tests keep apart by key prefix.
pub fn shared_redis() -> &'static RedisServer {
    static R: OnceLock<RedisServer> = OnceLock::new();
    R.get_or_init(RedisServer::start)
}
