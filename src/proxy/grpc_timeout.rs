//! The `grpc-timeout` request header (gRPC over HTTP/2): the client's deadline, honoured as the upstream's.

use pingora_http::RequestHeader;
use std::time::{Duration, Instant};

/// The deadline a gRPC request's `grpc-timeout` sets, counted from `started`;
/// none for other requests or without a usable value.
pub(super) fn deadline(req: &RequestHeader, started: Instant) -> Option<Instant> {
    if !super::respond::is_grpc(req) {
        return None;
    }
    let timeout = parse(req.headers.get("grpc-timeout")?.as_bytes())?;
    started.checked_add(timeout)
}

/// The timeout of a `grpc-timeout` value: at most 8 digits and a unit (`H`
/// hours, `M` minutes, `S` seconds, `m` ms, `u` us, `n` ns). `None` for
/// anything else: a malformed value is ignored, as gRPC servers do, and the
/// cluster's own timeouts hold.
pub(super) fn parse(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_digits_and_a_unit() {
        assert_eq!(parse(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse(b"99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse(b"0n"), Some(Duration::ZERO));
        for bad in [
            &b""[..],
            b"m",
            b"100",
            b"100x",
            b"123456789m",
            b"-1S",
            b"1.5S",
            b" 1S",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
