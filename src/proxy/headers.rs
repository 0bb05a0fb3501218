//! Request headers: the edge's decision applied, then the upstream request built (identity, X-Forwarded-*, request id, prefix).

use super::RequestCtx;
use crate::edge::{EdgeRules, Inspection, TrustedProxies};
use crate::error::ErrorReply;
use pingora_error::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::net::IpAddr;

/// Headers that tell an upstream who the client is, how it connected or
/// under which prefix it is mounted: only a trusted proxy may send them
/// (gunicorn takes `X-Forwarded-Ssl: on` as https, Django, Rails and Spring
/// read `-Prefix` and `-Port`). `X-Forwarded-For/-Proto/-Host` are replaced
/// instead (`forwarding_headers`); underscore spellings of all of them are
/// removed at the edge (`edge::identity`, which holds the one list).
use crate::edge::identity::CLIENT_CLAIMS;
/// Headers that name another URL than the request's: nobody may send them.
const URL_OVERRIDES: [&str; 2] = ["x-original-url", "x-rewrite-url"];

fn peer_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical())
}

/// The client address for logs and limits: the peer, or behind a trusted proxy
/// the rightmost untrusted X-Forwarded-For entry.
pub(super) fn client_ip(session: &Session, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = peer_ip(session)?;
    let xff = session
        .req_header()
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes());
    Some(trusted.client_ip(peer, xff))
}

/// Apply what the edge decided to the request itself, so routing, the auth
/// endpoints and the upstream all see the same request; returns the routing host.
pub(super) fn apply(
    session: &mut Session,
    inspection: Inspection,
) -> Result<Option<String>, ErrorReply> {
    let req = session.req_header_mut();
    for name in &inspection.remove {
        req.remove_header(name);
    }
    if let Some(host) = inspection.add_host {
        req.insert_header(http::header::HOST, host)
            .map_err(|e| ErrorReply::internal(format!("setting Host: {e}")))?;
    }
    if let Some(target) = inspection.new_target {
        // Only reachable with a path the edge built from a valid one, so a
        // failure here is ours, not the client's.
        let uri = target.parse::<http::Uri>().map_err(|e| {
            ErrorReply::internal(format!("canonical request target does not parse: {e}"))
        })?;
        req.set_uri(uri);
    }
    Ok(inspection.host)
}

