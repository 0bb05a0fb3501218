//! Assembling a runnable Pingora server from a validated `Config`.

use crate::api::AuthApi;
use crate::auth::access::AccessTokens;
use crate::auth::password::Passwords;
use crate::config::Config;
use crate::edge::{EdgeRules, TrustedProxies};
use crate::ops::OpsApp;
use crate::proxy::routes::{Route, RouteTable};
use crate::proxy::upstreams::{Cluster, HealthCheckTask};
use crate::proxy::{Gateway, IdleParking};
use crate::store::{Redis, Store};
use pingora_core::listeners::ListenerConfig;
use pingora_core::protocols::l4::stream::L4BufferSettings;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Why the gateway cannot be built from a config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A part rejected its settings.
    #[error("{0}")]
    Invalid(String),
}

/// Everything the proxy service needs, built and checked, not yet bound to sockets.
pub struct Parts {
    /// The ProxyHttp implementation.
    pub gateway: Gateway,
    /// Health-check tasks to run beside it.
    pub health_checks: Vec<HealthCheckTask>,
    /// The ops endpoints.
    pub ops: OpsApp,
}

/// Build the gateway's parts (resolving peers, compiling routes) without starting anything.
pub fn build_parts(cfg: &Config) -> Result<Parts, BuildError> {
    // `rediss://` builds a rustls ClientConfig, which panics ("no process-level
    // CryptoProvider") unless one provider can be picked. Today only ring is compiled
    // in, but Pingora installs it only when it builds a TLS listener or connector, so
    // install it here too: a build that also gains aws-lc-rs would otherwise panic on
    // the first Redis connection. Installing again (or after Pingora) is a no-op.
    pingora_core::tls::install_default_crypto_provider();
    let redis = Redis::new(&cfg.redis).map_err(BuildError::Invalid)?;
    let passwords = Passwords::new(&cfg.passwords)
        .map_err(|e| BuildError::Invalid(format!("passwords: {e}")))?;
    let store = Arc::new(Store::new(redis, &cfg.redis.key_prefix));
    let api = Arc::new(AuthApi {
        store: store.clone(),
        passwords,
        access: AccessTokens::new(
            &cfg.jwt_secret,
            cfg.tokens.access_ttl_seconds,
            cfg.tokens.verify_cache_entries,
        ),
        refresh_ttl_seconds: cfg.tokens.refresh_ttl_seconds,
    });

    let mut clusters = BTreeMap::new();
    let mut health_checks = Vec::new();
    for (name, ucfg) in &cfg.upstreams {
        let (cluster, task) = Cluster::from_config(name, ucfg).map_err(BuildError::Invalid)?;
        clusters.insert(name.clone(), Arc::new(cluster));
        health_checks.extend(task);
    }
    let mut routes = Vec::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let cluster = clusters.get(&r.upstream).ok_or_else(|| {
            BuildError::Invalid(format!(
                "routes[{i}].upstream: no upstream named {:?}",
                r.upstream
            ))
        })?;
        routes.push(
            Route::new(
                &r.prefix,
                r.host.as_deref(),
                r.auth,
                r.strip_prefix,
                cluster.clone(),
            )
            .with_forward_authorization(r.forward_authorization),
        );
    }
    let identity_headers = cfg
        .identity_headers
        .iter()
        .map(|h| http::HeaderName::from_bytes(h.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::Invalid(format!("identity_headers: {e}")))?;
    let mut identity_headers = identity_headers;
    let user_id = http::HeaderName::from_static("x-user-id");
    if !identity_headers.contains(&user_id) {
        identity_headers.push(user_id);
    }
    let edge = EdgeRules {
        identity_headers,
        underscore_headers: cfg.underscore_headers,
        trusted_proxies: TrustedProxies::new(cfg.trusted_proxies.clone()),
    };
    let gateway = Gateway {
        api,
        routes: RouteTable::new(routes),
        edge,
        keepalive_seconds: cfg.keepalive_timeout_seconds,
        max_auth_body: cfg.limits.max_auth_body_bytes,
        auth_body_timeout: Duration::from_millis(cfg.limits.auth_body_timeout_ms),
        access_log: cfg.access_log,
    };
    let ops = OpsApp::new(store, clusters.values().cloned().collect());
    Ok(Parts {
        gateway,
        health_checks,
        ops,
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

/// A bootstrapped server with every service added, ready for `run_forever`.
pub fn build_server(cfg: &Config, opt: Opt) -> Result<Server, BuildError> {
    let parts = build_parts(cfg)?;
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(cfg));
    crate::shutdown::watch(server.watch_execution_phase());
    server.bootstrap();
    let proxy = pingora_proxy::http_proxy(&server.configuration, parts.gateway);
    let idle_timeout = Duration::from_secs(cfg.keepalive_timeout_seconds);
    let mut proxy = pingora_core::services::listening::Service::new(
        "authgate".into(),
        IdleParking::new(proxy, idle_timeout),
    );
    let buffers = L4BufferSettings::default().read(cfg.client_read_buffer_bytes);
    for addr in &cfg.listen {
        proxy.add_listener(ListenerConfig::tcp(addr.as_str()).l4_buffer(buffers));
    }
    if let Some(tls) = &cfg.tls {
        for addr in &tls.listen {
            proxy
                .add_tls(
                    addr,
                    &tls.cert_file.to_string_lossy(),
                    &tls.key_file.to_string_lossy(),
                )
                .map_err(|e| BuildError::Invalid(format!("tls: {e}")))?;
        }
    }
    server.add_service(proxy);
    if !cfg.ops_listen.is_empty() {
        let mut ops =
            pingora_core::services::listening::Service::new("authgate ops".into(), parts.ops);
        ops.add_tcp(&cfg.ops_listen);
        server.add_service(ops);
    }
    for hc in parts.health_checks {
        server.add_service(hc);
    }
    Ok(server)
}
