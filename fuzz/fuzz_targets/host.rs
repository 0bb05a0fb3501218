//! Host parsing (src/edge/host.rs): the routing host from `Host` and an
//! absolute-form target's authority, and a route's `host:` value.
//!
//! Input: the `Host` value, then optionally a `\n` and the target authority.
//! A leading byte 0x00 means no `Host` header at all.
//!
//! Properties of an accepted host `h`:
//! - a DNS name: non-empty, at most 253 bytes, labels of 1..=63 of `[a-z0-9_-]`,
//!   no upper case, no trailing dot; or an IPv6 literal given in brackets;
//! - canonical: parsing it again (bracketed if IPv6) gives itself; adding a port
//!   or upper-casing the input changes nothing;
//! - a route host (no port allowed) canonicalises like a request host;
//! - `routing_host` is the header's host if any, else the target's; it refuses
//!   (Mismatch) exactly when both are valid and differ, or the header is empty
//!   and the target valid; with neither (an empty header counts as none) it
//!   refuses (Missing); it is symmetric when both are given.
#![no_main]

use authgate::fuzz_api::{canonical_host, route_host, routing_host};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv6Addr;

fn check(input: &[u8], h: &str) {
    if h.contains(':') {
        assert_eq!(input.first(), Some(&b'['), "{input:?} -> {h:?}");
        let ip: Ipv6Addr = h.parse().unwrap_or_else(|_| panic!("{input:?} -> {h:?}"));
        assert_eq!(ip.to_string(), h);
        let bracketed = format!("[{h}]");
        assert_eq!(canonical_host(bracketed.as_bytes()).as_deref(), Ok(h));
        assert_eq!(
            canonical_host(format!("{bracketed}:8080").as_bytes()).as_deref(),
            Ok(h)
        );
        return;
    }
    assert!(!h.is_empty() && h.len() <= 253, "{input:?} -> {h:?}");
    assert!(!h.ends_with('.'), "{input:?} -> {h:?}");
    for l in h.split('.') {
        assert!(
            (1..=63).contains(&l.len()),
            "{input:?} -> {h:?}: label {l:?}"
        );
        assert!(
            l.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'),
            "{input:?} -> {h:?}"
        );
    }
    assert_eq!(
        canonical_host(h.as_bytes()).as_deref(),
        Ok(h),
        "not idempotent"
    );
    assert_eq!(
        canonical_host(format!("{h}:443").as_bytes()).as_deref(),
        Ok(h)
    );
    assert_eq!(canonical_host(format!("{h}.").as_bytes()).as_deref(), Ok(h));
    assert_eq!(route_host(h).as_deref(), Ok(h));
    assert_eq!(
        canonical_host(&input.to_ascii_uppercase()).as_deref(),
        Ok(h),
        "case changes {input:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let (header, target) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let header = match header.split_first() {
        Some((0, _)) => None,
        _ => Some(header),
    };

    let from_header = header.map(canonical_host);
    let from_target = target.map(canonical_host);
    for (raw, parsed) in [(header, &from_header), (target, &from_target)] {
        if let (Some(raw), Some(Ok(h))) = (raw, parsed) {
            check(raw, h);
        }
    }

    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = route_host(s) {
            assert_eq!(canonical_host(s.as_bytes()).as_deref(), Ok(r.as_str()));
            check(s.as_bytes(), &r);
        }
    }

    let routed = routing_host(header, target);
    let h = header.filter(|h| !h.is_empty());
    let empty_header = header.is_some() && h.is_none();
    match (h.map(canonical_host), target.map(canonical_host)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => assert!(routed.is_err(), "{data:?}"),
        (Some(Ok(a)), Some(Ok(b))) if a != b => {
            assert_eq!(routed, Err(authgate_mismatch()), "{data:?}")
        }
        (Some(Ok(a)), _) => assert_eq!(routed, Ok(a), "{data:?}"),
        (None, Some(Ok(_))) if empty_header => {
            assert_eq!(routed, Err(authgate_mismatch()), "{data:?}")
        }
        (None, Some(Ok(b))) => assert_eq!(routed, Ok(b), "{data:?}"),
        (None, None) => assert!(routed.is_err(), "{data:?}"),
    }
    // Symmetric when both are non-empty (an empty Host counts as absent, an
    // empty target authority is malformed).
    if let (Some(h), Some(t)) = (h, target.filter(|t| !t.is_empty())) {
        assert_eq!(routing_host(Some(t), Some(h)), routed, "not symmetric");
    }
});

/// The sentence of `HostError::Mismatch`.
fn authgate_mismatch() -> &'static str {
    match routing_host(Some(b"a"), Some(b"b")) {
        Err(e) => e,
        Ok(_) => panic!("a and b do not match"),
    }
}
