//! What operators do to accounts: read, page through, set roles, disable, enable, delete (leaving a tombstone).
//!
//! Every change that must stop tokens already issued counts the user's token
//! generation up in the same script that makes it, so the caller publishes one
//! `g <user> <gen>` revocation and every instance refuses older tokens.

use super::{eval, Lua, Store, StoreError};
use crate::auth::roles::Roles;
use crate::domain::{Email, UserId};
use std::sync::LazyLock;

/// A user as the admin API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// The id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name (`""` until set).
    pub username: String,
    /// Roles.
    pub roles: Roles,
    /// Whether login and refresh are refused.
    pub disabled: bool,
    /// Registration or import time, seconds since the epoch.
    pub created_at: u64,
}

/// The most ids one page probes, whatever its `limit`: a page of a sparse id
/// range may come back short, with `next` to go on from.
const MAX_PROBES_PER_PAGE: u64 = 2000;

/// The fields an [`Account`] is read from, in this order.
const FIELDS: [&str; 6] = [
    "email",
    "username",
    "roles",
    "disabled",
    "created_at",
    "deleted_at",
];

/// Replace the roles (`ARGV[1]`, canonical) and count the generation up:
/// `{old roles, new gen}`, or false without a live user.
static SET_ROLES: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return false
end
local old = redis.call('HGET', KEYS[1], 'roles') or ''
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'roles') else redis.call('HSET', KEYS[1], 'roles', ARGV[1]) end
return {old, tostring(redis.call('HINCRBY', KEYS[1], 'gen', 1))}
",
    )
});

/// Set (`ARGV[1]` = '1') or clear the disabled flag: `{was disabled ('1' or ''),
/// gen}` (the generation is counted up by a disable only), or false without a
/// live user.
static SET_DISABLED: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return false
end
local was = redis.call('HGET', KEYS[1], 'disabled') or ''
local gen
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'disabled', '1')
  gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
else
  redis.call('HDEL', KEYS[1], 'disabled')
  gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
end
return {was, tostring(gen)}
",
    )
});

/// Turn a user record into its tombstone: every field goes but the generation
/// (counted up, so every token is revoked) and `deleted_at` (`ARGV[1]`), so the
/// id is never handed out again; it is also marked disabled and logged out
/// everywhere (`sessions_nbf`), so no script that checks either for a live
/// user can ever open or renew a session for it. `{email, gen}`, or false
/// without a live user.
static TOMBSTONE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return false
end
local email = redis.call('HGET', KEYS[1], 'email') or ''
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gen', gen, 'deleted_at', ARGV[1], 'disabled', '1', 'sessions_nbf', ARGV[1])
return {email, tostring(gen)}
",
    )
});

/// Delete an email claim only if it still names the user `ARGV[1]`.
static RELEASE_EMAIL: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// What a change did: the value before, and the user's generation after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changed<T> {
    /// The value before the change.
    pub old: T,
    /// The generation now (tokens below it are revoked once published).
    pub gen: u64,
}

fn parse_changed(reply: Option<Vec<String>>) -> Result<Option<(String, u64)>, StoreError> {
    let Some(reply) = reply else { return Ok(None) };
    match reply.as_slice() {
        [old, gen] => gen
            .parse()
            .map(|gen| Some((old.clone(), gen)))
            .map_err(|_| StoreError::Corrupt(format!("a user generation of {gen:?}"))),
        other => Err(StoreError::Corrupt(format!(
            "account script answered {other:?}"
        ))),
    }
}

fn account(id: UserId, fields: Vec<Option<String>>) -> Result<Option<Account>, StoreError> {
    let mut f = fields.into_iter();
    let mut next = || f.next().flatten();
    let (email, username, roles, disabled, created_at, deleted_at) =
        (next(), next(), next(), next(), next(), next());
    let (Some(email), None) = (email, deleted_at) else {
        return Ok(None);
    };
    let roles = Roles::from_stored(roles.as_deref().unwrap_or(""))
        .map_err(|e| StoreError::Corrupt(format!("roles of user {}: {e}", id.get())))?;
    Ok(Some(Account {
        id,
        email,
        username: username.unwrap_or_default(),
        roles,
        disabled: disabled.is_some_and(|d| d == "1"),
        created_at: created_at.and_then(|c| c.parse().ok()).unwrap_or(0),
    }))
}

