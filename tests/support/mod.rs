//! Test harness: a real redis-server, real echo upstreams and the real `authgate` binary, on free loopback ports.
#![allow(dead_code)]

pub mod echo;
pub mod raw;
pub mod tls_redis;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A JWT secret for tests (32+ bytes).
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// A free port on 127.0.0.1 (free when asked; the caller binds it right away).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A name no other test in this run uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn scratch_dir() -> PathBuf {
    let d = std::env::temp_dir()
        .join("authgate-tests")
        .join(unique("run"));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    // The gateway refuses an upgrade socket in a directory others can write to,
    // whatever umask this test runs under.
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod scratch dir");
    d
}

/// Run `program` so that it dies with this test process even if the process is killed:
/// a shell watches our pid and then `exec`s the program, so the child's pid is the program's.
fn spawn_tied(program: &str, args: &[String], envs: &[(String, String)], log: &PathBuf) -> Child {
    let script = format!(
        "(while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill -9 $$ 2>/dev/null) & exec \"$0\" \"$@\"",
        std::process::id()
    );
    let log_file = std::fs::File::create(log).expect("create log");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(program).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone log"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &PathBuf) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A redis-server of our own.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl RedisServer {
    /// Start one on a free port.
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// Start one on `port` (used to bring a stopped one back).
    pub fn start_on(port: u16) -> RedisServer {
        let bin = which_redis();
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
        let mut child = spawn_tied(&bin, &args, &[], &log);
        wait_for_port(port, &mut child, "redis-server", &log);
        RedisServer { port, child, log }
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
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which_redis() -> String {
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

/// The redis-server shared by every test of this binary; tests keep apart by key prefix.
pub fn shared_redis() -> &'static RedisServer {
    static R: OnceLock<RedisServer> = OnceLock::new();
    R.get_or_init(RedisServer::start)
}

/// An echo upstream on the current tokio runtime.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests it has received.
    pub hits: Arc<AtomicUsize>,
    name: String,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Upstream {
    /// Start one named `name`.
    pub async fn start(name: &str) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo");
        Self::serve(listener, name, Arc::new(AtomicUsize::new(0)))
    }

    fn serve(listener: tokio::net::TcpListener, name: &str, hits: Arc<AtomicUsize>) -> Upstream {
        let addr = listener.local_addr().expect("echo addr");
        let (stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(echo::serve_until(
            listener,
            name.to_owned(),
            hits.clone(),
            rx,
        ));
        Upstream {
            addr,
            hits,
            name: name.to_owned(),
            stop,
        }
    }

    /// Close the listener and every connection, as a crashed peer would.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Listen again on the same port, keeping the hit counter.
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        *self = Self::serve(listener, &self.name.clone(), self.hits.clone());
    }

    /// Requests seen so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A running `authgate` process.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its ops listener.
    pub ops: SocketAddr,
    /// Its key prefix in Redis.
    pub prefix: String,
    /// Its config file.
    pub conf: PathBuf,
    /// Its combined stdout+stderr.
    pub log: PathBuf,
    env: Vec<(String, String)>,
    child: Child,
}

/// How to start a gateway.
pub struct GatewayOpts {
    /// Redis URL.
    pub redis_url: String,
    /// Extra YAML appended to the generated config.
    pub yaml: String,
    /// Extra `key: value` lines inside the generated `redis:` section.
    pub redis_yaml: String,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl GatewayOpts {
    /// Defaults: the shared Redis, cheap argon2, no upstream.
    pub fn new() -> Self {
        GatewayOpts {
            redis_url: shared_redis().url(),
            yaml: String::new(),
            redis_yaml: String::new(),
            env: vec![],
        }
    }

    /// Every non-auth request to `upstream`.
    pub fn upstream(mut self, upstream: SocketAddr) -> Self {
        self.env
            .push(("AUTHGATE_UPSTREAM".into(), format!("http://{upstream}")));
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Append YAML.
    pub fn yaml(mut self, y: &str) -> Self {
        self.yaml.push_str(y);
        self
    }

    /// Add `key: value` under `redis:`.
    pub fn redis_key(mut self, key: &str, value: &str) -> Self {
        self.redis_yaml.push_str(&format!("  {key}: {value}\n"));
        self
    }

    /// Start it and wait until it listens.
    pub fn start(self) -> Gateway {
        Gateway::start(self)
    }
}

impl Default for GatewayOpts {
    fn default() -> Self {
        Self::new()
    }
}

impl Gateway {
    fn start(opts: GatewayOpts) -> Gateway {
        let dir = scratch_dir();
        let port = free_port();
        let ops_port = free_port();
        let prefix = format!("{}:", unique("t"));
        let conf = dir.join("gateway.yaml");
        let yaml = format!(
            "listen: [\"127.0.0.1:{port}\"]\nops_listen: \"127.0.0.1:{ops_port}\"\nthreads: 2\nupgrade_sock: {dir}/upgrade.sock\npid_file: {dir}/authgate.pid\n\
             redis:\n  url: {url}\n  key_prefix: \"{prefix}\"\n  timeout_ms: 500\n{redis_extra}\
             passwords:\n  memory_kib: 1024\n  iterations: 1\n  parallelism: 1\n  hash_threads: 2\n{extra}",
            dir = dir.display(),
            url = opts.redis_url,
            redis_extra = opts.redis_yaml,
            extra = opts.yaml,
        );
        std::fs::write(&conf, yaml).expect("write config");
        let log = dir.join("gateway.log");
        let mut env = vec![
            ("AUTHGATE_JWT_SECRET".to_owned(), SECRET.to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        env.extend(opts.env);
        let args = vec!["-c".to_owned(), conf.display().to_string()];
        let mut child = spawn_tied(env!("CARGO_BIN_EXE_authgate"), &args, &env, &log);
        wait_for_port(port, &mut child, "authgate", &log);
        wait_for_port(ops_port, &mut child, "authgate ops", &log);
        Gateway {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ops: SocketAddr::from(([127, 0, 0, 1], ops_port)),
            prefix,
            conf,
            log,
            env,
            child,
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

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Start a second process with `-u` on the same config: it waits to take over the listeners.
    pub fn start_upgrade(&self) -> Gateway {
        let log = self.log.with_file_name("gateway-upgrade.log");
        let args = vec![
            "-u".to_owned(),
            "-c".to_owned(),
            self.conf.display().to_string(),
        ];
        let child = spawn_tied(env!("CARGO_BIN_EXE_authgate"), &args, &self.env, &log);
        Gateway {
            addr: self.addr,
            ops: self.ops,
            prefix: self.prefix.clone(),
            conf: self.conf.clone(),
            log,
            env: self.env.clone(),
            child,
        }
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

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that does not follow redirects and keeps connections alive.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build client")
}

/// POST JSON and return (status, body as JSON or Null).
pub async fn post(
    c: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Register and log in a fresh user; returns (email, access, refresh).
pub async fn new_user(c: &reqwest::Client, gw: &Gateway) -> (String, String, String) {
    let email = format!("{}@example.com", unique("user"));
    let creds = serde_json::json!({"email": email, "password": "correct horse battery"});
    let (s, b) = post(c, &gw.url("/register"), creds.clone()).await;
    assert_eq!(s, 201, "register: {b}");
    let (s, b) = post(c, &gw.url("/login"), creds).await;
    assert_eq!(s, 200, "login: {b}");
    (
        email,
        b["access_token"].as_str().expect("access_token").to_owned(),
        b["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

/// Assert the gateway's error shape: JSON with `error` == code and a non-empty `detail`.
pub fn assert_error(body: &serde_json::Value, code: &str) {
    assert_eq!(body["error"], code, "body: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "no detail: {body}"
    );
}

/// An access token signed with `secret` and `alg` for `user`, expiring `exp_in` seconds from now.
pub fn jwt(secret: &str, alg: jsonwebtoken::Algorithm, user: u64, exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let claims = serde_json::json!({"user_id": user, "sub": user.to_string(), "iat": now, "exp": now + exp_in});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign test token")
}

/// A valid access token for `user` (the test secret, HS256, five minutes).
pub fn token(user: u64) -> String {
    jwt(SECRET, jsonwebtoken::Algorithm::HS256, user, 300)
}

/// GET `url`, with a Bearer token if given.
async fn get(c: &reqwest::Client, url: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = c.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

/// GET `url` (with a Bearer token if given) and return the status.
pub async fn get_status(c: &reqwest::Client, url: &str, bearer: Option<&str>) -> u16 {
    get(c, url, bearer).await.status().as_u16()
}

/// GET `url` (with a Bearer token if given) and return the body as text.
pub async fn get_text(c: &reqwest::Client, url: &str, bearer: Option<&str>) -> String {
    get(c, url, bearer).await.text().await.expect("text body")
}

/// GET `url` with a Bearer token and return the JSON body.
pub async fn get_json(c: &reqwest::Client, url: &str, bearer: &str) -> serde_json::Value {
    get(c, url, Some(bearer))
        .await
        .json()
        .await
        .expect("JSON body")
}

/// The values of header `name` (any case) in an echo upstream's answer.
pub fn header_values(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .filter(|p| p[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|p| p[1].as_str().map(str::to_owned))
        .collect()
}

/// An address where nothing listens, held so no other test can start listening there:
/// the socket is bound (without SO_REUSEADDR) but never listens, so connecting is refused.
pub struct DeadPort {
    /// The address.
    pub addr: SocketAddr,
    _hold: tokio::net::TcpSocket,
}

impl DeadPort {
    /// Reserve one.
    pub fn new() -> DeadPort {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let addr = sock.local_addr().expect("local addr");
        DeadPort { addr, _hold: sock }
    }
}
