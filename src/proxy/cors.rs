//! CORS (the `cors` section): preflights answered here and never forwarded, and the `Access-Control-*` headers of every answer, for both engines.
//!
//! The gateway owns CORS once the section is set: an upstream's own
//! `Access-Control-*` response headers are removed, so what a browser is told
//! is only ever what `cors` says.

use crate::config::{ConfigError, CorsConfig};
use crate::edge::origin::{OriginList, RequestOrigin};
use http::{HeaderMap, Method};
use pingora_http::{RequestHeader, ResponseHeader};
use std::collections::HashSet;

/// The `cors` section, ready to use.
#[derive(Debug, Clone)]
pub(crate) struct Cors {
    origins: OriginList,
    credentials: bool,
    /// `allowed_headers`, lowercase, for the check.
    headers: HashSet<String>,
    /// `allowed_headers` as configured, for `Access-Control-Allow-Headers`.
    allow_headers: String,
    max_age: String,
}

/// Why a CORS request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CorsRefusal {
    /// `Origin` twice, or not an origin (400).
    MalformedOrigin,
    /// A preflight from an origin not in `allowed_origins` (403).
    Origin,
    /// A preflight for a method the endpoint or route does not take (403).
    Method,
    /// A preflight for a header not in `allowed_headers` (403).
    Header,
}

impl CorsRefusal {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            CorsRefusal::MalformedOrigin => "malformed_origin",
            CorsRefusal::Origin => "origin_not_allowed",
            CorsRefusal::Method => "method_not_allowed",
            CorsRefusal::Header => "header_not_allowed",
        }
    }
}

/// What CORS adds to the answer of one request, whoever writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum CorsHeaders {
    /// `cors` is not set: the answer is left as it is.
    #[default]
    Off,
    /// No allowed origin: only `Vary: Origin` (the answer differs by origin,
    /// so no cache may hand it to another one).
    Vary,
    /// An allowed origin, echoed in `Access-Control-Allow-Origin`, and
    /// whether `Access-Control-Allow-Credentials: true` goes with it.
    Allow {
        /// The normalised origin.
        origin: String,
        /// `allow_credentials`.
        credentials: bool,
    },
}

/// What the gateway does with a request, by CORS.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Goes on as any request, its answer decorated so.
    Pass(CorsHeaders),
    /// A preflight from an allowed origin: answered here once the method is known.
    Preflight(String),
    /// Answered here with a refusal.
    Refuse(CorsRefusal),
}

/// The headers a preflight answer carries.
pub(crate) type PreflightAnswer = Vec<(&'static str, String)>;

impl Cors {
    /// From the validated section.
    pub(crate) fn new(cfg: &CorsConfig) -> Result<Cors, ConfigError> {
        Ok(Cors {
            origins: cfg.origins()?,
            credentials: cfg.allow_credentials,
            headers: cfg
                .allowed_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allow_headers: cfg.allowed_headers.join(", "),
            max_age: cfg.max_age_seconds.to_string(),
        })
    }

    /// The verdict on a request by its `Origin` and, for a preflight, nothing more yet.
    pub(crate) fn inspect(&self, req: &RequestHeader) -> Verdict {
        let origin = RequestOrigin::of(&req.headers);
        // Without an Origin, OPTIONS with Access-Control-Request-Method is no
        // browser's preflight: it goes on like any OPTIONS.
        let preflight = req.method == Method::OPTIONS
            && req.headers.contains_key("access-control-request-method")
            && origin != RequestOrigin::Absent;
        if origin == RequestOrigin::Malformed {
            return Verdict::Refuse(CorsRefusal::MalformedOrigin);
        }
        let allowed = self
            .origins
            .allows(&origin)
            .then(|| origin.serialised())
            .flatten();
        match (preflight, allowed) {
            (true, Some(origin)) => Verdict::Preflight(origin),
            (true, None) => Verdict::Refuse(CorsRefusal::Origin),
            (false, Some(origin)) => Verdict::Pass(CorsHeaders::Allow {
                origin,
                credentials: self.credentials,
            }),
            (false, None) => Verdict::Pass(CorsHeaders::Vary),
        }
    }

    /// The answer to a preflight from `origin` (already allowed) for what
    /// `methods` takes (`None`: any method; else the `Allow` list).
    pub(crate) fn preflight(
        &self,
        origin: &str,
        headers: &HeaderMap,
        methods: Option<&str>,
    ) -> Result<PreflightAnswer, CorsRefusal> {
        let mut asked = headers.get_all("access-control-request-method").iter();
        let method = match (asked.next().map(|v| v.to_str()), asked.next()) {
            (Some(Ok(m)), None) => {
                Method::from_bytes(m.trim().as_bytes()).map_err(|_| CorsRefusal::Method)?
            }
            _ => return Err(CorsRefusal::Method),
        };
        let allow_methods = match methods {
            Some(list) if list.split(',').any(|m| m.trim() == method.as_str()) => list.to_owned(),
            Some(_) => return Err(CorsRefusal::Method),
            None => method.as_str().to_owned(),
        };
        for value in headers.get_all("access-control-request-headers") {
            let value = value.to_str().map_err(|_| CorsRefusal::Header)?;
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self.headers.contains(&name.to_ascii_lowercase()) {
                    return Err(CorsRefusal::Header);
                }
            }
        }
        let mut answer = vec![
            ("Access-Control-Allow-Origin", origin.to_owned()),
            ("Access-Control-Allow-Methods", allow_methods),
            ("Access-Control-Max-Age", self.max_age.clone()),
            ("Vary", "Origin".to_owned()),
        ];
        if !self.allow_headers.is_empty() {
            answer.push(("Access-Control-Allow-Headers", self.allow_headers.clone()));
        }
        if self.credentials {
            answer.push(("Access-Control-Allow-Credentials", "true".to_owned()));
        }
        Ok(answer)
    }
}

/// Put `cors` on an answer: the upstream's `Access-Control-*` removed, then
/// ours; `Vary: Origin` kept beside whatever else the answer varies on.
pub(crate) fn apply(resp: &mut ResponseHeader, cors: &CorsHeaders) -> pingora_error::Result<()> {
    if *cors == CorsHeaders::Off {
        return Ok(());
    }
    let theirs: Vec<http::HeaderName> = resp
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in theirs {
        resp.remove_header(&name);
    }
    let varies = resp.headers.get_all(http::header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|f| f.trim() == "*" || f.trim().eq_ignore_ascii_case("origin"))
        })
    });
    if !varies {
        resp.append_header(http::header::VARY, "Origin")?;
    }
    if let CorsHeaders::Allow {
        origin,
        credentials,
    } = cors
    {
        resp.insert_header("Access-Control-Allow-Origin", origin.as_str())?;
        if *credentials {
            resp.insert_header("Access-Control-Allow-Credentials", "true")?;
        }
    }
    Ok(())
}
