//! One JSON line per request on stdout; never a token, password, cookie or Authorization header.

use super::RequestCtx;
use pingora_proxy::Session;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: &'a str,
    client: Option<String>,
    method: &'a str,
    /// The path only: query strings can carry secrets (`?token=`), so they are left out.
    path: &'a str,
    route: &'a str,
    status: u16,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_rejected: Option<&'static str>,
}

/// Write the line for a finished request.
pub fn write(session: &Session, ctx: &RequestCtx, route: &str, status: u16) {
    let req = session.req_header();
    let line = Line {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        request_id: &ctx.request_id,
        client: session.client_addr().map(|a| a.to_string()),
        method: req.method.as_str(),
        path: req.uri.path(),
        route,
        status,
        duration_ms: (ctx.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        upstream: ctx.peer.as_deref(),
        user_id: ctx.user.map(|u| u.0),
        token_rejected: ctx.rejection.map(|r| r.as_str()),
    };
    let mut buf = match serde_json::to_vec(&line) {
        Ok(b) => b,
        Err(e) => {
            log::error!("cannot encode access log line: {e}");
            return;
        }
    };
    buf.push(b'\n');
    // One write per line keeps lines whole when several threads log at once.
    let _ = std::io::stdout().lock().write_all(&buf);
}
