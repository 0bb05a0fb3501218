//! Typed gateway configuration: one YAML file, overridden by `AUTHGATE_*` environment variables, validated up front.
//!
//! Each section of the file has its own module holding its types, defaults and
//! checks; values with a syntax of their own (addresses, header names, peers)
//! are typed when the file is read, so what passes `Config::load` needs no
//! second look at start-up.

mod admin;
mod browser;
mod cors;
mod de;
mod edge;
mod engine;
pub mod env;
mod http2;
mod limits;
mod passwords;
mod redis;
mod registration;
mod routes;
mod secret;
mod server;
mod throttle;
mod tokens;
mod upstreams;

pub use admin::AdminConfig;
pub use browser::{BrowserConfig, PublicUrl};
pub use cors::CorsConfig;
pub use engine::Http1Engine;
pub use http2::Http2Config;
pub use limits::LimitsConfig;
pub use passwords::PasswordConfig;
pub use redis::RedisConfig;
pub use registration::RegistrationConfig;
pub use routes::{AuthPolicy, RouteConfig};
pub use secret::{Secret, MIN_SECRET_BYTES};
pub use server::{Alpn, TlsConfig};
pub use throttle::{Rate, ThrottleConfig};
pub use tokens::{KeyAlgorithm, KeyConfig, TokenConfig, TokenShape};
pub use upstreams::{
    HealthCheckConfig, HealthCheckKind, HostPort, UpstreamConfig, UpstreamProtocol,
};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// The YAML does not match the schema (unknown key, wrong type, bad address...).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file at fault.
        path: PathBuf,
        /// The YAML reader's message, which names the key and line.
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

/// `key` holds a count or duration that must not be 0.
fn above_zero<N: PartialEq + Default>(key: &str, value: N) -> Result<(), ConfigError> {
    if value == N::default() {
        return Err(invalid(key, "must be above 0"));
    }
    Ok(())
}

/// `key` names a file the gateway must be able to open.
fn readable(key: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|_| invalid(key, format!("cannot read {}", path.display())))
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Addresses (ip:port) the proxy listens on for plain HTTP.
    #[serde(deserialize_with = "de::list")]
    pub listen: Vec<SocketAddr>,
    /// Plain-HTTP listener for /healthz, /readyz and /metrics; `''` in the file disables it.
    #[serde(deserialize_with = "de::one")]
    pub ops_listen: Option<SocketAddr>,
    /// HTTPS listeners, when set.
    pub tls: Option<TlsConfig>,
    /// HTTP/2 limits (HTTPS listeners offering `h2`, and `h2c`).
    pub http2: Http2Config,
    /// Cleartext HTTP/2 with prior knowledge on the `listen` addresses, beside
    /// HTTP/1 (`proxy/h1/h2c.rs` tells them apart): for listeners inside a mesh.
    pub h2c: bool,
    /// CORS for pages of other origins (`docs/cors.md`); absent: no CORS at all.
    pub cors: Option<CorsConfig>,
    /// Where browsers reach the gateway (`https://host[:port]`): the login
    /// page's origin, the target of its redirects, the origin CSRF checks.
    pub public_url: Option<String>,
    /// The hosted login page and cookie sessions (`docs/browser.md`).
    pub browser: BrowserConfig,
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
    /// The HTTP/1 server (`engine.rs`): `fast` (parked idle connections and
    /// the body-less fast path), `parked`, or `pingora`. Unset: the older
    /// keys below, else `fast`. Read it through [`Config::http1_engine`].
    pub http1_engine: Option<Http1Engine>,
    /// Deprecated by `http1_engine`: idle connections parked in `proxy/h1/mod.rs`.
    pub idle_parking: Option<bool>,
    /// Deprecated by `http1_engine`: the body-less fast path.
    pub fast_path: Option<bool>,
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
    /// Token lifetimes, signing keys, claims.
    pub tokens: TokenConfig,
    /// Password hashing.
    pub passwords: PasswordConfig,
    /// Size caps.
    pub limits: LimitsConfig,
    /// Failed-login, registration and password-change throttles.
    pub throttle: ThrottleConfig,
    /// Whether `POST /register` is open, and its id floor.
    pub registration: RegistrationConfig,
    /// The admin API: its token and address.
    pub admin: AdminConfig,
    /// Named upstream clusters.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes to upstream clusters; longest matching prefix wins.
    pub routes: Vec<RouteConfig>,
    /// Headers a client may never set itself; removed in every spelling before forwarding.
    #[serde(deserialize_with = "de::list")]
    pub identity_headers: Vec<http::HeaderName>,
    /// Request headers whose name contains `_`: `drop` (default), `reject` (400) or `allow`.
    pub underscore_headers: crate::edge::UnderscoreHeaders,
    /// CIDRs of proxies in front of the gateway whose X-Forwarded-* headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The JWT secret; only ever from the environment or `tokens.jwt_secret_file`.
    /// Absent when `tokens.keys` needs none.
    #[serde(skip)]
    pub jwt_secret: Option<Secret>,
    /// The file this configuration was read from, re-read on SIGHUP for the signing keys.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            ops_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            tls: None,
            http2: Http2Config::default(),
            h2c: false,
            cors: None,
            public_url: None,
            browser: BrowserConfig::default(),
            access_log: true,
            upstream_ca_file: None,
            threads: 2,
            work_stealing: true,
            client_read_buffer_bytes: 1024,
            keepalive_timeout_seconds: 60,
            http1_engine: None,
            idle_parking: None,
            fast_path: None,
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
            throttle: ThrottleConfig::default(),
            registration: RegistrationConfig::default(),
            admin: AdminConfig::default(),
            upstreams: BTreeMap::new(),
            routes: Vec::new(),
            identity_headers: vec![http::HeaderName::from_static("x-user-id")],
            underscore_headers: crate::edge::UnderscoreHeaders::Drop,
            trusted_proxies: Vec::new(),
            jwt_secret: None,
            source: None,
        }
    }
}

