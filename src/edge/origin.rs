//! The `Origin` header and lists of allowed origins, compared as RFC 6454 serialised origins (used by CORS; meant for CSRF too).
//!
//! Two spellings of one origin are one origin: scheme and host are compared
//! without ASCII case and a default port is the same as none
//! (`https://A.example:443` is `https://a.example`). Nothing else is
//! normalised or guessed at: no wildcard subdomains, no path, no userinfo.

use http::HeaderMap;
use std::collections::HashSet;

/// The `Origin` of one request, as far as a rule needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestOrigin {
    /// No `Origin` header: not a cross-origin browser request.
    Absent,
    /// `Origin: null` (sandboxed frames, `file:`, some redirects): shared by
    /// every opaque origin, so it names no one.
    Null,
    /// A serialised origin, normalised.
    Origin(String),
    /// Sent twice, or not an origin: refused, never guessed at.
    Malformed,
}

impl RequestOrigin {
    /// The `Origin` header(s) of a request.
    pub(crate) fn of(headers: &HeaderMap) -> RequestOrigin {
        let mut all = headers.get_all(http::header::ORIGIN).iter();
        let (Some(value), None) = (all.next(), all.next()) else {
            return if headers.contains_key(http::header::ORIGIN) {
                RequestOrigin::Malformed
            } else {
                RequestOrigin::Absent
            };
        };
        match value.to_str() {
            Ok("null") => RequestOrigin::Null,
            Ok(text) => normalise(text).map_or(RequestOrigin::Malformed, RequestOrigin::Origin),
            Err(_) => RequestOrigin::Malformed,
        }
    }

    /// The origin as an `Access-Control-Allow-Origin` value: the serialised
    /// origin, or `null`; none when absent or malformed.
    pub(crate) fn serialised(&self) -> Option<String> {
        match self {
            RequestOrigin::Origin(o) => Some(o.clone()),
            RequestOrigin::Null => Some("null".to_owned()),
            RequestOrigin::Absent | RequestOrigin::Malformed => None,
        }
    }
}

/// `scheme://host[:port]` with scheme and host lowercased and a default port
/// dropped; `None` when `text` is anything else (a path, a query, userinfo,
/// an empty or non-numeric port, a scheme other than http or https).
pub(crate) fn normalise(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    // An IPv6 literal keeps its colons inside brackets.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{inside}]"), port)
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let label = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
        if host.is_empty() || !host.bytes().all(label) {
            return None;
        }
        (host.to_owned(), port)
    };
    let host = host.to_ascii_lowercase();
    match port {
        None => Some(format!("{scheme}://{host}")),
        Some(p) if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) => None,
        Some(p) => {
            let n: u16 = p.parse().ok()?;
            if n.to_string() == default_port {
                Some(format!("{scheme}://{host}"))
            } else {
                Some(format!("{scheme}://{host}:{n}"))
            }
        }
    }
}

/// Origins a rule lets through: exact origins, `null` only when listed
/// literally, or `*` (any origin, `null` included: `*` says nobody is excluded).
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginList {
    any: bool,
    null: bool,
    exact: HashSet<String>,
}

/// An entry of an origin list that is none of `*`, `null` or an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotAnOrigin(pub String);

impl OriginList {
    /// The list from configuration entries.
    pub(crate) fn parse<S: AsRef<str>>(entries: &[S]) -> Result<OriginList, NotAnOrigin> {
        let mut list = OriginList::default();
        for e in entries {
            match e.as_ref() {
                "*" => list.any = true,
                "null" => list.null = true,
                o => {
                    let n = normalise(o).ok_or_else(|| NotAnOrigin(o.to_owned()))?;
                    list.exact.insert(n);
                }
            }
        }
        Ok(list)
    }

    /// Whether the list is `*`.
    pub(crate) fn is_any(&self) -> bool {
        self.any
    }

    /// Whether `origin` may pass; an absent or malformed origin never does.
    pub(crate) fn allows(&self, origin: &RequestOrigin) -> bool {
        match origin {
            RequestOrigin::Origin(o) => self.any || self.exact.contains(o),
            RequestOrigin::Null => self.any || self.null,
            RequestOrigin::Absent | RequestOrigin::Malformed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(values: &[&str]) -> RequestOrigin {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::ORIGIN, v.parse().unwrap());
        }
        RequestOrigin::of(&h)
    }

    #[test]
    fn spellings_of_one_origin_are_one_origin() {
        for same in [
            "https://a.example",
            "HTTPS://A.Example",
            "https://a.example:443",
        ] {
            assert_eq!(
                normalise(same).as_deref(),
                Some("https://a.example"),
                "{same}"
            );
        }
        assert_eq!(
            normalise("http://a.example:80").as_deref(),
            Some("http://a.example")
        );
        assert_eq!(
            normalise("http://a.example:443").as_deref(),
            Some("http://a.example:443")
        );
        assert_eq!(
            normalise("https://[::1]:8443").as_deref(),
            Some("https://[::1]:8443")
        );
        assert_eq!(
            normalise("http://a.example:0080").as_deref(),
            Some("http://a.example")
        );
    }

    #[test]
    fn anything_but_an_origin_is_not_one() {
        for bad in [
            "a.example",
            "https://",
            "https://a.example/",
            "https://a.example/x",
            "https://u@a.example",
            "https://a.example:",
            "https://a.example:x",
            "https://a.example:99999",
            "ftp://a.example",
            "https://a.example?x",
            "https://[::1",
            "https://a example",
        ] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_header_once_and_well_formed() {
        assert_eq!(origin(&[]), RequestOrigin::Absent);
        assert_eq!(origin(&["null"]), RequestOrigin::Null);
        assert_eq!(
            origin(&["https://a.example", "https://a.example"]),
            RequestOrigin::Malformed
        );
        assert_eq!(origin(&["https://a.example/"]), RequestOrigin::Malformed);
    }

    #[test]
    fn lists_match_exactly() {
        let list = OriginList::parse(&["https://A.example:443"]).unwrap();
        assert!(list.allows(&origin(&["https://a.example"])));
        assert!(!list.allows(&origin(&["https://b.a.example"])));
        assert!(!list.allows(&origin(&["http://a.example"])));
        assert!(!list.allows(&origin(&["null"])));
        assert!(OriginList::parse(&["null"])
            .unwrap()
            .allows(&origin(&["null"])));
        let any = OriginList::parse(&["*"]).unwrap();
        assert!(any.allows(&origin(&["https://x.example"])));
        assert!(!any.allows(&origin(&[])));
        assert!(OriginList::parse(&["https://*.a.example"]).is_err());
    }
}
