//! POST /password: Bearer + `{"current_password","new_password"}` → 200 a new pair; every other session ends.

use super::{json, logout, AuthApi, Endpoint, Reply, Request};
use crate::domain::Password;
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::store::sessions::Guard;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    let obj = json::object(req.body)?;
    let current = json::string(&obj, "current_password")?;
    let new = Password::parse_field(json::string(&obj, "new_password")?, "new_password")?;
    api.attempt_per_ip(Endpoint::Password, &req).await?;
    let stored = api.store.password_hash(caller.user).await?;
    if stored.is_none() {
        return Err(ErrorReply::UnknownUser);
    }
    if !api.passwords.verify(&current, stored).await?.matched {
        return Err(ErrorReply::InvalidCredentials);
    }
    let hash = api.passwords.hash(new.expose()).await?;
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
