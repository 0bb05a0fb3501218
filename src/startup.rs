//! Assembling a runnable Pingora server from a validated `Config`.

use crate::api::AuthApi;
use crate::auth::access::{now_unix, AccessTokens};
use crate::auth::keys::reload::KeyReloader;
use crate::auth::keys::{KeyError, KeyRing};
use crate::auth::password::Passwords;
use crate::auth::revocations::Revocations;
use crate::config::Config;
use crate::edge::{EdgeRules, TrustedProxies};
use crate::ops::OpsApp;
use crate::proxy::cors::Cors;
use crate::proxy::routes::{Route, RouteTable};
use crate::proxy::upstreams::{Cluster, ClusterError, HealthCheckTask};
use crate::proxy::{FastPath, Gateway, IdleParking, Parking, Proxy};
use crate::store::revocation_feed::RevocationFeed;
use crate::store::sessions::SessionPolicy;
use crate::store::{Redis, RedisSetupError, Store};
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::ListenerConfig;
use pingora_core::protocols::l4::stream::L4BufferSettings;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Why the gateway cannot be built from a validated config: what only
/// building finds out (a name that does not resolve, a file that is not PEM).
/// Each message starts with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `redis.*` cannot make a client.
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
    /// argon2 refused `passwords.*`.
    #[error("passwords: {0}")]
    Passwords(String),
    /// An upstream cluster cannot be built.
    #[error("upstreams.{cluster}{}: {source}", .source.key())]
    Upstream {
        /// The cluster's name.
        cluster: String,
        /// Why.
        source: ClusterError,
    },
    /// A route names no configured cluster (`Config::validate` refuses this first).
    #[error("routes[{route}].upstream: no upstream named {upstream:?}")]
    UnknownUpstream {
        /// The route's index.
        route: usize,
        /// The name it gave.
        upstream: String,
    },
    /// A route's `roles` or `methods` (`Config::validate` refuses these first).
    #[error("routes[{route}]: {reason}")]
    RouteRule {
        /// The route's index.
        route: usize,
        /// What is wrong.
        reason: String,
    },
    /// A section the runtime form refuses (today `cors`; `Config::validate`
    /// refuses the same first, so only a config built in code gets here).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The admin token file cannot be used.
    #[error(transparent)]
    AdminToken(#[from] crate::admin::http::AdminTokenError),
    /// A signing key cannot be used (file missing, not PEM, open to others...).
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Pingora cannot set up a TLS listener (certificate or key unusable).
    #[error("tls: {0}")]
    Tls(#[source] Box<pingora_error::Error>),
}

/// Everything the proxy service needs, built and checked, not yet bound to sockets.
pub(crate) struct Parts {
    /// The ProxyHttp implementation.
    pub(crate) gateway: Gateway,
    /// Health-check tasks to run beside it.
    pub(crate) health_checks: Vec<HealthCheckTask>,
    /// The ops endpoints.
    pub(crate) ops: OpsApp,
    /// The admin API on `admin.listen`, when it has an address of its own.
    pub(crate) admin: Option<crate::ops::AdminOnly>,
    /// Keeps the revocation set current from Redis.
    pub(crate) revocation_feed: RevocationFeed,
    /// Installs a new key ring on SIGHUP.
    pub(crate) key_reloader: KeyReloader,
}

/// What `authgate -t` runs: build every part as a start would (Redis client,
/// keys, routes, TLS) and drop it, binding nothing.
pub fn check(cfg: &Config) -> Result<(), BuildError> {
    build_parts(cfg).map(drop)
}

/// Build the gateway's parts (resolving peers, compiling routes) without starting anything.
pub(crate) fn build_parts(cfg: &Config) -> Result<Parts, BuildError> {
    // `rediss://` builds a rustls ClientConfig, which panics ("no process-level
    // CryptoProvider") unless one provider can be picked. Today only ring is compiled
    // in, but Pingora installs it only when it builds a TLS listener or connector, so
    // install it here too: a build that also gains aws-lc-rs would otherwise panic on
    // the first Redis connection. Installing again (or after Pingora) is a no-op.
    pingora_core::tls::install_default_crypto_provider();
    let redis = Redis::new(&cfg.redis)?;
    if let Some(warning) = cfg.passwords.insecure_warning() {
        log::warn!("{warning}");
    }
    let passwords = Arc::new(Passwords::new(&cfg.passwords).map_err(BuildError::Passwords)?);
    let store = Arc::new(Store::new(redis, &cfg.redis.key_prefix));
    let t = &cfg.tokens;
    let ring = KeyRing::from_config(cfg)?;
    log::info!("signing keys: {}", ring.describe());
    let revocations = Arc::new(Revocations::new(t.access_ttl_seconds, now_unix()));
    let access = AccessTokens::new(ring, t.access_ttl_seconds, revocations.clone());
    let key_reloader = KeyReloader::new(cfg.source.clone(), access.key_switch());
    // The feed gets connections of its own: they live on its runtime, not the proxy's.
    let revocation_feed = RevocationFeed::new(
        Store::new(Redis::new(&cfg.redis)?, &cfg.redis.key_prefix),
        revocations.clone(),
    );
    let api = Arc::new(AuthApi {
        store: store.clone(),
        passwords: passwords.clone(),
        access,
        sessions: SessionPolicy {
            idle_ttl_ms: t.refresh_ttl_seconds * 1000,
            max_lifetime_ms: (t.session_max_seconds > 0).then(|| t.session_max_seconds * 1000),
            reuse_grace_ms: t.reuse_grace_seconds * 1000,
            max_per_user: t.max_sessions_per_user,
        },
        throttle: cfg.throttle.clone(),
        registration: cfg.registration,
    });

    let Routing {
        routes,
        edge,
        clusters,
        health_checks,
    } = routing(cfg)?;
    let gateway = Gateway {
        api,
        routes,
        edge,
        keepalive_seconds: cfg.keepalive_timeout_seconds,
        max_auth_body: cfg.limits.max_auth_body_bytes,
        auth_body_timeout: Duration::from_millis(cfg.limits.auth_body_timeout_ms),
        access_log: cfg.access_log,
        cors: cfg.cors.as_ref().map(Cors::new).transpose()?,
        websocket_caps: crate::proxy::websocket_caps::WebSocketCaps::new(
            cfg.limits.max_websockets_per_user,
            cfg.limits.max_websockets_per_ip,
        ),
        browser: crate::browser::Browser::new(
            &cfg.browser,
            cfg.public_url.as_deref(),
            cfg.cors.as_ref(),
            t.access_ttl_seconds,
            t.reuse_grace_seconds,
            cfg.registration.enabled,
        )?
        .map(Arc::new),
    };
    if let Some(browser) = &gateway.browser {
        // A cookie over the size a browser keeps (or this gateway reads back)
        // would make every sign-in loop: refused here, by its longest case.
        let longest = browser.longest_cookie(&gateway.api).map_err(|e| {
            crate::config::ConfigError::Invalid {
                key: "browser".into(),
                reason: format!("cannot sign a session cookie: {e}"),
            }
        })?;
        if longest > crate::browser::cookie::MAX_COOKIE_VALUE {
            return Err(crate::config::ConfigError::Invalid {
                key: "browser".into(),
                reason: format!(
                    "a session cookie would be {longest} bytes, over {}: shorten tokens.issuer, tokens.audience or the key id",
                    crate::browser::cookie::MAX_COOKIE_VALUE
                ),
            }
            .into());
        }
    }
    let admin = match &cfg.admin.token_file {
        None => None,
        Some(file) => {
            let token = crate::admin::http::read_token(file)?;
            let accounts = crate::admin::Accounts::new(
                store.clone(),
                passwords,
                Some(revocations.clone()),
                t.access_ttl_seconds,
                cfg.registration.first_id,
            );
            Some(Arc::new(crate::admin::http::AdminApi::new(
                accounts,
                token,
                gateway.edge.clone(),
                cfg.limits.max_auth_body_bytes,
                Duration::from_millis(cfg.limits.auth_body_timeout_ms),
            )))
        }
    };
    // With an address of its own, the admin API is not also on the ops listener.
    let ops_admin = admin.clone().filter(|_| cfg.admin.listen.is_none());
    let ops = OpsApp::new(
        store,
        clusters.values().cloned().collect(),
        revocations,
        ops_admin,
    );
    let admin = admin
        .filter(|_| cfg.admin.listen.is_some())
        .map(crate::ops::AdminOnly);
    Ok(Parts {
        gateway,
        health_checks,
        ops,
        admin,
        revocation_feed,
        key_reloader,
    })
}

/// What routing needs, built from the config: the route table, the edge rules,
/// and the clusters with their (not yet started) health checks.
pub(crate) struct Routing {
    pub(crate) routes: RouteTable,
    pub(crate) edge: EdgeRules,
    pub(crate) clusters: BTreeMap<String, Arc<Cluster>>,
    pub(crate) health_checks: Vec<HealthCheckTask>,
}

/// The routes, edge rules and clusters of `cfg`, as the gateway and
/// `authgate routes explain` both use them.
pub(crate) fn routing(cfg: &Config) -> Result<Routing, BuildError> {
    let mut clusters = BTreeMap::new();
    let mut health_checks = Vec::new();
    for (name, ucfg) in &cfg.upstreams {
        let (cluster, task) =
            Cluster::from_config(name, ucfg).map_err(|source| BuildError::Upstream {
                cluster: name.clone(),
                source,
            })?;
        clusters.insert(name.clone(), Arc::new(cluster));
        health_checks.extend(task);
    }
    let mut routes = Vec::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let cluster = clusters
            .get(&r.upstream)
            .ok_or_else(|| BuildError::UnknownUpstream {
                route: i,
                upstream: r.upstream.clone(),
            })?;
        routes.push(
            Route::new(
                &r.prefix,
                r.host.as_deref(),
                r.auth,
                r.strip_prefix,
                cluster.clone(),
            )
            .with_forward_authorization(r.forward_authorization)
            .with_roles(r.role_set().map_err(|e| BuildError::RouteRule {
                route: i,
                reason: e.to_string(),
            })?)
            .with_methods(
                r.method_list()
                    .map_err(|reason| BuildError::RouteRule { route: i, reason })?,
            )
            .with_websocket_origins(r.websocket_origins.clone())
            .with_max_stream(r.max_stream_seconds.map(Duration::from_secs))
            .with_websocket_idle(r.websocket_idle_seconds.map(Duration::from_secs)),
        );
    }
    let mut identity_headers = cfg.identity_headers.clone();
    for always in ["x-user-id", "x-user-roles"] {
        let name = http::HeaderName::from_static(always);
        if !identity_headers.contains(&name) {
            identity_headers.push(name);
        }
    }
    let edge = EdgeRules {
        identity_headers,
        underscore_headers: cfg.underscore_headers,
        trusted_proxies: TrustedProxies::new(cfg.trusted_proxies.clone()),
        route_by_host: cfg.routes.iter().any(|r| r.host.is_some()),
    };
    Ok(Routing {
        routes: RouteTable::new(routes),
        edge,
        clusters,
        health_checks,
    })
}

