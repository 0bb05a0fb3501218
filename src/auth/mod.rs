//! Credentials: access tokens (JWT), refresh tokens, password hashing.

pub(crate) mod access;
pub(crate) mod hash_pool;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod revocations;
pub(crate) mod verified_cache;
