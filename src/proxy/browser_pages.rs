//! Browser mode's pages: the reserved `/.authgate/` prefix, the login and registration pages, and their form posts.

use super::auth_endpoint::{self, BodyLimits, Handler};
use super::{respond, RequestCtx};
use crate::api::{AuthApi, Endpoint};
use crate::browser::{page, request_kind, return_to_of_query, Browser};
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

/// The page a request to `endpoint` asks for, if it is the browser's: the
/// page itself (HTML preferred), or its form post (a navigation). Every other
/// request gets the JSON API.
pub(super) fn page_request(
    browser: &Browser,
    endpoint: Endpoint,
    session: &Session,
) -> Option<page::Kind> {
    let kind = match endpoint {
        Endpoint::Login => page::Kind::Login,
        Endpoint::Register if browser.registration => page::Kind::Register,
        _ => return None,
    };
    let req = session.req_header();
    let browsing = match req.method {
        Method::GET | Method::HEAD => request_kind::prefers_html(&req.headers),
        Method::POST => request_kind::is_navigation(&req.headers),
        _ => false,
    };
    browsing.then_some(kind)
}

/// One page to write.
struct Shown<'a> {
    kind: page::Kind,
    status: StatusCode,
    /// The message above the form.
    error: Option<&'a str>,
    return_to: &'a str,
    email: &'a str,
    /// `Retry-After` of a throttled or busy answer, as the JSON API sends it.
    retry_after: Option<String>,
}

impl<'a> Shown<'a> {
    fn new(kind: page::Kind, status: StatusCode, return_to: &'a str) -> Shown<'a> {
        Shown {
            kind,
            status,
            error: None,
            return_to,
            email: "",
            retry_after: None,
        }
    }
}

/// Write a page.
async fn show(session: &mut Session, ctx: &RequestCtx, browser: &Browser, shown: Shown<'_>) {
    let html = browser.page(shown.kind, shown.error, shown.return_to, shown.email);
    let mut extra = page_headers();
    if let Some(seconds) = shown.retry_after {
        extra.push(("Retry-After", seconds));
    }
    let content_type = "text/html; charset=utf-8";
    let body = Bytes::from(html);
    respond::complete(session, ctx, shown.status, content_type, body, &extra).await;
}

/// A page (`GET`) or its form post.
pub(super) async fn serve_page(
    api: &AuthApi,
    browser: &Browser,
    limits: BodyLimits,
    kind: page::Kind,
    session: &mut Session,
    ctx: &mut RequestCtx,
) {
    if session.req_header().method != Method::POST {
        let return_to = return_to_of_query(session.req_header().uri.query());
        let shown = Shown::new(kind, StatusCode::OK, &return_to);
        return show(session, ctx, browser, shown).await;
    }
    // Login CSRF: a page of another site must not sign the browser in as
    // someone else. The gateway's own origin only: its pages are the only
    // ones that post these forms (no CORS origin needs to).
    if !browser.own_origin(&session.req_header().headers) {
        METRICS.browser_refusals.with_label_values(&["csrf"]).inc();
        let why = "This form was not sent from this site. Open the page again and retry.";
        let shown = Shown {
            error: Some(why),
            ..Shown::new(kind, StatusCode::FORBIDDEN, "/")
        };
        return show(session, ctx, browser, shown).await;
    }
    let served = match kind {
        page::Kind::Login => (Endpoint::Login, Handler::Endpoint),
        page::Kind::Register => (Endpoint::Register, Handler::RegisterAndSignIn),
    };
    let Some((result, body)) = auth_endpoint::call(api, limits, served, session, ctx, None).await
    else {
        session.set_keepalive(None);
        return;
    };
    let fields = form_fields(session, &body);
    let field = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or_default()
            .to_owned()
    };
    let return_to = Some(field("return_to")).filter(|r| !r.is_empty());
    let return_to = return_to.unwrap_or_else(|| "/".into());
    let email = field("email");
    let reply = match result.and_then(|reply| browser.cookie_for_pair(api, &reply.body)) {
        Ok(set_cookie) => {
            ctx.set_cookie = Some(set_cookie);
            let location = browser.return_url(&return_to);
            return respond::redirect(session, ctx, StatusCode::SEE_OTHER, location).await;
        }
        Err(e) => e,
    };
    reply.record(ctx.request_id.as_str());
    let detail = reply.to_string();
    let message = match &reply {
        ErrorReply::InvalidCredentials => "Wrong email or password.",
        ErrorReply::TooManyAttempts { .. } => "Too many attempts. Wait a little and try again.",
        ErrorReply::AccountDisabled => "This account is disabled.",
        ErrorReply::EmailTaken => "An account with this email already exists.",
        ErrorReply::RegistrationClosed => "Registration is closed.",
        ErrorReply::Busy | ErrorReply::StoreUnavailable(_) => {
            "This is not possible right now. Try again in a moment."
        }
        ErrorReply::BodyTooLarge { .. } | ErrorReply::RequestTimeout => {
            "The form could not be read. Try again."
        }
        // The field and what it must be ("password: must be at least 8 characters").
        ErrorReply::InvalidField { .. } if kind == page::Kind::Register => detail.as_str(),
        e if e.status() == StatusCode::BAD_REQUEST => "Enter your email and password.",
        _ => "That did not work. Try again.",
    };
    let status = reply.status();
    let retry_after = reply
        .headers()
        .into_iter()
        .find(|(name, _)| *name == "Retry-After")
        .map(|(_, seconds)| seconds);
    let shown = Shown {
        error: Some(message),
        email: &email,
        retry_after,
        ..Shown::new(kind, status, &return_to)
    };
    show(session, ctx, browser, shown).await;
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
        cookie_caller: None,
        body,
        content_type: content_type.as_deref(),
        client_ip: None,
        user_agent: None,
    };
    req.fields().unwrap_or_default()
}
