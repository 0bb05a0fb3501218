//! WebSocket upgrades from browsers: the access token from the `access_token` query parameter (a browser cannot set `Authorization` on `new WebSocket()`), and the route's allowed origins.
//!
//! Only a WebSocket upgrade (GET with `Upgrade: websocket`) may carry its
//! token in the query; on every other request the parameter means nothing and
//! is forwarded as sent (a plain GET with `?access_token=` is 401 as before).
//! The parameter is removed from the target before anything else sees it, so
//! no upstream receives it; the access log never writes query strings.

use crate::edge::EdgeRejection;
use http::HeaderMap;
use pingora_http::RequestHeader;

/// The query parameter a browser's WebSocket puts its access token in.
const PARAMETER: &str = "access_token";

/// Whether `req` is a WebSocket opening handshake (RFC 6455 §4.1): GET with
/// `Upgrade: websocket` and a `Sec-WebSocket-Key`. Only these may carry the
/// token in the query: a plain request with an `Upgrade` header added by hand
/// is not one.
pub(super) fn is_upgrade(req: &RequestHeader) -> bool {
    req.method == http::Method::GET
        && req.headers.contains_key(http::header::SEC_WEBSOCKET_KEY)
        && req.headers.get_all(http::header::UPGRADE).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
        })
}

/// A token taken out of an upgrade's query, and the target without it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct QueryToken {
    /// `Bearer <token>`, as an `Authorization` value would carry it.
    pub(super) authorization: String,
    /// The request target with the parameter removed (other parameters as sent).
    pub(super) target: String,
}

/// The `access_token` of an upgrade's query. `Ok(None)` without one;
/// refused (400 `invalid_authorization`) when it is given twice, or beside an
/// `Authorization` header: two credentials, and no way to know which one the
/// client meant.
pub(super) fn query_token(
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<QueryToken>, EdgeRejection> {
    let Some(query) = query else { return Ok(None) };
    let mut token = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let name = pair.split('=').next().unwrap_or("");
        if !names_the_parameter(name) {
            // A `;`-separated segment (some parsers split on it too) naming
            // the parameter would reach the upstream as a second token.
            if pair
                .split(';')
                .skip(1)
                .any(|seg| names_the_parameter(seg.split('=').next().unwrap_or("")))
            {
                return Err(EdgeRejection::AmbiguousAuthorization);
            }
            kept.push(pair);
            continue;
        }
        if token.is_some() || name != PARAMETER {
            // Twice, or in another spelling (`access%5Ftoken`, `Access_Token`)
            // that an upstream's query parser reads as the same name.
            return Err(EdgeRejection::AmbiguousAuthorization);
        }
        // Tokens are base64url and dots; a percent-encoded one is decoded,
        // as a browser's URL API may have encoded it.
        let value = pair.get(name.len() + 1..).unwrap_or("");
        let decoded: String = form_urlencoded::parse(format!("t={value}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        token = Some(decoded);
    }
    let Some(token) = token else { return Ok(None) };
    if headers.contains_key(http::header::AUTHORIZATION) {
        return Err(EdgeRejection::AmbiguousAuthorization);
    }
    let target = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    Ok(Some(QueryToken {
        authorization: format!("Bearer {token}"),
        target,
    }))
}

/// Whether a query parameter name reads as `access_token` to some parser:
/// percent-decoded, ASCII case ignored (ASP.NET Core's query is case-insensitive).
fn names_the_parameter(raw: &str) -> bool {
    let decoded: String = form_urlencoded::parse(format!("{raw}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default();
    decoded.eq_ignore_ascii_case(PARAMETER)
}

/// Whether the upgrade's `Origin` is one of `allowed` (empty: any origin).
/// Compared as the browser sends it, ASCII case aside; a missing `Origin` is
/// refused when a list is set (browsers always send one on a WebSocket).
pub(super) fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let mut origins = headers.get_all(http::header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(o), None) => allowed
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(o.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_token_leaves_the_query_and_the_rest_stays_as_sent() {
        let t = query_token(
            "/ws",
            Some("room=1&access_token=a.b.c&x=%20"),
            &headers(&[]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.authorization, "Bearer a.b.c");
        assert_eq!(t.target, "/ws?room=1&x=%20");
        let t = query_token("/ws", Some("access_token=a%2Eb"), &headers(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.authorization.as_str(), t.target.as_str()),
            ("Bearer a.b", "/ws")
        );
        assert_eq!(query_token("/ws", Some("room=1"), &headers(&[])), Ok(None));
        assert_eq!(query_token("/ws", None, &headers(&[])), Ok(None));
        // A look-alike name is not the parameter.
        assert_eq!(
            query_token("/ws", Some("access_tokens=x"), &headers(&[])),
            Ok(None)
        );
    }

    #[test]
    fn other_spellings_of_the_parameter_are_refused() {
        for q in [
            "access_token=a&access%5Ftoken=b",
            "access_token=a&Access_Token=b",
            "access_token=a&x=1;access_token=b",
            "ACCESS_TOKEN=a",
            "x=1;access_token=b",
        ] {
            assert_eq!(
                query_token("/ws", Some(q), &headers(&[])),
                Err(EdgeRejection::AmbiguousAuthorization),
                "{q}"
            );
        }
    }

    #[test]
    fn two_credentials_are_refused() {
        let twice = query_token("/ws", Some("access_token=a&access_token=b"), &headers(&[]));
        assert_eq!(twice, Err(EdgeRejection::AmbiguousAuthorization));
        let both = query_token(
            "/ws",
            Some("access_token=a"),
            &headers(&[("authorization", "Bearer b")]),
        );
        assert_eq!(both, Err(EdgeRejection::AmbiguousAuthorization));
    }

    #[test]
    fn upgrades_and_origins() {
        let mut req = RequestHeader::build("GET", b"/ws", None).unwrap();
        assert!(!is_upgrade(&req));
        req.insert_header("upgrade", "WebSocket").unwrap();
        assert!(!is_upgrade(&req), "no Sec-WebSocket-Key: not a handshake");
        req.insert_header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .unwrap();
        assert!(is_upgrade(&req));
        req.set_method(http::Method::POST);
        assert!(!is_upgrade(&req));
        let list = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed(&headers(&[]), &[]));
        assert!(origin_allowed(
            &headers(&[("origin", "https://APP.example.com")]),
            &list
        ));
        assert!(!origin_allowed(
            &headers(&[("origin", "https://evil.example")]),
            &list
        ));
        assert!(!origin_allowed(&headers(&[]), &list));
        assert!(!origin_allowed(
            &headers(&[
                ("origin", "https://app.example.com"),
                ("origin", "https://evil.example")
            ]),
            &list
        ));
    }
}
