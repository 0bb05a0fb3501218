//! The routing host: from `Host` or an absolute-form target, lowercased, without port or trailing dot.

use std::borrow::Cow;

/// Why a request's host cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    /// Not a DNS name, an IPv4 address or a bracketed IPv6 literal, with an optional port.
    Malformed,
    /// The absolute-form target names another host than `Host`.
    Mismatch,
    /// No `Host` header (or an empty one) and no absolute-form target: RFC 9112
    /// §3.2 makes that a 400 for HTTP/1.1, and an HTTP/1.0 request without it
    /// would reach the upstream as HTTP/1.1 with no host at all.
    Missing,
}

impl HostError {
    /// A sentence for the client; it never repeats the header.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            HostError::Malformed => "the Host header is not a valid host name",
            HostError::Mismatch => "the request target and the Host header name different hosts",
            HostError::Missing => "the request has no Host header",
        }
    }
}

/// The host name of `authority` (`name[:port]`), lowercased, one trailing dot
/// removed; borrowed when that changes nothing but dropping the port.
pub(crate) fn canonical_host(authority: &[u8]) -> Result<Cow<'_, str>, HostError> {
    let (name, port) = split_port(authority)?;
    if let Some(port) = port {
        if !port.iter().all(u8::is_ascii_digit) || port.len() > 5 {
            return Err(HostError::Malformed);
        }
    }
    canonical_name(name)
}

/// A route's `host:` value: a bare name (no port), canonicalised like a request's.
pub(crate) fn route_host(value: &str) -> Result<String, HostError> {
    let (_, port) = split_port(value.as_bytes())?;
    if port.is_some() {
        return Err(HostError::Malformed);
    }
    canonical_name(value.as_bytes()).map(Cow::into_owned)
}

/// Split `name[:port]` where name may be a `[v6]` literal.
fn split_port(a: &[u8]) -> Result<(&[u8], Option<&[u8]>), HostError> {
    if a.first() == Some(&b'[') {
        let close = a
            .iter()
            .position(|&c| c == b']')
            .ok_or(HostError::Malformed)?;
        let (name, rest) = a.split_at(close + 1);
        return match rest {
            [] => Ok((name, None)),
            [b':', port @ ..] => Ok((name, Some(port))),
            _ => Err(HostError::Malformed),
        };
    }
    Ok(match a.iter().position(|&c| c == b':') {
        Some(i) => (&a[..i], Some(&a[i + 1..])),
        None => (a, None),
    })
}

fn canonical_name(name: &[u8]) -> Result<Cow<'_, str>, HostError> {
    if let Some(inner) = name.strip_prefix(b"[").and_then(|n| n.strip_suffix(b"]")) {
        let text = std::str::from_utf8(inner).map_err(|_| HostError::Malformed)?;
        let ip: std::net::Ipv6Addr = text.parse().map_err(|_| HostError::Malformed)?;
        return Ok(Cow::Owned(ip.to_string()));
    }
    let name = name.strip_suffix(b".").unwrap_or(name);
    let valid_label = |l: &[u8]| {
        !l.is_empty()
            && l.len() <= 63
            && l.iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split(|&c| c == b'.').all(valid_label) {
        return Err(HostError::Malformed);
    }
    // Only ASCII letters, digits, '-', '_' and '.' are left: valid UTF-8.
    let text = std::str::from_utf8(name).map_err(|_| HostError::Malformed)?;
    Ok(if text.bytes().any(|c| c.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    })
}

/// The host a request is routed by: `Host`, else the absolute-form target's
/// authority; both present must name the same host (stricter than RFC 9112
/// §3.2.2, which lets the target win: two answers to "which host?" are refused,
/// not chosen between). An empty `Host` is no host: with an absolute-form
/// target it disagrees with it, without one the request has none.
pub(crate) fn routing_host<'a>(
    host_header: Option<&'a [u8]>,
    target_authority: Option<&'a [u8]>,
) -> Result<Cow<'a, str>, HostError> {
    let from_target = target_authority.map(canonical_host).transpose()?;
    match (host_header, from_target) {
        (Some([]), Some(_)) => Err(HostError::Mismatch),
        (None | Some([]), None) => Err(HostError::Missing),
        (None, Some(t)) => Ok(t),
        (Some(h), t) => {
            let h = canonical_host(h)?;
            match t {
                Some(t) if t != h => Err(HostError::Mismatch),
                _ => Ok(h),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_canonical() {
        for (raw, want) in [
            ("API.example.com:8080", "api.example.com"),
            ("example.com", "example.com"),
            ("Internal.Example.", "internal.example"),
            ("internal.example.:80", "internal.example"),
            ("[::1]:80", "::1"),
            ("[0:0::1]", "::1"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("svc_a.local", "svc_a.local"),
        ] {
            assert_eq!(canonical_host(raw.as_bytes()).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn bad_hosts_are_refused() {
        for raw in [
            "a b", "a..b", ".", "a.b..", "[::1", "[zz]", "[::1]x", "a:b", "a:123456", "a/b", "a@b",
            "é.com", "a:1:2",
        ] {
            assert_eq!(
                canonical_host(raw.as_bytes()),
                Err(HostError::Malformed),
                "{raw}"
            );
        }
    }

    #[test]
    fn target_and_header_must_agree() {
        assert_eq!(
            routing_host(Some(b"a.example"), Some(b"A.example.:80")),
            Ok("a.example".into())
        );
        assert_eq!(
            routing_host(Some(b"a.example"), Some(b"b.example")),
            Err(HostError::Mismatch)
        );
        assert_eq!(
            routing_host(None, Some(b"b.example")),
            Ok("b.example".into())
        );
        assert_eq!(
            routing_host(Some(b""), Some(b"b.example")),
            Err(HostError::Mismatch)
        );
        assert_eq!(routing_host(Some(b""), None), Err(HostError::Missing));
        assert_eq!(routing_host(None, None), Err(HostError::Missing));
    }

    #[test]
    fn route_hosts_take_no_port() {
        assert_eq!(
            route_host("Internal.Example."),
            Ok("internal.example".into())
        );
        assert!(route_host("a.example:80").is_err());
        assert!(route_host("bad host").is_err());
    }
}
