//! The admin API over HTTP (`/admin/*` on the ops listener, or on `admin.listen`): bearer-token check, routing, JSON in and out.
//!
//! Long file: the admin API's routing, token check and every endpoint's JSON in and out; the endpoints are small and share the parsing.
//!
//! The public listener never answers `/admin/*` itself: there it is a path
//! like any other, routed to an upstream (teams' own consoles live there).

use super::{account_json, Accounts, AdminError, DEFAULT_PAGE};
use crate::domain::UserId;
use crate::edge::EdgeRules;
use crate::error::ErrorReply;
use crate::events::Actor;
use crate::metrics::METRICS;
use http::{Method, Response, StatusCode};
use pingora_core::protocols::http::ServerSession;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The shortest admin token accepted.
pub(crate) const MIN_TOKEN_BYTES: usize = 32;

/// The OpenAPI document of the admin API.
const OPENAPI: &str = include_str!("openapi.json");

/// Why the admin token file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("admin.token_file: {0}")]
pub struct AdminTokenError(String);

/// Read the admin token: a file held like the signing keys (owner-only, in a
/// directory others cannot write: `auth::keys::read_secret_file`), at least
/// [`MIN_TOKEN_BYTES`] after trimming the line end. Only its SHA-256 is kept.
pub(crate) fn read_token(path: &Path) -> Result<[u8; 32], AdminTokenError> {
    let shown = path.display();
    let bytes = crate::auth::keys::read_secret_file("admin.token_file", path)
        .map_err(|e| AdminTokenError(e.reason))?;
    let token = bytes.trim_ascii_end();
    if token.len() < MIN_TOKEN_BYTES {
        return Err(AdminTokenError(format!(
            "the token in {shown} is {} bytes; at least {MIN_TOKEN_BYTES} are needed (for example: openssl rand -hex 32)",
            token.len()
        )));
    }
    if token.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(AdminTokenError(format!(
            "the token in {shown} must be printable ASCII without spaces (it is sent in a header)"
        )));
    }
    Ok(Sha256::digest(token).into())
}

/// The admin API of one gateway instance.
pub(crate) struct AdminApi {
    accounts: Accounts,
    token_sha256: [u8; 32],
    edge: EdgeRules,
    max_body: usize,
    body_timeout: Duration,
}

/// What a request asked for, once routed.
enum Call {
    OpenApi,
    ListUsers,
    CreateUser,
    GetUser(UserId),
    DeleteUser(UserId),
    SetRoles(UserId),
    Disable(UserId),
    Enable(UserId),
    ListSessions(UserId),
    EndSessions(UserId),
}

impl Call {
    /// The operation's name in metrics.
    fn name(&self) -> &'static str {
        match self {
            Call::OpenApi => "openapi",
            Call::ListUsers => "list_users",
            Call::CreateUser => "create_user",
            Call::GetUser(_) => "get_user",
            Call::DeleteUser(_) => "delete_user",
            Call::SetRoles(_) => "set_roles",
            Call::Disable(_) => "disable_user",
            Call::Enable(_) => "enable_user",
            Call::ListSessions(_) => "list_sessions",
            Call::EndSessions(_) => "end_sessions",
        }
    }

    fn reads_body(&self) -> bool {
        matches!(self, Call::CreateUser | Call::SetRoles(_))
    }
}

