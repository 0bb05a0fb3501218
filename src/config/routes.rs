//! The `routes` section: path prefixes (optionally per host) mapped to upstream clusters, each with an auth policy.

use super::{invalid, ConfigError, UpstreamConfig};
use crate::auth::roles::{RoleError, Roles};
use serde::Deserialize;
use std::collections::BTreeMap;

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

/// One route. `prefix` and `upstream` are required; every other key
/// defaults to its type's default (no host, `auth: required`, `false`).
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
    /// A valid token must hold at least one of these roles (none: any valid
    /// token). Only with `auth: required`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The only methods the route takes (none: every method); others are 405.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The `Origin`s allowed to open WebSockets here (none: any origin);
    /// others are 403 `origin_not_allowed` (cross-site WebSocket hijacking).
    #[serde(default)]
    pub websocket_origins: Vec<String>,
    /// Seconds a WebSocket (closed with 1008), a response without a
    /// Content-Length or a gRPC call (ended cleanly, gRPC with status 4) may
    /// stay open (none: unlimited).
    #[serde(default)]
    pub max_stream_seconds: Option<u64>,
    /// Seconds a WebSocket may carry no frame either way before the gateway
    /// closes it with 1008 (none: only the cluster's read timeout).
    #[serde(default)]
    pub websocket_idle_seconds: Option<u64>,
}

impl RouteConfig {
    /// A route for every path to `upstream`, with the defaults.
    pub fn catch_all(upstream: &str) -> Self {
        RouteConfig {
            prefix: "/".into(),
            host: None,
            upstream: upstream.into(),
            auth: AuthPolicy::default(),
            strip_prefix: false,
            forward_authorization: false,
            roles: Vec::new(),
            methods: Vec::new(),
            websocket_origins: Vec::new(),
            max_stream_seconds: None,
            websocket_idle_seconds: None,
        }
    }

    /// The `roles` key as a set (validated by [`RouteConfig::validate`]).
    pub(crate) fn role_set(&self) -> Result<Roles, RoleError> {
        Roles::from_names(&self.roles)
    }

    /// The `methods` key parsed, uppercase, without duplicates, in the order given.
    pub(crate) fn method_list(&self) -> Result<Vec<http::Method>, String> {
        let mut out: Vec<http::Method> = Vec::new();
        for m in &self.methods {
            // Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET, so
            // a lowercase entry is a typo, not a method to allow.
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
                return Err(format!("{m:?} is not an HTTP method (uppercase, like GET)"));
            }
            let parsed = http::Method::from_bytes(m.as_bytes())
                .map_err(|_| format!("{m:?} is not an HTTP method"))?;
            if !out.contains(&parsed) {
                out.push(parsed);
            }
        }
        Ok(out)
    }

    /// Check route number `i` against the configured clusters.
    pub(super) fn validate(
        &self,
        i: usize,
        upstreams: &BTreeMap<String, UpstreamConfig>,
    ) -> Result<(), ConfigError> {
        if !self.prefix.starts_with('/') {
            return Err(invalid(
                format!("routes[{i}].prefix"),
                format!("must start with /, got {:?}", self.prefix),
            ));
        }
        if self.prefix.starts_with("/.authgate/") || self.prefix == "/.authgate" {
            return Err(invalid(
                format!("routes[{i}].prefix"),
                "/.authgate/ is reserved for the gateway's own pages",
            ));
        }
        prefix_can_match(&self.prefix).map_err(|why| {
            invalid(
                format!("routes[{i}].prefix"),
                format!("{:?} can never match a request: {why}", self.prefix),
            )
        })?;
        if let Some(h) = &self.host {
            crate::edge::host::route_host(h).map_err(|_| {
                invalid(
                    format!("routes[{i}].host"),
                    format!("expected a host name without port, got {h:?}"),
                )
            })?;
        }
        if let Err(e) = self.role_set() {
            return Err(invalid(format!("routes[{i}].roles"), e.to_string()));
        }
        if !self.roles.is_empty() && self.auth != AuthPolicy::Required {
            return Err(invalid(
                format!("routes[{i}].roles"),
                "roles need `auth: required` (a request without a token has no roles to check)",
            ));
        }
        if let Err(e) = self.method_list() {
            return Err(invalid(format!("routes[{i}].methods"), e));
        }
        for (j, o) in self.websocket_origins.iter().enumerate() {
            if !is_origin(o) {
                return Err(invalid(
                    format!("routes[{i}].websocket_origins[{j}]"),
                    format!("{o:?} is not an origin (scheme://host[:port], nothing after it)"),
                ));
            }
        }
        for (key, value) in [
            ("max_stream_seconds", self.max_stream_seconds),
            ("websocket_idle_seconds", self.websocket_idle_seconds),
        ] {
            if value == Some(0) {
                return Err(invalid(
                    format!("routes[{i}].{key}"),
                    "must be above 0 (leave it out for no limit)",
                ));
            }
        }
        if !upstreams.contains_key(&self.upstream) {
            return Err(invalid(
                format!("routes[{i}].upstream"),
                format!("no upstream named {:?} under `upstreams`", self.upstream),
            ));
        }
        Ok(())
    }
}

