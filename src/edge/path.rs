//! The one canonical form of a request path: decided once, used for routing and forwarded as is.
//!
//! Modelled on Envoy's `normalize_path` + `merge_slashes`: percent-encoded
//! unreserved characters are decoded, `.` and `..` segments resolved (never
//! above the root), repeated slashes merged. What has no single meaning across
//! upstream servers is refused rather than guessed at.

use std::borrow::Cow;

/// Why a path has no single meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// Not an absolute path (`*`, a relative reference, empty).
    NotAbsolute,
    /// A raw control byte or NUL, or one percent-encoded.
    ControlByte,
    /// A raw `\`: Windows and some frameworks read it as `/`.
    Backslash,
    /// `%2F` or `%5C`: a separator some upstreams decode and others do not.
    EncodedSeparator,
    /// `%` not followed by two hex digits.
    BadPercent,
    /// An encoded `%` that decodes again to a dot or separator (`%252e`).
    DoubleEncoded,
    /// `;` path parameters: Tomcat and Jetty strip them, others do not.
    Semicolon,
    /// Bytes that are not UTF-8.
    NotUtf8,
}

impl PathError {
    /// A sentence for the client; it never repeats the path.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "the request path must start with /",
            PathError::ControlByte => "the request path contains a control character",
            PathError::Backslash => "the request path contains a backslash",
            PathError::EncodedSeparator => "the request path contains an encoded / or \\",
            PathError::BadPercent => "the request path has a malformed percent-encoding",
            PathError::DoubleEncoded => "the request path contains a double-encoded character",
            PathError::Semicolon => "the request path contains ';' parameters",
            PathError::NotUtf8 => "the request path is not valid UTF-8",
        }
    }
}

/// The canonical form of `path` (without its query), or why there is none.
///
/// A path that is already canonical comes back borrowed after one scan of its
/// bytes: that is the common case and costs no allocation.
pub(crate) fn canonical(path: &str) -> Result<Cow<'_, str>, PathError> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut clean = true;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => clean = false,
            b'/' => {
                if matches!(b.get(i + 1), Some(b'/' | b'.')) {
                    clean = false;
                }
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            0..=0x1f | 0x7f => return Err(PathError::ControlByte),
            _ => {}
        }
    }
    if clean {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(b)?;
    Ok(Cow::Owned(resolve_segments(&decoded)))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Decode `%XX` where XX is unreserved, keep every other escape in upper case,
/// and refuse the escapes that would mean different things to different servers.
fn decode_unreserved(b: &[u8]) -> Result<String, PathError> {
    let pair = |i: usize| -> Option<u8> { Some(hex(*b.get(i + 1)?)? << 4 | hex(*b.get(i + 2)?)?) };
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'%' {
            // Non-ASCII bytes are whole UTF-8 sequences of the &str we came from;
            // copy the run up to the next escape in one go.
            let end = b[i..]
                .iter()
                .position(|&x| x == b'%')
                .map_or(b.len(), |p| i + p);
            out.push_str(std::str::from_utf8(&b[i..end]).map_err(|_| PathError::NotUtf8)?);
            i = end;
            continue;
        }
        let v = pair(i).ok_or(PathError::BadPercent)?;
        match v {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0..=0x1f | 0x7f => return Err(PathError::ControlByte),
            b'%' => out.push_str("%25"),
            v if is_unreserved(v) => out.push(char::from(v)),
            v => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(v >> 4)]));
                out.push(char::from(HEX[usize::from(v & 0xf)]));
            }
        }
        i += 3;
    }
    // An encoded `%` that forms an escape with what follows (`%252e`, and also
    // `%25%32%65` once `%32%65` is decoded above) means one thing to a server
    // that decodes once and another to one that decodes twice.
    let o = out.as_bytes();
    let double = (0..o.len()).any(|i| {
        o[i..].starts_with(b"%25")
            && o.get(i + 3).copied().and_then(hex).is_some()
            && o.get(i + 4).copied().and_then(hex).is_some()
    });
    if double {
        return Err(PathError::DoubleEncoded);
    }
    Ok(out)
}

