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
    /// The right password for a disabled account (answered 403).
    LoginDisabled,
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
            Event::LoginDisabled => "login_disabled",
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
        user_id: user.map(|u| u.get()),
        session_id: sid.map(|s| s.to_string()),
        client,
    };
    crate::proxy::access_log::append_event(&line);
}

/// An operator's change to a user, by the admin API or the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminEvent {
    /// A user created.
    UserCreated,
    /// A user's roles replaced.
    RolesSet,
    /// A user disabled.
    UserDisabled,
    /// A user enabled again.
    UserEnabled,
    /// A user deleted (a tombstone stays at the id).
    UserDeleted,
    /// Every session of a user ended.
    SessionsRevoked,
}

impl AdminEvent {
    /// Stable name in the log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            AdminEvent::UserCreated => "admin.user_created",
            AdminEvent::RolesSet => "admin.roles_set",
            AdminEvent::UserDisabled => "admin.user_disabled",
            AdminEvent::UserEnabled => "admin.user_enabled",
            AdminEvent::UserDeleted => "admin.user_deleted",
            AdminEvent::SessionsRevoked => "admin.sessions_revoked",
        }
    }
}

/// Who made an admin change: the admin API (and from where) or the CLI.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Actor {
    /// `/admin/*` on the ops listener, from this address.
    Api(Option<IpAddr>),
    /// `authgate users ...`.
    Cli,
}

#[derive(Serialize)]
struct AdminLine<'a> {
    time: String,
    event: &'static str,
    target_user_id: u64,
    via: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<&'a serde_json::Value>,
}

/// Write one admin event line: on the event stream for the API; for the CLI on
/// stderr, since its stdout is the command's answer. `old` and `new` are never
/// secrets (roles, the disabled flag, an email).
pub(crate) fn emit_admin(
    event: AdminEvent,
    target: UserId,
    actor: Actor,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
) {
    let (via, client) = match actor {
        Actor::Api(client) => ("api", client),
        Actor::Cli => ("cli", None),
    };
    let line = AdminLine {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event: event.name(),
        target_user_id: target.get(),
        via,
        client,
        old,
        new,
    };
    match actor {
        Actor::Api(_) => crate::proxy::access_log::append_event(&line),
        Actor::Cli => {
            if let Ok(text) = serde_json::to_string(&line) {
                eprintln!("{text}");
            }
        }
    }
}
