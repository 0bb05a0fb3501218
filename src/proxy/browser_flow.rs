//! Browser mode inside the proxy: the session cookie on gateway endpoints and routes (verified, refreshed, cleared, stripped), CSRF, and the navigation redirect.

use super::auth_endpoint::{self, BodyLimits, Handler};
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint, Reply};
use crate::auth::revocations::Identity;
use crate::browser::session::CookieAuth;
use crate::browser::{cookie, csrf, request_kind, Browser};
use crate::config::AuthPolicy;
use crate::error::ErrorReply;
use crate::metrics::METRICS;
use http::{Method, StatusCode};
use pingora_proxy::Session;

/// Answer a request to a gateway endpoint in browser mode: the pages and
/// their form posts, or the JSON API with the session cookie standing in for
/// a Bearer token.
pub(super) async fn serve_endpoint(
    api: &AuthApi,
    browser: &Browser,
    limits: BodyLimits,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
) {
    if let Some(kind) = super::browser_pages::page_request(browser, endpoint, session) {
        return super::browser_pages::serve_page(api, browser, limits, kind, session, ctx).await;
    }
    let Ok(caller) = endpoint_caller(api, browser, endpoint, session, ctx).await else {
        return;
    };
    let by_cookie = caller.is_some();
    if !by_cookie || !matches!(endpoint, Endpoint::Password | Endpoint::LogoutAll) {
        return auth_endpoint::serve(api, limits, endpoint, session, ctx, caller).await;
    }
    let served = (endpoint, Handler::Endpoint);
    let Some((result, _)) = auth_endpoint::call(api, limits, served, session, ctx, caller).await
    else {
        session.set_keepalive(None);
        return;
    };
    let result = result.and_then(|reply| match endpoint {
        // A password change by cookie: the new session becomes the cookie;
        // its tokens are not handed to the page's script.
        Endpoint::Password => {
            ctx.set_cookie = Some(browser.cookie_for_pair(api, &reply.body)?);
            Ok(Reply::ok(
                serde_json::json!({ "success": "Password changed." }),
            ))
        }
        // Every session ended, this browser's too: its cookie goes with it.
        _ => {
            ctx.set_cookie = Some(browser.clear_cookie());
            Ok(reply)
        }
    });
    auth_endpoint::answer(api, endpoint, session, ctx, result).await;
}

/// The session cookie's say on a request to a gateway endpoint that takes a
/// Bearer token: the caller it proves, or the answer already given.
async fn endpoint_caller(
    api: &AuthApi,
    browser: &Browser,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Option<Identity>, ()> {
    let bearer = matches!(
        endpoint,
        Endpoint::Me
            | Endpoint::Sessions
            | Endpoint::Session
            | Endpoint::LogoutAll
            | Endpoint::Logout
            | Endpoint::Password
    );
    let headers = &session.req_header().headers;
    if !bearer || headers.contains_key(http::header::AUTHORIZATION) {
        return Ok(None);
    }
    let identity = match cookie_identity(api, browser, session, ctx).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            let navigation = request_kind::is_navigation(&session.req_header().headers);
            if endpoint == Endpoint::Logout && ctx.set_cookie.is_some() && navigation {
                // A form's logout of a session that had already ended.
                let location = browser.login_page_url();
                respond::redirect(session, ctx, StatusCode::SEE_OTHER, location).await;
                return Err(());
            }
            return Ok(None);
        }
        Err(e) => {
            respond::error(session, ctx, &e).await;
            return Err(());
        }
    };
    if refuse_cross_site(session, ctx, browser, false).await {
        return Err(());
    }
    if endpoint == Endpoint::Logout {
        return logout(api, browser, session, ctx, &identity)
            .await
            .map(|()| None);
    }
    Ok(Some(identity))
}

/// A cookie-authenticated request from another site's page, answered here:
/// a WebSocket upgrade (cross-site WebSocket hijacking, 403
/// `origin_not_allowed`) or an unsafe method (CSRF, 403 `csrf`). True when
/// refused.
async fn refuse_cross_site(
    session: &mut Session,
    ctx: &RequestCtx,
    browser: &Browser,
    upgrade: bool,
) -> bool {
    let req = session.req_header();
    if !(upgrade || csrf::is_unsafe(&req.method)) || browser.same_origin(&req.headers) {
        return false;
    }
    let (label, reply) = if upgrade {
        ("origin_not_allowed", ErrorReply::OriginNotAllowed)
    } else {
        ("csrf", ErrorReply::Csrf)
    };
    METRICS.browser_refusals.with_label_values(&[label]).inc();
    respond::error(session, ctx, &reply).await;
    true
}

