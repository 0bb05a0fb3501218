//! The edge: every rule a request passes before it is routed, each a pure function, composed in `inspect`.
//!
//! What the gateway checks is what the upstream gets: the canonical path is
//! routed on and forwarded, identity-header spellings are removed before any
//! decision, and an ambiguous request is refused with 400 rather than guessed at.

pub(crate) mod authorization;
pub(crate) mod forwarded;
pub(crate) mod framing;
pub(crate) mod host;
pub(crate) mod identity;
pub(crate) mod origin;
pub(crate) mod path;

use http::HeaderName;
use pingora_core::protocols::http::authority::{raw_target_authority, RawTargetAuthority};
use pingora_http::RequestHeader;
use std::borrow::Cow;

pub(crate) use forwarded::TrustedProxies;
pub(crate) use identity::UnderscoreHeaders;

/// The edge rules as configured.
#[derive(Debug, Clone)]
pub(crate) struct EdgeRules {
    /// Identity headers (lowercase), `X-User-Id` always among them.
    pub identity_headers: Vec<HeaderName>,
    /// What to do with `_` in header names.
    pub underscore_headers: UnderscoreHeaders,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Some route is host-specific, so the routing host is kept for it.
    pub route_by_host: bool,
}

/// Why the edge refuses a request (each answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeRejection {
    /// The path has no single meaning.
    Path(path::PathError),
    /// The host is malformed or contradicts the target.
    Host(host::HostError),
    /// A header name with `_` under `underscore_headers: reject`.
    UnderscoreHeader,
    /// Several `Authorization` headers or credentials.
    AmbiguousAuthorization,
    /// A `Transfer-Encoding` other than `chunked` alone.
    Framing(framing::FramingError),
}

/// What the edge decided about an acceptable request.
#[derive(Debug, Default)]
pub(crate) struct Inspection {
    /// The request target to forward when it differs from the one received
    /// (a path made canonical, or an absolute-form target made origin-form).
    pub new_target: Option<String>,
    /// The routing host, canonical (only when some route is host-specific).
    pub host: Option<String>,
    /// The `Host` to add: an absolute-form target's or HTTP/2 `:authority`,
    /// when the request came without `Host` (the target becomes origin-form,
    /// or an HTTP/1 upstream's request is written from it, so the upstream
    /// would otherwise get no host at all).
    pub add_host: Option<http::HeaderValue>,
    /// Header names to delete before anything else sees the request.
    pub remove: Vec<HeaderName>,
}

