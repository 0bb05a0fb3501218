//! Typed gateway configuration: one YAML file, overridden by `AUTHGATE_*` environment variables, validated up front.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Shortest JWT secret accepted: HS256 wants at least as many key bytes as its output.
pub const MIN_SECRET_BYTES: usize = 32;

/// A configuration problem, phrased for an operator and naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML does not match the schema (unknown key, wrong type...).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file at fault.
        path: PathBuf,
        /// serde's message, which names the key and line.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// Dotted key path, or environment variable name.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// An on/off environment value: `1`, `true`, `on` or `yes` turn it on, anything else off.
fn flag(v: &str) -> bool {
    matches!(v.trim(), "1" | "true" | "on" | "yes")
}

/// `key` holds a listen address, `ip:port`.
fn socket_addr(key: &str, addr: &str) -> Result<(), ConfigError> {
    addr.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| invalid(key, format!("expected ip:port, got {addr:?}")))
}

/// `key` names a file the gateway must be able to open.
fn readable(key: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|_| invalid(key, format!("cannot read {}", path.display())))
}

/// A secret that never prints itself.
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wrap raw key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    /// The raw bytes, for building keys.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Addresses (host:port) the proxy listens on for plain HTTP.
    pub listen: Vec<String>,
    /// Plain-HTTP listener for /healthz, /readyz and /metrics; empty to disable.
    pub ops_listen: String,
    /// HTTPS listeners, when set.
    pub tls: Option<TlsConfig>,
    /// One JSON line per request on stdout.
    pub access_log: bool,
    /// PEM CA bundle trusted for TLS upstreams (default: the system's roots).
    pub upstream_ca_file: Option<PathBuf>,
    /// Worker threads for the proxy service.
    pub threads: usize,
    /// One work-stealing runtime for all threads (true), or one runtime per thread (false).
    pub work_stealing: bool,
    /// Read buffer per client connection, held while the connection is idle too
    /// (Pingora's default is 64 KiB). A request header larger than this costs one
    /// more read; 0 costs one more read on every request.
    pub client_read_buffer_bytes: usize,
    /// Seconds a client connection may sit idle: between requests, and before its first.
    pub keepalive_timeout_seconds: u64,
    /// On SIGTERM (or after handing listeners to a new process), in-flight
    /// requests get this long to finish; the process then exits.
    pub grace_period_seconds: u64,
    /// After the grace period, how long to wait for worker runtimes to stop.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Socket used to hand listeners to a new process on `-u` upgrades.
    pub upgrade_sock: String,
    /// Where a daemonised process writes its pid.
    pub pid_file: String,
    /// Log level when `RUST_LOG` is not set.
    pub log_level: String,
    /// Redis connection.
    pub redis: RedisConfig,
    /// Token lifetimes and signing key.
    pub tokens: TokenConfig,
    /// Password hashing.
    pub passwords: PasswordConfig,
    /// Size caps.
    pub limits: LimitsConfig,
    /// Named upstream clusters.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes to upstream clusters; longest matching prefix wins.
    pub routes: Vec<RouteConfig>,
    /// Headers a client may never set itself; removed in every spelling before forwarding.
    pub identity_headers: Vec<String>,
    /// Request headers whose name contains `_`: `drop` (default), `reject` (400) or `allow`.
    pub underscore_headers: crate::edge::UnderscoreHeaders,
    /// CIDRs of proxies in front of the gateway whose X-Forwarded-* headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The JWT secret; only ever from the environment or `tokens.jwt_secret_file`.
    #[serde(skip)]
    pub jwt_secret: Secret,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec!["127.0.0.1:8080".into()],
            ops_listen: "127.0.0.1:9090".into(),
            tls: None,
            access_log: true,
            upstream_ca_file: None,
            threads: 2,
            work_stealing: true,
            client_read_buffer_bytes: 1024,
            keepalive_timeout_seconds: 60,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 1,
            // Empty: inside the private run directory (see `run_dir`).
            upgrade_sock: String::new(),
            pid_file: String::new(),
            log_level: "info".into(),
            redis: RedisConfig::default(),
            tokens: TokenConfig::default(),
            passwords: PasswordConfig::default(),
            limits: LimitsConfig::default(),
            upstreams: BTreeMap::new(),
            routes: Vec::new(),
            identity_headers: vec!["X-User-Id".into()],
            underscore_headers: crate::edge::UnderscoreHeaders::Drop,
            trusted_proxies: Vec::new(),
            jwt_secret: Secret::default(),
        }
    }
}

