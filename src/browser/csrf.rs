//! Cross-site request forgery: a cookie-authenticated unsafe request must come from the gateway's own origin (or a credentialed CORS origin).
//!
//! Judged by `Origin`, or by `Sec-Fetch-Site` when a browser sent no `Origin`;
//! a request with neither is refused: every browser that can hold the cookie
//! sends one of them on a POST, so their absence is not a browser's request.
//! Bearer-token requests are not judged at all: a page of another site cannot
//! make a browser attach a token.

use crate::edge::origin::{OriginList, RequestOrigin};
use http::{HeaderMap, Method};

/// Methods a cross-site page can make a browser send with its cookies that change things.
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether `headers` show a request from `own` (a serialised origin) or from
/// an origin of `trusted` (the `cors` origins allowed credentials).
pub(crate) fn same_origin(headers: &HeaderMap, own: &str, trusted: Option<&OriginList>) -> bool {
    match RequestOrigin::of(headers) {
        RequestOrigin::Origin(o) if o == own => true,
        o @ RequestOrigin::Origin(_) => {
            trusted.is_some_and(|list| !list.is_any() && list.allows(&o))
        }
        RequestOrigin::Absent => {
            let mut sites = headers.get_all("sec-fetch-site").iter();
            matches!(
                (sites.next(), sites.next()),
                (Some(site), None) if site.as_bytes() == b"same-origin"
            )
        }
        RequestOrigin::Null | RequestOrigin::Malformed => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://auth.example";

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn own_origin_passes_and_others_do_not() {
        assert!(same_origin(
            &h(&[("origin", "https://auth.example")]),
            OWN,
            None
        ));
        assert!(same_origin(
            &h(&[("origin", "HTTPS://Auth.Example:443")]),
            OWN,
            None
        ));
        assert!(same_origin(
            &h(&[("sec-fetch-site", "same-origin")]),
            OWN,
            None
        ));
        for bad in [
            &[("origin", "https://evil.example")][..],
            &[("origin", "null")],
            &[("origin", "https://auth.example.evil.example")],
            &[("origin", "http://auth.example")],
            &[("sec-fetch-site", "same-site")],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "none")],
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "same-origin"),
            ],
            // Origin decides when present.
            &[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[],
        ] {
            assert!(!same_origin(&h(bad), OWN, None), "{bad:?}");
        }
    }

    #[test]
    fn a_credentialed_cors_origin_passes_but_never_a_wildcard() {
        let spa = OriginList::parse(&["https://spa.example"]).unwrap();
        let any = OriginList::parse(&["*"]).unwrap();
        let from_spa = h(&[("origin", "https://spa.example")]);
        assert!(same_origin(&from_spa, OWN, Some(&spa)));
        assert!(!same_origin(&from_spa, OWN, Some(&any)));
    }

    #[test]
    fn unsafe_methods() {
        assert!(is_unsafe(&Method::POST) && is_unsafe(&Method::DELETE));
        assert!(!is_unsafe(&Method::GET) && !is_unsafe(&Method::HEAD));
    }
}
