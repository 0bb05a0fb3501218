//! POST /password: Bearer + `{"current_password","new_password"}` → 200 a new pair; every other session ends.
//!
//! A wrong current password is a failed login of the account (it counts in
//! `login_per_account`, so a stolen session cannot guess unthrottled), and the
//! session it was sent with ends after [`MAX_FAILURES_PER_SESSION`] of them.

use super::{json, logout, AuthApi, Endpoint, Reply, Request};
use crate::auth::revocations::Identity;
use crate::domain::Password;
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::store::sessions::Guard;

/// Wrong current passwords a session may send; the last one ends it.
pub(super) const MAX_FAILURES_PER_SESSION: u64 = 5;

/// A `/password` body, read and checked.
#[derive(Debug)]
pub(crate) struct Body {
    /// The current password, verbatim.
    pub(crate) current: String,
    /// The new one, within the length rules.
    pub(crate) new: Password,
}

/// Read a `/password` body (also what the `auth_json` fuzz target runs,
/// through src/fuzz_api.rs).
pub(crate) fn parse(obj: &json::Fields) -> Result<Body, ErrorReply> {
    let current = json::string(obj, "current_password")?;
    let new = Password::parse_field(json::string(obj, "new_password")?, "new_password")?;
    Ok(Body { current, new })
}

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    let Body { current, new } = parse(&req.fields()?)?;
    api.attempt_per_ip(Endpoint::Password, &req).await?;
    let Some((stored, email)) = api.store.password_and_email(caller.user).await? else {
        return Err(ErrorReply::UnknownUser);
    };
    // A guess at the account's password, counted as a failed login until it is right.
    let account = api.account_failure_counter(&email);
    let reserved = api.reserve(Endpoint::Password, &account).await?;
    let check = match api
        .passwords
        .verify(&current, Some(stored), req.client_ip)
        .await
    {
        Ok(check) => check,
        Err(e) => {
            api.store.throttle_release(reserved).await?;
            return Err(e);
        }
    };
    if !check.matched {
        wrong_password(api, &caller, &req).await?;
        return Err(ErrorReply::InvalidCredentials);
    }
    api.store.throttle_release(reserved).await?;
    let hash = api.passwords.hash(new.expose(), req.client_ip).await?;
    if !api.store.set_password_hash(caller.user, &hash).await? {
        return Err(ErrorReply::UnknownUser);
    }
    // Every session ends, the caller's included; the caller continues in a new one.
    logout::end_every_session(api, caller.user).await?;
    events::emit(
        Event::PasswordChanged,
        Some(caller.user),
        caller.sid,
        req.client_ip,
    );
    let guard = Guard::PasswordIs(&hash);
    Ok(Reply::ok(api.open_session(caller.user, guard, &req).await?))
}

/// Record a wrong current password; the session that sent too many ends.
async fn wrong_password(
    api: &AuthApi,
    caller: &Identity,
    req: &Request<'_>,
) -> Result<(), ErrorReply> {
    events::emit(
        Event::PasswordChangeFailed,
        Some(caller.user),
        caller.sid,
        req.client_ip,
    );
    let Some(sid) = caller.sid else {
        return Ok(());
    };
    let failures = api.store.count_password_failure(caller.user, sid).await?;
    if failures >= MAX_FAILURES_PER_SESSION {
        api.end_session(caller.user, sid, req.client_ip).await?;
    }
    Ok(())
}
