//! `AUTHGATE_*` environment variables: one table row per variable, naming the config key it overrides.

use super::de::ConfigStr;
use super::secret::{SECRET_FILE_VAR, SECRET_VAR};
use super::{invalid, Config, ConfigError, HostPort, RouteConfig};
use std::net::SocketAddr;

/// Sets a key from a variable's value, or says what is wrong with the value.
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One environment variable the gateway reads.
pub struct EnvVar {
    /// The variable.
    pub name: &'static str,
    /// The config key it overrides.
    pub key: &'static str,
    /// Applied by `Config::apply_env`; `None` for the JWT secret's variables,
    /// which `Config::load_secret` reads.
    setter: Option<Setter>,
}

/// A row whose value parses straight into one key.
macro_rules! var {
    ($name:literal, $($key:ident).+, $parse:expr) => {
        EnvVar {
            name: $name,
            key: stringify!($($key).+),
            setter: Some(|c: &mut Config, v: &str| -> Result<(), String> {
                c.$($key).+ = $parse(v)?;
                Ok(())
            }),
        }
    };
}

/// A row with a setter of its own, or none.
const fn row(name: &'static str, key: &'static str, setter: Option<Setter>) -> EnvVar {
    EnvVar { name, key, setter }
}

/// Every variable, in the order `apply_env` applies them; docs/configuration.md lists the same set.
#[rustfmt::skip]
pub const VARIABLES: &[EnvVar] = &[
    var!("AUTHGATE_LISTEN",                   listen,                      addresses),
    var!("AUTHGATE_OPS_LISTEN",               ops_listen,                  ops_address),
    var!("AUTHGATE_ACCESS_LOG",               access_log,                  flag),
    var!("AUTHGATE_WORK_STEALING",            work_stealing,               flag),
    var!("AUTHGATE_VERIFY_CACHE_ENTRIES",     tokens.verify_cache_entries, number),
    var!("AUTHGATE_CLIENT_READ_BUFFER_BYTES", client_read_buffer_bytes,    number),
    var!("AUTHGATE_THREADS",                  threads,                     number),
    var!("AUTHGATE_REDIS_URL",                redis.url,                   text),
    var!("AUTHGATE_REDIS_CLUSTER_NODES",      redis.cluster_nodes,         host_ports),
    row("AUTHGATE_REDIS_TLS_CA_FILE",         "redis.tls_ca_file",         Some(redis_ca_file)),
    var!("AUTHGATE_REDIS_KEY_PREFIX",         redis.key_prefix,            text),
    var!("AUTHGATE_ACCESS_TTL",               tokens.access_ttl_seconds,   number),
    var!("AUTHGATE_REFRESH_TTL",              tokens.refresh_ttl_seconds,  number),
    var!("AUTHGATE_TOKEN_ISSUER",             tokens.issuer,               some_text),
    var!("AUTHGATE_ARGON2_MEMORY_KIB",        passwords.memory_kib,        number),
    var!("AUTHGATE_ARGON2_ITERATIONS",        passwords.iterations,        number),
    var!("AUTHGATE_ARGON2_ALLOW_INSECURE",    passwords.allow_insecure_parameters, flag),
    var!("AUTHGATE_HASH_THREADS",             passwords.hash_threads,      number),
    var!("AUTHGATE_HASH_NICE",                passwords.nice,              number),
    var!("AUTHGATE_HASH_MAX_QUEUE",           passwords.max_queue,         some_number),
    var!("AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT", passwords.max_queue_per_client, some_number),
    var!("AUTHGATE_TRUSTED_PROXIES",          trusted_proxies,             cidrs),
    var!("AUTHGATE_MAX_AUTH_BODY_BYTES",      limits.max_auth_body_bytes,  number),
    var!("AUTHGATE_UPGRADE_SOCK",             upgrade_sock,                text),
    var!("AUTHGATE_PID_FILE",                 pid_file,                    text),
    var!("AUTHGATE_LOG_LEVEL",                log_level,                   text),
    row("AUTHGATE_ADMIN_TOKEN_FILE",          "admin.token_file",          Some(admin_token_file)),
    row("AUTHGATE_UPSTREAM",                  "upstreams.default",         Some(single_upstream)),
    row(SECRET_VAR,                           "jwt_secret",                None),
    row(SECRET_FILE_VAR,                      "tokens.jwt_secret_file",    None),
];

impl Config {
    /// Apply `AUTHGATE_*` overrides; `get` reads one variable.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for var in VARIABLES {
            let Some(set) = var.setter else { continue };
            if let Some(value) = get(var.name) {
                set(self, &value).map_err(|reason| invalid(var.name, reason))?;
            }
        }
        Ok(())
    }
}

fn text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

/// Text, or empty for the default.
fn some_text(v: &str) -> Result<Option<String>, String> {
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

/// An on/off value: `1`, `true`, `on` or `yes` turn it on, anything else off.
fn flag(v: &str) -> Result<bool, String> {
    Ok(matches!(v.trim(), "1" | "true" | "on" | "yes"))
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("expected a whole number, got {v:?}"))
}

fn some_number<T: std::str::FromStr>(v: &str) -> Result<Option<T>, String> {
    number(v).map(Some)
}

/// `ip:port`, or empty for none.
fn ops_address(v: &str) -> Result<Option<SocketAddr>, String> {
    Option::<SocketAddr>::parse_config(v.trim())
}

/// A file; empty leaves the file's setting alone.
fn redis_ca_file(cfg: &mut Config, v: &str) -> Result<(), String> {
    if !v.is_empty() {
        cfg.redis.tls_ca_file = Some(v.into());
    }
    Ok(())
}

