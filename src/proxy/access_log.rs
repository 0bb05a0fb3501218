//! One JSON line per request on stdout, written by a thread of its own; never a token,
//! password, cookie or Authorization header.

use super::RequestCtx;
use pingora_proxy::Session;
use serde::Serialize;
use std::io::Write;
use std::sync::{Condvar, Mutex, OnceLock};
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
        user_id: ctx.user.map(|u| u.get()),
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

/// Lines are batched (a write(2) per request cost ~3 us of the proxy path,
/// bench/RESULTS.md) and written by one thread of their own, so a request
/// never waits on stdout: when the reader of stdout does not keep up (a pipe
/// nobody reads), whole batches of access lines are dropped and counted in
/// `authgate_log_lines_dropped_total`; security events are queued apart and
/// never dropped. The lock is held only to append or take a buffer, never
/// while writing.
struct Queues {
    /// Access lines not yet handed to the writer, and how many.
    pending: Vec<u8>,
    pending_lines: u64,
    /// Full batches waiting for the writer, at most `MAX_BATCHES`.
    batches: std::collections::VecDeque<(Vec<u8>, u64)>,
    /// Security events waiting for the writer: never dropped.
    events: Vec<u8>,
    /// The writer is writing (what it took is not in the queues any more).
    writing: bool,
}

static QUEUES: Mutex<Queues> = Mutex::new(Queues {
    pending: Vec::new(),
    pending_lines: 0,
    batches: std::collections::VecDeque::new(),
    events: Vec::new(),
    writing: false,
});
/// Wakes the writer (work queued) and `flush` (the writer went idle).
static WAKE: Condvar = Condvar::new();
/// A batch is handed to the writer at this size...
const FLUSH_AT: usize = 64 * 1024;
/// ...or when it is this old.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Batches that may wait for a slow stdout: 1 MiB of access lines.
const MAX_BATCHES: usize = 16;
/// How long `flush` at exit waits for a stdout that does not drain.
const EXIT_FLUSH_WAIT: Duration = Duration::from_secs(2);

fn queues() -> std::sync::MutexGuard<'static, Queues> {
    QUEUES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Encode `line` as one JSON line straight into the pending buffer (no
/// allocation per request); may be dropped (and counted) if stdout stalls.
pub(crate) fn append<T: Serialize>(line: &T) {
    start_writer();
    let mut q = queues();
    let start = q.pending.len();
    if let Err(e) = serde_json::to_writer(&mut q.pending, line) {
        q.pending.truncate(start);
        drop(q);
        log::error!("cannot encode access log line: {e}");
        return;
    }
    q.pending.push(b'\n');
    q.pending_lines += 1;
    if q.pending.len() >= FLUSH_AT {
        hand_over(&mut q);
    }
}

/// Queue one security or audit event line: never dropped, whatever stdout does.
pub(crate) fn append_event<T: Serialize>(line: &T) {
    start_writer();
    let mut q = queues();
    let start = q.events.len();
    if let Err(e) = serde_json::to_writer(&mut q.events, line) {
        q.events.truncate(start);
        drop(q);
        log::error!("cannot encode security event line: {e}");
        return;
    }
    q.events.push(b'\n');
    WAKE.notify_all();
}

/// Move the pending access lines into the writer's queue, or drop and count
/// them when it is full.
fn hand_over(q: &mut Queues) {
    if q.pending.is_empty() {
        return;
    }
    let batch = std::mem::replace(&mut q.pending, Vec::with_capacity(FLUSH_AT + 1024));
    let lines = std::mem::take(&mut q.pending_lines);
    if q.batches.len() >= MAX_BATCHES {
        crate::metrics::METRICS.log_lines_dropped.inc_by(lines);
    } else {
        q.batches.push_back((batch, lines));
        WAKE.notify_all();
    }
}

/// Write out what is queued, waiting at most a little for a stdout that does
/// not drain: the process is about to exit. Lines still unwritten then are
/// counted as dropped.
pub(crate) fn flush() {
    let deadline = std::time::Instant::now() + EXIT_FLUSH_WAIT;
    let mut q = queues();
    hand_over(&mut q);
    WAKE.notify_all();
    if !writer_running() {
        // No writer (nothing was ever logged, or it could not start): write here.
        let events = std::mem::take(&mut q.events);
        let batches: Vec<_> = q.batches.drain(..).collect();
        drop(q);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&events);
        for (batch, _) in batches {
            let _ = out.write_all(&batch);
        }
        let _ = out.flush();
        return;
    }
    while q.writing || !q.batches.is_empty() || !q.events.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let lines: u64 = q.batches.iter().map(|(_, n)| n).sum();
            crate::metrics::METRICS.log_lines_dropped.inc_by(lines);
            return;
        }
        q = WAKE
            .wait_timeout(q, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

static WRITER: OnceLock<bool> = OnceLock::new();

fn writer_running() -> bool {
    WRITER.get().copied().unwrap_or(false)
}

/// Started on first use rather than at start-up: a thread started before
/// Pingora daemonises (forks) would not exist in the serving process.
fn start_writer() {
    WRITER.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("authgate-access-log".into())
            .spawn(write_forever);
        if let Err(e) = &spawned {
            log::error!("cannot start the access log writer: {e}");
        }
        spawned.is_ok()
    });
}

/// The writer: events first (they are never dropped), then the batches; the
/// pending lines once they are `FLUSH_EVERY` old. Whole lines only ever reach
/// stdout, so lines from several threads never interleave.
fn write_forever() {
    let mut q = queues();
    let mut handed = std::time::Instant::now();
    loop {
        if handed.elapsed() >= FLUSH_EVERY {
            hand_over(&mut q);
            handed = std::time::Instant::now();
        }
        if q.events.is_empty() && q.batches.is_empty() {
            q.writing = false;
            WAKE.notify_all();
            q = WAKE
                .wait_timeout(q, FLUSH_EVERY)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            continue;
        }
        q.writing = true;
        let events = std::mem::take(&mut q.events);
        let batch = q.batches.pop_front();
        drop(q);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&events);
        if let Some((batch, _)) = batch {
            let _ = out.write_all(&batch);
        }
        let _ = out.flush();
        drop(out);
        q = queues();
    }
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