/// Merge slashes and resolve dot segments (RFC 3986 §5.2.4), clamped at the root.
fn resolve_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in path.split('/') {
        match seg {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        canonical(p)
            .unwrap_or_else(|e| panic!("{p:?}: {e:?}"))
            .into_owned()
    }

    #[test]
    fn clean_paths_are_borrowed() {
        for p in [
            "/",
            "/api",
            "/api/x",
            "/api/x/",
            "/a.b/c~d-e_f",
            "/é",
            "/.well-known",
        ] {
            let c = canonical(p).unwrap();
            if p != "/.well-known" {
                assert!(matches!(c, Cow::Borrowed(_)), "{p}");
            }
            assert_eq!(c, p);
        }
    }

    #[test]
    fn dot_segments_and_slashes_resolve() {
        for (raw, want) in [
            ("/pub/../api/admin", "/api/admin"),
            ("/pub/%2e%2e/api/admin", "/api/admin"),
            ("/pub/%2E%2e/api/admin", "/api/admin"),
            ("/pub//../api/admin", "/api/admin"),
            ("/pub/./x", "/pub/x"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../etc", "/etc"),
            ("//api//x", "/api/x"),
            ("/api//", "/api/"),
            ("/.well-known/x", "/.well-known/x"),
            ("/a/.b/..c/...", "/a/.b/..c/..."),
            ("/login//", "/login/"),
        ] {
            assert_eq!(ok(raw), want, "{raw}");
        }
    }

    #[test]
    fn unreserved_escapes_decode_others_normalise() {
        assert_eq!(ok("/api/%61dmin"), "/api/admin");
        assert_eq!(ok("/a%7eb"), "/a~b");
        assert_eq!(ok("/a%3fb"), "/a%3Fb");
        assert_eq!(ok("/%c3%a9"), "/%C3%A9");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/100%25"), "/100%25");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for (raw, why) in [
            ("", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("api/x", PathError::NotAbsolute),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/a%00b", PathError::ControlByte),
            ("/a%0d%0a", PathError::ControlByte),
            ("/a\u{1}b", PathError::ControlByte),
            ("/a%7F", PathError::ControlByte),
            ("/a%zz", PathError::BadPercent),
            ("/a%4", PathError::BadPercent),
            ("/a%", PathError::BadPercent),
            ("/pub/%252e%252e/api", PathError::DoubleEncoded),
            ("/a%252fb", PathError::DoubleEncoded),
            ("/a%255Cb", PathError::DoubleEncoded),
            ("/a%2525", PathError::DoubleEncoded),
            (
                "/pub/%25%32%65%25%32%65/api/admin",
                PathError::DoubleEncoded,
            ),
            ("/api/%2561dmin", PathError::DoubleEncoded),
            ("/api;x/admin", PathError::Semicolon),
            ("/api/admin;jsessionid=1", PathError::Semicolon),
        ] {
            assert_eq!(canonical(raw), Err(why), "{raw:?}");
        }
    }

    /// Properties over a generated set of paths: idempotent, no `//`, no dot segments.
    #[test]
    fn canonical_is_a_fixed_point() {
        let atoms = [
            "/", "a", ".", "..", "%2e", "%2E%2e", "%61", "%20", "%c3%a9", "é", "~", "/", "//",
        ];
        let mut n = 0;
        for a in atoms {
            for b in atoms {
                for c in atoms {
                    for d in atoms {
                        let p = format!("/{a}{b}{c}{d}");
                        let Ok(once) = canonical(&p) else { continue };
                        let twice = canonical(&once).expect("canonical output is accepted");
                        assert_eq!(once, twice, "{p}");
                        assert!(once.starts_with('/'), "{p}");
                        assert!(!once.contains("//"), "{p} -> {once}");
                        assert!(
                            once.split('/').all(|s| s != "." && s != ".."),
                            "{p} -> {once}"
                        );
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 10_000);
    }
}