/// Make the upstream request: only the gateway may speak for the user.
pub(super) fn prepare_upstream_request(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    edge: &EdgeRules,
) -> Result<()> {
    // Every spelling was removed at the edge; the canonical one is removed here
    // too so nothing a filter in between might add can survive.
    for name in &edge.identity_headers {
        req.remove_header(name);
    }
    if let Some(user) = ctx.user {
        req.insert_header("X-User-Id", http::HeaderValue::from(user.get()))?;
        if !ctx.roles.is_empty() {
            // Validated role names are header-safe: `[a-z0-9_.:-]` and commas.
            req.insert_header("X-User-Roles", ctx.roles.as_str())?;
        }
    }
    if !ctx.route.as_ref().is_some_and(|r| r.forward_authorization) {
        req.remove_header(&http::header::AUTHORIZATION);
    }
    remove_present(req, &URL_OVERRIDES);
    join_cookie_fields(req)?;
    forwarding_headers(session, req, edge)?;
    req.insert_header("X-Request-Id", ctx.request_id.as_str())?;

    if let Some(route) = &ctx.route {
        if let Some(new_path) = route.rewrite(req.uri.path()) {
            forwarded_prefix(session, req, edge, route.prefix())?;
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

/// Remove each of `names` the request carries. Usually none is there, and a
/// lookup is half the price of Pingora's remove (which also updates its
/// case-preserving name map): this runs on every request.
/// An HTTP/2 client may send `cookie` as several fields (RFC 9113 §8.2.3,
/// for compression); forwarded to HTTP/1.1 they must be one, joined by `; `.
/// One field is right for an HTTP/2 upstream too.
fn join_cookie_fields(req: &mut RequestHeader) -> Result<()> {
    let mut fields = req.headers.get_all(http::header::COOKIE).iter();
    let (Some(first), Some(_)) = (fields.next(), fields.next()) else {
        return Ok(());
    };
    let mut joined = first.as_bytes().to_vec();
    for more in req.headers.get_all(http::header::COOKIE).iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(more.as_bytes());
    }
    let value = http::HeaderValue::from_bytes(&joined).map_err(|e| {
        pingora_error::Error::because(pingora_error::ErrorType::InvalidHTTPHeader, "cookie", e)
    })?;
    req.insert_header(http::header::COOKIE, value)?;
    Ok(())
}

fn remove_present(req: &mut RequestHeader, names: &[&str]) {
    for name in names {
        if req.headers.contains_key(*name) {
            req.remove_header(*name);
        }
    }
}

/// Remove each header named in `names` in one pass over the request's names
/// (stored lowercase), cheaper than a hash lookup per name when, as nearly
/// always, none is there; nothing is allocated then.
fn remove_named(req: &mut RequestHeader, names: &[&str]) {
    let mut found = Vec::new();
    for name in req.headers.keys() {
        if names.contains(&name.as_str()) && !found.contains(name) {
            found.push(name.clone());
        }
    }
    for name in found {
        req.remove_header(&name);
    }
}

/// `X-Forwarded-Prefix` for a route that strips its prefix: the prefix the
/// upstream no longer sees, after a trusted proxy's own when it sent one.
fn forwarded_prefix(
    session: &Session,
    req: &mut RequestHeader,
    edge: &EdgeRules,
    prefix: &str,
) -> Result<()> {
    let trusted = peer_ip(session).is_some_and(|ip| edge.trusted_proxies.contains(ip));
    let prior = trusted
        .then(|| req.headers.get("x-forwarded-prefix"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_end_matches('/'))
        .filter(|v| v.starts_with('/'));
    let value = match prior {
        Some(p) => format!("{p}{prefix}"),
        None => prefix.to_owned(),
    };
    req.insert_header("X-Forwarded-Prefix", value)?;
    Ok(())
}

/// X-Forwarded-For/-Proto/-Host: appended to behind a trusted proxy,
/// replaced by the gateway's own view otherwise.
fn forwarding_headers(session: &Session, req: &mut RequestHeader, edge: &EdgeRules) -> Result<()> {
    let peer = peer_ip(session);
    let trusted = peer.is_some_and(|ip| edge.trusted_proxies.contains(ip));
    let own_proto = if session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .is_some()
    {
        "https"
    } else {
        "http"
    };
    if !trusted {
        remove_named(req, &CLIENT_CLAIMS);
    }
    let prior = |req: &RequestHeader, name: &str| -> Option<String> {
        let values: Vec<&str> = req
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    if let Some(ip) = peer {
        let xff = match trusted.then(|| prior(req, "x-forwarded-for")).flatten() {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.to_string(),
        };
        req.insert_header("X-Forwarded-For", xff)?;
    } else {
        req.remove_header("x-forwarded-for");
    }
    let proto = trusted
        .then(|| prior(req, "x-forwarded-proto"))
        .flatten()
        .filter(|p| p == "http" || p == "https");
    match proto {
        Some(p) => req.insert_header("X-Forwarded-Proto", p)?,
        // A static value: no copy on every request.
        None => req.insert_header(
            "X-Forwarded-Proto",
            http::HeaderValue::from_static(own_proto),
        )?,
    }
    let forwarded_host = trusted.then(|| prior(req, "x-forwarded-host")).flatten();
    match forwarded_host {
        Some(h) => req.insert_header("X-Forwarded-Host", h)?,
        None => match req.headers.get(http::header::HOST).cloned() {
            Some(h) => req.insert_header("X-Forwarded-Host", h)?,
            None => {
                req.remove_header("x-forwarded-host");
            }
        },
    }
    Ok(())
}