/// Requests are routed on their canonical path (`edge::path`), so a prefix
/// matches only if it is canonical itself: `/%61dmin`, `/a//b` or `/a/../b`
/// would never match, and requests meant for them fall to a shorter route,
/// possibly with a weaker policy. Letter case is not a difference: routes
/// match ignoring ASCII case, and escapes are upper-cased by the canonical form.
fn prefix_can_match(prefix: &str) -> Result<(), String> {
    if let Some(c) = prefix
        .bytes()
        .find(|c| !c.is_ascii_graphic() || matches!(c, b'?' | b'#'))
    {
        return Err(format!("a request path never contains {:?}", char::from(c)));
    }
    match crate::edge::path::canonical(prefix) {
        Ok(c) if c.eq_ignore_ascii_case(prefix) => Ok(()),
        Ok(c) => Err(format!(
            "requests are matched on their canonical path, and this one's is {c:?}"
        )),
        Err(e) => Err(format!("a request with it is refused ({})", e.detail())),
    }
}

/// Whether `o` is an origin as browsers send it: `http(s)://host[:port]`, no
/// path, query or trailing slash (which would never equal an `Origin` header).
fn is_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn only_canonical_prefixes_load() {
        for ok in [
            "/",
            "/api",
            "/api/",
            "/API/Admin",
            "/caf%C3%A9",
            "/caf%c3%a9",
            "/a.b/~x",
        ] {
            assert_eq!(super::prefix_can_match(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/%61dmin",
            "/a//b",
            "//a",
            "/a/./b",
            "/a/../b",
            "/a/..",
            "/a/.",
            "/a%2Fb",
            "/a;b",
            "/a\\b",
            "/a%zz",
            "/a%252e",
            "/a?x",
            "/a#x",
            "/a b",
            "/caf\u{e9}",
            "/a%2e%2e/b",
        ] {
            assert!(super::prefix_can_match(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_to_missing_upstream_is_named() {
        let mut c = Config::default();
        c.routes.push(super::RouteConfig {
            prefix: "/api".into(),
            ..super::RouteConfig::catch_all("nope")
        });
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("routes[0].upstream"), "{err}");
    }

    fn route_error(route: super::RouteConfig) -> String {
        let mut c = Config::default();
        c.upstreams.insert(
            "app".into(),
            yaml_serde::from_str("peers: ['127.0.0.1:1']").unwrap(),
        );
        c.routes.push(route);
        c.validate()
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn roles_and_methods_are_checked_at_load() {
        let base = super::RouteConfig::catch_all("app");
        assert_eq!(route_error(base.clone()), "");
        let bad_role = super::RouteConfig {
            roles: vec!["Admin".into()],
            ..base.clone()
        };
        assert!(route_error(bad_role).contains("routes[0].roles"));
        let public_with_roles = super::RouteConfig {
            roles: vec!["admin".into()],
            auth: super::AuthPolicy::Public,
            ..base.clone()
        };
        assert!(route_error(public_with_roles).contains("auth: required"));
        let lower = super::RouteConfig {
            methods: vec!["get".into()],
            ..base
        };
        assert!(route_error(lower).contains("routes[0].methods"));
    }
}