/// HTTPS listeners (rustls).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Addresses (host:port).
    pub listen: Vec<String>,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// Redis settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `rediss://`).
    pub url: String,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Upper bound on any single Redis call, connecting included.
    pub timeout_ms: u64,
    /// `rediss://` only: PEM CA bundle to trust instead of the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// `rediss://` only: PEM client certificate chain, for servers with `tls-auth-clients yes`.
    pub tls_cert_file: Option<PathBuf>,
    /// `rediss://` only: PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: "authgate:".into(),
            timeout_ms: 1000,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// Token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access token (JWT) lifetime.
    pub access_ttl_seconds: u64,
    /// Refresh token lifetime; restarts on every refresh.
    pub refresh_ttl_seconds: u64,
    /// File holding the HS256 secret (overridden by `AUTHGATE_JWT_SECRET`).
    pub jwt_secret_file: Option<PathBuf>,
    /// Verified access tokens remembered to skip re-verification; 0 disables.
    pub verify_cache_entries: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_ttl_seconds: 30,
            refresh_ttl_seconds: 30 * 24 * 3600,
            jwt_secret_file: None,
            verify_cache_entries: 10_000,
        }
    }
}

/// Argon2id parameters and the pool that runs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Time cost (passes).
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait their turn.
    pub hash_threads: usize,
    /// Scheduling niceness of the hashing threads (0 to 19): higher yields more CPU to proxying.
    pub nice: i32,
    /// How long a request waits for a hashing slot before getting 503.
    pub queue_timeout_ms: u64,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            hash_threads: default_hash_threads(),
            nice: 10,
            queue_timeout_ms: 10_000,
        }
    }
}

/// Leave a core to the proxy on small machines so a login storm cannot starve it.
fn default_hash_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Size caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest body accepted by the auth endpoints.
    pub max_auth_body_bytes: usize,
    /// Total time a client gets to send an auth request body (not per read).
    pub auth_body_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_auth_body_bytes: 64 * 1024,
            auth_body_timeout_ms: 10_000,
        }
    }
}

/// One upstream cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `host:port` of each peer.
    pub peers: Vec<String>,
    /// Speak TLS to the peers.
    #[serde(default)]
    pub tls: bool,
    /// SNI (and certificate name) for TLS peers; defaults to the peer host.
    #[serde(default)]
    pub sni: Option<String>,
    /// Connect timeout.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Timeout for each read from the peer (the response header included).
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// How long an idle pooled connection to the peer is kept.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Active health check; none means every peer is always considered up.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_read_timeout_ms() -> u64 {
    30_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}

/// Active health check for a cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// `http` (GET `path`, expects 2xx) or `tcp` (connect only).
    #[serde(default = "default_hc_kind")]
    pub kind: HealthCheckKind,
    /// Path for `http` checks.
    #[serde(default = "default_hc_path")]
    pub path: String,
    /// Seconds between checks.
    #[serde(default = "default_hc_interval")]
    pub interval_seconds: u64,
}

fn default_hc_kind() -> HealthCheckKind {
    HealthCheckKind::Tcp
}
fn default_hc_path() -> String {
    "/".into()
}
fn default_hc_interval() -> u64 {
    5
}

/// How a peer is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckKind {
    /// HTTP GET.
    Http,
    /// TCP connect.
    Tcp,
}

/// Who may pass a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthPolicy {
    /// A valid access token is required.
    #[default]
    Required,
    /// Forwarded without a token; identity headers still stripped.
    Public,
    /// Forwarded either way; identity added when a valid token is present.
    Optional,
}

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, matched on whole segments.
    pub prefix: String,
    /// Only requests for this Host (port ignored).
    #[serde(default)]
    pub host: Option<String>,
    /// Name of the upstream cluster.
    pub upstream: String,
    /// Token policy.
    #[serde(default)]
    pub auth: AuthPolicy,
    /// Remove the prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Pass the client's `Authorization` header to the upstream (default: removed).
    #[serde(default)]
    pub forward_authorization: bool,
}

impl Config {
    /// Read a file, apply the environment, validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config::from_yaml(&text, path)?;
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.load_secret(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        cfg.fill_run_paths();
        Ok(cfg)
    }

    /// Put the upgrade socket and pid file in the private run directory unless configured.
    pub fn fill_run_paths(&mut self) {
        let dir = crate::run_dir::default_dir();
        if self.upgrade_sock.is_empty() {
            self.upgrade_sock = dir.join("upgrade.sock").to_string_lossy().into_owned();
        }
        if self.pid_file.is_empty() {
            self.pid_file = dir.join("authgate.pid").to_string_lossy().into_owned();
        }
    }

