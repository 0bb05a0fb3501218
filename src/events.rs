//! Security events: one JSON line each on the access-log stream (stdout), with an `event`
//! field, never a secret; queued apart from access lines and never dropped.

use crate::domain::{SessionId, UserId};
use serde::Serialize;
use std::net::IpAddr;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A login with a wrong password or unknown email.
    LoginFailed,
    /// A login refused by a throttle before any hashing.
    LoginThrottled,
    /// A refresh token replayed after the grace window: its session was revoked.
    RefreshReuseDetected,
    /// A session ended by its user, by logout, or by the per-user cap.
    SessionRevoked,
    /// Every session of a user ended at their request.
    LogoutAll,
    /// A password changed; every other session ended.
    PasswordChanged,
    /// `POST /password` with a wrong current password.
    PasswordChangeFailed,
}

impl Event {
    /// Stable name in the log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::LoginFailed => "login_failed",
            Event::LoginThrottled => "login_throttled",
            Event::RefreshReuseDetected => "refresh_reuse_detected",
            Event::SessionRevoked => "session_revoked",
            Event::LogoutAll => "logout_all",
            Event::PasswordChanged => "password_changed",
            Event::PasswordChangeFailed => "password_change_failed",
        }
    }
}

#[derive(Serialize)]
struct Line {
    time: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<IpAddr>,
}

/// Write one event line.
pub(crate) fn emit(
    event: Event,
    user: Option<UserId>,
    sid: Option<SessionId>,
    client: Option<IpAddr>,
) {
    let line = Line {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event: event.name(),
        user_id: user.map(|u| u.0),
        session_id: sid.map(|s| s.to_string()),
        client,
    };
    crate::proxy::access_log::append_event(&line);
}
