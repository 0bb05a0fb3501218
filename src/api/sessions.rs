//! GET /sessions: the caller's live sessions, newest first; `DELETE /sessions/<id>`: end one of them (204).

use super::{AuthApi, Reply, Request};
use crate::domain::SessionId;
use crate::error::ErrorReply;
use crate::store::sessions::SessionInfo;
use http::StatusCode;

/// A time in milliseconds since the epoch as RFC 3339 with milliseconds, as
/// every time the gateway shows (sessions, the admin API's users).
pub(crate) fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One session as `GET /sessions` shows it, but for `current` (which only a
/// caller's own list has); the admin API shows the same rows.
pub(crate) fn row(s: &SessionInfo) -> serde_json::Value {
    serde_json::json!({
        "id": s.sid.to_string(),
        "created_at": iso(s.created_at_ms),
        "last_used_at": iso(s.last_used_at_ms),
        "ip": s.ip,
        "user_agent": s.user_agent,
    })
}

pub(super) async fn list(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    let sessions = api.store.list_sessions(caller.user).await?;
    let rows: Vec<serde_json::Value> = sessions
        .iter()
        .map(|s| {
            let mut r = row(s);
            r["current"] = (caller.sid == Some(s.sid)).into();
            r
        })
        .collect();
    Ok(Reply::ok(serde_json::json!({ "sessions": rows })))
}

pub(super) async fn delete(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    let id = req
        .path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    // An id of the wrong shape names no session, like one of another user.
    let sid = SessionId::parse(id).ok_or(ErrorReply::NoSession)?;
    if !api.end_session(caller.user, sid, req.client_ip).await? {
        return Err(ErrorReply::NoSession);
    }
    Ok(Reply {
        status: StatusCode::NO_CONTENT,
        body: serde_json::Value::Null,
    })
}
