//! Browser mode (`browser` in the config): the hosted login page, the session cookie, and the rules a browser's requests obey.
//!
//! A cookie is a normal session (listed by `GET /sessions`, ended by logout,
//! revoked within a second everywhere). The parts: `cookie.rs` (the wire),
//! `session.rs` (verify and refresh), `csrf.rs`, `request_kind.rs`
//! (navigation or fetch), `return_to.rs` (open redirects), `page.rs`.

pub(crate) mod cookie;
pub(crate) mod csrf;
pub(crate) mod page;
pub(crate) mod request_kind;
pub(crate) mod return_to;
pub(crate) mod session;

use crate::auth::roles::Roles;
use crate::config::{BrowserConfig, ConfigError, CorsConfig, PublicUrl};
use crate::edge::origin::OriginList;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Most (user, generation) → roles entries kept before the cache starts over.
const ROLES_CACHE_ENTRIES: usize = 65_536;

/// Browser mode, ready to use.
pub(crate) struct Browser {
    /// `public_url` as an origin.
    pub(crate) origin: String,
    /// Its host, named on the login page.
    site: String,
    /// The session cookie's name.
    pub(crate) cookie_name: String,
    /// Its `Domain`, when not host-only.
    cookie_domain: Option<String>,
    /// Origins of `return_hosts`: where an absolute `return_to` may lead,
    /// and whose pages may send cookie-authenticated unsafe requests.
    return_origins: HashSet<String>,
    /// The registration page is served (and linked from the login page).
    pub(crate) registration: bool,
    /// How long a rotated cookie token still leads to its successor.
    grace_ms: u64,
    /// `cors` origins allowed credentials: they pass the CSRF rule too.
    trusted: Option<OriginList>,
    /// The roles of each (user, generation) seen: a cookie carries none, and
    /// a role change counts the generation up, so an entry never goes stale.
    roles: Mutex<HashMap<(u64, u64), Roles>>,
}