/// `/admin/...` (one trailing slash allowed) to a call, or the answer refusing it.
fn route(method: &Method, path: &str) -> Result<Call, ErrorReply> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let not_allowed = |allow: &'static str| {
        Err(ErrorReply::MethodNotAllowed {
            allow: allow.into(),
        })
    };
    let id = |s: &str| -> Result<UserId, ErrorReply> {
        // Digits only: `+1`, ` 1` or `01` would name the same id in another spelling.
        if s.is_empty()
            || s.len() > 16
            || !s.bytes().all(|b| b.is_ascii_digit())
            || s.starts_with('0')
        {
            return Err(ErrorReply::UnknownAccount);
        }
        s.parse()
            .map(UserId::new)
            .map_err(|_| ErrorReply::UnknownAccount)
    };
    let (get, post, put, delete) = (
        method == Method::GET || method == Method::HEAD,
        method == Method::POST,
        method == Method::PUT,
        method == Method::DELETE,
    );
    match segments.as_slice() {
        ["admin", "openapi.json"] if get => Ok(Call::OpenApi),
        ["admin", "openapi.json"] => not_allowed("GET, HEAD"),
        ["admin", "users"] if get => Ok(Call::ListUsers),
        ["admin", "users"] if post => Ok(Call::CreateUser),
        ["admin", "users"] => not_allowed("GET, HEAD, POST"),
        ["admin", "users", u] if get => Ok(Call::GetUser(id(u)?)),
        ["admin", "users", u] if delete => Ok(Call::DeleteUser(id(u)?)),
        ["admin", "users", _] => not_allowed("GET, HEAD, DELETE"),
        ["admin", "users", u, "roles"] if put => Ok(Call::SetRoles(id(u)?)),
        ["admin", "users", _, "roles"] => not_allowed("PUT"),
        ["admin", "users", u, "disable"] if post => Ok(Call::Disable(id(u)?)),
        ["admin", "users", u, "enable"] if post => Ok(Call::Enable(id(u)?)),
        ["admin", "users", _, "disable" | "enable"] => not_allowed("POST"),
        ["admin", "users", u, "sessions"] if get => Ok(Call::ListSessions(id(u)?)),
        ["admin", "users", u, "sessions"] if delete => Ok(Call::EndSessions(id(u)?)),
        ["admin", "users", _, "sessions"] => not_allowed("GET, HEAD, DELETE"),
        _ => Err(ErrorReply::NoRoute),
    }
}

/// The query of `GET /admin/users`: by email, or a page after an id.
enum Listing {
    Email(String),
    Page { after: u64, limit: usize },
}

fn listing(query: Option<&str>) -> Result<Listing, ErrorReply> {
    let mut email = None;
    let mut after = None;
    let mut limit = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match k.as_ref() {
            "email" => &mut email,
            "after" => &mut after,
            "limit" => &mut limit,
            _ => {
                return Err(ErrorReply::invalid_field(
                    "query",
                    "takes only email, or after and limit",
                ))
            }
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(ErrorReply::invalid_field(
                "query",
                "names a parameter twice",
            ));
        }
    }
    let number = |field: &'static str, v: Option<String>, default: u64| match v {
        None => Ok(default),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.len() <= 16 => v
            .parse()
            .map_err(|_| ErrorReply::invalid_field(field, "must be a whole number")),
        Some(_) => Err(ErrorReply::invalid_field(field, "must be a whole number")),
    };
    match email {
        Some(_) if after.is_some() || limit.is_some() => Err(ErrorReply::invalid_field(
            "query",
            "email cannot be combined with after or limit",
        )),
        Some(e) => Ok(Listing::Email(e)),
        None => {
            let limit = number("limit", limit, DEFAULT_PAGE as u64)?;
            if !(1..=super::MAX_PAGE as u64).contains(&limit) {
                return Err(ErrorReply::invalid_field(
                    "limit",
                    format!("must be between 1 and {}", super::MAX_PAGE),
                ));
            }
            Ok(Listing::Page {
                after: number("after", after, 0)?,
                limit: limit as usize,
            })
        }
    }
}

fn reply(
    status: StatusCode,
    body: Option<Value>,
    headers: &[(&'static str, String)],
) -> Response<Vec<u8>> {
    let mut r = match body {
        Some(v) => crate::ops::json(status, v),
        // 204: no body, so no type or length either.
        None => {
            let mut r = Response::new(Vec::new());
            *r.status_mut() = status;
            r
        }
    };
    let h = r.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    for (name, value) in headers {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    r
}

fn error_reply(e: &ErrorReply) -> Response<Vec<u8>> {
    let mut headers = e.headers();
    if matches!(e, ErrorReply::InvalidToken(_)) {
        // The admin realm, not the users' Bearer tokens.
        headers.retain(|(n, _)| *n != "WWW-Authenticate");
        headers.push(("WWW-Authenticate", "Bearer realm=\"admin\"".into()));
    }
    reply(e.status(), Some(e.body()), &headers)
}

/// A JSON object body's `roles` array of strings.
fn roles_field(
    obj: &serde_json::Map<String, Value>,
    required: bool,
) -> Result<Vec<String>, ErrorReply> {
    match obj.get("roles") {
        None if required => Err(ErrorReply::MissingField("roles")),
        None => Ok(Vec::new()),
        Some(Value::Null) if !required => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ErrorReply::invalid_field("roles", "must be an array of strings")
                })
            })
            .collect(),
        Some(_) => Err(ErrorReply::invalid_field(
            "roles",
            "must be an array of strings",
        )),
    }
}

