//! Credentials: access tokens (JWT), refresh tokens, password hashing.

pub mod access;
pub mod hash_pool;
pub mod password;
pub mod refresh;
pub mod revocations;
pub mod verified_cache;
