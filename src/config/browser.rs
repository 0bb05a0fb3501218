//! `public_url` and the `browser` section: the hosted login page and cookie sessions (off when absent).

use super::{invalid, ConfigError};
use serde::Deserialize;

/// Browser mode: a login page, one session cookie, CSRF and navigation rules (`docs/browser.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserConfig {
    /// Off: no page, no cookie; the JSON API only, exactly as without the section.
    pub enabled: bool,
    /// The session cookie's name; `__Host-` prefixed (host-only, `Secure`, `Path=/`).
    pub cookie_name: String,
    /// `GET /register` shows a registration page, linked from the login page
    /// (the rules of `POST /register`, `registration.enabled` included, still apply).
    pub allow_registration: bool,
    /// How long after a cookie's refresh token was rotated a request still
    /// holding it is served (tabs racing one refresh); past it, a replay ends
    /// the session as refresh-token reuse does. Unset: twice the access
    /// token lifetime, at least `tokens.reuse_grace_seconds`.
    pub refresh_grace_seconds: Option<u64>,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            enabled: false,
            cookie_name: "__Host-authgate".into(),
            allow_registration: false,
            refresh_grace_seconds: None,
        }
    }
}

/// `public_url`, read: where browsers reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `https://host[:port]` (or `http://` for a local development host), as
    /// browsers serialise it in `Origin`: lowercase, no default port, no path.
    pub origin: String,
}

/// Hosts a browser treats as a secure context over plain HTTP: the only ones
/// where an `http://` `public_url` can carry a `Secure` cookie at all.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl PublicUrl {
    /// Parse `public_url`: `https://host[:port]`, a path of at most `/`, no
    /// userinfo, query or fragment; `http://` only for a local host.
    pub fn parse(text: &str) -> Result<PublicUrl, ConfigError> {
        let bad = |why: &str| invalid("public_url", format!("{text:?}: {why}"));
        let uri: http::Uri = text.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| bad("no scheme"))?;
        let auth = uri.authority().ok_or_else(|| bad("no host"))?;
        if auth.as_str().contains('@') {
            return Err(bad("userinfo is not allowed"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(
                "a path or query is not allowed: the gateway owns the whole origin",
            ));
        }
        let host = auth.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let default_port =
            match scheme {
                "https" => 443,
                "http" if LOCAL_HOSTS.contains(&host.as_str()) => 80,
                "http" => return Err(bad(
                    "plain http is only for localhost and 127.0.0.1: a session cookie is Secure",
                )),
                _ => return Err(bad("the scheme must be https")),
            };
        let origin = match auth.port_u16() {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        Ok(PublicUrl { origin })
    }
}

impl BrowserConfig {
    /// Browser mode needs `public_url` (redirects, the origin rule); the
    /// cookie name must keep its `__Host-` guarantees.
    pub(super) fn validate(&self, public_url: Option<&str>) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        match public_url {
            None => {
                return Err(invalid(
                    "public_url",
                    "required when browser.enabled is true (the login page's origin)",
                ))
            }
            Some(url) => {
                PublicUrl::parse(url)?;
            }
        }
        let rest = self.cookie_name.strip_prefix("__Host-").ok_or_else(|| {
            invalid(
                "browser.cookie_name",
                "must start with __Host- (host-only, Secure, Path=/)",
            )
        })?;
        if rest.is_empty()
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(
                "browser.cookie_name",
                "after __Host-, letters, digits, '-', '_' or '.' only",
            ));
        }
        if self.refresh_grace_seconds == Some(0) {
            return Err(invalid("browser.refresh_grace_seconds", "must be above 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_an_origin() {
        for (text, origin) in [
            ("https://auth.example", "https://auth.example"),
            ("https://Auth.Example:443/", "https://auth.example"),
            ("https://auth.example:8443", "https://auth.example:8443"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost", "http://localhost"),
        ] {
            assert_eq!(PublicUrl::parse(text).unwrap().origin, origin, "{text}");
        }
        for bad in [
            "http://auth.example",
            "ftp://auth.example",
            "https://auth.example/app",
            "https://u@auth.example",
            "https://auth.example/?a=1",
            "auth.example",
            "/login",
        ] {
            let err = PublicUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("public_url"), "{bad}: {err}");
        }
    }

    #[test]
    fn browser_mode_needs_public_url_and_a_host_cookie() {
        let on = BrowserConfig {
            enabled: true,
            ..BrowserConfig::default()
        };
        assert!(on
            .validate(None)
            .unwrap_err()
            .to_string()
            .contains("public_url"));
        on.validate(Some("https://auth.example")).unwrap();
        for name in ["authgate", "__Secure-a", "__Host-", "__Host-a;b"] {
            let c = BrowserConfig {
                cookie_name: name.into(),
                ..on.clone()
            };
            let err = c
                .validate(Some("https://a.example"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("browser.cookie_name"), "{name}: {err}");
        }
        BrowserConfig::default().validate(None).unwrap();
    }
}