impl EdgeRules {
    /// Check a request header; nothing is changed here, the caller applies the result.
    pub(crate) fn inspect(&self, req: &RequestHeader) -> Result<Inspection, EdgeRejection> {
        let absolute_form = match raw_target_authority(req.raw_path()) {
            RawTargetAuthority::Absolute { authority, .. } => Some(authority),
            RawTargetAuthority::None => None,
            RawTargetAuthority::AmbiguousAuthority => {
                return Err(EdgeRejection::Host(host::HostError::Malformed))
            }
        };
        // HTTP/2 names its host in `:authority` (the URI's authority; Pingora
        // refuses an absolute-form `:path`), usually without `Host`: it is
        // judged, and supplies `Host`, as an absolute-form target's would.
        let target_authority = match absolute_form {
            None if req.version == http::Version::HTTP_2 => {
                req.uri.authority().map(|a| a.as_str().as_bytes())
            }
            a => a,
        };
        let mut hosts = req.headers.get_all(http::header::HOST).iter();
        let host_header = hosts.next();
        if hosts.next().is_some() {
            return Err(EdgeRejection::Host(host::HostError::Mismatch));
        }
        // Always checked; kept (allocated) only when some route is host-specific.
        let host = host::routing_host(host_header.map(|h| h.as_bytes()), target_authority)
            .map_err(EdgeRejection::Host)?;
        let host = self.route_by_host.then(|| host.into_owned());
        let add_host = match (host_header, target_authority) {
            // Validated as a host with an optional port just above.
            (None, Some(a)) => Some(
                http::HeaderValue::from_bytes(a)
                    .map_err(|_| EdgeRejection::Host(host::HostError::Malformed))?,
            ),
            _ => None,
        };

        if !req.raw_path_is_utf8() {
            return Err(EdgeRejection::Path(path::PathError::NotUtf8));
        }
        // Pingora maps a target that is neither origin- nor absolute-form
        // (`pub/x`, `*`) to `/`; routing that would answer for a path never asked.
        if absolute_form.is_none() && req.raw_path().first() != Some(&b'/') {
            return Err(EdgeRejection::Path(path::PathError::NotAbsolute));
        }
        let canonical = path::canonical(req.uri.path()).map_err(EdgeRejection::Path)?;
        let new_target = match (&canonical, absolute_form) {
            (Cow::Borrowed(_), None) => None,
            (p, _) => Some(match req.uri.query() {
                Some(q) => format!("{p}?{q}"),
                None => p.to_string(),
            }),
        };

        framing::check(&req.headers).map_err(EdgeRejection::Framing)?;
        authorization::single(&req.headers).map_err(|_| EdgeRejection::AmbiguousAuthorization)?;
        let remove = identity::to_remove(
            &req.headers,
            &self.identity_headers,
            self.underscore_headers,
        )
        .map_err(|_| EdgeRejection::UnderscoreHeader)?;
        Ok(Inspection {
            new_target,
            host,
            add_host,
            remove,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> EdgeRules {
        EdgeRules {
            identity_headers: vec![HeaderName::from_static("x-user-id")],
            underscore_headers: UnderscoreHeaders::Drop,
            trusted_proxies: TrustedProxies::default(),
            route_by_host: true,
        }
    }

    fn req(target: &[u8], headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target, None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn clean_request_changes_nothing() {
        let i = rules()
            .inspect(&req(b"/api/x?a=1", &[("Host", "A.example:80")]))
            .unwrap();
        assert!(i.new_target.is_none() && i.remove.is_empty());
        assert_eq!(i.host.as_deref(), Some("a.example"));
    }

    #[test]
    fn canonical_target_keeps_the_query() {
        let i = rules()
            .inspect(&req(b"/pub/../api/%61dmin?q=%2F", &[("Host", "a")]))
            .unwrap();
        assert_eq!(i.new_target.as_deref(), Some("/api/admin?q=%2F"));
    }

    #[test]
    fn absolute_form_becomes_origin_form() {
        let i = rules()
            .inspect(&req(b"http://a.example/x", &[("Host", "a.example")]))
            .unwrap();
        assert_eq!(i.new_target.as_deref(), Some("/x"));
        assert!(i.add_host.is_none(), "Host was sent");
        let i = rules()
            .inspect(&req(b"http://A.example:8080/x", &[]))
            .unwrap();
        assert_eq!(i.host.as_deref(), Some("a.example"));
        assert_eq!(i.add_host.unwrap(), "A.example:8080");
        assert_eq!(
            rules()
                .inspect(&req(b"http://b.example/x", &[("Host", "a.example")]))
                .unwrap_err(),
            EdgeRejection::Host(host::HostError::Mismatch)
        );
    }

    /// What `RequestHeader::from(http::request::Parts)` gives for an HTTP/2
    /// request: the URI carries `:authority`, the raw path is `:path`.
    fn h2_req(authority: &str, path: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut b = http::Request::builder()
            .version(http::Version::HTTP_2)
            .uri(format!("https://{authority}{path}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        parts.into()
    }

    #[test]
    fn http2_authority_is_the_host() {
        let i = rules()
            .inspect(&h2_req("Internal.Example:8443", "/x?a=1", &[]))
            .unwrap();
        assert_eq!(i.host.as_deref(), Some("internal.example"));
        assert_eq!(i.add_host.unwrap(), "Internal.Example:8443");
        assert!(i.new_target.is_none(), "{:?}", i.new_target);
        let i = rules()
            .inspect(&h2_req("a.example", "/x", &[("host", "A.example.")]))
            .unwrap();
        assert!(i.add_host.is_none(), "Host was sent");
        assert_eq!(
            rules()
                .inspect(&h2_req("a.example", "/x", &[("host", "b.example")]))
                .unwrap_err(),
            EdgeRejection::Host(host::HostError::Mismatch)
        );
        assert_eq!(
            rules()
                .inspect(&h2_req("a.example", "/p/../x", &[]))
                .unwrap()
                .new_target
                .as_deref(),
            Some("/x")
        );
    }

    #[test]
    fn each_rule_refuses() {
        let r = rules();
        for target in [&b"/a%2fb"[..], b"pub/x", b"*"] {
            assert!(matches!(
                r.inspect(&req(target, &[("Host", "a")])),
                Err(EdgeRejection::Path(_))
            ));
        }
        for host in [&[][..], &[("Host", "")][..]] {
            assert_eq!(
                r.inspect(&req(b"/", host)).unwrap_err(),
                EdgeRejection::Host(host::HostError::Missing)
            );
        }
        assert_eq!(
            r.inspect(&req(
                b"/",
                &[
                    ("Host", "a"),
                    ("Authorization", "Bearer a"),
                    ("Authorization", "Bearer b")
                ]
            ))
            .unwrap_err(),
            EdgeRejection::AmbiguousAuthorization
        );
        let strict = EdgeRules {
            underscore_headers: UnderscoreHeaders::Reject,
            ..rules()
        };
        assert_eq!(
            strict
                .inspect(&req(b"/", &[("Host", "a"), ("x_a", "1")]))
                .unwrap_err(),
            EdgeRejection::UnderscoreHeader
        );
    }
}
