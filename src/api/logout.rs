//! POST /logout: `{"refresh_token"}` → 200 `{"success": "User logged out."}`; the token is revoked.

use super::{json, AuthApi, Reply, Request};
use crate::auth::refresh::fingerprint;
use crate::error::ApiError;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ApiError> {
    let obj = json::object(req.body)?;
    let token = json::string(&obj, "refresh_token")?;
    let fp = fingerprint(&token).ok_or(ApiError::InvalidRefreshToken)?;
    if !api.store.revoke_refresh(&fp).await? {
        return Err(ApiError::InvalidRefreshToken);
    }
    Ok(Reply::ok(
        serde_json::json!({ "success": "User logged out." }),
    ))
}
