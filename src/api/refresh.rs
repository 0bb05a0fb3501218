//! POST /refresh: `{"refresh_token"}` → 200 a new pair in the same session; the presented token is spent.
//!
//! A token presented again after the grace window means two parties hold the
//! session's tokens: the whole session is revoked (RFC 9700 §4.14.2).

use super::{json, now_ms, AuthApi, Reply, Request};
use crate::auth::access::now_unix;
use crate::auth::refresh::Fingerprint;
use crate::auth::revocations::Revocation;
use crate::error::ErrorReply;
use crate::events::{self, Event};
use crate::metrics::METRICS;
use crate::store::sessions::{Guard, Owner, Rotation};

/// Read a `{"refresh_token"}` body (`/refresh`, `/logout`): the token's
/// fingerprint, or 401 for a token of a shape the gateway never issues. Also
/// what the `auth_json` fuzz target runs, through src/fuzz_api.rs.
pub(crate) fn parse(obj: &json::Fields) -> Result<Fingerprint, ErrorReply> {
    let token = json::string(obj, "refresh_token")?;
    Fingerprint::of_token(&token).ok_or(ErrorReply::InvalidRefreshToken)
}

pub(super) async fn handle(api: &AuthApi, req: Request<'_>) -> Result<Reply, ErrorReply> {
    let (fp, owner) = api.presented_refresh(&req).await?;
    let (user, sid) = match owner {
        Some(Owner::Session(user, sid)) => (user, sid),
        Some(Owner::Legacy(_)) => {
            // Taken with GETDEL: of concurrent presentations exactly one trades it.
            let user = api
                .store
                .take_refresh(&fp)
                .await?
                .ok_or(ErrorReply::InvalidRefreshToken)?;
            let guard = Guard::NeverLoggedOutEverywhere;
            return Ok(Reply::ok(api.open_session(user, guard, &req).await?));
        }
        None => return Err(ErrorReply::InvalidRefreshToken),
    };
    let (refresh, new_fp) = crate::auth::refresh::generate();
    let (outcome, stale) = api
        .store
        .rotate(user, sid, &fp, &new_fp, &api.sessions, now_ms())
        .await?;
    api.store.forget_later(stale);
    match outcome {
        Rotation::Rotated { stamp } => Ok(Reply::ok(api.pair(user, sid, &stamp, refresh)?)),
        Rotation::Duplicate | Rotation::Gone => Err(ErrorReply::InvalidRefreshToken),
        Rotation::Reused => {
            METRICS.refresh_reuse.inc();
            events::emit(
                Event::RefreshReuseDetected,
                Some(user),
                Some(sid),
                req.client_ip,
            );
            let at = now_unix();
            api.revoke(&[Revocation::Session { user, sid, at }]).await?;
            Err(ErrorReply::InvalidRefreshToken)
        }
    }
}
