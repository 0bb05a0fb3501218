//! The route table: segment-aware path prefixes, optionally per Host, longest match first.

use super::upstreams::Cluster;
use crate::auth::roles::Roles;
use crate::config::AuthPolicy;
use crate::metrics::RequestMetrics;
use std::sync::Arc;

/// One route, resolved to its cluster.
pub(crate) struct Route {
    /// Prefix without trailing slash (`""` for the root).
    prefix: String,
    /// Lowercased Host, if the route is host-specific.
    host: Option<String>,
    /// Token policy.
    pub auth: AuthPolicy,
    /// Remove the prefix before forwarding.
    strip_prefix: bool,
    /// Where requests go.
    pub cluster: Arc<Cluster>,
    /// Label for logs and metrics: the configured prefix.
    pub label: String,
    /// Pass the client's Authorization header upstream.
    pub forward_authorization: bool,
    /// A token must hold one of these (empty: any valid token).
    pub roles: Roles,
    /// The `Origin`s allowed to open WebSockets (empty: any).
    pub websocket_origins: Vec<String>,
    /// How long a WebSocket, streamed response or gRPC call may stay open (`max_stream_seconds`; none: unlimited).
    pub max_stream: Option<std::time::Duration>,
    /// How long a WebSocket may stay silent both ways (`websocket_idle_seconds`; none: no limit).
    pub websocket_idle: Option<std::time::Duration>,
    /// The methods taken (empty: all), and the `Allow` value naming them.
    methods: Vec<http::Method>,
    allow: String,
    /// Request counters and latency of this label.
    pub(crate) metrics: RequestMetrics,
}

impl Route {
    /// A route for `prefix` (must start with `/`).
    pub(crate) fn new(
        prefix: &str,
        host: Option<&str>,
        auth: AuthPolicy,
        strip_prefix: bool,
        cluster: Arc<Cluster>,
    ) -> Self {
        Route {
            prefix: prefix.trim_end_matches('/').to_owned(),
            // Validated at config load; canonical like a request's host.
            host: host.map(|h| {
                crate::edge::host::route_host(h).unwrap_or_else(|_| h.to_ascii_lowercase())
            }),
            auth,
            strip_prefix,
            cluster,
            label: prefix.to_owned(),
            forward_authorization: false,
            roles: Roles::NONE,
            websocket_origins: Vec::new(),
            max_stream: None,
            websocket_idle: None,
            methods: Vec::new(),
            allow: String::new(),
            metrics: RequestMetrics::new(prefix),
        }
    }

    /// Only tokens holding one of `roles` pass (none: any valid token).
    pub(crate) fn with_roles(mut self, roles: Roles) -> Self {
        self.roles = roles;
        self
    }

    /// Only these `Origin`s may open WebSockets (none: any).
    pub(crate) fn with_websocket_origins(mut self, origins: Vec<String>) -> Self {
        self.websocket_origins = origins;
        self
    }

    /// Upgraded streams end after `limit` (none: unlimited).
    pub(crate) fn with_max_stream(mut self, limit: Option<std::time::Duration>) -> Self {
        self.max_stream = limit;
        self
    }

    /// WebSockets silent both ways for `limit` are closed (none: no limit).
    pub(crate) fn with_websocket_idle(mut self, limit: Option<std::time::Duration>) -> Self {
        self.websocket_idle = limit;
        self
    }

