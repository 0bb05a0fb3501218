//! Request body framing: `Transfer-Encoding` must be exactly `chunked`, the one coding the gateway decodes.
//!
//! Pingora frames a request by its final coding and refuses one whose final
//! coding is not `chunked`; what comes before it is left to the application.
//! A coding the gateway does not decode (`gzip, chunked`) would be forwarded as
//! `chunked` with the other layer dropped, and `chunked, chunked` is a body
//! framed twice that two parsers can split differently (RFC 9112 §6.1: a
//! sender must not apply chunked more than once; a server answers 501 for a
//! transfer coding it does not implement).

use http::HeaderMap;

/// Why a request's framing is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// `chunked` more than once, or an empty list element (400).
    Ambiguous,
    /// A transfer coding other than `chunked` (501).
    UnsupportedCoding,
}

impl FramingError {
    /// A sentence for the client; it never repeats the header.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            FramingError::Ambiguous => {
                "Transfer-Encoding must name chunked exactly once, and nothing else"
            }
            FramingError::UnsupportedCoding => "the only transfer coding accepted is chunked",
        }
    }
}

/// Check every `Transfer-Encoding` line of `headers` together, as one list.
/// Allocation-free; a request without the header costs one lookup.
pub(crate) fn check(headers: &HeaderMap) -> Result<(), FramingError> {
    let mut chunked = 0;
    let mut unsupported = false;
    for value in headers.get_all(http::header::TRANSFER_ENCODING) {
        for coding in value.as_bytes().split(|&c| c == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                return Err(FramingError::Ambiguous);
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else {
                unsupported = true;
            }
        }
    }
    if chunked > 1 {
        Err(FramingError::Ambiguous)
    } else if unsupported {
        Err(FramingError::UnsupportedCoding)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn te(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::TRANSFER_ENCODING, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn chunked_alone_passes() {
        for ok in [&[][..], &["chunked"], &["Chunked"], &[" chunked "]] {
            assert_eq!(check(&te(ok)), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn chunked_twice_or_empty_elements_are_ambiguous() {
        for bad in [
            &["chunked, chunked"][..],
            &["chunked", "chunked"],
            &["chunked,"],
            &[", chunked"],
            &["gzip, chunked, chunked"],
        ] {
            assert_eq!(check(&te(bad)), Err(FramingError::Ambiguous), "{bad:?}");
        }
    }

    #[test]
    fn other_codings_are_not_implemented() {
        for bad in [
            &["gzip, chunked"][..],
            &["gzip", "chunked"],
            &["identity, chunked"],
        ] {
            assert_eq!(
                check(&te(bad)),
                Err(FramingError::UnsupportedCoding),
                "{bad:?}"
            );
        }
    }
}
