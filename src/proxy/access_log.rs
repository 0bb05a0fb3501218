//! One JSON line per request on stdout; never a token, password, cookie or Authorization header.

use super::RequestCtx;
use pingora_proxy::Session;
use serde::Serialize;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Serialize)]
struct Line<'a> {
    time: String,
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
    let line = Line {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        request_id: &ctx.request_id,
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