impl Browser {
    /// Browser mode from the config; `None` when it is off.
    pub(crate) fn new(
        cfg: &BrowserConfig,
        public_url: Option<&str>,
        cors: Option<&CorsConfig>,
        access_ttl_seconds: u64,
        reuse_grace_seconds: u64,
        registration_open: bool,
    ) -> Result<Option<Browser>, ConfigError> {
        if !cfg.enabled {
            return Ok(None);
        }
        let url = PublicUrl::parse(public_url.unwrap_or_default())?;
        let site = url
            .origin
            .split_once("://")
            .map_or(url.origin.as_str(), |(_, h)| h)
            .to_owned();
        let trusted = match cors.filter(|c| c.allow_credentials) {
            Some(c) => Some(OriginList::parse(&c.allowed_origins).map_err(|e| {
                crate::config::ConfigError::Invalid {
                    key: "cors.allowed_origins".into(),
                    reason: format!("{:?} is not an origin", e.0),
                }
            })?),
            None => None,
        };
        let grace = cfg
            .refresh_grace_seconds
            .unwrap_or((2 * access_ttl_seconds).max(reuse_grace_seconds));
        Ok(Some(Browser {
            origin: url.origin,
            site,
            cookie_name: cfg.cookie_name(),
            cookie_domain: cfg.cookie_domain.clone(),
            return_origins: cfg
                .return_hosts
                .iter()
                .filter_map(|h| crate::edge::origin::normalise(&format!("{}://{h}", url.scheme)))
                .collect(),
            registration: cfg.allow_registration && registration_open,
            grace_ms: grace.saturating_mul(1000),
            trusted,
            roles: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether a request with these headers comes from the gateway's own
    /// pages, a credentialed CORS origin, or an app of `return_hosts`.
    pub(crate) fn same_origin(&self, headers: &http::HeaderMap) -> bool {
        if csrf::same_origin(headers, &self.origin, self.trusted.as_ref()) {
            return true;
        }
        match crate::edge::origin::RequestOrigin::of(headers) {
            crate::edge::origin::RequestOrigin::Origin(o) => self.return_origins.contains(&o),
            _ => false,
        }
    }

    /// `Set-Cookie` for the session cookie holding `value`.
    pub(crate) fn set_cookie(&self, value: &str, max_age: u64) -> String {
        cookie::set(
            &self.cookie_name,
            value,
            max_age,
            self.cookie_domain.as_deref(),
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub(crate) fn clear_cookie(&self) -> String {
        cookie::clear(&self.cookie_name, self.cookie_domain.as_deref())
    }

    /// `value` as a `return_to` the pages carry: a safe path, or an absolute
    /// URL on a `return_hosts` origin; anything else is `/`.
    pub(crate) fn checked_return(&self, value: &str) -> String {
        match return_to::on_origins(value, &self.return_origins) {
            Some(url) => url,
            None => return_to::sanitize(value).to_owned(),
        }
    }

    /// Whether a request with these headers comes from the gateway's own
    /// origin (the CORS origins not included): what a form post must show.
    pub(crate) fn own_origin(&self, headers: &http::HeaderMap) -> bool {
        csrf::same_origin(headers, &self.origin, None)
    }

    /// The login page, with nothing to return to (after a logout).
    pub(crate) fn login_page_url(&self) -> String {
        format!("{}/login", self.origin)
    }

    /// The login page's URL for a browser that wanted `target` (path and query).
    pub(crate) fn login_url(&self, target: &str) -> String {
        let target = return_to::sanitize(target);
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", target)
            .finish();
        format!("{}/login?{query}", self.origin)
    }

    /// The absolute URL a login sends the browser back to.
    pub(crate) fn return_url(&self, return_to: &str) -> String {
        let checked = self.checked_return(return_to);
        if checked.starts_with('/') {
            format!("{}{checked}", self.origin)
        } else {
            checked
        }
    }

    /// The login or registration page.
    pub(crate) fn page(
        &self,
        kind: page::Kind,
        error: Option<&str>,
        return_to: &str,
        email: &str,
    ) -> String {
        let return_to = self.checked_return(return_to);
        let view = page::View {
            site: &self.site,
            error,
            return_to: &return_to,
            email,
            registration: self.registration,
        };
        page::render(kind, &view)
    }

    fn cached_roles(&self, user: u64, gen: u64) -> Option<Roles> {
        let map = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(user, gen)).cloned()
    }

    fn remember_roles(&self, user: u64, gen: u64, roles: &Roles) {
        let mut map = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= ROLES_CACHE_ENTRIES {
            map.clear();
        }
        map.insert((user, gen), roles.clone());
    }
}

/// `return_to` from a query string (the first one; a repeat is ignored here
/// and the value sanitized anyway).
pub(crate) fn return_to_of_query(query: Option<&str>) -> String {
    query
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "return_to")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser() -> Browser {
        let cfg = BrowserConfig {
            enabled: true,
            ..BrowserConfig::default()
        };
        Browser::new(&cfg, Some("https://auth.example"), None, 30, 5, true)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn login_urls_carry_only_safe_targets() {
        let b = browser();
        assert_eq!(
            b.login_url("/app/?x=1"),
            "https://auth.example/login?return_to=%2Fapp%2F%3Fx%3D1"
        );
        assert_eq!(
            b.login_url("//evil.example"),
            "https://auth.example/login?return_to=%2F"
        );
        assert_eq!(
            b.return_url("https://evil.example"),
            "https://auth.example/"
        );
        assert_eq!(return_to_of_query(Some("return_to=%2Fa%3Fb%3D1")), "/a?b=1");
        assert_eq!(return_to_of_query(None), "/");
    }

    #[test]
    fn the_grace_time_defaults_to_two_access_lifetimes() {
        assert_eq!(browser().grace_ms, 60_000);
    }
}
