//! POST /refresh: `{"refresh_token"}` → 200 a new pair; the presented token is consumed.

use super::{json, AuthApi, Reply, Request};
use crate::auth::refresh::Fingerprint;
use crate::error::ErrorReply;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let obj = json::object(req.body)?;
    let token = json::string(&obj, "refresh_token")?;
    let fp = Fingerprint::of_token(&token).ok_or(ErrorReply::InvalidRefreshToken)?;
    let user = api
        .store
        .take_refresh(&fp)
        .await?
        .ok_or(ErrorReply::InvalidRefreshToken)?;
    Ok(Reply::ok(api.issue_pair(user).await?))
}
