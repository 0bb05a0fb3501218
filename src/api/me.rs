//! GET /me and PUT /me: the caller's profile `{"id","username","email"}`, authenticated by the access token.

use super::{json, AuthApi, Reply, Request};
use crate::domain::Username;
use crate::error::ErrorReply;
use crate::store::Profile;

fn render(p: Profile) -> Reply {
    Reply::ok(serde_json::json!({ "id": p.id.get(), "username": p.username, "email": p.email }))
}

pub(super) async fn get(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    let profile = api
        .store
        .profile(caller.user)
        .await?
        .ok_or(ErrorReply::UnknownUser)?;
    Ok(render(profile))
}

/// Read a `PUT /me` body: the new username (also what the `auth_json` fuzz
/// target runs, through src/fuzz_api.rs).
pub(crate) fn parse(obj: &json::Fields) -> Result<Username, ErrorReply> {
    Ok(Username::parse(&json::string(obj, "username")?)?)
}

pub(super) async fn put(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    let username = parse(&req.fields()?)?;
    let profile = api
        .store
        .set_username(caller.user, &username)
        .await?
        .ok_or(ErrorReply::UnknownUser)?;
    Ok(render(profile))
}
