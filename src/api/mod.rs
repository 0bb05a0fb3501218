//! The auth API the gateway answers itself: which paths it owns, and the handler for each.

mod json;
mod login;
mod logout;
mod me;
mod refresh;
mod register;

use crate::auth::access::AccessTokens;
use crate::auth::password::Passwords;
use crate::error::ErrorReply;
use crate::store::Store;
use http::{Method, StatusCode};
use serde_json::Value;

/// One of the auth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// POST /register
    Register,
    /// POST /login
    Login,
    /// POST /refresh
    Refresh,
    /// POST /logout
    Logout,
    /// GET|PUT /me
    Me,
}

impl Endpoint {
    /// The endpoint at `path` (with or without one trailing slash).
    pub fn for_path(path: &str) -> Option<Endpoint> {
        let p = path.strip_suffix('/').unwrap_or(path);
        Some(match p {
            "/register" => Endpoint::Register,
            "/login" => Endpoint::Login,
            "/refresh" => Endpoint::Refresh,
            "/logout" => Endpoint::Logout,
            "/me" => Endpoint::Me,
            _ => return None,
        })
    }

    /// Value of `Allow` for this endpoint.
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Me => "GET, PUT",
            _ => "POST",
        }
    }

    /// Whether `method` is served here.
    pub fn accepts(self, method: &Method) -> bool {
        match self {
            Endpoint::Me => method == Method::GET || method == Method::PUT,
            _ => method == Method::POST,
        }
    }

    /// Whether the handler reads a body.
    pub fn reads_body(self, method: &Method) -> bool {
        !(self == Endpoint::Me && method == Method::GET)
    }

    /// Route label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Register => "auth:register",
            Endpoint::Login => "auth:login",
            Endpoint::Refresh => "auth:refresh",
            Endpoint::Logout => "auth:logout",
            Endpoint::Me => "auth:me",
        }
    }

    /// Stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Register => "register",
            Endpoint::Login => "login",
            Endpoint::Refresh => "refresh",
            Endpoint::Logout => "logout",
            Endpoint::Me => "me",
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
        }
    }
}

/// What a request to an endpoint carries, already read from the wire.
pub struct Request<'a> {
    /// Method.
    pub method: &'a Method,
    /// Raw `Authorization` header value.
    pub authorization: Option<&'a [u8]>,
    /// The whole body (already capped).
    pub body: &'a [u8],
}

/// Everything the endpoints need.
pub struct AuthApi {
    /// Users and sessions.
    pub store: std::sync::Arc<Store>,
    /// Password hashing pool.
    pub passwords: Passwords,
    /// Access token issuer/verifier.
    pub access: AccessTokens,
    /// Refresh token lifetime.
    pub refresh_ttl_seconds: u64,
}

impl AuthApi {
    /// Serve one request to `endpoint`. The method was checked by the caller.
    pub async fn handle(&self, endpoint: Endpoint, req: Request<'_>) -> Result<Reply, ErrorReply> {
        match endpoint {
            Endpoint::Register => register::handle(self, req).await,
            Endpoint::Login => login::handle(self, req).await,
            Endpoint::Refresh => refresh::handle(self, req).await,
            Endpoint::Logout => logout::handle(self, req).await,
            Endpoint::Me if *req.method == Method::GET => me::get(self, req).await,
            Endpoint::Me => me::put(self, req).await,
        }
    }

    /// A new access/refresh pair for `user`, the refresh token saved.
    async fn issue_pair(&self, user: crate::domain::UserId) -> Result<Value, ErrorReply> {
        let access = self
            .access
            .issue(user)
            .map_err(|e| ErrorReply::internal(format!("cannot sign access token: {e}")))?;
        let (refresh, fp) = crate::auth::refresh::generate();
        self.store
            .save_refresh(&fp, user, self.refresh_ttl_seconds)
            .await?;
        Ok(serde_json::json!({ "access_token": access, "refresh_token": refresh }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_and_without_slash() {
        assert_eq!(Endpoint::for_path("/login"), Some(Endpoint::Login));
        assert_eq!(Endpoint::for_path("/login/"), Some(Endpoint::Login));
        assert_eq!(Endpoint::for_path("/login//"), None);
        assert_eq!(Endpoint::for_path("/loginx"), None);
        assert_eq!(Endpoint::for_path("/api/login"), None);
    }
}
