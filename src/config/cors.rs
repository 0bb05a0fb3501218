//! The `cors` section: which other origins' pages may call the gateway from a browser (off when absent).

use super::{invalid, ConfigError};
use crate::edge::origin::OriginList;
use serde::Deserialize;

/// CORS for single-page apps served from other origins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins (`scheme://host[:port]`) whose pages may call; `null` only
    /// when listed literally; `*` for any (not with `allow_credentials`).
    pub allowed_origins: Vec<String>,
    /// Answer `Access-Control-Allow-Credentials: true` (cookies, client certificates).
    #[serde(default)]
    pub allow_credentials: bool,
    /// Request headers a page may send beyond the CORS-safelisted ones.
    #[serde(default = "default_headers")]
    pub allowed_headers: Vec<String>,
    /// How long a browser may keep a preflight's answer (`Access-Control-Max-Age`).
    #[serde(default = "default_max_age")]
    pub max_age_seconds: u64,
}

/// What a single-page app sends: a bearer token and a JSON body.
fn default_headers() -> Vec<String> {
    vec!["Authorization".into(), "Content-Type".into()]
}

fn default_max_age() -> u64 {
    600
}

impl CorsConfig {
    /// The origin list, checked.
    pub(crate) fn origins(&self) -> Result<OriginList, ConfigError> {
        OriginList::parse(&self.allowed_origins).map_err(|e| {
            invalid(
                "cors.allowed_origins",
                format!(
                    "{:?} is not an origin (scheme://host[:port], nothing after it), `null` or `*`",
                    e.0
                ),
            )
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let origins = self.origins()?;
        if self.allowed_origins.is_empty() {
            return Err(invalid("cors.allowed_origins", "list at least one origin"));
        }
        // The Fetch standard ignores `*` with credentials; an operator who
        // wrote it meant "every site may act as the user", which we refuse.
        if origins.is_any() && self.allow_credentials {
            return Err(invalid(
                "cors.allowed_origins",
                "`*` cannot be combined with allow_credentials: true; list the origins",
            ));
        }
        for (i, h) in self.allowed_headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(invalid(
                    format!("cors.allowed_headers[{i}]"),
                    format!("{h:?} is not a header name"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn load(yaml: &str) -> Result<(), String> {
        let cfg = Config::from_yaml(yaml, Path::new("t.yaml")).map_err(|e| e.to_string())?;
        cfg.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn any_origin_with_credentials_is_refused() {
        let err = load("cors: { allowed_origins: ['*'], allow_credentials: true }").unwrap_err();
        assert!(err.contains("cors.allowed_origins"), "{err}");
        load("cors: { allowed_origins: ['*'] }").unwrap();
        load("cors: { allowed_origins: ['https://a.example'], allow_credentials: true }").unwrap();
        for bad in [
            "cors: { allowed_origins: ['https://*.a.example'] }",
            "cors: { allowed_origins: [] }",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
    }
}
