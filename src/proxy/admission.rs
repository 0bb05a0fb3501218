//! Who may pass a route: the policy table of docs/routes.md as one pure function.

use crate::auth::access::{bearer_token, TokenRejection};
use crate::auth::revocations::Identity;
use crate::config::AuthPolicy;

/// The decision for a request on a route with `policy`, given its
/// `Authorization` value and a token verifier: `Ok(Some(identity))` forwards
/// with `X-User-Id`, `Ok(None)` forwards without identity, `Err` answers 401.
/// A route's `roles` and `methods` are checked after this, on its answer
/// ([`route_rules`]), so a request without a token is 401 before anything else.
///
/// | policy     | no token       | valid token    | invalid token |
/// |------------|----------------|----------------|---------------|
/// | `required` | 401 (missing)  | the user       | 401           |
/// | `optional` | no identity    | the user       | 401           |
/// | `public`   | no identity    | no identity    | no identity   |
pub(super) fn admit(
    policy: AuthPolicy,
    authorization: Option<&[u8]>,
    verify: impl FnOnce(&str) -> Result<Identity, TokenRejection>,
) -> Result<Option<Identity>, TokenRejection> {
    if policy == AuthPolicy::Public {
        // The token is not even looked at: a public route costs no verification.
        return Ok(None);
    }
    match bearer_token(authorization).and_then(verify) {
        Ok(id) => Ok(Some(id)),
        Err(TokenRejection::Missing) if policy == AuthPolicy::Optional => Ok(None),
        Err(why) => Err(why),
    }
}

/// What a route's `roles` and `methods` say of an admitted request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RouteRefusal<'r> {
    /// 403: the token holds none of the route's roles.
    Role,
    /// 405, with the `Allow` value.
    Method(&'r str),
}

/// The route's own rules, after admission: roles first (who), then the method (what).
pub(super) fn route_rules<'r>(
    route: &'r super::routes::Route,
    identity: Option<&Identity>,
    method: &http::Method,
) -> Result<(), RouteRefusal<'r>> {
    if !route.roles.is_empty() && !identity.is_some_and(|id| id.roles.any_of(&route.roles)) {
        return Err(RouteRefusal::Role);
    }
    route.check_method(method).map_err(RouteRefusal::Method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::roles::Roles;
    use crate::domain::UserId;
    use AuthPolicy::*;

    const VALID: &[u8] = b"Bearer good";
    const INVALID: &[u8] = b"Bearer forged";

    fn verify(token: &str) -> Result<Identity, TokenRejection> {
        match token {
            "good" => Ok(Identity {
                user: UserId::new(7),
                sid: None,
                gen: 0,
                roles: Roles::NONE,
            }),
            _ => Err(TokenRejection::BadSignature),
        }
    }

    fn decide(policy: AuthPolicy, header: Option<&[u8]>) -> Result<Option<UserId>, TokenRejection> {
        admit(policy, header, verify).map(|id| id.map(|id| id.user))
    }

    #[test]
    fn roles_then_methods() {
        use super::super::routes::Route;
        use super::super::upstreams::Cluster;
        let c = std::sync::Arc::new(Cluster::for_tests());
        let route = Route::new("/admin", None, Required, false, c)
            .with_roles(Roles::from_names(&["admin", "ops"]).unwrap())
            .with_methods(vec![http::Method::GET, http::Method::HEAD]);
        let holder = |names: &[&str]| Identity {
            user: UserId::new(7),
            sid: None,
            gen: 0,
            roles: Roles::from_names(names).unwrap(),
        };
        let get = http::Method::GET;
        assert_eq!(route_rules(&route, Some(&holder(&["ops"])), &get), Ok(()));
        assert_eq!(
            route_rules(&route, Some(&holder(&["superadmin"])), &get),
            Err(RouteRefusal::Role)
        );
        assert_eq!(route_rules(&route, None, &get), Err(RouteRefusal::Role));
        assert_eq!(
            route_rules(&route, Some(&holder(&["admin"])), &http::Method::POST),
            Err(RouteRefusal::Method("GET, HEAD"))
        );
        assert_eq!(
            route_rules(&route, Some(&holder(&[])), &http::Method::POST),
            Err(RouteRefusal::Role),
            "who before what: a 405 would tell a stranger which methods exist"
        );
    }

    #[test]
    fn required() {
        assert_eq!(decide(Required, None), Err(TokenRejection::Missing));
        assert_eq!(decide(Required, Some(VALID)), Ok(Some(UserId::new(7))));
        assert_eq!(
            decide(Required, Some(INVALID)),
            Err(TokenRejection::BadSignature)
        );
        // Another scheme is no bearer token at all.
        assert_eq!(
            decide(Required, Some(b"Basic eDp5")),
            Err(TokenRejection::Missing)
        );
    }

    #[test]
    fn optional() {
        assert_eq!(decide(Optional, None), Ok(None));
        assert_eq!(decide(Optional, Some(VALID)), Ok(Some(UserId::new(7))));
        assert_eq!(
            decide(Optional, Some(INVALID)),
            Err(TokenRejection::BadSignature)
        );
    }

    #[test]
    fn public() {
        assert_eq!(decide(Public, None), Ok(None));
        assert_eq!(decide(Public, Some(VALID)), Ok(None));
        assert_eq!(decide(Public, Some(INVALID)), Ok(None));
    }
}