    /// Only `methods` are taken (none: every method).
    pub(crate) fn with_methods(mut self, methods: Vec<http::Method>) -> Self {
        self.allow = methods
            .iter()
            .map(http::Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        self.methods = methods;
        self
    }

    /// `Err(allow)` when the route does not take `method`.
    pub(crate) fn check_method(&self, method: &http::Method) -> Result<(), &str> {
        if self.methods.is_empty() || self.methods.contains(method) {
            Ok(())
        } else {
            Err(&self.allow)
        }
    }

    /// The `Allow` value of a route limited by `methods` (none: every method).
    pub(crate) fn allow(&self) -> Option<&str> {
        (!self.methods.is_empty()).then_some(self.allow.as_str())
    }

    /// Whether the upstream sees the client's Authorization header.
    pub(crate) fn with_forward_authorization(mut self, forward: bool) -> Self {
        self.forward_authorization = forward;
        self
    }

    /// The prefix, without a trailing slash (`""` for the root).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The rest of `path` after this route's prefix, if it matches on whole
    /// segments. ASCII case is ignored: Express, ASP.NET and IIS serve `/ADMIN`
    /// as `/admin`, so a case-sensitive match would let `/ADMIN` past the
    /// policy of `/admin`.
    fn rest<'p>(&self, path: &'p str) -> Option<&'p str> {
        let head = path.get(..self.prefix.len())?;
        let rest = &path[self.prefix.len()..];
        (head.eq_ignore_ascii_case(&self.prefix) && (rest.is_empty() || rest.starts_with('/')))
            .then_some(rest)
    }

    fn matches_path(&self, path: &str) -> bool {
        self.rest(path).is_some()
    }

    /// The path to send upstream, when this route rewrites it.
    pub(crate) fn rewrite(&self, path: &str) -> Option<String> {
        if !self.strip_prefix || self.prefix.is_empty() {
            return None;
        }
        let rest = self.rest(path)?;
        Some(if rest.is_empty() {
            "/".to_owned()
        } else {
            rest.to_owned()
        })
    }
}

/// All routes, ordered so the first match is the best one.
pub(crate) struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Order: longer prefix first; at equal length, host-specific first.
    pub(crate) fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| b.host.is_some().cmp(&a.host.is_some()))
        });
        RouteTable {
            routes: routes.into_iter().map(Arc::new).collect(),
        }
    }

    /// The best route for a request.
    pub(crate) fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        self.routes
            .iter()
            .find(|r| r.matches_path(path) && r.host.as_deref().is_none_or(|h| host == Some(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let c = Arc::new(Cluster::for_tests());
        RouteTable::new(vec![
            Route::new("/", None, AuthPolicy::Required, false, c.clone()),
            Route::new("/api", None, AuthPolicy::Public, true, c.clone()),
            Route::new("/api/admin/", None, AuthPolicy::Required, false, c.clone()),
            Route::new(
                "/api",
                Some("Internal.example"),
                AuthPolicy::Optional,
                false,
                c,
            ),
        ])
    }

    #[test]
    fn segment_aware_longest_match() {
        let t = table();
        assert_eq!(t.find(None, "/api").unwrap().label, "/api");
        assert_eq!(t.find(None, "/api/x").unwrap().label, "/api");
        assert_eq!(t.find(None, "/apix").unwrap().label, "/");
        assert_eq!(t.find(None, "/API/Admin/x").unwrap().label, "/api/admin/");
        assert_eq!(t.find(None, "/api/admin").unwrap().label, "/api/admin/");
        assert_eq!(
            t.find(None, "/api/admin/users").unwrap().label,
            "/api/admin/"
        );
        assert_eq!(
            t.find(Some("internal.example"), "/api/x").unwrap().auth,
            AuthPolicy::Optional
        );
        assert_eq!(
            t.find(Some("other.example"), "/api/x").unwrap().auth,
            AuthPolicy::Public
        );
    }

    #[test]
    fn no_catch_all_means_no_match() {
        let c = Arc::new(Cluster::for_tests());
        let t = RouteTable::new(vec![Route::new(
            "/api",
            None,
            AuthPolicy::Required,
            false,
            c,
        )]);
        assert!(t.find(None, "/other").is_none());
    }

    #[test]
    fn prefix_stripping() {
        let c = Arc::new(Cluster::for_tests());
        let r = Route::new("/api/", None, AuthPolicy::Required, true, c);
        assert_eq!(r.rewrite("/api/users").as_deref(), Some("/users"));
        assert_eq!(r.rewrite("/api").as_deref(), Some("/"));
    }
}
