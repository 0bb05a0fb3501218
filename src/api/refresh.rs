//! POST /refresh: `{"refresh_token"}` → 200 a new pair; the presented token is consumed.

use super::{json, AuthApi, Reply, Request};
use crate::auth::refresh::fingerprint;
use crate::error::ApiError;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ApiError> {
    let obj = json::object(req.body)?;
    let token = json::string(&obj, "refresh_token")?;
    let fp = fingerprint(&token).ok_or(ApiError::InvalidRefreshToken)?;
    let user = api
        .store
        .take_refresh(&fp)
        .await?
        .ok_or(ApiError::InvalidRefreshToken)?;
    Ok(Reply::ok(api.issue_pair(user).await?))
}
