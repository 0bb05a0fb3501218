//! Writing imported users in pipelined batches, and the read-only check a dry run makes.
//!
//! Each user is two single-key steps, as in registration: create `user:{pk}`
//! unless the id is held ([`CREATE_USER`]), then claim `email:<email>` unless it
//! is held ([`CLAIM_EMAIL`]); a claim lost to another account deletes the record
//! just created. Each step is one pipeline for the whole batch.

use super::users::{NewUser, CREATE_USER};
use super::{Store, StoreError};
use std::sync::LazyLock;

/// What became of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written now (or, in a dry run, would be).
    Imported,
    /// The same id already holds the same email, and the email names it: an earlier import.
    AlreadyPresent,
    /// The id holds another account.
    IdTaken,
    /// Another account (this id) holds the email.
    EmailTaken(u64),
}

/// Claim an email for ARGV[1] unless it is held: nil when claimed, else the holder.
static CLAIM_EMAIL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local holder = redis.call('GET', KEYS[1])
if holder then return holder end
redis.call('SET', KEYS[1], ARGV[1])
return false",
    )
});

/// Raise the counter to ARGV[1] unless it is already there or above; its value
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

/// The outcome for `user`, from the email its id holds (`None`: none, or the
/// record was created just now) and the holder of its email (`None`: free, or
/// claimed just now).
fn outcome(user: &NewUser<'_>, id_holder: Option<&str>, email_holder: Option<&str>) -> Outcome {
    let id = user.id.to_string();
    match (id_holder, email_holder) {
        (Some(e), _) if e != user.email => Outcome::IdTaken,
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
        let mut pipe = redis::pipe();
        pipe.load_script(&CREATE_USER).ignore();
        for u in users {
            pipe.invoke_script(&self.create_user_call(u));
        }
        let id_holders: Vec<Option<String>> = self.redis.pipeline(&pipe).await?;

        // Claim the email of every record created now or holding the same email.
        let mut pipe = redis::pipe();
        pipe.load_script(&CLAIM_EMAIL).ignore();
        let mut claiming = Vec::new();
        for (i, (u, holder)) in users.iter().zip(&id_holders).enumerate() {
            if holder.as_deref().is_none_or(|e| e == u.email) {
                let mut call = CLAIM_EMAIL.prepare_invoke();
                call.key(self.keys.email(u.email)).arg(u.id);
                pipe.invoke_script(&call);
                claiming.push(i);
            }
        }
        let claims: Vec<Option<String>> = if claiming.is_empty() {
            Vec::new()
        } else {
            self.redis.pipeline(&pipe).await?
        };
        let mut email_holders = vec![None; users.len()];
        for (i, holder) in claiming.into_iter().zip(claims) {
            email_holders[i] = holder;
        }

        let mut outcomes = Vec::with_capacity(users.len());
        let mut rollback = redis::pipe();
        for (u, (id_holder, email_holder)) in
            users.iter().zip(id_holders.iter().zip(&email_holders))
        {
            let o = outcome(u, id_holder.as_deref(), email_holder.as_deref());
            // A record created now whose email went to another account.
            if id_holder.is_none() && matches!(o, Outcome::EmailTaken(_)) {
                rollback.del(self.keys.user(u.id)).ignore();
            }
            outcomes.push(o);
        }
        if !rollback.is_empty() {
            let _: () = self.redis.pipeline(&rollback).await?;
        }
        Ok(outcomes)
    }

    /// What [`Store::import_users`] would do with `users`, writing nothing.
    pub(crate) async fn check_users(
        &self,
        users: &[NewUser<'_>],
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut pipe = redis::pipe();
        for u in users {
            pipe.hget(self.keys.user(u.id), "email")
                .get(self.keys.email(u.email));
        }
        let found: Vec<Option<String>> = self.redis.pipeline(&pipe).await?;
        Ok(users
            .iter()
            .zip(found.chunks(2))
            .map(|(u, pair)| outcome(u, pair[0].as_deref(), pair[1].as_deref()))
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
            password_hash: "x",
            created_at: 0,
            disabled: false,
        }
    }

    #[test]
    fn outcomes() {
        let u = user(7);
        assert_eq!(outcome(&u, None, None), Outcome::Imported);
        assert_eq!(outcome(&u, None, Some("7")), Outcome::Imported);
        assert_eq!(outcome(&u, None, Some("3")), Outcome::EmailTaken(3));
        assert_eq!(
            outcome(&u, Some("a@example.com"), Some("7")),
            Outcome::AlreadyPresent
        );
        // A record from an import that stopped before its claim: claimed now.
        assert_eq!(outcome(&u, Some("a@example.com"), None), Outcome::Imported);
        assert_eq!(
            outcome(&u, Some("a@example.com"), Some("3")),
            Outcome::EmailTaken(3)
        );
        assert_eq!(outcome(&u, Some("b@example.com"), None), Outcome::IdTaken);
        assert_eq!(outcome(&u, Some(""), Some("7")), Outcome::IdTaken);
    }
}
