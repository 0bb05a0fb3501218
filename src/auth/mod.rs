//! Credentials: access tokens (JWT), refresh tokens, password hashing (and Django's hashes, verified until upgraded).

pub(crate) mod access;
pub(crate) mod django;
pub(crate) mod hash_pool;
pub(crate) mod keys;
pub(crate) mod open_streams;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod revocations;
pub(crate) mod roles;
pub(crate) mod verified_cache;
