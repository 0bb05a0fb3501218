//! POST /logout: `{"refresh_token"}` → 200 `{"success": "User logged out."}`; the token is revoked.

use super::{json, AuthApi, Reply, Request};
use crate::auth::refresh::Fingerprint;
use crate::error::ErrorReply;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let obj = json::object(req.body)?;
    let token = json::string(&obj, "refresh_token")?;
    let fp = Fingerprint::of_token(&token).ok_or(ErrorReply::InvalidRefreshToken)?;
    if !api.store.revoke_refresh(&fp).await? {
        return Err(ErrorReply::InvalidRefreshToken);
    }
    Ok(Reply::ok(
        serde_json::json!({ "success": "User logged out." }),
    ))
}
