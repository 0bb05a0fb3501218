//! Request headers on the way upstream: identity headers stripped and re-set, X-Forwarded-*, request id, prefix stripping.

use super::RequestCtx;
use pingora_error::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// The Host the client asked for, without port, lowercased.
pub fn request_host(req: &RequestHeader) -> Option<String> {
    let raw = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.host())?;
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => raw.split(':').next().unwrap_or(raw),
    };
    Some(host.to_ascii_lowercase())
}

/// The client's X-Request-Id if it is short and plain, otherwise a new UUID.
pub fn request_id(req: &RequestHeader) -> String {
    let sane = |v: &str| {
        !v.is_empty()
            && v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    };
    match req
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if sane(v) => v.to_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// Make the upstream request: only the gateway may speak for the user.
pub fn prepare_upstream_request(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    identity_headers: &[http::HeaderName],
) -> Result<()> {
    // HeaderMap lookups ignore case, and remove() drops every occurrence.
    for name in identity_headers {
        req.remove_header(name);
    }
    if let Some(user) = ctx.user {
        req.insert_header("X-User-Id", user.0.to_string())?;
    }

    let client_ip = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_string());
    if let Some(ip) = client_ip {
        let xff = match req
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip,
        };
        req.insert_header("X-Forwarded-For", xff)?;
    }
    let proto = if session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .is_some()
    {
        "https"
    } else {
        "http"
    };
    req.insert_header("X-Forwarded-Proto", proto)?;
    req.insert_header("X-Request-Id", ctx.request_id.as_str())?;

    if let Some(route) = &ctx.route {
        if let Some(new_path) = route.rewrite(req.uri.path()) {
            let pq = match req.uri.query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            let uri = pq.parse::<http::Uri>().map_err(|e| {
                pingora_error::Error::because(
                    pingora_error::ErrorType::InternalError,
                    "rewriting path",
                    e,
                )
            })?;
            req.set_uri(uri);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with(name: &str, value: &str) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.insert_header(name.to_owned(), value).unwrap();
        r
    }

    #[test]
    fn host_without_port() {
        assert_eq!(
            request_host(&req_with("Host", "API.example.com:8080")).as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            request_host(&req_with("Host", "example.com")).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            request_host(&req_with("Host", "[::1]:80")).as_deref(),
            Some("::1")
        );
    }

    #[test]
    fn request_id_kept_only_when_sane() {
        assert_eq!(request_id(&req_with("X-Request-Id", "abc-123")), "abc-123");
        assert_ne!(
            request_id(&req_with("X-Request-Id", "a b\"<script>")),
            "a b\"<script>"
        );
    }
}
