//! The auth API the gateway answers itself: which paths it owns, and the handler for each.

mod form;
pub(crate) mod json;
mod jwks;
pub(crate) mod login;
mod logout;
pub(crate) mod me;
mod openapi;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod register;
pub(crate) mod sessions;
mod throttle;

use crate::auth::access::{bearer_token, now_unix, AccessTokens, Stamp};
use crate::auth::password::Passwords;
use crate::auth::refresh::Fingerprint;
use crate::auth::revocations::{Identity, Revocation};
use crate::domain::{SessionId, UserId};
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::store::sessions::{Guard, NewSession, Opened, Owner, SessionPolicy};
use crate::store::Store;
use http::{Method, StatusCode};
use serde_json::Value;

/// One of the auth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// POST /register
    Register,
    /// POST /login
    Login,
    /// POST /refresh
    Refresh,
    /// POST /logout
    Logout,
    /// POST /logout/all
    LogoutAll,
    /// GET|PUT /me
    Me,
    /// POST /password
    Password,
    /// GET /sessions
    Sessions,
    /// `DELETE /sessions/<id>`
    Session,
    /// GET /.well-known/jwks.json
    Jwks,
    /// GET /openapi.json
    OpenApi,
}

impl Endpoint {
    /// How many endpoints there are: every `slot()` is below it.
    pub(crate) const COUNT: usize = 11;

    /// This endpoint's index in per-endpoint tables (the metric handles).
    /// A match, not `as usize`, so a new variant cannot compile without one.
    pub(crate) const fn slot(self) -> usize {
        match self {
            Endpoint::Register => 0,
            Endpoint::Login => 1,
            Endpoint::Refresh => 2,
            Endpoint::Logout => 3,
            Endpoint::LogoutAll => 4,
            Endpoint::Me => 5,
            Endpoint::Password => 6,
            Endpoint::Sessions => 7,
            Endpoint::Session => 8,
            Endpoint::Jwks => 9,
            Endpoint::OpenApi => 10,
        }
    }

    /// The endpoint at `path` (canonical, with or without one trailing slash).
    pub(crate) fn for_path(path: &str) -> Option<Endpoint> {
        let p = path.strip_suffix('/').unwrap_or(path);
        Some(match p {
            "/register" => Endpoint::Register,
            "/login" => Endpoint::Login,
            "/refresh" => Endpoint::Refresh,
            "/logout" => Endpoint::Logout,
            "/logout/all" => Endpoint::LogoutAll,
            "/me" => Endpoint::Me,
            "/password" => Endpoint::Password,
            "/sessions" => Endpoint::Sessions,
            "/.well-known/jwks.json" => Endpoint::Jwks,
            "/openapi.json" => Endpoint::OpenApi,
            _ => match p.strip_prefix("/sessions/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Endpoint::Session,
                _ => return None,
            },
        })
    }

    /// Value of `Allow` for this endpoint.
    pub(crate) fn allow(self) -> &'static str {
        match self {
            Endpoint::Me => "GET, PUT",
            Endpoint::Sessions | Endpoint::Jwks | Endpoint::OpenApi => "GET",
            Endpoint::Session => "DELETE",
            _ => "POST",
        }
    }

    /// Whether `method` is served here.
    pub(crate) fn accepts(self, method: &Method) -> bool {
        match self {
            Endpoint::Me => method == Method::GET || method == Method::PUT,
            Endpoint::Sessions | Endpoint::Jwks | Endpoint::OpenApi => method == Method::GET,
            Endpoint::Session => method == Method::DELETE,
            _ => method == Method::POST,
        }
    }

    /// Whether the handler reads a body.
    pub(crate) fn reads_body(self, method: &Method) -> bool {
        method != Method::GET && method != Method::DELETE
    }

    /// Route label for logs and metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Endpoint::Register => "auth:register",
            Endpoint::Login => "auth:login",
            Endpoint::Refresh => "auth:refresh",
            Endpoint::Logout => "auth:logout",
            Endpoint::LogoutAll => "auth:logout_all",
            Endpoint::Me => "auth:me",
            Endpoint::Password => "auth:password",
            Endpoint::Sessions => "auth:sessions",
            Endpoint::Session => "auth:session",
            Endpoint::Jwks => "auth:jwks",
            Endpoint::OpenApi => "auth:openapi",
        }
    }

    /// Stable name for logs and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Register => "register",
            Endpoint::Login => "login",
            Endpoint::Refresh => "refresh",
            Endpoint::Logout => "logout",
            Endpoint::LogoutAll => "logout_all",
            Endpoint::Me => "me",
            Endpoint::Password => "password",
            Endpoint::Sessions => "sessions",
            Endpoint::Session => "session",
            Endpoint::Jwks => "jwks",
            Endpoint::OpenApi => "openapi",
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Status.
    pub status: StatusCode,
    /// JSON body; `Null` for a body-less answer (204).
    pub body: Value,
}

