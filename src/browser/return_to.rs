//! `return_to`: where a login sends the browser back to, only ever a path on the gateway's own origin.
//!
//! The open-redirect catalogue (`//evil`, `/\evil`, `https://evil`, encoded
//! slashes and backslashes, `javascript:`, control characters, overlong
//! values) all land on `/`: a value is kept only when it is plainly a path
//! that every browser and every URL parser reads as one.

/// Longest `return_to` kept (the query string it travels in is bounded too).
pub(crate) const MAX_RETURN_TO: usize = 2048;

/// `value` when it is a safe same-origin path (with its query), else `/`.
pub(crate) fn sanitize(value: &str) -> &str {
    if is_safe(value) {
        value
    } else {
        "/"
    }
}

/// `value` when it is an absolute URL on one of `origins` (serialised, as
/// [`crate::edge::origin::normalise`] writes them) with a safe path, in that
/// origin's serialisation; else `None`.
pub(crate) fn on_origins(
    value: &str,
    origins: &std::collections::HashSet<String>,
) -> Option<String> {
    if value.len() > MAX_RETURN_TO {
        return None;
    }
    let (scheme, rest) = value.split_once("://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // `normalise` takes only `scheme://host[:port]`: no userinfo, query or fragment.
    let origin = crate::edge::origin::normalise(&format!("{scheme}://{authority}"))?;
    if !origins.contains(&origin) {
        return None;
    }
    let path = if path.is_empty() { "/" } else { path };
    is_safe(path).then(|| format!("{origin}{path}"))
}

fn is_safe(v: &str) -> bool {
    let b = v.as_bytes();
    if b.is_empty() || b.len() > MAX_RETURN_TO || b[0] != b'/' {
        return false;
    }
    // `//host` and `/\host` are another host to a browser.
    if matches!(b.get(1), Some(b'/' | b'\\')) {
        return false;
    }
    // Backslashes, controls, spaces and non-ASCII: read differently by
    // different parsers; a path the gateway built itself has none of them.
    if b.iter().any(|&c| c == b'\\' || c <= b' ' || c >= 0x7f) {
        return false;
    }
    // An encoded slash or backslash is one a later decoder may act on; an
    // encoded `%` hides the next one.
    let lower = v.to_ascii_lowercase();
    !["%2f", "%5c", "%25", "%09", "%0a", "%0d", "%00"]
        .iter()
        .any(|e| lower.contains(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_kept() {
        for ok in ["/", "/app/", "/app/page?x=1&y=%20", "/a:b", "/.authgate/x"] {
            assert_eq!(sanitize(ok), ok);
        }
    }

    #[test]
    fn the_open_redirect_catalogue_lands_on_slash() {
        for bad in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%5cevil.example",
            "/%252F%252Fevil.example",
            "/app\r\nSet-Cookie: x=1",
            "/app\tx",
            "/ app",
            "/app\u{0}",
            "/caf\u{e9}",
            "/%0d%0aLocation:%20x",
        ] {
            assert_eq!(sanitize(bad), "/", "{bad:?}");
        }
        assert_eq!(sanitize(&format!("/{}", "a".repeat(MAX_RETURN_TO))), "/");
    }

    #[test]
    fn absolute_targets_only_on_listed_origins() {
        let origins: std::collections::HashSet<String> = [
            "https://app.example.com".to_owned(),
            "https://docs.example.com:8443".to_owned(),
        ]
        .into();
        for (ok, want) in [
            (
                "https://app.example.com/x?y=1",
                "https://app.example.com/x?y=1",
            ),
            ("https://APP.example.com:443", "https://app.example.com/"),
            (
                "https://docs.example.com:8443/a",
                "https://docs.example.com:8443/a",
            ),
        ] {
            assert_eq!(on_origins(ok, &origins).as_deref(), Some(want), "{ok}");
        }
        for bad in [
            "https://evil.com/",
            "http://app.example.com/",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://evil.com@app.example.com/",
            "https://app.example.com:8443/",
            "https://app.example.com//evil.com",
            "https://app.example.com/\\evil.com",
            "https://app.example.com?x=1",
            "https://app.example.com#x",
            "https://app.example.com/%2F%2Fevil.com",
            "javascript://app.example.com/%0aalert(1)",
            "//app.example.com/",
        ] {
            assert_eq!(on_origins(bad, &origins), None, "{bad}");
        }
        let longest = format!("/{}", "a".repeat(MAX_RETURN_TO - 1));
        assert_eq!(sanitize(&longest), longest);
    }
}
