//! Identity headers and CGI meta-variable names no client may send, in any spelling, and what to do with underscores in header names.
//!
//! CGI-style upstreams (WSGI, Rack, PHP) expose `X-User-Id`, `X_User_Id` and
//! `x_user_id` alike as `HTTP_X_USER_ID` (Puma's CVE-2024-45614), so a header
//! is an identity header when its name, case-folded and with `_` read as `-`,
//! equals one. Some of them also take a header named like a CGI
//! meta-variable for the variable itself (gunicorn reads a `SCRIPT_NAME`
//! header as the mount point, so `SCRIPT_NAME: /pub` on `/pub/admin` routes
//! to `/admin`): those names go in every spelling too.

use http::{HeaderMap, HeaderName};
use serde::Deserialize;

/// What to do with a request header whose name contains `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnderscoreHeaders {
    /// Remove it before forwarding (nginx's `underscores_in_headers off`).
    #[default]
    Drop,
    /// Answer 400.
    Reject,
    /// Forward it, unless it spells an identity header.
    Allow,
}

/// A request that must be refused because of its header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnderscoreRejected;

/// Whether `name` (lowercase, as `http` stores it) spells `identity` (lowercase).
fn spells(name: &str, identity: &str) -> bool {
    name.len() == identity.len()
        && name
            .bytes()
            .zip(identity.bytes())
            .all(|(a, b)| a == b || (a == b'_' && b == b'-'))
}

/// Headers the gateway itself sets or vouches for (the forwarding family
/// only a trusted proxy may send): under `allow`, an underscore spelling of
/// one is still removed, since CGI-style upstreams read `X_Forwarded_For` as
/// `X-Forwarded-For`. The hyphen spellings are dealt with in
/// `proxy::headers`, which knows whether the peer is trusted.
const GATEWAY_HEADERS: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-original-url",
    "x-rewrite-url",
    "x-request-id",
];

/// The rest of the forwarding family: headers that tell an upstream who the
/// client is or how it connected, believed only from a trusted proxy
/// (`proxy::headers` removes them from anyone else) and never in an
/// underscore spelling (here). One list for both, so they cannot drift.
pub(crate) const CLIENT_CLAIMS: [&str; 11] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-protocol",
    "x-forwarded-server",
    "x-host",
    "x-url-scheme",
    "front-end-https",
];

/// The CGI/1.1 meta-variables (RFC 3875 §4.1), in the spelling `spells` compares with.
const CGI_VARIABLES: [&str; 17] = [
    "auth-type",
    "content-length",
    "content-type",
    "gateway-interface",
    "path-info",
    "path-translated",
    "query-string",
    "remote-addr",
    "remote-host",
    "remote-ident",
    "remote-user",
    "request-method",
    "script-name",
    "server-name",
    "server-port",
    "server-protocol",
    "server-software",
];

/// Whether `name` (lowercase) spells a CGI meta-variable. `Content-Type` and
/// `Content-Length` are HTTP's own headers (the variables are made from them):
/// only their underscore spellings are meta-variable names.
fn spells_cgi_variable(name: &str, underscore: bool) -> bool {
    CGI_VARIABLES.iter().any(|v| spells(name, v))
        && (underscore || !matches!(name, "content-length" | "content-type"))
}

/// The header names to remove from `headers` before anything is forwarded:
/// every spelling of an identity header or a CGI meta-variable, and per
/// `policy` every name with `_` (`reject` refuses an underscore spelling
/// of either before it can be removed).
/// Empty (and allocation-free) for an ordinary request.
pub(crate) fn to_remove(
    headers: &HeaderMap,
    identity: &[HeaderName],
    policy: UnderscoreHeaders,
) -> Result<Vec<HeaderName>, UnderscoreRejected> {
    let mut out = Vec::new();
    for name in headers.keys() {
        let n = name.as_str();
        let underscore = n.contains('_');
        if underscore && policy == UnderscoreHeaders::Reject {
            return Err(UnderscoreRejected);
        }
        let remove = (underscore && policy == UnderscoreHeaders::Drop)
            || identity.iter().any(|id| spells(n, id.as_str()))
            || spells_cgi_variable(n, underscore)
            || (underscore
                && GATEWAY_HEADERS
                    .iter()
                    .chain(CLIENT_CLAIMS.iter())
                    .any(|g| spells(n, g)));
        if remove && !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for n in names {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                "1".parse().unwrap(),
            );
        }
        h
    }

    fn ids() -> Vec<HeaderName> {
        vec![HeaderName::from_static("x-user-id")]
    }

    #[test]
    fn every_spelling_of_an_identity_header_goes() {
        for policy in [UnderscoreHeaders::Drop, UnderscoreHeaders::Allow] {
            for n in [
                "X-User-Id",
                "x-user-id",
                "X_User_Id",
                "x_user_id",
                "X-User_Id",
            ] {
                let got = to_remove(&map(&[n, "accept"]), &ids(), policy).unwrap();
                assert_eq!(got.len(), 1, "{n} {policy:?}");
            }
        }
    }

    #[test]
    fn underscore_policy() {
        let lax = to_remove(
            &map(&[
                "x_forwarded_for",
                "X_Real_IP",
                "x_trace",
                "X_Forwarded_Ssl",
                "front_end_https",
            ]),
            &ids(),
            UnderscoreHeaders::Allow,
        )
        .unwrap();
        assert_eq!(lax.len(), 4, "gateway headers go even under allow: {lax:?}");
        let h = map(&["x_trace", "accept"]);
        assert_eq!(
            to_remove(&h, &ids(), UnderscoreHeaders::Drop).unwrap(),
            vec![HeaderName::from_static("x_trace")]
        );
        assert!(to_remove(&h, &ids(), UnderscoreHeaders::Allow)
            .unwrap()
            .is_empty());
        assert_eq!(
            to_remove(&h, &ids(), UnderscoreHeaders::Reject),
            Err(UnderscoreRejected)
        );
    }

    #[test]
    fn cgi_variables_go_in_every_spelling_whatever_the_policy() {
        for policy in [UnderscoreHeaders::Drop, UnderscoreHeaders::Allow] {
            for n in [
                "SCRIPT_NAME",
                "Script-Name",
                "script_name",
                "PATH_INFO",
                "Remote-User",
                "remote_addr",
                "SERVER-NAME",
                "query_string",
                "Auth_Type",
                "content_type",
                "CONTENT_LENGTH",
            ] {
                let got = to_remove(&map(&[n, "accept"]), &ids(), policy).unwrap();
                assert_eq!(got.len(), 1, "{n} {policy:?}");
            }
        }
    }

    #[test]
    fn ordinary_headers_stay() {
        let h = map(&[
            "accept",
            "x-user",
            "x-user-idx",
            "authorization",
            "content-type",
            "content-length",
            "x-script-name",
        ]);
        assert!(to_remove(&h, &ids(), UnderscoreHeaders::Drop)
            .unwrap()
            .is_empty());
    }
}
