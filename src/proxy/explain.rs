//! `authgate routes explain`: the answer a request would get, decided by the same edge, route table and admission code that serve it.

use super::admission::{self, RouteRefusal};
use super::routes::RouteTable;
use crate::api::Endpoint;
use crate::auth::revocations::Identity;
use crate::auth::roles::Roles;
use crate::config::AuthPolicy;
use crate::domain::UserId;
use crate::edge::EdgeRules;
use crate::error::ErrorReply;
use pingora_http::RequestHeader;
use serde_json::{json, Value};

/// Who sends the request being explained.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// No token at all.
    Anonymous,
    /// A valid token holding these roles.
    Holding(Roles),
}

/// The verdict, and whether the request would get through.
pub(crate) struct Explanation {
    /// A JSON object saying what matched and what the answer would be.
    pub(crate) report: Value,
    /// Forwarded, or served by the gateway's own API.
    pub(crate) allowed: bool,
}

fn refused(mut report: Value, e: &ErrorReply) -> Explanation {
    report["answer"] = json!({ "status": e.status().as_u16(), "error": e.code() });
    Explanation {
        report,
        allowed: false,
    }
}

/// Explain `method target` (origin-form path or absolute URL) with `host` for `caller`.
pub(crate) fn explain(
    routes: &RouteTable,
    edge: &EdgeRules,
    method: &str,
    target: &str,
    host: Option<&str>,
    caller: &Caller,
) -> Result<Explanation, String> {
    let mut req = RequestHeader::build(method, target.as_bytes(), None)
        .map_err(|e| format!("{method} {target}: not a request line ({e})"))?;
    // Without --host an origin-form request still needs one (HTTP/1.1 without
    // Host is 400): `localhost`, which only a route naming it would match.
    let absolute = target.contains("://");
    if let Some(h) = host.or((!absolute).then_some("localhost")) {
        req.insert_header(http::header::HOST, h)
            .map_err(|e| format!("--host {h:?}: {e}"))?;
    }
    let mut report = json!({ "method": method, "target": target });
    let inspection = match edge.inspect(&req) {
        Ok(i) => i,
        Err(r) => return Ok(refused(report, &ErrorReply::Refused(r))),
    };
    let canonical = inspection
        .new_target
        .clone()
        .unwrap_or_else(|| req.uri.path().to_owned());
    let path = canonical.split('?').next().unwrap_or("/").to_owned();
    report["canonical_path"] = json!(path);
    report["host"] = json!(inspection.host);
    if let Some(endpoint) = Endpoint::for_path(&path) {
        report["route"] = Value::Null;
        report["answer"] = json!({ "served_by": "gateway", "endpoint": endpoint.name() });
        return Ok(Explanation {
            report,
            allowed: true,
        });
    }
    let Some(route) = routes.find(inspection.host.as_deref(), &path) else {
        report["route"] = Value::Null;
        return Ok(refused(report, &ErrorReply::NoRoute));
    };
    let policy = match route.auth {
        AuthPolicy::Required => "required",
        AuthPolicy::Optional => "optional",
        AuthPolicy::Public => "public",
    };
    report["route"] = json!({
        "prefix": route.label,
        "upstream": route.cluster.name,
        "auth": policy,
        "roles": route.roles.to_json(),
    });
    let header = match caller {
        Caller::Anonymous => None,
        Caller::Holding(_) => Some(&b"Bearer valid"[..]),
    };
    let verify = |_: &str| match caller {
        Caller::Holding(roles) => Ok(Identity {
            user: UserId::new(1),
            sid: None,
            gen: 0,
            roles: roles.clone(),
        }),
        Caller::Anonymous => Err(crate::auth::access::TokenRejection::Missing),
    };
    let identity = match admission::admit(route.auth, header, verify) {
        Ok(id) => id,
        Err(why) => return Ok(refused(report, &ErrorReply::InvalidToken(why))),
    };
    let parsed = http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    match admission::route_rules(route, identity.as_ref(), &parsed) {
        Ok(()) => {
            report["answer"] = json!({
                "forwarded": true,
                "x_user_id": identity.is_some(),
                "x_user_roles": identity.as_ref().map(|i| i.roles.as_str().to_owned()).filter(|r| !r.is_empty()),
                "path_upstream": route.rewrite(&path).unwrap_or(path),
            });
            Ok(Explanation {
                report,
                allowed: true,
            })
        }
        Err(RouteRefusal::Role) => Ok(refused(report, &ErrorReply::Forbidden)),
        Err(RouteRefusal::Method(allow)) => Ok(refused(
            report,
            &ErrorReply::MethodNotAllowed {
                allow: allow.to_owned().into(),
            },
        )),
    }
}