impl Config {
    /// Read a file, apply the environment, validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut cfg = Config::read(path)?;
        cfg.load_secret(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        cfg.fill_run_paths();
        cfg.source = Some(path.to_owned());
        Ok(cfg)
    }

    /// Read a file and apply the environment; no secret is read and nothing
    /// validated (what `import-users`, which talks to Redis only, starts from).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config::from_yaml(&text, path)?;
        cfg.apply_env(|k| std::env::var(k).ok())?;
        Ok(cfg)
    }

    /// Parse YAML text; an empty document is the defaults.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The HTTP/1 engine the file names, and the deprecation warning for the
    /// older keys (`engine::resolve`).
    pub fn http1_engine(&self) -> Result<(Http1Engine, Option<String>), ConfigError> {
        engine::resolve(self.http1_engine, self.idle_parking, self.fast_path)
    }

    /// Check everything the types cannot, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        server::validate(self)?;
        let (engine, _) = self.http1_engine()?;
        if self.h2c && !engine.parks() {
            // Pingora's own loop reads 24 bytes before telling h2c from
            // HTTP/1, which holds a shorter HTTP/1.0 request forever.
            return Err(invalid(
                "h2c",
                "needs http1_engine fast or parked, whose loop tells HTTP/2 from HTTP/1",
            ));
        }
        self.http2.validate()?;
        if let Some(cors) = &self.cors {
            cors.validate()?;
        }
        if let Some(url) = &self.public_url {
            PublicUrl::parse(url)?;
        }
        self.browser.validate(self.public_url.as_deref())?;
        self.redis.validate()?;
        self.tokens.validate()?;
        self.passwords.validate()?;
        self.limits.validate()?;
        self.throttle.validate()?;
        self.registration.validate()?;
        for (name, upstream) in &self.upstreams {
            upstream.validate(name)?;
        }
        for (i, route) in self.routes.iter().enumerate() {
            route.validate(i, &self.upstreams)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_yaml("listen: ['127.0.0.1:1']\nthreds: 2\n", Path::new("x.yaml"))
            .unwrap_err();
        assert!(err.to_string().contains("threds"), "{err}");
    }

    #[test]
    fn typed_values_name_their_index() {
        for (yaml, key) in [
            ("listen: ['localhost']\n", "listen[0]: expected ip:port"),
            (
                "tls: { listen: ['127.0.0.1:1', 'x'], cert_file: c, key_file: k }\n",
                "tls.listen[1]",
            ),
            (
                "upstreams:\n  a: { peers: ['nohost'] }\n",
                "upstreams.a.peers[0]",
            ),
            (
                "identity_headers: ['X-Ok', 'not ok']\n",
                "identity_headers[1]",
            ),
            ("ops_listen: nowhere\n", "ops_listen"),
        ] {
            let err = Config::from_yaml(yaml, Path::new("x.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{yaml:?}: {err}");
        }
        let c = Config::from_yaml("ops_listen: ''\n", Path::new("x.yaml")).unwrap();
        assert_eq!(c.ops_listen, None);
    }

    #[test]
    fn tls_alpn_offers_h2_and_http1_unless_told() {
        let tls = |alpn: &str| {
            let yaml = format!("tls: {{ listen: ['127.0.0.1:1'], cert_file: Cargo.toml, key_file: Cargo.toml{alpn} }}\n");
            Config::from_yaml(&yaml, Path::new("x.yaml"))
        };
        use pingora_core::protocols::ALPN;
        let alpn_of = |alpn: &str| tls(alpn).unwrap().tls.unwrap().pingora_alpn();
        assert_eq!(alpn_of(""), ALPN::H2H1);
        assert_eq!(alpn_of(", alpn: ['http/1.1']"), ALPN::H1);
        assert_eq!(alpn_of(", alpn: [h2]"), ALPN::H2);
        assert_eq!(alpn_of(", alpn: ['http/1.1', h2]"), ALPN::H2H1);
        let err = tls(", alpn: [h3]").unwrap_err().to_string();
        assert!(err.contains("tls.alpn"), "{err}");
        for bad in [", alpn: []", ", alpn: [h2, h2]"] {
            let err = tls(bad).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains("tls.alpn"), "{bad}: {err}");
        }
        let err = Config::from_yaml(
            "http2: { max_concurrent_streams: 0 }\n",
            Path::new("x.yaml"),
        )
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("http2.max_concurrent_streams"), "{err}");
    }

    #[test]
    fn h2c_is_refused_beside_pingoras_own_http1_loop() {
        let check = |yaml: &str| {
            Config::from_yaml(yaml, Path::new("x.yaml"))
                .unwrap()
                .validate()
                .map_err(|e| e.to_string())
        };
        for ok in [
            "h2c: true\n",
            "h2c: true\nhttp1_engine: parked\n",
            "h2c: false\nhttp1_engine: pingora\n",
        ] {
            check(ok).unwrap();
        }
        for bad in [
            "h2c: true\nhttp1_engine: pingora\n",
            "h2c: true\nidle_parking: false\n",
        ] {
            let err = check(bad).unwrap_err();
            assert!(
                err.contains("h2c") && err.contains("parked"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        Config::default().validate().unwrap();
        let c = Config::from_yaml("threads: 3\n", Path::new("x.yaml")).unwrap();
        assert_eq!(c.listen, Config::default().listen);
        assert_eq!(c.identity_headers, ["x-user-id"]);
    }
}
