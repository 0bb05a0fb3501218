//! Browser mode inside the proxy: the session cookie on gateway endpoints and routes (verified, refreshed, cleared, stripped), CSRF, and the navigation redirect.

use super::auth_endpoint::{self, BodyLimits, Handler};
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint, Reply};
use crate::auth::access::TokenRejection;
use crate::auth::revocations::Identity;
use crate::browser::session::CookieAuth;
use crate::browser::{cookie, csrf, request_kind, Browser};
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
    let Ok(authorization) = endpoint_authorization(api, browser, endpoint, session, ctx).await
    else {
        return;
    };
    let by_cookie = authorization.is_some();
    if !by_cookie || !matches!(endpoint, Endpoint::Password | Endpoint::LogoutAll) {
        return auth_endpoint::serve(api, limits, endpoint, session, ctx, authorization).await;
    }
    let served = (endpoint, Handler::Endpoint);
    let Some((result, _)) =
        auth_endpoint::call(api, limits, served, session, ctx, authorization).await
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
/// Bearer token: the `Authorization` it stands for, or the answer already given.
async fn endpoint_authorization(
    api: &AuthApi,
    browser: &Browser,
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Option<Vec<u8>>, ()> {
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
                let location = format!("{}/login", browser.origin);
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
    if csrf::is_unsafe(&session.req_header().method)
        && !browser.same_origin(&session.req_header().headers)
    {
        METRICS.browser_refusals.with_label_values(&["csrf"]).inc();
        respond::error(session, ctx, &ErrorReply::Csrf).await;
        return Err(());
    }
    if endpoint == Endpoint::Logout {
        return logout(api, browser, session, ctx, &identity)
            .await
            .map(|()| None);
    }
    // The handlers take a Bearer token: the cookie's session, as one.
    let stamp = crate::auth::access::Stamp {
        gen: identity.gen,
        roles: identity.roles.clone(),
    };
    let sid = identity.sid.ok_or(())?;
    match api.access.issue(identity.user, sid, &stamp) {
        Ok(token) => Ok(Some(format!("Bearer {token}").into_bytes())),
        Err(e) => {
            respond::error(
                session,
                ctx,
                &ErrorReply::internal(format!("cannot sign: {e}")),
            )
            .await;
            Err(())
        }
    }
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
    let json = session
        .req_header()
        .headers
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
        let location = format!("{}/login", browser.origin);
        respond::redirect(session, ctx, StatusCode::SEE_OTHER, location).await;
    } else {
        let body = serde_json::json!({ "success": "User logged out." });
        respond::json(session, ctx, StatusCode::OK, &body, &[]).await;
    }
    Err(())
}

/// The identity the session cookie proves (refreshing it when due; a bad one
/// is cleared); `None` without a usable cookie.
pub(super) async fn cookie_identity(
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
            if why != TokenRejection::Missing {
                ctx.rejection = Some(why);
            }
            Ok(None)
        }
    }
}

/// On a `public` route: clear a cookie that is not one of ours at all.
pub(super) fn clear_if_bad(
    api: &AuthApi,
    browser: &Browser,
    session: &Session,
    ctx: &mut RequestCtx,
) {
    if browser.cookie_is_bad(api, &session.req_header().headers) {
        METRICS.cookies_cleared.inc();
        ctx.set_cookie = Some(browser.clear_cookie());
    }
}

/// Remove the session cookie from what the upstream will see.
pub(super) fn strip_cookie(session: &mut Session, browser: &Browser) {
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
    let theirs: Vec<http::HeaderValue> = resp
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if theirs
        .iter()
        .any(|v| cookie::sets(v.as_bytes(), &browser.cookie_name))
    {
        resp.remove_header(&http::header::SET_COOKIE);
        for v in theirs
            .into_iter()
            .filter(|v| !cookie::sets(v.as_bytes(), &browser.cookie_name))
        {
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