fn admin_token_file(cfg: &mut Config, v: &str) -> Result<(), String> {
    if !v.is_empty() {
        cfg.admin.token_file = Some(v.into());
    }
    Ok(())
}

/// Comma-separated `ip:port` addresses.
fn addresses(v: &str) -> Result<Vec<SocketAddr>, String> {
    v.split(',')
        .map(|s| SocketAddr::parse_config(s.trim()))
        .collect()
}

/// Comma-separated `host:port` seed nodes; empty for none (a single Redis).
fn host_ports(v: &str) -> Result<Vec<HostPort>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// Comma-separated CIDRs; empty entries are skipped.
fn cidrs(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("{s:?} is not a CIDR")))
        .collect()
}

/// `AUTHGATE_UPSTREAM`: every non-auth request goes to one URL, unless the file has routes.
fn single_upstream(cfg: &mut Config, url: &str) -> Result<(), String> {
    let not_a_url = || format!("expected http://host:port or https://host:port, got {url:?}");
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err(not_a_url()),
    };
    let authority = rest.trim_end_matches('/');
    if authority.starts_with(':') {
        return Err(not_a_url());
    }
    if authority.is_empty() || authority.contains('/') {
        return Err("expected a URL without a path, like http://127.0.0.1:9000".into());
    }
    let peer = match authority.parse::<HostPort>() {
        Ok(peer) => peer,
        Err(_) => HostPort::new(authority, if tls { 443 } else { 80 }),
    };
    let cluster = cfg.upstreams.entry("default".into()).or_default();
    cluster.peers = vec![peer];
    cluster.tls = tls;
    if cfg.routes.is_empty() {
        cfg.routes.push(RouteConfig::catch_all("default"));
    }
    Ok(())
}

/// A stand-in for the process environment.
#[cfg(test)]
pub(super) fn from_pairs<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `AUTHGATE_[A-Z0-9_]+` in `text`.
    fn names(text: &str) -> BTreeSet<&str> {
        text.match_indices("AUTHGATE_")
            .map(|(i, _)| {
                let rest = &text[i..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect()
    }

    fn table() -> BTreeSet<&'static str> {
        VARIABLES.iter().map(|v| v.name).collect()
    }

    #[test]
    fn the_configuration_page_lists_exactly_the_table() {
        let page = include_str!("../../docs/configuration.md");
        let start = page
            .find("\n## Environment variables\n")
            .expect("an Environment variables section");
        let section = &page[start + 1..];
        let end = section[1..].find("\n## ").map_or(section.len(), |e| e + 1);
        let listed = names(&section[..end]);
        let table = table();
        let missing: Vec<_> = table.difference(&listed).collect();
        let unknown: Vec<_> = listed.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not list {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "docs/configuration.md lists {unknown:?}, which do not exist"
        );
    }

    #[test]
    fn the_sample_config_names_only_real_variables() {
        let sample = names(include_str!("../../conf/gateway.yaml"));
        assert!(sample.is_subset(&table()), "{sample:?}");
    }

    #[test]
    fn each_row_is_one_variable_and_one_key() {
        assert_eq!(table().len(), VARIABLES.len());
        for v in VARIABLES {
            assert!(
                v.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'),
                "{}: {:?}",
                v.name,
                v.key
            );
        }
    }

    #[test]
    fn values_are_parsed_and_bad_ones_named() {
        let mut c = Config::default();
        c.apply_env(from_pairs(&[
            ("AUTHGATE_LISTEN", "127.0.0.1:1, [::1]:2"),
            ("AUTHGATE_OPS_LISTEN", " "),
            ("AUTHGATE_HASH_NICE", "19"),
            ("AUTHGATE_HASH_MAX_QUEUE", "3"),
            ("AUTHGATE_TRUSTED_PROXIES", "10.0.0.0/8,,"),
            ("AUTHGATE_ACCESS_LOG", "off"),
            ("AUTHGATE_TOKEN_ISSUER", "https://auth.example"),
        ]))
        .unwrap();
        assert_eq!(c.tokens.issuer.as_deref(), Some("https://auth.example"));
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.ops_listen, None);
        assert_eq!(c.passwords.nice, 19);
        assert_eq!(c.passwords.max_queue(), 3);
        let d = Config::default().passwords;
        assert_eq!(d.max_queue(), d.hash_threads * 8);
        assert_eq!(c.trusted_proxies.len(), 1);
        assert!(!c.access_log);
        for (name, value) in [
            ("AUTHGATE_THREADS", "lots"),
            ("AUTHGATE_LISTEN", "localhost"),
            ("AUTHGATE_TRUSTED_PROXIES", "10.0.0.0/33"),
        ] {
            let err = Config::default()
                .apply_env(from_pairs(&[(name, value)]))
                .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn upstream_env_makes_a_catch_all_route() {
        let mut c = Config::default();
        c.apply_env(from_pairs(&[(
            "AUTHGATE_UPSTREAM",
            "http://127.0.0.1:9000",
        )]))
        .unwrap();
        assert_eq!(
            c.upstreams["default"].peers,
            ["127.0.0.1:9000".parse().unwrap()]
        );
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].prefix, "/");
        let mut c = Config::default();
        c.apply_env(from_pairs(&[("AUTHGATE_UPSTREAM", "https://example.com/")]))
            .unwrap();
        assert_eq!(
            c.upstreams["default"].peers[0].to_string(),
            "example.com:443"
        );
        let mut c = Config::default();
        assert!(c
            .apply_env(from_pairs(&[("AUTHGATE_UPSTREAM", "127.0.0.1:9000")]))
            .is_err());
    }
}
