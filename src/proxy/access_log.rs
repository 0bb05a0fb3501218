//! One JSON line per request on stdout; never a token, password, cookie or Authorization header.

use super::RequestCtx;
use pingora_proxy::Session;
use serde::Serialize;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    request_id: &'a str,
    /// By the trusted-proxy rule: the peer, or the client a trusted proxy names.
    client: Option<std::net::IpAddr>,
    method: &'a str,
    /// The path only: query strings can carry secrets (`?token=`), so they are left out.
    path: &'a str,
    route: &'a str,
    status: u16,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_rejected: Option<&'static str>,
}

/// Write the line for a finished request.
pub(crate) fn write(
    session: &Session,
    ctx: &RequestCtx,
    route: &str,
    status: u16,
    elapsed: Duration,
) {
    let req = session.req_header();
    let mut time = [0u8; 24];
    let line = Line {
        time: now_rfc3339(&mut time),
        request_id: ctx.request_id.as_str(),
        client: ctx.client_ip,
        method: req.method.as_str(),
        path: req.uri.path(),
        route,
        status,
        duration_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        upstream: ctx.peer,
        user_id: ctx.user.map(|u| u.0),
        token_rejected: ctx.rejection.map(|r| r.as_str()),
    };
    append(&line);
}

/// The time now as `2026-11-30T01:02:03.456Z` in `out`, the same text
/// chrono's `to_rfc3339_opts(Millis, true)` gives. Everything up to the
/// second is formatted once a second per thread, not on every request.
fn now_rfc3339(out: &mut [u8; 24]) -> &str {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 20])> = const { std::cell::Cell::new((u64::MAX, [0; 20])) };
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut head) = SECOND.get();
    if cached != secs {
        let formatted = i64::try_from(secs)
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S.").to_string())
            .unwrap_or_default();
        if formatted.len() == head.len() {
            head.copy_from_slice(formatted.as_bytes());
            SECOND.set((secs, head));
        }
    }
    out[..20].copy_from_slice(&head);
    let ms = since.subsec_millis();
    for (i, d) in [ms / 100, ms / 10 % 10, ms % 10].into_iter().enumerate() {
        out[20 + i] = b'0' + (d as u8);
    }
    out[23] = b'Z';
    std::str::from_utf8(out).unwrap_or_default()
}

/// Lines waiting to be written. A write(2) per request cost ~3 us of the
/// proxy path (bench/RESULTS.md), so lines are batched: written when 64 KiB
/// have gathered, and at least every FLUSH_EVERY by a small thread.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
const FLUSH_AT: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Encode `line` as one JSON line straight into the pending buffer (no
/// allocation per request); security events use the same stream.
pub(crate) fn append<T: Serialize>(line: &T) {
    start_flusher();
    let Ok(mut pending) = PENDING.lock() else {
        return;
    };
    let start = pending.len();
    if let Err(e) = serde_json::to_writer(&mut *pending, line) {
        pending.truncate(start);
        log::error!("cannot encode access log line: {e}");
        return;
    }
    pending.push(b'\n');
    if pending.len() >= FLUSH_AT {
        write_out(&mut pending);
    }
}

/// Write every pending line out now: the process is about to exit.
pub(crate) fn flush() {
    let mut pending = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !pending.is_empty() {
        write_out(&mut pending);
    }
    let _ = std::io::stdout().lock().flush();
}

fn write_out(pending: &mut Vec<u8>) {
    // Whole lines only ever reach stdout, so lines from several threads never interleave.
    let _ = std::io::stdout().lock().write_all(pending);
    pending.clear();
}

/// Started on first use rather than at start-up: a thread started before
/// Pingora daemonises (forks) would not exist in the serving process.
fn start_flusher() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("authgate-access-log".into())
            .spawn(|| loop {
                std::thread::sleep(FLUSH_EVERY);
                if let Ok(mut pending) = PENDING.lock() {
                    if !pending.is_empty() {
                        write_out(&mut pending);
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the access log flusher: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_reads_as_chrono_writes_it() {
        let mut buf = [0u8; 24];
        let before = chrono::Utc::now();
        let ours = now_rfc3339(&mut buf).to_owned();
        let after = chrono::Utc::now();
        let parsed = chrono::DateTime::parse_from_rfc3339(&ours).unwrap();
        assert!(ours.ends_with('Z') && ours.len() == 24, "{ours}");
        let floor = before - chrono::Duration::milliseconds(1);
        assert!(parsed >= floor && parsed <= after, "{ours}");
        // A second call within the same second reuses the cached head.
        let again = now_rfc3339(&mut buf).to_owned();
        assert!(again >= ours, "{again} < {ours}");
    }
}
