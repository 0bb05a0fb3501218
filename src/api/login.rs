//! POST /login: `{"email","password"}` → 200 `{"access_token","refresh_token"}`.

use super::{json, AuthApi, Reply, Request};
use crate::domain::Email;
use crate::error::ErrorReply;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let obj = json::object(req.body)?;
    let raw_email = json::string(&obj, "email")?;
    let password = json::string(&obj, "password")?;
    // An address that cannot exist is just another unknown account: same cost, same answer.
    let account = match Email::parse(&raw_email) {
        Ok(email) => api.store.find_credentials(&email).await?,
        Err(_) => None,
    };
    let (user, stored) = match account {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matched = api.passwords.verify(&password, stored).await?;
    match user {
        Some(user) if matched => Ok(Reply::ok(api.issue_pair(user).await?)),
        _ => Err(ErrorReply::InvalidCredentials),
    }
}
