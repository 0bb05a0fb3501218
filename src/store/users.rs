//! User records: registration with an atomic email claim, login lookup, profile read and update.

use super::{Store, StoreError};
use crate::domain::{Email, UserId, Username};
use std::sync::LazyLock;

/// What `GET /me` shows.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// The id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name, `""` until set.
    pub username: String,
}

/// Outcome of a registration attempt.
pub(crate) enum Registration {
    /// The user exists now.
    Created(UserId),
    /// Another account holds the email.
    EmailTaken,
}

/// The most ids [`Store::create_user`] passes over before saying the counter is wrong.
const MAX_TAKEN_IDS: usize = 16;

/// What login needs of an account.
#[derive(Debug)]
pub(crate) struct Credentials {
    /// The id.
    pub user: UserId,
    /// argon2id PHC string, or a Django hash not yet upgraded.
    pub password_hash: String,
    /// Imported from an inactive Django account: it cannot log in.
    pub disabled: bool,
}

/// A user record to write: a registration (id from the counter) or an imported user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewUser<'a> {
    pub(crate) id: u64,
    pub(crate) email: &'a str,
    pub(crate) username: &'a str,
    pub(crate) password_hash: &'a str,
    pub(crate) created_at: u64,
    pub(crate) disabled: bool,
    pub(crate) origin: Origin,
}

/// How a user record came to be, kept in it (`origin`), so an import never
/// mistakes an account someone registered for the one it is importing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `POST /register`.
    Registered,
    /// `import-users`.
    Imported,
}

impl Origin {
    /// The stored form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Registered => "registered",
            Origin::Imported => "imported",
        }
    }
}

/// Create a user hash unless the id is held (by a user, or by the tombstone of
/// a deleted one): nil when created, else what the holder is, as
/// `{email, origin, password_hash, deleted_at}` (`''` for what it lacks). One
/// key, so it runs on Redis Cluster too.
pub(crate) static CREATE_USER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then
  local h = redis.call('HMGET', KEYS[1], 'email', 'origin', 'password_hash', 'deleted_at')
  return {h[1] or '', h[2] or '', h[3] or '', h[4] or ''}
end
redis.call('HSET', KEYS[1], 'email', ARGV[1], 'username', ARGV[2], 'password_hash', ARGV[3],
  'created_at', ARGV[4], 'origin', ARGV[6])
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'disabled', '1') end
return false",
    )
});

/// The next registration id: INCR, raised to the floor `ARGV[1]` first if below it.
static NEXT_ID: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local n = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if n < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return n",
    )
});

/// Set `password_hash` to `ARGV[2]` only if it is `ARGV[1]`; 1 if it was replaced.
static REPLACE_HASH_IF: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('HGET', KEYS[1], 'password_hash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[2])
return 1",
    )
});

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
    pub(crate) async fn email_taken(&self, email: &Email) -> Result<bool, StoreError> {
        let n: u64 = self
            .redis
            .query(redis::cmd("EXISTS").arg(self.keys.email(email.as_str())))
            .await?;
        Ok(n > 0)
    }

    /// Create a user. The record is written before the email is claimed with
    /// SET NX, so of concurrent registrations exactly one claim wins, and a crash
    /// in between leaves an unreachable record, never a claimed email without a user.
    /// An id already held (imported users take ids of their own) is passed over;
    /// no id below `first_id` is handed out.
    pub(crate) async fn create_user(
        &self,
        email: &Email,
        password_hash: &str,
        now: u64,
        first_id: u64,
    ) -> Result<Registration, StoreError> {
        let record = NewUser {
            id: 0,
            email: email.as_str(),
            username: "",
            password_hash,
            created_at: now,
            disabled: false,
            origin: Origin::Registered,
        };
        let mut id = 0;
        let next_key = self.keys.next_user_id();
        for _ in 0..MAX_TAKEN_IDS {
            let next: u64 = self
                .redis
                .script(&NEXT_ID, &[&next_key], &[&first_id.to_string()])
                .await?;
            let holder: Option<Vec<String>> = self
                .redis
                .invoke(
                    &self.keys.user(next),
                    &self.create_user_call(&NewUser { id: next, ..record }),
                )
                .await?;
            if holder.is_none() {
                id = next;
                break;
            }
        }
        if id == 0 {
            return Err(StoreError::Corrupt(format!(
                "{MAX_TAKEN_IDS} ids in a row from user:next_id are taken: the counter is behind the user ids"
            )));
        }
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
            return Ok(Registration::Created(UserId::new(id)));
        }
        let _: () = self
            .redis
            .query(redis::cmd("DEL").arg(self.keys.user(id)))
            .await?;
        Ok(Registration::EmailTaken)
    }

    /// [`CREATE_USER`] for `user`.
    pub(crate) fn create_user_call(&self, user: &NewUser<'_>) -> redis::ScriptInvocation<'static> {
        let mut call = CREATE_USER.prepare_invoke();
        call.key(self.keys.user(user.id))
            .arg(user.email)
            .arg(user.username)
            .arg(user.password_hash)
            .arg(user.created_at)
            .arg(if user.disabled { "1" } else { "" })
            .arg(user.origin.as_str());
        call
    }

    /// The id, password hash and state of the account holding `email`.
    pub(crate) async fn find_credentials(
        &self,
        email: &Email,
    ) -> Result<Option<Credentials>, StoreError> {
        let id: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.email(email.as_str())))
            .await?;
        let Some(id) = id else { return Ok(None) };
        let id: u64 = id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("email key holds {id:?}, not a user id")))?;
        let (hash, disabled): (Option<String>, Option<String>) = self
            .redis
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.user(id))
                    .arg("password_hash")
                    .arg("disabled"),
            )
            .await?;
        Ok(hash.map(|password_hash| Credentials {
            user: UserId::new(id),
            password_hash,
            disabled: disabled.is_some_and(|d| d == "1"),
        }))
    }

    /// Replace the password hash of `id` with `new` if it still is `old` (a login
    /// upgrading a Django hash must not undo a password change made meanwhile).
    pub(crate) async fn upgrade_password_hash(
        &self,
        id: UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let key = self.keys.user(id.get());
        let replaced: u8 = self
            .redis
            .script(&REPLACE_HASH_IF, &[&key], &[old, new])
            .await?;
        Ok(replaced == 1)
    }

    /// The stored password hash and email of `id`, if the user exists.
    pub(crate) async fn password_and_email(
        &self,
        id: UserId,
    ) -> Result<Option<(String, String)>, StoreError> {
        let (hash, email): (Option<String>, Option<String>) = self
            .redis
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.user(id.get()))
                    .arg("password_hash")
                    .arg("email"),
            )
            .await?;
        Ok(hash.zip(email))
    }

    /// Replace the password hash of `id`; false if the user does not exist.
    pub(crate) async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let key = self.keys.user(id.get());
        let fields: Option<(Option<String>, Option<String>)> = self
            .redis
            .script(&UPDATE_IF_EXISTS, &[&key], &["password_hash", hash])
            .await?;
        Ok(fields.is_some())
    }

    /// The profile of `id`, if the user exists.
    pub(crate) async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        let (email, username): (Option<String>, Option<String>) = self
            .redis
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.user(id.get()))
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
    pub(crate) async fn set_username(
        &self,
        id: UserId,
        username: &Username,
    ) -> Result<Option<Profile>, StoreError> {
        let key = self.keys.user(id.get());
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
