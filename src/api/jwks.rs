//! GET /.well-known/jwks.json: the public keys of the signing key ring, for upstreams that verify tokens themselves.

use super::{AuthApi, Reply};

/// The JWK Set (RFC 7517): EdDSA and ES256 keys only, never a private or HS256 key.
pub(super) fn get(api: &AuthApi) -> Reply {
    Reply::ok(api.access.jwks().0)
}
