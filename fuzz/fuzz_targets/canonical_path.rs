//! The canonical request path (src/edge/path.rs), decided once and used for routing and forwarding.
//!
//! Input: a path (UTF-8), then optionally a 0xFF byte and one more byte picking a
//! character to percent-encode.
//!
//! The resolution itself: an independent resolver written from the rules
//! (`authgate::fuzz_api::reference_canonical_path`: a byte-by-byte decode, merged
//! slashes, RFC 3986 §5.2.4's buffer algorithm) gives the same path, or refuses
//! the same inputs.
//!
//! Properties of a canonical path `c`:
//! - it starts with `/`; canonicalising it again gives itself (idempotent);
//! - a path that comes back borrowed is unchanged;
//! - no `//`, no `.` or `..` segment, no `\`, `;` or control byte;
//! - every `%` starts an upper-case `%XX` escape of a byte that is not unreserved
//!   (those are decoded), never `%2F`/`%5C`, and never `%25` followed by two hex
//!   digits (a double encoding the module refuses);
//! - percent-encoding one unreserved character of the input (outside an escape)
//!   changes nothing: same canonical path, or refused again.
#![no_main]

use authgate::fuzz_api::{canonical_path, reference_canonical_path};
use libfuzzer_sys::fuzz_target;

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn upper_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'A'..=b'F').contains(&c)
}

fn check(input: &str, c: &str, borrowed: bool) {
    let b = c.as_bytes();
    assert_eq!(b.first(), Some(&b'/'), "{input:?} -> {c:?}");
    if borrowed {
        assert_eq!(c, input);
    }
    assert!(!c.contains("//"), "{input:?} -> {c:?}");
    for seg in c.split('/').skip(1) {
        assert!(
            seg != "." && seg != "..",
            "{input:?} -> {c:?} has a dot segment"
        );
    }
    assert!(
        !b.iter()
            .any(|&x| x == b'\\' || x == b';' || x < 0x20 || x == 0x7f),
        "{c:?}"
    );
    for (i, &x) in b.iter().enumerate() {
        if x != b'%' {
            continue;
        }
        let (h, l) = (b.get(i + 1).copied(), b.get(i + 2).copied());
        let (Some(h), Some(l)) = (h, l) else {
            panic!("{input:?} -> {c:?}: truncated escape")
        };
        assert!(
            upper_hex(h) && upper_hex(l),
            "{input:?} -> {c:?}: escape not upper-case hex"
        );
        let v = u8::from_str_radix(std::str::from_utf8(&[h, l]).unwrap(), 16).unwrap();
        assert!(
            !unreserved(v),
            "{input:?} -> {c:?}: unreserved byte left encoded"
        );
        assert!(
            v != b'/' && v != b'\\',
            "{input:?} -> {c:?}: encoded separator"
        );
        assert!(
            v >= 0x20 && v != 0x7f,
            "{input:?} -> {c:?}: encoded control"
        );
        if v == b'%' {
            let double =
                b.get(i + 3).copied().is_some_and(hex) && b.get(i + 4).copied().is_some_and(hex);
            assert!(!double, "{input:?} -> {c:?}: double encoding");
        }
    }
    match canonical_path(c) {
        Ok((again, _)) => assert_eq!(again, c, "not idempotent: {input:?} -> {c:?} -> {again:?}"),
        Err(e) => panic!("{input:?} -> {c:?} refused on the second pass: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (path, pick) = match data.iter().rposition(|&b| b == 0xFF) {
        Some(i) if i + 2 == data.len() => (&data[..i], Some(usize::from(data[i + 1]))),
        _ => (data, None),
    };
    let Ok(input) = std::str::from_utf8(path) else {
        return;
    };
    let first = canonical_path(input);
    assert_eq!(
        first.as_ref().ok().map(|(c, _)| c.as_str()),
        reference_canonical_path(input).as_deref(),
        "{input:?}: the gateway and the reference resolver disagree"
    );
    if let Ok((c, borrowed)) = &first {
        check(input, c, *borrowed);
    }
    // Encode one unreserved character that is not inside an escape.
    let b = input.as_bytes();
    let candidates: Vec<usize> = (0..b.len())
        .filter(|&i| unreserved(b[i]))
        .filter(|&i| !(i >= 1 && b[i - 1] == b'%') && !(i >= 2 && b[i - 2] == b'%'))
        .collect();
    if let (Some(pick), false) = (pick, candidates.is_empty()) {
        let i = candidates[pick % candidates.len()];
        let encoded = format!("{}%{:02X}{}", &input[..i], b[i], &input[i + 1..]);
        match (&first, canonical_path(&encoded)) {
            (Ok((c, _)), Ok((e, _))) => assert_eq!(c, &e, "{input:?} vs {encoded:?}"),
            (Err(_), Err(_)) => {}
            (a, e) => panic!("{input:?} gives {a:?} but {encoded:?} gives {e:?}"),
        }
    }
});
