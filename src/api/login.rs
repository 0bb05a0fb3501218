//! POST /login: `{"email","password"}` → 200 `{"access_token","refresh_token"}` in a new session.

use super::{json, now_ms, AuthApi, Endpoint, Reply, Request};
use crate::domain::Email;
use crate::error::ErrorReply;
use crate::events::{self, Event};

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let obj = json::object(req.body)?;
    let raw_email = json::string(&obj, "email")?;
    let password = json::string(&obj, "password")?;
    // An address that cannot exist is just another unknown account: same cost,
    // same answer, and throttled alike (on its trimmed lowercase text).
    let email = Email::parse(&raw_email).ok();
    let account = match &email {
        Some(email) => email.as_str().to_owned(),
        None => raw_email.trim().to_lowercase(),
    };
    let counters = api.login_counters(&account, &req);
    // Before any hashing: a throttled guess costs a Redis read, not an argon2 hash.
    if let Err(e) = api.check_throttle(Endpoint::Login, &counters.all).await {
        if matches!(e, ErrorReply::TooManyAttempts { .. }) {
            events::emit(Event::LoginThrottled, None, None, req.client_ip);
        }
        return Err(e);
    }
    let found = match &email {
        Some(email) => api.store.find_credentials(email).await?,
        None => None,
    };
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matched = api.passwords.verify(&password, stored).await?;
    match user {
        Some(user) if matched => {
            api.store
                .throttle_clear(counters.account_ip(), now_ms())
                .await?;
            Ok(Reply::ok(api.open_session(user, &req).await?))
        }
        _ => {
            events::emit(Event::LoginFailed, user, None, req.client_ip);
            api.store.throttle_count(&counters.all, now_ms()).await?;
            Err(ErrorReply::InvalidCredentials)
        }
    }
}
