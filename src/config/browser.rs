//! `public_url` and the `browser` section: the hosted login page and cookie sessions (off when absent).

use super::{invalid, ConfigError};
use serde::Deserialize;

/// Browser mode: a login page, one session cookie, CSRF and navigation rules (`docs/browser.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserConfig {
    /// Off: no page, no cookie; the JSON API only, exactly as without the section.
    pub enabled: bool,
    /// The session cookie's name: `__Host-` prefixed (host-only, `Secure`,
    /// `Path=/`), or `__Secure-` with `cookie_domain`. Unset:
    /// `__Host-authgate`, or `__Secure-authgate` with `cookie_domain`.
    pub cookie_name: Option<String>,
    /// A parent domain of `public_url`'s host the cookie is sent to (the
    /// `Domain` attribute), for apps on sibling hosts; unset: host-only.
    pub cookie_domain: Option<String>,
    /// Hosts (`host` or `host:port`, under `cookie_domain`) an absolute
    /// `return_to` may lead to, on `public_url`'s scheme; empty: paths on
    /// `public_url` only.
    pub return_hosts: Vec<String>,
    /// `GET /register` shows a registration page, linked from the login page
    /// (the rules of `POST /register`, `registration.enabled` included, still apply).
    pub allow_registration: bool,
    /// How long after a cookie's refresh token was rotated a request still
    /// holding it is served (tabs racing one refresh); past it, a replay ends
    /// the session as refresh-token reuse does. Unset: twice the access
    /// token lifetime, at least `tokens.reuse_grace_seconds`.
    pub refresh_grace_seconds: Option<u64>,
}

/// `public_url`, read: where browsers reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `https://host[:port]` (or `http://` for a local development host), as
    /// browsers serialise it in `Origin`: lowercase, no default port, no path.
    pub origin: String,
    /// `https` or `http`.
    pub scheme: String,
    /// The host alone, lowercase.
    pub host: String,
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
        Ok(PublicUrl {
            origin,
            scheme: scheme.to_owned(),
            host,
        })
    }
}

/// Whether `host` is `domain` or a host under it.
fn within(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|h| h.ends_with('.'))
}

impl BrowserConfig {
    /// The session cookie's name, its default included.
    pub fn cookie_name(&self) -> String {
        match (&self.cookie_name, &self.cookie_domain) {
            (Some(name), _) => name.clone(),
            (None, None) => "__Host-authgate".into(),
            (None, Some(_)) => "__Secure-authgate".into(),
        }
    }

    /// Browser mode needs `public_url` (redirects, the origin rule); the
    /// cookie name must keep its `__Host-` guarantees.
    pub(super) fn validate(&self, public_url: Option<&str>) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if public_url.is_none() {
            return Err(invalid(
                "public_url",
                "required when browser.enabled is true (the login page's origin)",
            ));
        }
        let url = PublicUrl::parse(public_url.unwrap_or_default())?;
        let (prefix, what) = match &self.cookie_domain {
            None => ("__Host-", "host-only, Secure, Path=/"),
            Some(_) => (
                "__Secure-",
                "with cookie_domain: Secure, sent to the domain",
            ),
        };
        let name = self.cookie_name();
        let rest = name.strip_prefix(prefix).ok_or_else(|| {
            invalid(
                "browser.cookie_name",
                format!("must start with {prefix} ({what})"),
            )
        })?;
        if rest.is_empty()
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(
                "browser.cookie_name",
                format!("after {prefix}, letters, digits, '-', '_' or '.' only"),
            ));
        }
        if let Some(domain) = &self.cookie_domain {
            let labels_ok = domain.split('.').count() >= 2
                && domain.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !labels_ok {
                return Err(invalid(
                    "browser.cookie_domain",
                    format!("{domain:?}: a lowercase domain of two labels or more, no leading dot"),
                ));
            }
            if !within(&url.host, domain) {
                return Err(invalid(
                    "browser.cookie_domain",
                    format!("{domain:?} is not {:?} or a parent of it: browsers would refuse the cookie", url.host),
                ));
            }
        }
        for (i, entry) in self.return_hosts.iter().enumerate() {
            let key = format!("browser.return_hosts[{i}]");
            let Some(domain) = &self.cookie_domain else {
                return Err(invalid(
                    key,
                    "needs browser.cookie_domain: a host-only cookie never reaches another host",
                ));
            };
            let origin = crate::edge::origin::normalise(&format!("{}://{entry}", url.scheme));
            let host = entry.rsplit_once(':').map_or(entry.as_str(), |(h, _)| h);
            if origin.is_none() || entry.contains('/') || entry != &entry.to_ascii_lowercase() {
                return Err(invalid(
                    key,
                    format!("{entry:?}: a lowercase host or host:port"),
                ));
            }
            if !within(host, domain) {
                return Err(invalid(
                    key,
                    format!("{entry:?} is not under cookie_domain {domain:?}"),
                ));
            }
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
                cookie_name: Some(name.into()),
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

    #[test]
    fn sibling_hosts_need_a_domain_cookie_over_them() {
        let url = Some("https://auth.example.com");
        let c = |domain: Option<&str>, hosts: &[&str], name: Option<&str>| BrowserConfig {
            enabled: true,
            cookie_domain: domain.map(str::to_owned),
            return_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            cookie_name: name.map(str::to_owned),
            ..BrowserConfig::default()
        };
        let ok = c(
            Some("example.com"),
            &["app.example.com", "docs.example.com:8443"],
            None,
        );
        ok.validate(url).unwrap();
        assert_eq!(ok.cookie_name(), "__Secure-authgate");
        assert_eq!(c(None, &[], None).cookie_name(), "__Host-authgate");
        for (bad, key) in [
            (
                c(None, &["app.example.com"], None),
                "browser.return_hosts[0]",
            ),
            (c(Some("other.com"), &[], None), "browser.cookie_domain"),
            (c(Some("com"), &[], None), "browser.cookie_domain"),
            (c(Some(".example.com"), &[], None), "browser.cookie_domain"),
            (c(Some("ample.com"), &[], None), "browser.cookie_domain"),
            (
                c(Some("example.com"), &["evil.com"], None),
                "browser.return_hosts[0]",
            ),
            (
                c(Some("example.com"), &["app.example.com.evil.com"], None),
                "browser.return_hosts[0]",
            ),
            (
                c(Some("example.com"), &["App.example.com"], None),
                "browser.return_hosts[0]",
            ),
            (
                c(Some("example.com"), &["app.example.com/x"], None),
                "browser.return_hosts[0]",
            ),
            (
                c(Some("example.com"), &[], Some("__Host-a")),
                "browser.cookie_name",
            ),
        ] {
            let err = bad.validate(url).unwrap_err().to_string();
            assert!(err.contains(key), "{bad:?}: {err}");
        }
    }
}
