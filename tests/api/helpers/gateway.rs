//! A running `authgate` process and the HTTP calls a test makes to it.
//!
//! Long file: the one harness every test starts gateways with: the builder, the config it writes and ~50 small request helpers.

use super::process::{free_port, scratch_dir, spawn_tied, unique, wait_for_port};
use super::{client, post, shared_redis, RedisCluster, SECRET};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The password [`TestGateway::new_user`] registers with.
pub const PASSWORD: &str = "correct horse battery";

/// The metric of password hashes computed ([`TestGateway::metric`]).
pub const PASSWORD_HASHES: &str = "authgate_password_hashes_total";

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// The id `/register` gave it.
    pub id: u64,
    /// Its email, as stored.
    pub email: String,
    /// An access token.
    pub access: String,
    /// A refresh token.
    pub refresh: String,
}

impl TestUser {
    /// `{"email", "password"}`, as `/login` takes them.
    pub fn credentials(&self) -> Value {
        json!({"email": self.email, "password": PASSWORD})
    }
}

/// How to start a gateway: the shared Redis, cheap argon2, no upstream, unless told otherwise.
pub struct GatewayBuilder {
    redis_url: String,
    /// `redis.cluster_nodes`; empty for a single redis-server.
    cluster_nodes: Vec<String>,
    prefix: Option<String>,
    /// `key: value` lines under `redis:`, later ones replacing earlier ones of the same key.
    redis_keys: Vec<(String, String)>,
    yaml: String,
    env: Vec<(String, String)>,
    /// More `listen` addresses beside the gateway's own port.
    also_listen: Vec<SocketAddr>,
    /// `http1_engine`; unset: `fast` or `parked` by the suite's choice
    /// (`fast_path_default`); empty: no such line (a test of the older keys).
    engine: Option<&'static str>,
    /// stdout to a pipe this process holds open and never reads.
    stdout_unread: bool,
}

/// Whether gateways run the fast path unless a test says: on, or off when
/// `AUTHGATE_TEST_FAST_PATH=off` (scripts/test.sh runs the suite both ways).
pub fn fast_path_default() -> bool {
    match std::env::var("AUTHGATE_TEST_FAST_PATH").as_deref() {
        Err(_) | Ok("on") => true,
        Ok("off") => false,
        Ok(other) => panic!("AUTHGATE_TEST_FAST_PATH={other}: expected `on` or `off`"),
    }
}

/// What `AUTHGATE_TEST_BROWSER=on` adds to a gateway whose test did not
/// configure browser mode itself: scripts/test.sh runs the JSON API's modules
/// once more so, since browser mode must leave the JSON contract untouched.
fn browser_default(yaml: &str) -> &'static str {
    match std::env::var("AUTHGATE_TEST_BROWSER").as_deref() {
        Err(_) | Ok("off") => "",
        Ok("on") if yaml.contains("browser:") => "",
        Ok("on") => "public_url: \"https://gateway.test\"\nbrowser: { enabled: true, allow_registration: true }\n",
        Ok(other) => panic!("AUTHGATE_TEST_BROWSER={other}: expected `on` or `off`"),
    }
}

impl GatewayBuilder {
    /// Every non-auth request to `upstream`.
    pub fn upstream(self, upstream: SocketAddr) -> Self {
        self.env("AUTHGATE_UPSTREAM", &format!("http://{upstream}"))
    }

    /// Use the single Redis at `url` instead of the shared one (even in the cluster pass).
    pub fn redis_url(mut self, url: String) -> Self {
        self.redis_url = url;
        self.cluster_nodes.clear();
        self
    }

    /// Use `cluster` instead of the shared Redis.
    pub fn cluster(mut self, cluster: &RedisCluster) -> Self {
        self.redis_url = cluster.url();
        self.cluster_nodes = cluster.seed_nodes();
        self
    }

    /// Share `other`'s Redis (or cluster), key prefix and token issuer: a second instance of
    /// the same deployment.
    pub fn same_store_as(mut self, other: &TestGateway) -> Self {
        self.redis_url = other.redis_url.clone();
        self.cluster_nodes = other.cluster_nodes.clone();
        self.prefix = Some(other.prefix.clone());
        self.env("AUTHGATE_TOKEN_ISSUER", &other.issuer())
    }

