//! User records: registration with an atomic email claim, login lookup, profile read and update.

use super::{Store, StoreError};
use crate::domain::{Email, UserId, Username};
use std::sync::LazyLock;

/// What `GET /me` shows.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name, `""` until set.
    pub username: String,
}

/// Outcome of a registration attempt.
pub enum Registration {
    /// The user exists now.
    Created(UserId),
    /// Another account holds the email.
    EmailTaken,
}

/// Set fields on a user hash only if the user exists, and return the profile, in one round trip.
static UPDATE_IF_EXISTS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HMGET', KEYS[1], 'email', 'username')",
    )
});

impl Store {
    /// Whether an account holds `email` (a cheap early answer before hashing).
    pub async fn email_taken(&self, email: &Email) -> Result<bool, StoreError> {
        let n: u64 = self
            .redis
            .query(redis::cmd("EXISTS").arg(self.keys.email(email.as_str())))
            .await?;
        Ok(n > 0)
    }

    /// Create a user. The record is written before the email is claimed with
    /// SET NX, so of concurrent registrations exactly one claim wins, and a crash
    /// in between leaves an unreachable record, never a claimed email without a user.
    pub async fn create_user(
        &self,
        email: &Email,
        password_hash: &str,
        now: u64,
    ) -> Result<Registration, StoreError> {
        let id: u64 = self
            .redis
            .query(redis::cmd("INCR").arg(self.keys.next_user_id()))
            .await?;
        let user_key = self.keys.user(id);
        let _: () = self
            .redis
            .query(
                redis::cmd("HSET")
                    .arg(&user_key)
                    .arg("email")
                    .arg(email.as_str())
                    .arg("username")
                    .arg("")
                    .arg("password_hash")
                    .arg(password_hash)
                    .arg("created_at")
                    .arg(now),
            )
            .await?;
        let claimed: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(self.keys.email(email.as_str()))
                    .arg(id)
                    .arg("NX"),
            )
            .await?;
        if claimed.is_some() {
            return Ok(Registration::Created(UserId(id)));
        }
        let _: () = self.redis.query(redis::cmd("DEL").arg(&user_key)).await?;
        Ok(Registration::EmailTaken)
    }

    /// The id and password hash of the account holding `email`.
    pub async fn find_credentials(
        &self,
        email: &Email,
    ) -> Result<Option<(UserId, String)>, StoreError> {
        let id: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.email(email.as_str())))
            .await?;
        let Some(id) = id else { return Ok(None) };
        let id: u64 = id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("email key holds {id:?}, not a user id")))?;
        let hash: Option<String> = self
            .redis
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.user(id))
                    .arg("password_hash"),
            )
            .await?;
        Ok(hash.map(|h| (UserId(id), h)))
    }

    /// The stored password hash of `id`, if the user exists.
    pub async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        self.redis
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.user(id.0))
                    .arg("password_hash"),
            )
            .await
    }

    /// Replace the password hash of `id`; false if the user does not exist.
    pub async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<bool, StoreError> {
        let key = self.keys.user(id.0);
        let fields: Option<(Option<String>, Option<String>)> = self
            .redis
            .script(&UPDATE_IF_EXISTS, &[&key], &["password_hash", hash])
            .await?;
        Ok(fields.is_some())
    }

    /// The profile of `id`, if the user exists.
    pub async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        let (email, username): (Option<String>, Option<String>) = self
            .redis
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.user(id.0))
                    .arg("email")
                    .arg("username"),
            )
            .await?;
        Ok(email.map(|email| Profile {
            id,
            email,
            username: username.unwrap_or_default(),
        }))
    }

    /// Set the username of `id`; `None` if the user does not exist.
    pub async fn set_username(
        &self,
        id: UserId,
        username: &Username,
    ) -> Result<Option<Profile>, StoreError> {
        let key = self.keys.user(id.0);
        let fields: Option<(Option<String>, Option<String>)> = self
            .redis
            .script(&UPDATE_IF_EXISTS, &[&key], &["username", username.as_str()])
            .await?;
        Ok(fields.and_then(|(email, username)| {
            email.map(|email| Profile {
                id,
                email,
                username: username.unwrap_or_default(),
            })
        }))
    }
}
