//! Writing imported users in pipelined batches, and the read-only check a dry run (and the overlap check before a write) makes.
//!
//! Each user is two single-key steps, as in registration: create `user:{pk}`
//! unless the id is held ([`CREATE_USER`]), then claim `email:<email>` unless it
//! is held ([`CLAIM_EMAIL`]); a claim lost to another account deletes the record
//! just created. Each step sends the whole batch at once: one call per user,
//! pipelined on the wire by the multiplexed connection, each to its slot's node
//! on a cluster.

use super::users::{NewUser, Origin, CREATE_USER};
use super::{Store, StoreError};
use futures_util::future::try_join_all;
use std::sync::LazyLock;

/// What became of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written now (or, in a dry run, would be).
    Imported,
    /// The same id already holds the same email, and the email names it: an earlier import.
    AlreadyPresent,
    /// The id is an account registered here (or one written before records kept
    /// their origin that the import cannot tell from one): the id spaces met.
    IdRegistered,
    /// The id is the tombstone of a deleted user: never handed to a second person.
    IdDeleted,
    /// The id holds another imported account.
    IdTaken,
    /// Another account (this id) holds the email.
    EmailTaken(u64),
}

/// Claim an email for `ARGV[1]` unless it is held: nil when claimed, else the holder.
static CLAIM_EMAIL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local holder = redis.call('GET', KEYS[1])
if holder then return holder end
redis.call('SET', KEYS[1], ARGV[1])
return false",
    )
});

/// Raise the counter to `ARGV[1]` unless it is already there or above; its value
/// after. Compared as decimal strings (Lua numbers lose integers above 2^53).
static RAISE_TO: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local cur = redis.call('GET', KEYS[1]) or '0'
local new = ARGV[1]
if #new > #cur or (#new == #cur and new > cur) then
  redis.call('SET', KEYS[1], new)
  return new
end
return cur",
    )
});

/// What holds an id: the fields [`CREATE_USER`] answers with, `None` where absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holder {
    email: Option<String>,
    origin: Option<String>,
    password_hash: Option<String>,
    deleted: bool,
}

impl Holder {
    /// From `{email, origin, password_hash, deleted_at}`, `''` for absent.
    fn from_fields(f: Vec<Option<String>>) -> Holder {
        let mut f = f.into_iter().map(|v| v.filter(|s| !s.is_empty()));
        let mut next = || f.next().flatten();
        let (email, origin, password_hash) = (next(), next(), next());
        Holder {
            email,
            origin,
            password_hash,
            deleted: next().is_some(),
        }
    }

    /// Whether this is `user` written by an earlier import: imported with the
    /// same email, or (a record from before origins were kept) the same email
    /// and the very hash of the file, which nobody registering can produce.
    fn is_earlier_import_of(&self, user: &NewUser<'_>) -> bool {
        let same_email = self.email.as_deref() == Some(user.email);
        match self.origin.as_deref() {
            Some(o) => o == Origin::Imported.as_str() && same_email,
            None => same_email && self.password_hash.as_deref() == Some(user.password_hash),
        }
    }
}

/// The outcome for `user`, from what holds its id (`None`: nothing, or the
/// record was created just now) and the holder of its email (`None`: free, or
/// claimed just now).
fn outcome(user: &NewUser<'_>, id_holder: Option<&Holder>, email_holder: Option<&str>) -> Outcome {
    let id = user.id.to_string();
    if let Some(h) = id_holder {
        if h.deleted {
            return Outcome::IdDeleted;
        }
        if !h.is_earlier_import_of(user) {
            return match h.origin.as_deref() {
                Some(o) if o == Origin::Imported.as_str() => Outcome::IdTaken,
                _ => Outcome::IdRegistered,
            };
        }
    }
    match (id_holder, email_holder) {
        (Some(_), Some(h)) if h == id => Outcome::AlreadyPresent,
        (_, Some(h)) if h != id => Outcome::EmailTaken(h.parse().unwrap_or(0)),
        _ => Outcome::Imported,
    }
}

impl Store {
    /// Raise `user:next_id` to at least `id` (never lower it); its value after.
    pub(crate) async fn raise_next_user_id(&self, id: u64) -> Result<String, StoreError> {
        let key = self.keys.next_user_id();
        self.redis
            .script(&RAISE_TO, &[&key], &[&id.to_string()])
            .await
    }