fn optional_string(
    obj: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ErrorReply> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ErrorReply::invalid_field(field, "must be a string")),
    }
}

impl AdminApi {
    /// The admin API over `accounts`, opened by the token whose SHA-256 is
    /// `token_sha256`, with the public listener's edge rules and body cap.
    pub(crate) fn new(
        accounts: Accounts,
        token_sha256: [u8; 32],
        edge: EdgeRules,
        max_body: usize,
        body_timeout: Duration,
    ) -> Self {
        AdminApi {
            accounts,
            token_sha256,
            edge,
            max_body,
            body_timeout,
        }
    }

    fn authorized(&self, header: Option<&[u8]>) -> bool {
        let Ok(token) = crate::auth::access::bearer_token(header) else {
            return false;
        };
        // Digests of equal length, compared in constant time: neither the
        // token's length nor its prefix shows in the timing.
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        presented.ct_eq(&self.token_sha256).into()
    }

    async fn read_body(&self, session: &mut ServerSession) -> Result<Vec<u8>, ErrorReply> {
        let read = async {
            let mut body = Vec::new();
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > self.max_body {
                            return Err(ErrorReply::BodyTooLarge {
                                limit: self.max_body,
                            });
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => return Ok(body),
                    Err(_) => return Err(ErrorReply::MalformedRequest),
                }
            }
        };
        tokio::time::timeout(self.body_timeout, read)
            .await
            .unwrap_or(Err(ErrorReply::RequestTimeout))
    }

    /// Answer one request under `/admin`.
    pub(crate) async fn serve(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_canonical());
        let (call, outcome) = match self.answer(session, client).await {
            Ok((call, r)) => (Some(call), Ok(r)),
            Err((call, e)) => (call, Err(e)),
        };
        if let Some(call) = &call {
            let label = match &outcome {
                Ok(_) => "ok",
                Err(ErrorReply::UnknownAccount | ErrorReply::NoRoute) => "not_found",
                Err(ErrorReply::InvalidToken(_)) => "unauthorized",
                Err(e) if e.status().is_client_error() => "refused",
                Err(_) => "error",
            };
            METRICS.admin.with_label_values(&[call.name(), label]).inc();
        }
        match outcome {
            Ok(r) => r,
            Err(e) => {
                e.record("admin");
                if e.closes_connection() {
                    session.set_keepalive(None);
                }
                error_reply(&e)
            }
        }
    }

    async fn answer(
        &self,
        session: &mut ServerSession,
        client: Option<std::net::IpAddr>,
    ) -> Result<(Call, Response<Vec<u8>>), (Option<Call>, ErrorReply)> {
        let req = session.req_header();
        let inspection = self
            .edge
            .inspect(req)
            .map_err(|e| (None, ErrorReply::Refused(e)))?;
        let target = inspection.new_target.unwrap_or_else(|| {
            req.uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned()
        });
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target, None),
        };
        let method = req.method.clone();
        let call = route(&method, &path).map_err(|e| (None, e))?;
        if let Call::OpenApi = call {
            let doc: Value = serde_json::from_str(OPENAPI).unwrap_or(Value::Null);
            return Ok((call, reply(StatusCode::OK, Some(doc), &[])));
        }
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !self.authorized(authorization) {
            let why = if authorization.is_none() {
                crate::auth::access::TokenRejection::Missing
            } else {
                crate::auth::access::TokenRejection::BadSignature
            };
            return Err((Some(call), ErrorReply::InvalidToken(why)));
        }
        let body = if call.reads_body() {
            match self.read_body(session).await {
                Ok(b) => b,
                Err(e) => return Err((Some(call), e)),
            }
        } else {
            Vec::new()
        };
        let actor = Actor::Api(client);
        match self.run(&call, query.as_deref(), &body, actor).await {
            Ok(r) => Ok((call, r)),
            Err(e) => Err((Some(call), e)),
        }
    }

    async fn run(
        &self,
        call: &Call,
        query: Option<&str>,
        body: &[u8],
        actor: Actor,
    ) -> Result<Response<Vec<u8>>, ErrorReply> {
        let a = &self.accounts;
        let user = |r: Result<crate::store::accounts::Account, AdminError>| {
            r.map(|acc| reply(StatusCode::OK, Some(account_json(&acc)), &[]))
                .map_err(AdminError::into_reply)
        };
        match call {
            Call::OpenApi => Err(ErrorReply::NoRoute),
            Call::ListUsers => match listing(query)? {
                Listing::Email(e) => {
                    let users: Vec<Value> = match a.find(&e).await {
                        Ok(acc) => vec![account_json(&acc)],
                        Err(AdminError::NotFound) => Vec::new(),
                        Err(e) => return Err(e.into_reply()),
                    };
                    Ok(reply(
                        StatusCode::OK,
                        Some(json!({ "users": users, "next": null })),
                        &[],
                    ))
                }
                Listing::Page { after, limit } => {
                    let (users, next) =
                        a.list(after, limit).await.map_err(AdminError::into_reply)?;
                    let users: Vec<Value> = users.iter().map(account_json).collect();
                    Ok(reply(
                        StatusCode::OK,
                        Some(json!({ "users": users, "next": next })),
                        &[],
                    ))
                }
            },
            Call::CreateUser => {
                let obj = crate::api::json::object(body)?;
                let email = crate::api::json::string(&obj, "email")?;
                let password = optional_string(&obj, "password")?;
                let roles = roles_field(&obj, false)?;
                let acc = a
                    .create(&email, password, &roles, actor)
                    .await
                    .map_err(AdminError::into_reply)?;
                Ok(reply(StatusCode::CREATED, Some(account_json(&acc)), &[]))
            }
            Call::GetUser(id) => user(a.show(*id).await),
            Call::DeleteUser(id) => {
                a.delete(*id, actor).await.map_err(AdminError::into_reply)?;
                Ok(reply(StatusCode::NO_CONTENT, None, &[]))
            }
            Call::SetRoles(id) => {
                let obj = crate::api::json::object(body)?;
                let roles = roles_field(&obj, true)?;
                user(a.set_roles(*id, &roles, actor).await)
            }
            Call::Disable(id) => user(a.set_disabled(*id, true, actor).await),
            Call::Enable(id) => user(a.set_disabled(*id, false, actor).await),
            Call::ListSessions(id) => {
                let sessions = a.sessions(*id).await.map_err(AdminError::into_reply)?;
                let rows: Vec<Value> = sessions.iter().map(crate::api::sessions::row).collect();
                Ok(reply(
                    StatusCode::OK,
                    Some(json!({ "sessions": rows })),
                    &[],
                ))
            }
            Call::EndSessions(id) => {
                a.logout(*id, actor).await.map_err(AdminError::into_reply)?;
                Ok(reply(StatusCode::NO_CONTENT, None, &[]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_ids() {
        assert!(matches!(
            route(&Method::GET, "/admin/users"),
            Ok(Call::ListUsers)
        ));
        assert!(matches!(
            route(&Method::GET, "/admin/users/12/"),
            Ok(Call::GetUser(id)) if id == UserId::new(12)
        ));
        assert!(matches!(
            route(&Method::PUT, "/admin/users/3/roles"),
            Ok(Call::SetRoles(id)) if id == UserId::new(3)
        ));
        for bad in [
            "/admin/users/01",
            "/admin/users/+1",
            "/admin/users/x",
            "/admin/users/",
        ] {
            let r = route(&Method::GET, &format!("{bad}/sessions"));
            assert!(r.is_err(), "{bad}");
        }
        assert!(matches!(
            route(&Method::POST, "/admin/users/3"),
            Err(ErrorReply::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            route(&Method::GET, "/admin/nope"),
            Err(ErrorReply::NoRoute)
        ));
    }

    #[test]
    fn listing_queries() {
        assert!(matches!(
            listing(None),
            Ok(Listing::Page {
                after: 0,
                limit: 100
            })
        ));
        assert!(matches!(
            listing(Some("after=5&limit=500")),
            Ok(Listing::Page {
                after: 5,
                limit: 500
            })
        ));
        assert!(listing(Some("limit=501")).is_err());
        assert!(listing(Some("limit=0")).is_err());
        assert!(listing(Some("limit=-1")).is_err());
        assert!(listing(Some("after=1&after=2")).is_err());
        assert!(listing(Some("email=a@b.c&limit=2")).is_err());
        assert!(matches!(listing(Some("email=a%40b.c")), Ok(Listing::Email(e)) if e == "a@b.c"));
    }
}
