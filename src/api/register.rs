//! POST /register: `{"email","password"}` → 201 `{"id","email"}`.

use super::{json, AuthApi, Endpoint, Reply, Request};
use crate::auth::access::now_unix;
use crate::domain::{Email, Password, UserId};
use crate::error::ErrorReply;
use crate::store::sessions::Guard;
use crate::store::users::Registration;
use http::StatusCode;

/// A register body, read and checked.
#[derive(Debug)]
pub(crate) struct Body {
    /// The normalised email.
    pub(crate) email: Email,
    /// The password, within the length rules.
    pub(crate) password: Password,
}

/// Read a register body: everything the handler knows before its first store
/// call (also what the `auth_json` fuzz target runs, through src/fuzz_api.rs).
pub(crate) fn parse(obj: &json::Fields) -> Result<Body, ErrorReply> {
    let email = Email::parse(&json::string(obj, "email")?)?;
    let password = Password::parse(json::string(obj, "password")?)?;
    Ok(Body { email, password })
}

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let (id, email, _) = create(api, &req).await?;
    Ok(Reply {
        status: StatusCode::CREATED,
        body: serde_json::json!({ "id": id.get(), "email": email.as_str() }),
    })
}

/// Register and open the new user's first session: the browser's registration
/// form, which signs the user in (a new session's token pair).
pub(super) async fn and_sign_in(
    api: &AuthApi,
    req: Request<'_>,
) -> Result<serde_json::Value, ErrorReply> {
    let (id, _, hash) = create(api, &req).await?;
    api.open_session(id, Guard::PasswordIs(&hash), &req).await
}

/// The checks and the new account: its id, email and password hash.
async fn create(api: &AuthApi, req: &Request<'_>) -> Result<(UserId, Email, String), ErrorReply> {
    if !api.registration.enabled {
        return Err(ErrorReply::RegistrationClosed);
    }
    let Body { email, password } = parse(&req.fields()?)?;
    // Every well-formed attempt counts, a taken email's too (or the 409 would
    // probe for accounts unthrottled).
    api.attempt_per_ip(Endpoint::Register, req).await?;
    // Answer a taken email before spending a hash on it; the claim below is
    // still what decides races.
    if api.store.email_taken(&email).await? {
        return Err(ErrorReply::EmailTaken);
    }
    let hash = api.passwords.hash(password.expose(), req.client_ip).await?;
    let first_id = api.registration.first_id;
    match api
        .store
        .create_user(&email, &hash, now_unix(), first_id)
        .await?
    {
        Registration::Created(id) => Ok((id, email, hash)),
        Registration::EmailTaken => Err(ErrorReply::EmailTaken),
    }
}