/// `POST /logout` with the cookie (and no `refresh_token` body, which would
/// win): the session ends and the cookie goes; a form is sent to the login page.
async fn logout(
    api: &AuthApi,
    browser: &Browser,
    session: &mut Session,
    ctx: &mut RequestCtx,
    identity: &Identity,
) -> Result<(), ()> {
    let headers = &session.req_header().headers;
    let declared_body = headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if declared_body && json {
        // A JSON body names its refresh token: the JSON API decides.
        return Ok(());
    }
    let Some(sid) = identity.sid else {
        return Ok(());
    };
    ctx.set_cookie = Some(browser.clear_cookie());
    if let Err(e) = api.end_session(identity.user, sid, ctx.client_ip).await {
        respond::error(session, ctx, &e).await;
        return Err(());
    }
    if request_kind::is_navigation(&session.req_header().headers) {
        let location = browser.login_page_url();
        respond::redirect(session, ctx, StatusCode::SEE_OTHER, location).await;
    } else {
        let body = serde_json::json!({ "success": "User logged out." });
        respond::json(session, ctx, StatusCode::OK, &body, &[]).await;
    }
    Err(())
}

/// The identity the session cookie proves (refreshing it when due; a bad one
/// is cleared); `None` without a usable cookie.
async fn cookie_identity(
    api: &AuthApi,
    browser: &Browser,
    session: &Session,
    ctx: &mut RequestCtx,
) -> Result<Option<Identity>, ErrorReply> {
    match browser
        .authenticate(api, &session.req_header().headers, ctx.client_ip)
        .await?
    {
        CookieAuth::Absent | CookieAuth::Unresolved => Ok(None),
        CookieAuth::Valid {
            identity,
            refreshed,
        } => {
            if refreshed.is_some() {
                ctx.set_cookie = refreshed;
            }
            Ok(Some(identity))
        }
        CookieAuth::Invalid(why) => {
            METRICS.cookies_cleared.inc();
            ctx.set_cookie = Some(browser.clear_cookie());
            ctx.rejection = Some(why);
            Ok(None)
        }
    }
}

/// Browser mode on a route, given its policy, whether a token was sent and
/// whether the request is an upgrade: the caller the cookie proves where no
/// token was sent (a cross-site one refused here), a bad cookie cleared, and
/// the cookie removed from what the upstream sees. `Err`: answered here.
pub(super) async fn route_caller(
    api: &AuthApi,
    browser: &Browser,
    (policy, token_sent, upgrade): (AuthPolicy, bool, bool),
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Option<Identity>, ()> {
    let mut caller = None;
    if !token_sent && policy == AuthPolicy::Public {
        // No identity goes on: no refresh, but a bad cookie is cleared.
        clear_if_bad(api, browser, session, ctx);
    } else if !token_sent {
        match cookie_identity(api, browser, session, ctx).await {
            Ok(id) => caller = id,
            Err(e) => {
                respond::error(session, ctx, &e).await;
                return Err(());
            }
        }
    }
    strip_cookie(session, browser);
    if caller.is_some() && refuse_cross_site(session, ctx, browser, upgrade).await {
        return Err(());
    }
    Ok(caller)
}

/// On a `public` route: clear a cookie that is not one of ours at all.
fn clear_if_bad(api: &AuthApi, browser: &Browser, session: &Session, ctx: &mut RequestCtx) {
    if browser.cookie_is_bad(api, &session.req_header().headers) {
        METRICS.cookies_cleared.inc();
        ctx.set_cookie = Some(browser.clear_cookie());
    }
}

/// Remove the session cookie from what the upstream will see.
fn strip_cookie(session: &mut Session, browser: &Browser) {
    let Some(kept) = cookie::without(&session.req_header().headers, &browser.cookie_name) else {
        return;
    };
    let req = session.req_header_mut();
    req.remove_header(&http::header::COOKIE);
    for v in kept {
        // Appending a value that was already a header value cannot fail.
        let _ = req.append_header(http::header::COOKIE, v);
    }
}

/// A page load without a session on a route that needs one: to the login page.
pub(super) async fn redirect_to_login(
    session: &mut Session,
    ctx: &RequestCtx,
    browser: &Browser,
) -> bool {
    let req = session.req_header();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    if !get || !request_kind::is_navigation(&req.headers) {
        return false;
    }
    let target = req
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let location = browser.login_url(&target);
    respond::redirect(session, ctx, StatusCode::FOUND, location).await;
    true
}

/// The session cookie is the gateway's: an upstream's `Set-Cookie` for its
/// name goes, and the gateway's own (refreshed or cleared) is added.
pub(super) fn own_set_cookie(
    resp: &mut pingora_http::ResponseHeader,
    browser: &Browser,
    ctx: &RequestCtx,
) -> pingora_error::Result<()> {
    let sets_ours = |v: &http::HeaderValue| cookie::sets(v.as_bytes(), &browser.cookie_name);
    if resp
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .any(sets_ours)
    {
        let theirs: Vec<http::HeaderValue> = resp
            .headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        resp.remove_header(&http::header::SET_COOKIE);
        for v in theirs.into_iter().filter(|v| !sets_ours(v)) {
            resp.append_header(http::header::SET_COOKIE, v)?;
        }
    }
    if let Some(own) = &ctx.set_cookie {
        resp.append_header(http::header::SET_COOKIE, own.as_str())?;
        // The upstream never saw the cookie, so it cannot know this answer
        // now carries a session: no shared cache may keep it.
        resp.insert_header(http::header::CACHE_CONTROL, "private, no-store")?;
    }
    Ok(())
}