impl Reply {
    /// 200 with `body`.
    pub(crate) fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
        }
    }
}

/// What a request to an endpoint carries, already read from the wire.
pub(crate) struct Request<'a> {
    /// Method.
    pub method: &'a Method,
    /// The canonical path (`/sessions/<id>` carries an argument).
    pub path: &'a str,
    /// Raw `Authorization` header value.
    pub authorization: Option<&'a [u8]>,
    /// The caller a browser's session cookie proved (verified, refreshed if
    /// due, revocation checked), standing in for a Bearer token.
    pub cookie_caller: Option<Identity>,
    /// The whole body (already capped).
    pub body: &'a [u8],
    /// The Content-Type header: a form type reads the body as a form, anything else as JSON.
    pub content_type: Option<&'a [u8]>,
    /// The client's address by the trusted-proxy rule.
    pub client_ip: Option<std::net::IpAddr>,
    /// The User-Agent header, if it is text.
    pub user_agent: Option<&'a str>,
}

impl Request<'_> {
    /// The body's fields: a form when `Content-Type` names one (as the
    /// original service's parsers took), JSON otherwise.
    pub(crate) fn fields(&self) -> Result<serde_json::Map<String, serde_json::Value>, ErrorReply> {
        match form::kind(self.content_type) {
            Some(kind) => form::object(&kind, self.body),
            None => json::object(self.body),
        }
    }
}

/// Everything the endpoints need.
pub(crate) struct AuthApi {
    /// Users and sessions.
    pub store: std::sync::Arc<Store>,
    /// Password hashing pool (shared with the admin API).
    pub passwords: std::sync::Arc<Passwords>,
    /// Access token issuer/verifier (and the revocation set it consults).
    pub access: AccessTokens,
    /// How sessions live.
    pub sessions: SessionPolicy,
    /// Failed-login, registration and password-change throttles.
    pub throttle: crate::config::ThrottleConfig,
    /// Whether registration is open, and its id floor.
    pub registration: crate::config::RegistrationConfig,
}

/// Longest User-Agent kept with a session.
const MAX_USER_AGENT: usize = 256;

impl AuthApi {
    /// Serve one request to `endpoint`. The method was checked by the caller.
    pub(crate) async fn handle(
        &self,
        endpoint: Endpoint,
        req: Request<'_>,
    ) -> Result<Reply, ErrorReply> {
        match endpoint {
            Endpoint::Register => register::handle(self, req).await,
            Endpoint::Login => login::handle(self, req).await,
            Endpoint::Refresh => refresh::handle(self, req).await,
            Endpoint::Logout => logout::handle(self, req).await,
            Endpoint::LogoutAll => logout::all(self, req).await,
            Endpoint::Me if *req.method == Method::GET => me::get(self, req).await,
            Endpoint::Me => me::put(self, req).await,
            Endpoint::Password => password::handle(self, req).await,
            Endpoint::Sessions => sessions::list(self, req).await,
            Endpoint::Session => sessions::delete(self, req).await,
            Endpoint::Jwks => Ok(jwks::get(self)),
            Endpoint::OpenApi => openapi::get(),
        }
    }

    /// A browser's registration form: register, then open the new user's
    /// first session (its token pair, which becomes the session cookie).
    pub(crate) async fn register_and_sign_in(&self, req: Request<'_>) -> Result<Reply, ErrorReply> {
        Ok(Reply::ok(register::and_sign_in(self, req).await?))
    }

    /// How long any cache may keep this endpoint's answers; `None`: never (`no-store`).
    pub(crate) fn max_age(&self, endpoint: Endpoint) -> Option<u64> {
        match endpoint {
            Endpoint::Jwks => Some(self.access.jwks().1),
            Endpoint::OpenApi => Some(openapi::MAX_AGE_SECONDS),
            _ => None,
        }
    }

    /// The verified caller of a Bearer-authenticated endpoint.
    fn caller(&self, req: &Request<'_>) -> Result<Identity, ErrorReply> {
        if let Some(id) = &req.cookie_caller {
            return Ok(id.clone());
        }
        let token = bearer_token(req.authorization).map_err(ErrorReply::InvalidToken)?;
        self.access.verify(token).map_err(ErrorReply::InvalidToken)
    }