    /// Set `key: value` under `redis:` (replacing a default such as `timeout_ms`).
    pub fn redis_key(mut self, key: &str, value: &str) -> Self {
        self.redis_keys.retain(|(k, _)| k != key);
        self.redis_keys.push((key.into(), value.into()));
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Listen on `addr` too (`listen` then names several addresses).
    pub fn also_listen(mut self, addr: SocketAddr) -> Self {
        self.also_listen.push(addr);
        self
    }

    /// Append YAML to the generated config.
    pub fn yaml(mut self, y: &str) -> Self {
        self.yaml.push_str(y);
        self
    }

    /// `http1_engine: fast` (on) or `parked` (off), whatever the suite runs with.
    pub fn fast_path(mut self, on: bool) -> Self {
        self.engine = Some(if on { "fast" } else { "parked" });
        self
    }

    /// Set `http1_engine` (`fast`, `parked`, `pingora`); `""` writes none,
    /// so the test's own yaml may use the older keys.
    pub fn http1_engine(mut self, engine: &'static str) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Send the gateway's stdout (the access log) to a pipe nobody reads; its
    /// stderr still goes to the log file.
    pub fn stdout_unread(mut self) -> Self {
        self.stdout_unread = true;
        self
    }

    /// Start it and wait until it listens.
    pub fn start(self) -> TestGateway {
        let dir = scratch_dir();
        let port = free_port();
        let ops_port = free_port();
        let prefix = self.prefix.unwrap_or_else(|| format!("{}:", unique("t")));
        let conf = dir.join("gateway.yaml");
        let mut redis_keys: Vec<String> = self
            .redis_keys
            .iter()
            .map(|(k, v)| format!("  {k}: {v}"))
            .collect();
        if !self.cluster_nodes.is_empty() {
            let nodes: Vec<String> = self
                .cluster_nodes
                .iter()
                .map(|n| format!("{n:?}"))
                .collect();
            redis_keys.push(format!("  cluster_nodes: [{}]", nodes.join(", ")));
        }
        let yaml = format!(
            r#"listen: ["127.0.0.1:{port}"{also}]
ops_listen: "127.0.0.1:{ops_port}"
threads: 2
{engine}
upgrade_sock: {dir}/upgrade.sock
pid_file: {dir}/authgate.pid
passwords:
  memory_kib: 1024
  iterations: 1
  parallelism: 1
  allow_insecure_parameters: true
  hash_threads: 2
redis:
  url: {url}
  key_prefix: "{prefix}"
{redis_keys}
{browser}{extra}"#,
            dir = dir.display(),
            also = self
                .also_listen
                .iter()
                .map(|a| format!(", \"{a}\""))
                .collect::<String>(),
            url = self.redis_url,
            redis_keys = redis_keys.join("\n"),
            browser = browser_default(&self.yaml),
            extra = self.yaml,
            engine = match self.engine {
                Some("") => String::new(),
                Some(e) => format!("http1_engine: {e}"),
                None if fast_path_default() => "http1_engine: fast".into(),
                None => "http1_engine: parked".into(),
            },
        );
        std::fs::write(&conf, yaml).expect("write config");
        let log = dir.join("gateway.log");
        let mut env = vec![
            ("AUTHGATE_JWT_SECRET".to_owned(), SECRET.to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        env.extend(self.env);
        let args = vec!["-c".to_owned(), conf.display().to_string()];
        let mut child = spawn_tied(
            env!("CARGO_BIN_EXE_authgate"),
            &args,
            &env,
            &log,
            self.stdout_unread,
        );
        wait_for_port(port, &mut child, "authgate", &log);
        wait_for_port(ops_port, &mut child, "authgate ops", &log);
        TestGateway {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ops: SocketAddr::from(([127, 0, 0, 1], ops_port)),
            prefix,
            redis_url: self.redis_url,
            cluster_nodes: self.cluster_nodes,
            conf,
            log,
            env,
            child,
            http: client(),
        }
    }
}

/// A running `authgate` process, with an HTTP client of its own.
pub struct TestGateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its ops listener.
    pub ops: SocketAddr,
    /// Its key prefix in Redis.
    pub prefix: String,
    redis_url: String,
    cluster_nodes: Vec<String>,
    conf: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Child,
    http: reqwest::Client,
}

impl TestGateway {
    /// A gateway on the shared Redis (or cluster) with no upstream, started.
    pub fn start() -> TestGateway {
        Self::builder().start()
    }

    /// A gateway to configure, then start.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            redis_url: shared_redis().url(),
            cluster_nodes: shared_redis().cluster_nodes(),
            prefix: None,
            // A Redis Cluster on a loaded 2-core machine answers a script past
            // 500 ms now and then (a register was once 503 so in CI's pass):
            // tests that need a short timeout set their own.
            redis_keys: vec![(
                "timeout_ms".into(),
                if shared_redis().cluster_nodes().is_empty() {
                    "500".into()
                } else {
                    "2000".into()
                },
            )],
            yaml: String::new(),
            env: vec![],
            also_listen: vec![],
            engine: None,
            stdout_unread: false,
        }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:ops_port{path}`.
    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ops)
    }

    /// A request to `path` on its client, to add headers or a body to.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// GET `path`, with a Bearer token if given.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        let mut req = self.request(Method::GET, path);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// GET `path` as `user` (with its access token).
    pub async fn get_as(&self, user: &TestUser, path: &str) -> Response {
        self.get(path, Some(&user.access)).await
    }

    /// GET `path` (with a Bearer token if given) and return the status.
    pub async fn get_status(&self, path: &str, bearer: Option<&str>) -> u16 {
        self.get(path, bearer).await.status().as_u16()
    }

    /// GET `path` (with a Bearer token if given) and return the body as text.
    pub async fn get_text(&self, path: &str, bearer: Option<&str>) -> String {
        self.get(path, bearer)
            .await
            .text()
            .await
            .expect("text body")
    }

    /// GET `path` with a Bearer token and return the JSON body.
    pub async fn get_json(&self, path: &str, bearer: &str) -> Value {
        self.get(path, Some(bearer))
            .await
            .json()
            .await
            .expect("JSON body")
    }

    /// PUT JSON to `path` with a Bearer token.
    pub async fn put_json(&self, path: &str, bearer: &str, body: &Value) -> Response {
        self.request(Method::PUT, path)
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST JSON to `path` and return (status, body as JSON or Null).
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        post(&self.http, &self.url(path), body).await
    }

    /// `POST /register`.
    pub async fn register(&self, email: &str, password: &str) -> (u16, Value) {
        self.post_json("/register", json!({"email": email, "password": password}))
            .await
    }

    /// `POST /login`.
    pub async fn login(&self, email: &str, password: &str) -> (u16, Value) {
        self.post_json("/login", json!({"email": email, "password": password}))
            .await
    }

    /// `POST /refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.post_json("/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    /// `POST /logout`.
    pub async fn logout(&self, refresh_token: &str) -> (u16, Value) {
        self.post_json("/logout", json!({"refresh_token": refresh_token}))
            .await
    }

    /// Register and log in a fresh user with [`PASSWORD`].
    pub async fn new_user(&self) -> TestUser {
        let email = format!("{}@example.com", unique("user"));
        let (s, b) = self.register(&email, PASSWORD).await;
        assert_eq!(s, 201, "register: {b}");
        let id = b["id"].as_u64().expect("integer id");
        let (s, b) = self.login(&email, PASSWORD).await;
        assert_eq!(s, 200, "login: {b}");
        let token = |name: &str| b[name].as_str().expect(name).to_owned();
        TestUser {
            id,
            email,
            access: token("access_token"),
            refresh: token("refresh_token"),
        }
    }

    /// GET `path` on the ops listener.
    pub async fn ops_get(&self, path: &str) -> Response {
        self.http
            .get(self.ops_url(path))
            .send()
            .await
            .expect("ops request")
    }

    /// The Prometheus exposition from `/metrics`.
    pub async fn metrics(&self) -> String {
        self.ops_get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of the sample `name` (with its labels, as exposed: `a_total{k="v"}`)
    /// in `/metrics`; 0 when it is not there yet (a counter never bumped).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().parse().expect("a metric value"))
            .next()
            .unwrap_or(0.0)
    }

    /// The unread stdout pipe of a gateway started with `stdout_unread`, to read at last.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (5 s at most) until its output contains `text`; the output then.
    pub async fn output_containing(&self, text: &str) -> String {
        super::eventually(Duration::from_secs(5), text, || async {
            self.output().contains(text)
        })
        .await;
        self.output()
    }

    /// Its config file (for running the binary's subcommands against the same Redis).
    pub fn conf(&self) -> &std::path::Path {
        &self.conf
    }

    /// `iss` of the tokens it issues by default: `http://<its listen address>`.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replace `from` (which must be there) with `to` in its config file.
    pub fn edit_conf(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.conf).expect("read config");
        assert!(text.contains(from), "config has no {from:?}");
        std::fs::write(&self.conf, text.replace(from, to)).expect("write config");
    }

    /// SIGHUP once its handler is in place; the log line that answers it.
    pub async fn sighup(&self) -> String {
        const ANSWER: &str = "SIGHUP: ";
        self.output_containing("SIGHUP reloads the signing keys")
            .await;
        let before = self.output().matches(ANSWER).count();
        self.signal("HUP");
        super::eventually(Duration::from_secs(5), "an answer to SIGHUP", || async {
            self.output().matches(ANSWER).count() > before
        })
        .await;
        let out = self.output();
        let line = out
            .lines()
            .filter(|l| l.contains(ANSWER))
            .nth(before)
            .expect("the answer line");
        line.to_owned()
    }

    /// The socket a `-u` process receives the listeners on.
    pub fn upgrade_sock(&self) -> PathBuf {
        self.conf.with_file_name("upgrade.sock")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Start a second process with `-u` on the same config: it waits to take over the listeners.
    pub fn start_upgrade(&self) -> TestGateway {
        let log = self.log.with_file_name("gateway-upgrade.log");
        let args = vec![
            "-u".to_owned(),
            "-c".to_owned(),
            self.conf.display().to_string(),
        ];
        let child = spawn_tied(
            env!("CARGO_BIN_EXE_authgate"),
            &args,
            &self.env,
            &log,
            false,
        );
        TestGateway {
            addr: self.addr,
            ops: self.ops,
            prefix: self.prefix.clone(),
            redis_url: self.redis_url.clone(),
            cluster_nodes: self.cluster_nodes.clone(),
            conf: self.conf.clone(),
            log,
            env: self.env.clone(),
            child,
            http: client(),
        }
    }

    /// Wait (5 s at most) until the process catches SIGTERM, SIGQUIT and
    /// SIGINT: Pingora's handlers are in place (the `SigCgt` mask of
    /// /proc/<pid>/status; the gateway's own code catches only SIGHUP).
    pub async fn signal_handlers_installed(&self) {
        let caught = |pid: u32| -> u64 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .unwrap_or(0)
        };
        // Bit n-1 is signal n: INT 2, QUIT 3, TERM 15.
        let wanted: u64 = (1 << 1) | (1 << 2) | (1 << 14);
        let pid = self.pid();
        super::eventually(
            Duration::from_secs(5),
            "Pingora's signal handlers",
            || async { caught(pid) & wanted == wanted },
        )
        .await;
    }

    /// Wait (`limit` at most) until the process no longer holds a socket
    /// listening on its port.
    pub async fn stops_listening(&self, limit: Duration) {
        let (pid, port) = (self.pid(), self.addr.port());
        super::eventually(limit, "the gateway closes its listener", || async {
            !super::process::listens_on(pid, port)
        })
        .await;
    }

    /// Whether the process is alive and is the one listening on its port.
    pub fn is_listening(&self) -> bool {
        super::process::listens_on(self.pid(), self.addr.port())
    }

    /// Send a signal by name (`QUIT`, `TERM`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait up to `limit` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