    /// Create the default run directory if it is used, and refuse directories
    /// others can write to; called before serving, not by `-t`.
    pub fn prepare_run_dir(&self) -> Result<(), ConfigError> {
        let dir = crate::run_dir::default_dir();
        for (key, file) in [
            ("upgrade_sock", &self.upgrade_sock),
            ("pid_file", &self.pid_file),
        ] {
            let file = Path::new(file);
            if file.parent() == Some(dir.as_path()) {
                crate::run_dir::create_private(&dir).map_err(|e| invalid(key, e))?;
            }
            crate::run_dir::check_private(key, file).map_err(|e| invalid(key, e))?;
        }
        Ok(())
    }

    /// Parse YAML text; an empty document is the defaults.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Apply `AUTHGATE_*` overrides; `get` reads one variable.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| invalid(key, format!("expected a whole number, got {v:?}")))
        }
        if let Some(v) = get("AUTHGATE_LISTEN") {
            self.listen = v.split(',').map(|s| s.trim().to_owned()).collect();
        }
        if let Some(v) = get("AUTHGATE_OPS_LISTEN") {
            self.ops_listen = v.trim().to_owned();
        }
        if let Some(v) = get("AUTHGATE_ACCESS_LOG") {
            self.access_log = flag(&v);
        }
        if let Some(v) = get("AUTHGATE_WORK_STEALING") {
            self.work_stealing = flag(&v);
        }
        if let Some(v) = get("AUTHGATE_VERIFY_CACHE_ENTRIES") {
            self.tokens.verify_cache_entries = num("AUTHGATE_VERIFY_CACHE_ENTRIES", &v)?;
        }
        if let Some(v) = get("AUTHGATE_CLIENT_READ_BUFFER_BYTES") {
            self.client_read_buffer_bytes = num("AUTHGATE_CLIENT_READ_BUFFER_BYTES", &v)?;
        }
        if let Some(v) = get("AUTHGATE_THREADS") {
            self.threads = num("AUTHGATE_THREADS", &v)?;
        }
        if let Some(v) = get("AUTHGATE_REDIS_URL") {
            self.redis.url = v;
        }
        if let Some(v) = get("AUTHGATE_REDIS_TLS_CA_FILE").filter(|v| !v.is_empty()) {
            self.redis.tls_ca_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("AUTHGATE_REDIS_KEY_PREFIX") {
            self.redis.key_prefix = v;
        }
        if let Some(v) = get("AUTHGATE_ACCESS_TTL") {
            self.tokens.access_ttl_seconds = num("AUTHGATE_ACCESS_TTL", &v)?;
        }
        if let Some(v) = get("AUTHGATE_REFRESH_TTL") {
            self.tokens.refresh_ttl_seconds = num("AUTHGATE_REFRESH_TTL", &v)?;
        }
        if let Some(v) = get("AUTHGATE_ARGON2_MEMORY_KIB") {
            self.passwords.memory_kib = num("AUTHGATE_ARGON2_MEMORY_KIB", &v)?;
        }
        if let Some(v) = get("AUTHGATE_ARGON2_ITERATIONS") {
            self.passwords.iterations = num("AUTHGATE_ARGON2_ITERATIONS", &v)?;
        }
        if let Some(v) = get("AUTHGATE_HASH_THREADS") {
            self.passwords.hash_threads = num("AUTHGATE_HASH_THREADS", &v)?;
        }
        if let Some(v) = get("AUTHGATE_HASH_NICE") {
            self.passwords.nice = num("AUTHGATE_HASH_NICE", &v)?;
        }
        if let Some(v) = get("AUTHGATE_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().map_err(|_| {
                        invalid("AUTHGATE_TRUSTED_PROXIES", format!("{s:?} is not a CIDR"))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = get("AUTHGATE_MAX_AUTH_BODY_BYTES") {
            self.limits.max_auth_body_bytes = num("AUTHGATE_MAX_AUTH_BODY_BYTES", &v)?;
        }
        if let Some(v) = get("AUTHGATE_UPGRADE_SOCK") {
            self.upgrade_sock = v;
        }
        if let Some(v) = get("AUTHGATE_PID_FILE") {
            self.pid_file = v;
        }
        if let Some(v) = get("AUTHGATE_LOG_LEVEL") {
            self.log_level = v;
        }
        if let Some(v) = get("AUTHGATE_UPSTREAM") {
            self.set_single_upstream(&v)?;
        }
        Ok(())
    }

    /// `AUTHGATE_UPSTREAM`: every non-auth request goes to one URL, unless the file has routes.
    fn set_single_upstream(&mut self, url: &str) -> Result<(), ConfigError> {
        const KEY: &str = "AUTHGATE_UPSTREAM";
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(invalid(
                KEY,
                format!("expected http://host:port or https://host:port, got {url:?}"),
            ));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(invalid(
                KEY,
                "expected a URL without a path, like http://127.0.0.1:9000",
            ));
        }
        let peer = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if tls { 443 } else { 80 })
        };
        let mut cluster =
            self.upstreams
                .get("default")
                .cloned()
                .unwrap_or_else(|| UpstreamConfig {
                    peers: vec![],
                    tls,
                    sni: None,
                    connect_timeout_ms: default_connect_timeout_ms(),
                    read_timeout_ms: default_read_timeout_ms(),
                    idle_timeout_ms: default_idle_timeout_ms(),
                    health_check: None,
                });
        cluster.peers = vec![peer];
        cluster.tls = tls;
        self.upstreams.insert("default".into(), cluster);
        if self.routes.is_empty() {
            self.routes.push(RouteConfig {
                prefix: "/".into(),
                host: None,
                upstream: "default".into(),
                auth: AuthPolicy::Required,
                strip_prefix: false,
                forward_authorization: false,
            });
        }
        Ok(())
    }

    /// The JWT secret: `AUTHGATE_JWT_SECRET`, else `AUTHGATE_JWT_SECRET_FILE`, else `tokens.jwt_secret_file`.
    pub fn load_secret(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        // An empty variable (as `${VAR:-}` in compose files yields) counts as unset.
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let (key, bytes) = if let Some(v) = get("AUTHGATE_JWT_SECRET") {
            ("AUTHGATE_JWT_SECRET", v.into_bytes())
        } else {
            let (key, file) = match get("AUTHGATE_JWT_SECRET_FILE") {
                Some(f) => ("AUTHGATE_JWT_SECRET_FILE", PathBuf::from(f)),
                None => match &self.tokens.jwt_secret_file {
                    Some(f) => ("tokens.jwt_secret_file", f.clone()),
                    None => {
                        return Err(invalid(
                            "AUTHGATE_JWT_SECRET",
                            "no JWT secret: set AUTHGATE_JWT_SECRET, AUTHGATE_JWT_SECRET_FILE or tokens.jwt_secret_file",
                        ))
                    }
                },
            };
            let mut bytes = std::fs::read(&file)
                .map_err(|e| invalid(key, format!("cannot read {}: {e}", file.display())))?;
            // A trailing newline from `echo > file` is not part of the key.
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            (key, bytes)
        };
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(invalid(
                key,
                format!(
                    "the JWT secret must be at least {MIN_SECRET_BYTES} bytes, it has {}",
                    bytes.len()
                ),
            ));
        }
        self.jwt_secret = Secret::new(bytes);
        Ok(())
    }

    /// Check everything that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Err(invalid("listen", "at least one address is needed"));
        }
        for (i, addr) in self.listen.iter().enumerate() {
            socket_addr(&format!("listen[{i}]"), addr)?;
        }
        if !self.ops_listen.is_empty() {
            socket_addr("ops_listen", &self.ops_listen)?;
        }
        if let Some(tls) = &self.tls {
            for (i, addr) in tls.listen.iter().enumerate() {
                socket_addr(&format!("tls.listen[{i}]"), addr)?;
            }
            readable("tls.cert_file", &tls.cert_file)?;
            readable("tls.key_file", &tls.key_file)?;
        }
        if let Some(f) = &self.upstream_ca_file {
            readable("upstream_ca_file", f)?;
        }
        if self.threads == 0 {
            return Err(invalid("threads", "must be at least 1"));
        }
        if !self.redis.url.starts_with("redis://") && !self.redis.url.starts_with("rediss://") {
            return Err(invalid("redis.url", "expected redis://host:port/db"));
        }
        if self.redis.timeout_ms == 0 {
            return Err(invalid("redis.timeout_ms", "must be above 0"));
        }
        let r = &self.redis;
        for (key, file) in [
            ("redis.tls_ca_file", &r.tls_ca_file),
            ("redis.tls_cert_file", &r.tls_cert_file),
            ("redis.tls_key_file", &r.tls_key_file),
        ] {
            if let Some(f) = file {
                if !r.url.starts_with("rediss://") {
                    return Err(invalid(key, "needs a rediss:// redis.url"));
                }
                readable(key, f)?;
            }
        }
        if r.tls_cert_file.is_some() != r.tls_key_file.is_some() {
            let missing = if r.tls_cert_file.is_none() {
                "redis.tls_cert_file"
            } else {
                "redis.tls_key_file"
            };
            return Err(invalid(
                missing,
                "redis.tls_cert_file and redis.tls_key_file go together",
            ));
        }
        if self.tokens.access_ttl_seconds == 0 {
            return Err(invalid("tokens.access_ttl_seconds", "must be above 0"));
        }
        if self.tokens.refresh_ttl_seconds == 0 {
            return Err(invalid("tokens.refresh_ttl_seconds", "must be above 0"));
        }
        let p = &self.passwords;
        if argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None).is_err() {
            return Err(invalid(
                "passwords",
                format!(
                    "argon2 rejects memory_kib={} iterations={} parallelism={} (memory must be >= 8 x parallelism, iterations >= 1)",
                    p.memory_kib, p.iterations, p.parallelism
                ),
            ));
        }
        if !(0..=19).contains(&p.nice) {
            return Err(invalid("passwords.nice", "must be between 0 and 19"));
        }
        if p.hash_threads == 0 {
            return Err(invalid("passwords.hash_threads", "must be at least 1"));
        }
        if self.limits.max_auth_body_bytes == 0 {
            return Err(invalid("limits.max_auth_body_bytes", "must be above 0"));
        }
        if self.limits.auth_body_timeout_ms == 0 {
            return Err(invalid("limits.auth_body_timeout_ms", "must be above 0"));
        }
        for (name, u) in &self.upstreams {
            if u.peers.is_empty() {
                return Err(invalid(
                    format!("upstreams.{name}.peers"),
                    "at least one peer is needed",
                ));
            }
            for (i, peer) in u.peers.iter().enumerate() {
                let ok = peer
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !ok {
                    return Err(invalid(
                        format!("upstreams.{name}.peers[{i}]"),
                        format!("expected host:port, got {peer:?}"),
                    ));
                }
            }
            if let Some(hc) = &u.health_check {
                if hc.interval_seconds == 0 {
                    return Err(invalid(
                        format!("upstreams.{name}.health_check.interval_seconds"),
                        "must be above 0",
                    ));
                }
                if !hc.path.starts_with('/') {
                    return Err(invalid(
                        format!("upstreams.{name}.health_check.path"),
                        "must start with /",
                    ));
                }
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !r.prefix.starts_with('/') {
                return Err(invalid(
                    format!("routes[{i}].prefix"),
                    format!("must start with /, got {:?}", r.prefix),
                ));
            }
            if let Some(h) = &r.host {
                crate::edge::host::route_host(h).map_err(|_| {
                    invalid(
                        format!("routes[{i}].host"),
                        format!("expected a host name without port, got {h:?}"),
                    )
                })?;
            }
            if !self.upstreams.contains_key(&r.upstream) {
                return Err(invalid(
                    format!("routes[{i}].upstream"),
                    format!("no upstream named {:?} under `upstreams`", r.upstream),
                ));
            }
        }
        for (i, h) in self.identity_headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(invalid(
                    format!("identity_headers[{i}]"),
                    format!("{h:?} is not a header name"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_yaml("listen: ['127.0.0.1:1']\nthreds: 2\n", Path::new("x.yaml"))
            .unwrap_err();
        assert!(err.to_string().contains("threds"), "{err}");
    }

    #[test]
    fn short_secret_is_refused() {
        let mut c = Config::default();
        let err = c
            .load_secret(env(&[("AUTHGATE_JWT_SECRET", "short")]))
            .unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains("short"), "secret leaked: {err}");
    }

    #[test]
    fn upstream_env_makes_a_catch_all_route() {
        let mut c = Config::default();
        c.apply_env(env(&[("AUTHGATE_UPSTREAM", "http://127.0.0.1:9000")]))
            .unwrap();
        assert_eq!(c.upstreams["default"].peers, vec!["127.0.0.1:9000"]);
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].prefix, "/");
        let mut c = Config::default();
        assert!(c
            .apply_env(env(&[("AUTHGATE_UPSTREAM", "127.0.0.1:9000")]))
            .is_err());
    }

    #[test]
    fn route_to_missing_upstream_is_named() {
        let mut c = Config::default();
        c.routes.push(RouteConfig {
            prefix: "/api".into(),
            host: None,
            upstream: "nope".into(),
            auth: AuthPolicy::Required,
            strip_prefix: false,
            forward_authorization: false,
        });
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("routes[0].upstream"), "{err}");
    }
}
