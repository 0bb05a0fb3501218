//! POST /login: `{"email","password"}` → 200 `{"access_token","refresh_token"}` in a new session.

use super::throttle::LOGIN_FAILURE_SCOPES;
use super::{json, now_ms, AuthApi, Endpoint, Reply, Request};
use crate::domain::Email;
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::store::sessions::Guard;

/// A login body, read.
#[derive(Debug)]
pub(crate) struct Body {
    /// The `email` field as sent.
    pub(crate) raw_email: String,
    /// It, normalised, when it is an address that can exist.
    pub(crate) email: Option<Email>,
    /// The password, verbatim.
    pub(crate) password: String,
}

/// Read a login body: everything the handler knows before its first store
/// call (also what the `auth_json` fuzz target runs, through src/fuzz_api.rs).
pub(crate) fn parse(obj: &json::Fields) -> Result<Body, ErrorReply> {
    let raw_email = json::string(obj, "email")?;
    let password = json::string(obj, "password")?;
    // An address that cannot exist is just another unknown account: same cost,
    // same answer, and throttled alike (on its trimmed lowercase text).
    let email = Email::parse(&raw_email).ok();
    Ok(Body {
        raw_email,
        email,
        password,
    })
}

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let Body {
        raw_email,
        email,
        password,
    } = parse(&req.fields()?)?;
    let account = match &email {
        Some(email) => email.as_str().to_owned(),
        None => raw_email.trim().to_lowercase(),
    };
    let counters = api.login_counters(&account, &req);
    // Before any hashing, checked and counted in one step: a throttled guess
    // costs a Redis call, not an argon2 hash, and a burst passes no more than
    // the limits.
    let mut reserved = match api.reserve(Endpoint::Login, &counters.all).await {
        Ok(reserved) => reserved,
        Err(e) => {
            if matches!(e, ErrorReply::TooManyAttempts { .. }) {
                events::emit(Event::LoginThrottled, None, None, req.client_ip);
            }
            return Err(e);
        }
    };
    let found = match &email {
        Some(email) => api.store.find_credentials(email).await?,
        None => None,
    };
    let user = found.as_ref().map(|c| c.user);
    // A disabled account (disabled by an operator, or an inactive Django user)
    // is checked like any other: same cost, and a wrong password is the same
    // 401, so only someone holding the password learns that it is disabled.
    let disabled = found.as_ref().is_some_and(|c| c.disabled);
    let stored = found.map(|c| c.password_hash);
    let check = match api
        .passwords
        .verify(&password, stored.clone(), req.client_ip)
        .await
    {
        Ok(check) => check,
        Err(e) => {
            // Not a guess that was judged (busy, broken hash): nothing counts.
            api.store.throttle_release(reserved).await?;
            return Err(e);
        }
    };
    match user {
        Some(user) if check.matched && disabled => {
            let failures = reserved.take(&LOGIN_FAILURE_SCOPES);
            api.store.throttle_release(failures).await?;
            events::emit(Event::LoginDisabled, Some(user), None, req.client_ip);
            Err(ErrorReply::AccountDisabled)
        }
        Some(user) if check.matched => {
            // Not a failure: the failure rules take it back (the attempt rules keep it).
            let failures = reserved.take(&LOGIN_FAILURE_SCOPES);
            api.store.throttle_release(failures).await?;
            api.store
                .throttle_clear(counters.account_ip(), now_ms())
                .await?;
            if let (Some(old), Some(new)) = (&stored, &check.upgraded) {
                // The Django hash goes; losing this race to a password change is fine.
                api.store.upgrade_password_hash(user, old, new).await?;
            }
            // The hash now stored: what was verified, or its argon2id upgrade.
            let Some(current) = check.upgraded.as_ref().or(stored.as_ref()) else {
                return Err(ErrorReply::InvalidCredentials);
            };
            let guard = Guard::PasswordIs(current);
            Ok(Reply::ok(api.open_session(user, guard, &req).await?))
        }
        _ => {
            events::emit(Event::LoginFailed, user, None, req.client_ip);
            Err(ErrorReply::InvalidCredentials)
        }
    }
}
