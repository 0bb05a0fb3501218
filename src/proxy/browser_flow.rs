//! Browser mode inside the proxy: the reserved `/.authgate/` pages, the login page and its form post, the cookie on endpoints and routes, and the navigation redirect.

use super::auth_endpoint::{self, BodyLimits};
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint, Reply};
use crate::auth::access::TokenRejection;
use crate::auth::revocations::Identity;
use crate::browser::session::CookieAuth;
use crate::browser::{cookie, csrf, page, request_kind, return_to_of_query, Browser};
use crate::error::ErrorReply;
use crate::metrics::METRICS;
use bytes::Bytes;
use http::{Method, StatusCode};
use pingora_proxy::Session;

/// The prefix no route may take: the gateway's own pages.
pub(crate) const RESERVED_PREFIX: &str = "/.authgate/";

/// The headers every page of the gateway carries.
fn page_headers() -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Security-Policy",
            page::CONTENT_SECURITY_POLICY.into(),
        ),
        ("X-Frame-Options", "DENY".into()),
        ("X-Content-Type-Options", "nosniff".into()),
        // Not `no-referrer`: under it Chromium sends `Origin: null` on the
        // page's own form post, which the login CSRF rule must refuse.
        ("Referrer-Policy", "same-origin".into()),
    ]
}

/// Answer a request under `/.authgate/`.
pub(super) async fn reserved(session: &mut Session, ctx: &RequestCtx, browser: Option<&Browser>) {
    let req = session.req_header();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    if browser.is_none() || req.uri.path() != page::STYLESHEET_PATH {
        return respond::error(session, ctx, &ErrorReply::NoRoute).await;
    }
    if !get {
        let allow = "GET, HEAD".into();
        return respond::error(session, ctx, &ErrorReply::MethodNotAllowed { allow }).await;
    }
    let body = Bytes::from_static(page::STYLESHEET.as_bytes());
    let mut extra = page_headers();
    extra.push(("Cache-Control", "public, max-age=3600".into()));
    respond::complete(
        session,
        ctx,
        StatusCode::OK,
        "text/css; charset=utf-8",
        body,
        &extra,
    )
    .await;
}

/// Whether a request to `endpoint` is the browser's: the login page, or a
/// form post of it (a navigation); every other request gets the JSON API.
pub(super) fn is_page_request(endpoint: Endpoint, session: &Session) -> bool {
    let req = session.req_header();
    endpoint == Endpoint::Login
        && match req.method {
            Method::GET | Method::HEAD => request_kind::prefers_html(&req.headers),
            Method::POST => request_kind::is_navigation(&req.headers),
            _ => false,
        }
}

/// Write the login page with `status`.
async fn login_page(
    session: &mut Session,
    ctx: &RequestCtx,
    browser: &Browser,
    status: StatusCode,
    error: Option<&str>,
    return_to: &str,
    email: &str,
) {
    let html = browser.login_page(error, return_to, email);
    let extra = page_headers();
    let kind = "text/html; charset=utf-8";
    respond::complete(session, ctx, status, kind, Bytes::from(html), &extra).await;
}

/// `GET /login` (the page) or its form post.
pub(super) async fn serve_page(
    api: &AuthApi,
    browser: &Browser,
    limits: BodyLimits,
    session: &mut Session,
    ctx: &mut RequestCtx,
) {
    if session.req_header().method != Method::POST {
        let return_to = return_to_of_query(session.req_header().uri.query());
        return login_page(session, ctx, browser, StatusCode::OK, None, &return_to, "").await;
    }
    // Login CSRF: a page of another site must not sign the browser in as someone else.
    if !browser.same_origin(&session.req_header().headers) {
        METRICS.browser_refusals.with_label_values(&["csrf"]).inc();
        let why =
            "This sign-in form was not sent from this site. Open the sign-in page and try again.";
        return login_page(
            session,
            ctx,
            browser,
            StatusCode::FORBIDDEN,
            Some(why),
            "/",
            "",
        )
        .await;
    }
    let Some((result, body)) =
        auth_endpoint::call(api, limits, Endpoint::Login, session, ctx, None).await
    else {
        session.set_keepalive(None);
        return;
    };
    let fields = form_fields(session, &body);
    let field = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (return_to, email) = (field("return_to"), field("email"));
    let reply = match result.and_then(|reply| signed_in(api, browser, reply)) {
        Ok(set_cookie) => {
            ctx.set_cookie = Some(set_cookie);
            let location = browser.return_url(if return_to.is_empty() {
                "/"
            } else {
                &return_to
            });
            return respond::redirect(session, ctx, StatusCode::SEE_OTHER, location).await;
        }
        Err(e) => e,
    };
    reply.record(ctx.request_id.as_str());
    let message = match &reply {
        ErrorReply::InvalidCredentials => "Wrong email or password.",
        ErrorReply::TooManyAttempts { .. } => "Too many attempts. Wait a little and try again.",
        ErrorReply::AccountDisabled => "This account is disabled.",
        ErrorReply::Busy | ErrorReply::StoreUnavailable(_) => {
            "Signing in is not possible right now. Try again in a moment."
        }
        ErrorReply::BodyTooLarge { .. } | ErrorReply::RequestTimeout => {
            "The form could not be read. Try again."
        }
        e if e.status() == StatusCode::BAD_REQUEST => "Enter your email and password.",
        _ => "Signing in failed. Try again.",
    };
    let status = reply.status();
    let return_to = if return_to.is_empty() {
        "/"
    } else {
        &return_to
    };
    login_page(
        session,
        ctx,
        browser,
        status,
        Some(message),
        return_to,
        &email,
    )
    .await;
}

/// The form's fields, for what the page shows again (nothing when unreadable).
fn form_fields(session: &Session, body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let content_type = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec());
    let req = crate::api::Request {
        method: &Method::POST,
        path: "/login",
        authorization: None,
        body,
        content_type: content_type.as_deref(),
        client_ip: None,
        user_agent: None,
    };
    req.fields().unwrap_or_default()
}

/// The session cookie for a login's answer.
fn signed_in(api: &AuthApi, browser: &Browser, reply: Reply) -> Result<String, ErrorReply> {
    browser.cookie_for_pair(api, &reply.body)
}

/// The session cookie's say on a request to a gateway endpoint that takes a
/// Bearer token: the `Authorization` it stands for, or the answer already given.
pub(super) async fn endpoint_authorization(
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
    let declared_body = session
        .req_header()
        .headers
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
    ctx.set_cookie = Some(cookie::clear(&browser.cookie_name));
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
        CookieAuth::Absent => Ok(None),
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
            ctx.set_cookie = Some(cookie::clear(&browser.cookie_name));
            if why != TokenRejection::Missing {
                ctx.rejection = Some(why);
            }
            Ok(None)
        }
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
    }
    Ok(())
}