/// Pingora's own settings, derived from ours so operators keep one file.
pub fn server_conf(cfg: &Config) -> ServerConf {
    ServerConf {
        threads: cfg.threads,
        work_stealing: cfg.work_stealing,
        grace_period_seconds: Some(cfg.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(cfg.graceful_shutdown_timeout_seconds),
        upgrade_sock: cfg.upgrade_sock.clone(),
        pid_file: cfg.pid_file.clone(),
        ca_file: cfg
            .upstream_ca_file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        ..ServerConf::default()
    }
}

/// The HTTP/2 SETTINGS each client connection is held to: Pingora's bounded
/// defaults with `http2.*` applied.
fn h2_options(
    cfg: &crate::config::Http2Config,
) -> pingora_core::protocols::http::v2::server::H2Options {
    let mut options = pingora_core::protocols::http::v2::server::default_h2_options();
    options
        .max_concurrent_streams(cfg.max_concurrent_streams)
        .max_header_list_size(cfg.max_header_list_bytes);
    options
}

/// A bootstrapped server with every service added, ready for `run_forever`.
pub fn build_server(cfg: &Config, opt: Opt) -> Result<Server, BuildError> {
    let parts = build_parts(cfg)?;
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(cfg));
    let phases = server.watch_execution_phase();
    server.bootstrap();
    let gateway = Arc::new(parts.gateway);
    // The fast path speaks HTTP/1.1 to upstreams, and which cluster a request
    // goes to is known only after it has taken the request: with any cluster
    // on HTTP/2 every request goes through pingora-proxy.
    let h1_upstreams = cfg
        .upstreams
        .values()
        .all(|u| u.protocol == crate::config::UpstreamProtocol::Http1);
    // Validated at load, so no error is left here.
    let (engine, deprecated) = cfg.http1_engine().unwrap_or_default();
    if let Some(warning) = deprecated {
        log::warn!("{warning}");
    }
    if engine.fast_path() && !h1_upstreams {
        log::info!("fast path off: a cluster speaks HTTP/2 (protocol: h2 or auto)");
    }
    let fast_path = (engine.fast_path() && h1_upstreams)
        .then(|| FastPath::new(Arc::clone(&gateway), &server.configuration));
    let mut proxy = pingora_proxy::http_proxy(&server.configuration, Proxy(gateway));
    proxy.h2_options = Some(h2_options(&cfg.http2));
    let idle_timeout = Duration::from_secs(cfg.keepalive_timeout_seconds);
    // Pingora keeps an idle HTTP/2 connection forever unless told; the same
    // keepalive_timeout_seconds as for HTTP/1 (the rest is Pingora's default).
    let mut server_options = pingora_core::apps::HttpServerOptions::default();
    server_options.h2_idle_timeout = Some(idle_timeout);
    server_options.h2c = cfg.h2c;
    proxy.server_options = Some(server_options);
    let mut proxy = pingora_core::services::listening::Service::new(
        "authgate".into(),
        IdleParking::new(
            proxy,
            Parking {
                idle_timeout,
                enabled: engine.parks(),
                fast_path,
                limits: crate::proxy::conn_limit::ConnectionLimits::new(
                    cfg.limits.max_connections,
                    cfg.limits.max_connections_per_ip,
                ),
                head_timeout: Duration::from_millis(cfg.limits.request_head_timeout_ms),
                min_send_rate: Some(cfg.limits.min_send_bytes_per_second).filter(|r| *r > 0),
                h2c: cfg.h2c,
            },
        ),
    );
    let buffers = L4BufferSettings::default().read(cfg.client_read_buffer_bytes);
    for addr in &cfg.listen {
        proxy.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(buffers));
    }
    if let Some(tls) = &cfg.tls {
        for addr in &tls.listen {
            let mut settings = TlsSettings::intermediate(
                &tls.cert_file.to_string_lossy(),
                &tls.key_file.to_string_lossy(),
            )
            .map_err(BuildError::Tls)?;
            settings.set_alpn(tls.pingora_alpn());
            proxy.add_tls_with_settings(&addr.to_string(), None, settings);
        }
    }
    server.add_service(proxy);
    if let Some(addr) = cfg.ops_listen {
        let mut ops =
            pingora_core::services::listening::Service::new("authgate ops".into(), parts.ops);
        ops.add_tcp(&addr.to_string());
        server.add_service(ops);
    }
    if let (Some(addr), Some(admin)) = (cfg.admin.listen, parts.admin) {
        let mut svc =
            pingora_core::services::listening::Service::new("authgate admin".into(), admin);
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    for hc in parts.health_checks {
        server.add_service(hc);
    }
    server.add_service(pingora_core::services::background::background_service(
        "revocation feed",
        parts.revocation_feed,
    ));
    server.add_service(pingora_core::services::background::background_service(
        "key reloader",
        parts.key_reloader,
    ));
    server.add_service(pingora_core::services::background::background_service(
        "shutdown watcher",
        crate::shutdown::Watcher::new(phases, Duration::from_secs(cfg.grace_period_seconds)),
    ));
    Ok(server)
}

/// Run `server` until it stops (SIGINT at once; SIGTERM and SIGQUIT once no
/// connection is left, or after the grace period), then leave by the one exit
/// path (`shutdown::exit_path`).
pub fn run(server: Server) {
    server.run(pingora_core::server::RunArgs::default());
    crate::shutdown::exit_path();
}