    /// Write `users` (ids distinct, emails distinct and normalised); one outcome each, in order.
    pub(crate) async fn import_users(
        &self,
        users: &[NewUser<'_>],
    ) -> Result<Vec<Outcome>, StoreError> {
        // One call per user, all sent at once over the multiplexed connection
        // (a pipeline on the wire; on a cluster, each to its slot's node).
        self.redis.load(&CREATE_USER).await?;
        self.redis.load(&CLAIM_EMAIL).await?;
        let calls: Vec<_> = users.iter().map(|u| self.create_user_call(u)).collect();
        let keys: Vec<String> = users.iter().map(|u| self.keys.user(u.id)).collect();
        let id_holders: Vec<Option<Holder>> = try_join_all(
            keys.iter()
                .zip(&calls)
                .map(|(k, c)| self.redis.invoke::<Option<Vec<Option<String>>>>(k, c)),
        )
        .await?
        .into_iter()
        .map(|h| h.map(Holder::from_fields))
        .collect();

        // Claim the email of every record created now or holding the same email.
        let claiming: Vec<usize> = users
            .iter()
            .zip(&id_holders)
            .enumerate()
            .filter(|(_, (u, holder))| holder.as_ref().is_none_or(|h| h.is_earlier_import_of(u)))
            .map(|(i, _)| i)
            .collect();
        let claims: Vec<_> = claiming
            .iter()
            .map(|&i| {
                let key = self.keys.email(users[i].email);
                let mut call = CLAIM_EMAIL.prepare_invoke();
                call.key(&key).arg(users[i].id);
                (key, call)
            })
            .collect();
        let claimed: Vec<Option<String>> =
            try_join_all(claims.iter().map(|(k, c)| self.redis.invoke(k, c))).await?;
        let mut email_holders = vec![None; users.len()];
        for (i, holder) in claiming.into_iter().zip(claimed) {
            email_holders[i] = holder;
        }

        let mut outcomes = Vec::with_capacity(users.len());
        let mut rollback = Vec::new();
        for (u, (id_holder, email_holder)) in
            users.iter().zip(id_holders.iter().zip(&email_holders))
        {
            let o = outcome(u, id_holder.as_ref(), email_holder.as_deref());
            // A record created now whose email went to another account.
            if id_holder.is_none() && matches!(o, Outcome::EmailTaken(_)) {
                rollback.push(self.keys.user(u.id));
            }
            outcomes.push(o);
        }
        if !rollback.is_empty() {
            // One DEL: a cluster client splits it by slot.
            let _: u64 = self.redis.query(redis::cmd("DEL").arg(&rollback)).await?;
        }
        Ok(outcomes)
    }

    /// What [`Store::import_users`] would do with `users`, writing nothing.
    pub(crate) async fn check_users(
        &self,
        users: &[NewUser<'_>],
    ) -> Result<Vec<Outcome>, StoreError> {
        let reads: Vec<(redis::Cmd, redis::Cmd, redis::Cmd)> = users
            .iter()
            .map(|u| {
                let key = self.keys.user(u.id);
                let mut exists = redis::cmd("EXISTS");
                exists.arg(&key);
                let mut id = redis::cmd("HMGET");
                id.arg(&key)
                    .arg(&["email", "origin", "password_hash", "deleted_at"]);
                let mut email = redis::cmd("GET");
                email.arg(self.keys.email(u.email));
                (exists, id, email)
            })
            .collect();
        type Found = (u8, Vec<Option<String>>, Option<String>);
        let found: Vec<Found> = try_join_all(reads.iter().map(|(exists, id, email)| async {
            tokio::try_join!(
                self.redis.query(exists),
                self.redis.query(id),
                self.redis.query(email)
            )
        }))
        .await?;
        Ok(users
            .iter()
            .zip(found)
            .map(|(u, (exists, fields, email))| {
                let holder = (exists == 1).then(|| Holder::from_fields(fields));
                outcome(u, holder.as_ref(), email.as_deref())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64) -> NewUser<'static> {
        NewUser {
            id,
            email: "a@example.com",
            username: "",
            password_hash: "pbkdf2_sha256$1$s$h",
            created_at: 0,
            disabled: false,
            origin: Origin::Imported,
        }
    }

    fn holder(email: &str, origin: &str, hash: &str, deleted: &str) -> Holder {
        Holder::from_fields(
            [email, origin, hash, deleted]
                .iter()
                .map(|s| Some((*s).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn outcomes() {
        let u = user(7);
        let earlier = holder("a@example.com", "imported", "x", "");
        assert_eq!(outcome(&u, None, None), Outcome::Imported);
        assert_eq!(outcome(&u, None, Some("7")), Outcome::Imported);
        assert_eq!(outcome(&u, None, Some("3")), Outcome::EmailTaken(3));
        assert_eq!(
            outcome(&u, Some(&earlier), Some("7")),
            Outcome::AlreadyPresent
        );
        // A record from an import that stopped before its claim: claimed now.
        assert_eq!(outcome(&u, Some(&earlier), None), Outcome::Imported);
        assert_eq!(
            outcome(&u, Some(&earlier), Some("3")),
            Outcome::EmailTaken(3)
        );
        let other_import = holder("b@example.com", "imported", "x", "");
        assert_eq!(outcome(&u, Some(&other_import), None), Outcome::IdTaken);
    }

    /// Regression (#21): an account registered at the id, even with the same
    /// email, is never taken for the user being imported.
    #[test]
    fn a_registered_account_is_never_the_imported_one() {
        let u = user(7);
        for h in [
            holder("a@example.com", "registered", "$argon2id$...", ""),
            holder("b@example.com", "registered", "$argon2id$...", ""),
            // Written before origins were kept: same email but not the file's hash.
            holder("a@example.com", "", "$argon2id$...", ""),
            holder("", "", "", ""),
        ] {
            assert_eq!(
                outcome(&u, Some(&h), Some("7")),
                Outcome::IdRegistered,
                "{h:?}"
            );
        }
        // An earlier import by a version that kept no origin: the file's own hash.
        let old = holder("a@example.com", "", u.password_hash, "");
        assert_eq!(outcome(&u, Some(&old), Some("7")), Outcome::AlreadyPresent);
        let tomb = holder("", "", "", "1700000000");
        assert_eq!(outcome(&u, Some(&tomb), None), Outcome::IdDeleted);
    }
}
