//! The session cookie on the wire: found in (and removed from) `Cookie`, written in `Set-Cookie`.
//!
//! Its value is `<access part>.<refresh token>`: the access part is a JWT
//! marked `use: cookie` that carries no roles (so the cookie stays under
//! 1 KiB whatever the user holds) and the refresh token is the session's
//! current one, so the gateway can verify the cookie without Redis and
//! refresh it itself when the access part has expired.

use http::{HeaderMap, HeaderValue};

/// Largest cookie value taken; a larger one is not ours.
pub(crate) const MAX_COOKIE_VALUE: usize = 1024;

/// What the `Cookie` headers hold of the session cookie.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// No session cookie.
    None,
    /// Exactly one, split into its access part and refresh token.
    One {
        /// The whole value.
        value: &'a str,
        /// The JWT.
        access: &'a str,
        /// The refresh token.
        refresh: &'a str,
    },
    /// Present but not one well-formed value (twice, oversized, not of our
    /// shape): a bad cookie, never guessed at.
    Bad,
}

/// The session cookie `name` among `headers`' `Cookie` values. Read as bytes:
/// another cookie that is not ASCII (an app's own UTF-8 value) changes nothing.
pub(crate) fn find<'a>(headers: &'a HeaderMap, name: &str) -> Found<'a> {
    let mut found = Found::None;
    for value in headers.get_all(http::header::COOKIE) {
        for pair in value.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            if found != Found::None {
                return Found::Bad;
            }
            found = match std::str::from_utf8(pair[eq + 1..].trim_ascii()) {
                Ok(v) if v.is_ascii() => parse_value(v),
                _ => Found::Bad,
            };
        }
    }
    found
}

fn contains_name(bytes: &[u8], name: &str) -> bool {
    bytes.windows(name.len()).any(|w| w == name.as_bytes())
}

fn parse_value(v: &str) -> Found<'_> {
    if v.len() > MAX_COOKIE_VALUE {
        return Found::Bad;
    }
    match v.rsplit_once('.') {
        Some((access, refresh))
            if access.split('.').count() == 3 && uuid::Uuid::try_parse(refresh).is_ok() =>
        {
            Found::One {
                value: v,
                access,
                refresh,
            }
        }
        _ => Found::Bad,
    }
}

/// The `Cookie` headers without the session cookie: other cookies pass
/// untouched, in order; a header left empty goes. `None`: nothing to change.
pub(crate) fn without(headers: &HeaderMap, name: &str) -> Option<Vec<HeaderValue>> {
    let values: Vec<&HeaderValue> = headers.get_all(http::header::COOKIE).iter().collect();
    if !values.iter().any(|v| contains_name(v.as_bytes(), name)) {
        return None;
    }
    let mut kept = Vec::new();
    for value in values {
        let bytes = value.as_bytes();
        let rest: Vec<&[u8]> = bytes
            .split(|&b| b == b';')
            .filter(|pair| {
                let pair = pair.trim_ascii();
                !pair.is_empty() && name_of(pair) != name.as_bytes()
            })
            .map(|p| p.trim_ascii())
            .collect();
        if rest.is_empty() {
            continue;
        }
        if let Ok(v) = HeaderValue::from_bytes(&rest.join(&b"; "[..])) {
            kept.push(v);
        }
    }
    Some(kept)
}

/// The name of a `name=value` pair (of `Cookie` or `Set-Cookie`), trimmed.
fn name_of(pair: &[u8]) -> &[u8] {
    pair.split(|&b| b == b'=')
        .next()
        .unwrap_or(&[])
        .trim_ascii()
}

/// Whether a `Set-Cookie` value sets the cookie `name` (an upstream's must not).
pub(crate) fn sets(value: &[u8], name: &str) -> bool {
    name_of(value) == name.as_bytes()
}

/// `Set-Cookie` for the session cookie holding `value`, kept `max_age`
/// seconds; host-only unless `domain` is given.
pub(crate) fn set(name: &str, value: &str, max_age: u64, domain: Option<&str>) -> String {
    let domain = domain.map_or(String::new(), |d| format!("; Domain={d}"));
    format!("{name}={value}; Path=/{domain}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax")
}

/// `Set-Cookie` that removes the session cookie (with the same `Domain`, or
/// a browser keeps it).
pub(crate) fn clear(name: &str, domain: Option<&str>) -> String {
    set(name, "", 0, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "__Host-authgate";
    const T: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    fn cookies(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::COOKIE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn one_cookie_is_split_and_anything_else_is_bad() {
        let h = cookies(&[&format!("a=1; __Host-authgate=x.y.z.{T}; b=2")]);
        assert_eq!(
            find(&h, NAME),
            Found::One {
                value: &format!("x.y.z.{T}"),
                access: "x.y.z",
                refresh: T
            }
        );
        assert_eq!(find(&cookies(&["a=1"]), NAME), Found::None);
        assert_eq!(find(&cookies(&["__Host-authgatex=1"]), NAME), Found::None);
        for bad in [
            &["__Host-authgate=x.y.z.t; __Host-authgate=x.y.z.t"][..],
            &["__Host-authgate=x.y.z.t", "__Host-authgate=x.y.z.t"],
            &["__Host-authgate=x.y.t"],
            &["__Host-authgate=x.y.z."],
            &["__Host-authgate="],
        ] {
            assert_eq!(find(&cookies(bad), NAME), Found::Bad, "{bad:?}");
        }
        // Another cookie's UTF-8 value beside ours changes nothing.
        let mut utf8 = HeaderMap::new();
        let raw = format!("theme=caf\u{e9}; {NAME}=x.y.z.{T}");
        utf8.insert(
            http::header::COOKIE,
            HeaderValue::from_bytes(raw.as_bytes()).unwrap(),
        );
        assert_eq!(
            find(&utf8, NAME),
            Found::One {
                value: &format!("x.y.z.{T}"),
                access: "x.y.z",
                refresh: T
            }
        );
        let long = format!("{NAME}=a.b.c.{}", "t".repeat(MAX_COOKIE_VALUE));
        assert_eq!(find(&cookies(&[&long]), NAME), Found::Bad);
    }

    #[test]
    fn only_the_session_cookie_is_removed() {
        let h = cookies(&[
            "a=1; __Host-authgate=x.y.z.t;b=2",
            "__Host-authgate=v",
            "c=3",
        ]);
        let kept = without(&h, NAME).unwrap();
        assert_eq!(kept, ["a=1; b=2", "c=3"]);
        assert_eq!(without(&cookies(&["a=1"]), NAME), None);
        assert!(without(&cookies(&["__Host-authgate=1"]), NAME)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_cookie_is_host_only_secure_and_http_only() {
        assert_eq!(
            set(NAME, "v", 60, None),
            "__Host-authgate=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"
        );
        assert!(clear(NAME, None).contains("Max-Age=0"));
        assert_eq!(
            clear("__Secure-a", Some("example.com")),
            "__Secure-a=; Path=/; Domain=example.com; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
        );
    }
}