    /// Open a new session for `user` and answer with its first token pair; a
    /// guard that no longer holds (a password changed meanwhile) is 401.
    async fn open_session(
        &self,
        user: UserId,
        guard: Guard<'_>,
        req: &Request<'_>,
    ) -> Result<Value, ErrorReply> {
        let sid = SessionId::generate();
        let (refresh, fp) = crate::auth::refresh::generate();
        let ua = req.user_agent.unwrap_or("");
        let ua = match ua.char_indices().nth(MAX_USER_AGENT) {
            Some((cut, _)) => &ua[..cut],
            None => ua,
        };
        let new = NewSession {
            user,
            sid,
            fingerprint: &fp,
            ip: req.client_ip,
            user_agent: ua,
        };
        let (stamp, evicted) = match self
            .store
            .create_session(&new, guard, &self.sessions, now_ms())
            .await?
        {
            Opened::Yes { stamp, evicted } => (stamp, evicted),
            Opened::Stale => {
                return Err(match guard {
                    Guard::PasswordIs(_) => ErrorReply::InvalidCredentials,
                    Guard::NeverLoggedOutEverywhere => ErrorReply::InvalidRefreshToken,
                })
            }
        };
        if !evicted.is_empty() {
            let now = now_unix();
            let gone: Vec<Revocation> = evicted
                .into_iter()
                .map(|sid| Revocation::Session { user, sid, at: now })
                .collect();
            for r in &gone {
                if let Revocation::Session { sid, .. } = r {
                    events::emit(Event::SessionRevoked, Some(user), Some(*sid), req.client_ip);
                }
            }
            self.revoke(&gone).await?;
        }
        self.pair(user, sid, &stamp, refresh)
    }

    /// `{"access_token","refresh_token"}` for a session whose refresh token is
    /// `refresh`, the access token at the user's generation and roles `stamp`.
    fn pair(
        &self,
        user: UserId,
        sid: SessionId,
        stamp: &Stamp,
        refresh: String,
    ) -> Result<Value, ErrorReply> {
        let access = self
            .access
            .issue(user, sid, stamp)
            .map_err(|e| ErrorReply::internal(format!("cannot sign access token: {e}")))?;
        Ok(serde_json::json!({ "access_token": access, "refresh_token": refresh }))
    }

    /// End one session of `user` and its access tokens everywhere, with its
    /// `session_revoked` event; whether it was live.
    pub(crate) async fn end_session(
        &self,
        user: UserId,
        sid: SessionId,
        client: Option<std::net::IpAddr>,
    ) -> Result<bool, ErrorReply> {
        if !self.store.revoke_session(user, sid).await? {
            return Ok(false);
        }
        events::emit(Event::SessionRevoked, Some(user), Some(sid), client);
        let at = now_unix();
        self.revoke(&[Revocation::Session { user, sid, at }])
            .await?;
        Ok(true)
    }

    /// Make revocations take effect here at once, and on every instance through Redis.
    async fn revoke(&self, revocations: &[Revocation]) -> Result<(), ErrorReply> {
        for r in revocations {
            self.access.revocations().apply(r.clone());
        }
        self.store
            .publish_revocations(revocations, self.access.ttl_seconds(), now_unix())
            .await?;
        Ok(())
    }

    /// The refresh token in a `{"refresh_token"}` body: its fingerprint and
    /// whose it is (`None`: not a token of ours, or no longer known).
    async fn presented_refresh(
        &self,
        req: &Request<'_>,
    ) -> Result<(Fingerprint, Option<Owner>), ErrorReply> {
        let fp = refresh::parse(&req.fields()?)?;
        let owner = self.store.refresh_owner(&fp).await?;
        Ok((fp, owner))
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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

    #[test]
    fn session_endpoints() {
        assert_eq!(
            Endpoint::for_path("/logout/all/"),
            Some(Endpoint::LogoutAll)
        );
        assert_eq!(Endpoint::for_path("/sessions"), Some(Endpoint::Sessions));
        assert_eq!(
            Endpoint::for_path("/sessions/ab12"),
            Some(Endpoint::Session)
        );
        assert_eq!(
            Endpoint::for_path("/sessions/ab12/"),
            Some(Endpoint::Session)
        );
        assert_eq!(Endpoint::for_path("/sessions/ab/cd"), None);
        assert_eq!(Endpoint::for_path("/password"), Some(Endpoint::Password));
        assert_eq!(
            Endpoint::for_path("/.well-known/jwks.json"),
            Some(Endpoint::Jwks)
        );
        assert_eq!(
            Endpoint::for_path("/openapi.json/"),
            Some(Endpoint::OpenApi)
        );
    }
}
