//! GET /me and PUT /me: the caller's profile `{"id","username","email"}`, authenticated by the access token.

use super::{json, AuthApi, Reply, Request};
use crate::auth::access::bearer_token;
use crate::domain::{UserId, Username};
use crate::error::ErrorReply;
use crate::store::Profile;

fn caller(api: &AuthApi, req: &Request<'_>) -> Result<UserId, ErrorReply> {
    let token = bearer_token(req.authorization).map_err(ErrorReply::InvalidToken)?;
    api.access.verify(token).map_err(ErrorReply::InvalidToken)
}

fn render(p: Profile) -> Reply {
    Reply::ok(serde_json::json!({ "id": p.id.0, "username": p.username, "email": p.email }))
}

pub(super) async fn get(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let user = caller(api, &req)?;
    let profile = api
        .store
        .profile(user)
        .await?
        .ok_or(ErrorReply::UnknownUser)?;
    Ok(render(profile))
}

pub(super) async fn put(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let user = caller(api, &req)?;
    let obj = json::object(req.body)?;
    let username = Username::parse(&json::string(&obj, "username")?)?;
    let profile = api
        .store
        .set_username(user, &username)
        .await?
        .ok_or(ErrorReply::UnknownUser)?;
    Ok(render(profile))
}
