//! Who may pass a route: the README's policy table as one pure function.

use crate::auth::access::{bearer_token, TokenRejection};
use crate::config::AuthPolicy;
use crate::domain::UserId;

/// The decision for a request on a route with `policy`, given its
/// `Authorization` value and a token verifier: `Ok(Some(user))` forwards with
/// `X-User-Id`, `Ok(None)` forwards without identity, `Err` answers 401.
///
/// | policy     | no token       | valid token    | invalid token |
/// |------------|----------------|----------------|---------------|
/// | `required` | 401 (missing)  | the user       | 401           |
/// | `optional` | no identity    | the user       | 401           |
/// | `public`   | no identity    | no identity    | no identity   |
pub(super) fn admit(
    policy: AuthPolicy,
    authorization: Option<&[u8]>,
    verify: impl FnOnce(&str) -> Result<UserId, TokenRejection>,
) -> Result<Option<UserId>, TokenRejection> {
    if policy == AuthPolicy::Public {
        // The token is not even looked at: a public route costs no verification.
        return Ok(None);
    }
    match bearer_token(authorization).and_then(verify) {
        Ok(user) => Ok(Some(user)),
        Err(TokenRejection::Missing) if policy == AuthPolicy::Optional => Ok(None),
        Err(why) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthPolicy::*;

    const VALID: &[u8] = b"Bearer good";
    const INVALID: &[u8] = b"Bearer forged";

    fn verify(token: &str) -> Result<UserId, TokenRejection> {
        match token {
            "good" => Ok(UserId(7)),
            _ => Err(TokenRejection::BadSignature),
        }
    }

    fn decide(policy: AuthPolicy, header: Option<&[u8]>) -> Result<Option<UserId>, TokenRejection> {
        admit(policy, header, verify)
    }

    #[test]
    fn required() {
        assert_eq!(decide(Required, None), Err(TokenRejection::Missing));
        assert_eq!(decide(Required, Some(VALID)), Ok(Some(UserId(7))));
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
        assert_eq!(decide(Optional, Some(VALID)), Ok(Some(UserId(7))));
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
