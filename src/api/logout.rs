//! POST /logout: `{"refresh_token"}` → 200 `{"success": "User logged out."}`, ending the token's whole session;
//! POST /logout/all (Bearer) → 200 `{"success": "All sessions logged out."}`, ending every session of the user.

use super::{AuthApi, Reply, Request};
use crate::auth::access::now_unix;
use crate::auth::revocations::Revocation;
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::store::sessions::Owner;

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let (fp, owner) = api.presented_refresh(&req).await?;
    let (user, sid) = match owner {
        Some(Owner::Session(user, sid)) => (user, sid),
        Some(Owner::Legacy(_)) if api.store.revoke_refresh(&fp).await? => {
            return Ok(logged_out());
        }
        _ => return Err(ErrorReply::InvalidRefreshToken),
    };
    if !api.end_session(user, sid, req.client_ip).await? {
        return Err(ErrorReply::InvalidRefreshToken);
    }
    Ok(logged_out())
}

fn logged_out() -> Reply {
    Reply::ok(serde_json::json!({ "success": "User logged out." }))
}

pub(super) async fn all(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let caller = api.caller(&req)?;
    end_every_session(api, caller.user).await?;
    events::emit(
        Event::LogoutAll,
        Some(caller.user),
        caller.sid,
        req.client_ip,
    );
    Ok(Reply::ok(
        serde_json::json!({ "success": "All sessions logged out." }),
    ))
}

/// End every session of `user` and every access token minted for them so far:
/// their token generation goes up, so tokens minted from now on (the new
/// session of a password change) are told apart exactly, on every instance.
pub(super) async fn end_every_session(
    api: &AuthApi,
    user: crate::domain::UserId,
) -> Result<(), ErrorReply> {
    let at = now_unix();
    let (gen, sids) = api.store.revoke_all(user, at).await?;
    let mut gone: Vec<Revocation> = sids
        .into_iter()
        .map(|sid| Revocation::Session { user, sid, at })
        .collect();
    // Every older token, those that carry no session included.
    if let Some(gen) = gen {
        gone.push(Revocation::User { user, gen, at });
    }
    api.revoke(&gone).await
}
