//! Request ids: the client's `X-Request-Id` when it is plain, else a new one made without a syscall or an allocation.

use std::cell::Cell;

/// The longest client id kept.
const MAX_CLIENT_ID: usize = 128;

/// One request's id.
#[derive(Default)]
pub(crate) enum RequestId {
    /// Not decided yet (nothing of the request has been read).
    #[default]
    None,
    /// Made here: 32 hex digits.
    Own([u8; 32]),
    /// The client's, checked to be short and plain.
    Client(Box<str>),
}

impl RequestId {
    /// The client's `X-Request-Id` if it is at most 128 characters of
    /// `[A-Za-z0-9-_.:]`, otherwise a new id.
    pub(crate) fn from_client(value: Option<&[u8]>) -> RequestId {
        let plain = |v: &[u8]| {
            !v.is_empty()
                && v.len() <= MAX_CLIENT_ID
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        };
        match value.filter(|v| plain(v)).map(std::str::from_utf8) {
            Some(Ok(v)) => RequestId::Client(v.into()),
            _ => RequestId::new(),
        }
    }

    /// A new id: this thread's random 64-bit prefix and its next counter value.
    ///
    /// Unique across threads, processes and instances unless two threads draw
    /// the same 64-bit prefix. A UUID v4 costs a random draw and its
    /// formatting on every request; this costs an increment.
    pub(crate) fn new() -> RequestId {
        thread_local! {
            // Drawn in the serving process (after a daemon fork), per thread,
            // so no counter is shared between threads.
            static PREFIX: u64 = uuid::Uuid::new_v4().as_u64_pair().0;
            static NEXT: Cell<u64> = const { Cell::new(0) };
        }
        let prefix = PREFIX.with(|p| *p);
        let n = NEXT.with(|c| {
            let n = c.get();
            c.set(n.wrapping_add(1));
            n
        });
        let mut out = [0u8; 32];
        hex(prefix, &mut out[..16]);
        hex(n, &mut out[16..]);
        RequestId::Own(out)
    }

    /// The id as text; empty before it is decided.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            RequestId::None => "",
            RequestId::Own(b) => std::str::from_utf8(b).unwrap_or_default(),
            RequestId::Client(s) => s,
        }
    }

    /// Whether no id was decided (the request never got that far).
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, RequestId::None)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `v` as 16 lowercase hex digits into `out`.
fn hex(v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate().take(16) {
        *o = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(RequestId::from_client(Some(b"abc-123")).as_str(), "abc-123");
        for bad in [&b"a b\"<script>"[..], b"", &[b'a'; 129], b"caf\xc3\xa9"] {
            let id = RequestId::from_client(Some(bad));
            assert!(matches!(id, RequestId::Own(_)), "{bad:?}");
        }
        assert!(matches!(RequestId::from_client(None), RequestId::Own(_)));
    }

    #[test]
    fn own_ids_are_hex_and_never_repeat() {
        let a = RequestId::new();
        let b = RequestId::new();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
        // Same thread: same prefix, the counter moves on.
        assert_eq!(a.as_str()[..16], b.as_str()[..16]);
        let other = std::thread::spawn(|| RequestId::new().as_str().to_owned())
            .join()
            .unwrap();
        assert_ne!(a.as_str()[..16], other[..16]);
    }
}
