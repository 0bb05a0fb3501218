//! One unambiguous `Authorization` header, or none.
//!
//! Servers disagree on which of two `Authorization` headers, or which of two
//! credentials in one, counts: the gateway refuses rather than verify one and
//! let the upstream act on the other.

use http::HeaderMap;

/// Why the `Authorization` header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AmbiguousAuthorization;

/// The single `Authorization` value, if any; refused when there are several
/// headers, or a Bearer credential shares the value with anything else.
pub(crate) fn single(headers: &HeaderMap) -> Result<Option<&[u8]>, AmbiguousAuthorization> {
    let mut all = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(AmbiguousAuthorization);
    }
    let v = first.as_bytes();
    // The scheme and its credential are separated by spaces (RFC 9110 11.4);
    // a tab would make the verifier see no token while an upstream sees one.
    if v.contains(&b'\t') {
        return Err(AmbiguousAuthorization);
    }
    // Compared in place, case-insensitively: this runs on every request.
    let bearer_at = v
        .windows(7)
        .position(|w| w.eq_ignore_ascii_case(b"bearer "));
    match bearer_at {
        None => Ok(Some(v)),
        // `Bearer <token68>`: exactly one credential, nothing after it.
        Some(0) => {
            let token = v[7..].trim_ascii();
            if token.is_empty() || token.iter().any(|&c| c == b',' || c == b' ' || c == b'\t') {
                Err(AmbiguousAuthorization)
            } else {
                Ok(Some(v))
            }
        }
        // A Bearer credential hidden behind another scheme (`Basic x, Bearer y`).
        Some(_) => Err(AmbiguousAuthorization),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn one_credential_passes() {
        for v in [
            "Bearer abc.def.ghi",
            "bearer abc",
            "Basic dXNlcjpwYXNz",
            "Bearer  abc ",
        ] {
            assert!(single(&headers(&[v])).is_ok(), "{v}");
        }
        assert_eq!(single(&headers(&[])), Ok(None));
    }

    #[test]
    fn two_credentials_are_refused() {
        for v in [
            "Bearer a, Bearer b",
            "Bearer a b",
            "Bearer a,b",
            "Basic x, Bearer y",
            "Basic x Bearer y",
            "Bearer\tabc",
        ] {
            assert_eq!(single(&headers(&[v])), Err(AmbiguousAuthorization), "{v}");
        }
        assert_eq!(
            single(&headers(&["Bearer a", "Bearer b"])),
            Err(AmbiguousAuthorization)
        );
    }
}