impl Store {
    /// The live user `id` (a tombstone or nothing: `None`).
    pub(crate) async fn account(&self, id: UserId) -> Result<Option<Account>, StoreError> {
        let fields: Vec<Option<String>> = self
            .redis
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.user(id.get()))
                    .arg(&FIELDS),
            )
            .await?;
        account(id, fields)
    }

    /// The id holding `email`, if any.
    pub(crate) async fn account_id_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<UserId>, StoreError> {
        let id: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.email(email.as_str())))
            .await?;
        id.map(|id| {
            id.parse()
                .map(UserId::new)
                .map_err(|_| StoreError::Corrupt(format!("email key holds {id:?}, not a user id")))
        })
        .transpose()
    }

    /// Users with ids above `after`, at most `limit`, in id order, and the
    /// `after` of the next page (`None`: no id above the last one probed was
    /// ever handed out). Ids are probed one by one up to the id counter (which
    /// an import raises to its highest id): no KEYS or SCAN, so it pages the
    /// same on Redis Cluster.
    pub(crate) async fn accounts_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Account>, Option<u64>), StoreError> {
        let top: Option<u64> = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.next_user_id()))
            .await?;
        let top = top.unwrap_or(0);
        let mut out = Vec::new();
        let mut id = after;
        let last = top.min(after.saturating_add(MAX_PROBES_PER_PAGE));
        while id < last && out.len() < limit {
            // Probe in batches, concurrently: each id is its own slot on a cluster.
            let batch: Vec<u64> = (id + 1..=last).take(64).collect();
            let reads = batch.iter().map(|&i| self.account(UserId::new(i)));
            let found = futures_util::future::try_join_all(reads).await?;
            for (i, a) in batch.iter().zip(found) {
                id = *i;
                if let Some(a) = a {
                    out.push(a);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok((out, (id < top).then_some(id)))
    }

    /// Replace the roles of `user`; the old ones and the new generation.
    pub(crate) async fn set_roles(
        &self,
        user: UserId,
        roles: &Roles,
    ) -> Result<Option<Changed<Roles>>, StoreError> {
        let mut cmd = eval(&SET_ROLES, &[&self.keys.user(user.get())]);
        cmd.arg(roles.as_str());
        let Some((old, gen)) = parse_changed(self.redis.query(&cmd).await?)? else {
            return Ok(None);
        };
        let old = Roles::from_stored(&old)
            .map_err(|e| StoreError::Corrupt(format!("roles of user {}: {e}", user.get())))?;
        Ok(Some(Changed { old, gen }))
    }

    /// Disable or enable `user`: whether it was disabled, and the generation
    /// (counted up by a disable).
    pub(crate) async fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
    ) -> Result<Option<Changed<bool>>, StoreError> {
        let mut cmd = eval(&SET_DISABLED, &[&self.keys.user(user.get())]);
        cmd.arg(if disabled { "1" } else { "" });
        Ok(
            parse_changed(self.redis.query(&cmd).await?)?.map(|(was, gen)| Changed {
                old: was == "1",
                gen,
            }),
        )
    }

    /// Replace `user` by its tombstone and free its email; the email it had
    /// and the generation that revokes its tokens. Its sessions are ended by
    /// the caller ([`Store::revoke_all`]) first.
    pub(crate) async fn tombstone_user(
        &self,
        user: UserId,
        now_s: u64,
    ) -> Result<Option<Changed<String>>, StoreError> {
        let mut cmd = eval(&TOMBSTONE, &[&self.keys.user(user.get())]);
        cmd.arg(now_s);
        let Some((email, gen)) = parse_changed(self.redis.query(&cmd).await?)? else {
            return Ok(None);
        };
        if !email.is_empty() {
            let mut release = eval(&RELEASE_EMAIL, &[&self.keys.email(&email)]);
            release.arg(user.get());
            let _: u64 = self.redis.query(&release).await?;
        }
        Ok(Some(Changed { old: email, gen }))
    }
}
