//! Operators' changes to accounts, shared by the admin API (`http`) and the CLI (`cli`): each validates, writes, revokes and audits in one place.
//!
//! A change that must stop tokens already issued (roles, disable, delete,
//! forced logout) counts the user's token generation up in Redis and publishes
//! `g <user> <gen>` on the revocation feed, so every instance refuses older
//! tokens within a second; a refresh then mints a token from the record as it
//! is now (new roles), or fails (disabled, deleted). A role change publishes
//! `r <user> <gen> <roles>` before its `g`, so open streams that lose no
//! role they were opened with stay open.

pub mod cli;
pub(crate) mod http;

use crate::auth::access::now_unix;
use crate::auth::password::Passwords;
use crate::auth::revocations::{Revocation, Revocations};
use crate::auth::roles::{RoleError, Roles};
use crate::domain::{Email, Password, UserId};
use crate::error::ErrorReply;
use crate::events::{emit_admin, Actor, AdminEvent};
use crate::metrics::METRICS;
use crate::store::accounts::Account;
use crate::store::sessions::SessionInfo;
use crate::store::users::Registration;
use crate::store::{Store, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest page of `GET /admin/users` and `users list`.
pub(crate) const MAX_PAGE: usize = 500;
/// The page size when none is asked for.
pub(crate) const DEFAULT_PAGE: usize = 100;
/// What a user created without a password holds instead of a hash: Django's
/// unusable-password mark, which no password matches (at a dummy hash's cost).
const NO_PASSWORD: &str = "!";

/// Why an admin operation did nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// No live user has that id or email.
    #[error("no such user")]
    NotFound,
    /// An argument is unacceptable; nothing was changed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `create` for an email that has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Redis failed, or a hash could not be made.
    #[error(transparent)]
    Reply(#[from] ErrorReply),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Reply(e.into())
    }
}

impl AdminError {
    /// The answer in the gateway's one error shape.
    pub(crate) fn into_reply(self) -> ErrorReply {
        match self {
            AdminError::NotFound => ErrorReply::UnknownAccount,
            AdminError::Invalid { field, reason } => ErrorReply::invalid_field(field, reason),
            AdminError::EmailTaken => ErrorReply::EmailTaken,
            AdminError::Reply(r) => r,
        }
    }
}

fn roles_error(e: RoleError) -> AdminError {
    AdminError::Invalid {
        field: "roles",
        reason: e.to_string(),
    }
}

/// A user as the admin API and CLI print it.
pub(crate) fn account_json(a: &Account) -> Value {
    let created = crate::api::sessions::iso(a.created_at.saturating_mul(1000));
    json!({
        "id": a.id.get(),
        "email": a.email,
        "username": a.username,
        "roles": a.roles.to_json(),
        "disabled": a.disabled,
        "created_at": created,
    })
}

/// Account administration over one store.
pub(crate) struct Accounts {
    store: Arc<Store>,
    passwords: Arc<Passwords>,
    /// This instance's revocation set (the gateway), applied at once; the CLI
    /// has none and relies on the feed alone.
    local: Option<Arc<Revocations>>,
    access_ttl: u64,
    first_id: u64,
}

impl Accounts {
    /// Administration of `store`'s users; revocations are published for
    /// tokens living `access_ttl` seconds, and applied to `local` at once.
    pub(crate) fn new(
        store: Arc<Store>,
        passwords: Arc<Passwords>,
        local: Option<Arc<Revocations>>,
        access_ttl: u64,
        first_id: u64,
    ) -> Self {
        Accounts {
            store,
            passwords,
            local,
            access_ttl,
            first_id,
        }
    }

    /// Count an operation's outcome (`None`: it was done).
    pub(crate) fn count(operation: &str, failure: Option<&AdminError>) {
        let label = match failure {
            None => "ok",
            Some(AdminError::NotFound) => "not_found",
            Some(AdminError::Invalid { .. } | AdminError::EmailTaken) => "refused",
            Some(AdminError::Reply(_)) => "error",
        };
        METRICS.admin.with_label_values(&[operation, label]).inc();
    }

    async fn live(&self, id: UserId) -> Result<Account, AdminError> {
        self.store.account(id).await?.ok_or(AdminError::NotFound)
    }

    /// The user `id`.
    pub(crate) async fn show(&self, id: UserId) -> Result<Account, AdminError> {
        self.live(id).await
    }

    /// The user holding `email` (normalised as at login).
    pub(crate) async fn find(&self, email: &str) -> Result<Account, AdminError> {
        let Ok(email) = Email::parse(email) else {
            return Err(AdminError::NotFound);
        };
        let id = self
            .store
            .account_id_by_email(&email)
            .await?
            .ok_or(AdminError::NotFound)?;
        self.live(id).await
    }

    /// A page of users with ids above `after`, and where the next one starts.
    pub(crate) async fn list(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Account>, Option<u64>), AdminError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(AdminError::Invalid {
                field: "limit",
                reason: format!("must be between 1 and {MAX_PAGE}"),
            });
        }
        Ok(self.store.accounts_after(after, limit).await?)
    }

    /// Create a user with `email`, `password` (none: only a reset can open the
    /// account) and `roles`.
    pub(crate) async fn create(
        &self,
        email: &str,
        password: Option<String>,
        roles: &[String],
        actor: Actor,
    ) -> Result<Account, AdminError> {
        let email = Email::parse(email).map_err(|e| AdminError::Invalid {
            field: "email",
            reason: e.to_string(),
        })?;
        let roles = Roles::from_names(roles).map_err(roles_error)?;
        let hash = match password {
            Some(p) => {
                let p = Password::parse(p).map_err(|e| AdminError::Invalid {
                    field: "password",
                    reason: e.to_string(),
                })?;
                self.passwords.hash(p.expose(), None).await?
            }
            None => NO_PASSWORD.to_owned(),
        };
        let id = match self
            .store
            .create_user(&email, &hash, now_unix(), self.first_id)
            .await?
        {
            Registration::Created(id) => id,
            Registration::EmailTaken => return Err(AdminError::EmailTaken),
        };
        if !roles.is_empty() {
            self.store.set_roles(id, &roles).await?;
        }
        let account = self.live(id).await?;
        emit_admin(
            AdminEvent::UserCreated,
            id,
            actor,
            None,
            Some(&json!({ "email": account.email, "roles": account.roles.to_json() })),
        );
        Ok(account)
    }

    /// Replace the roles of `id`; tokens minted before are refused from now on.
    pub(crate) async fn set_roles(
        &self,
        id: UserId,
        roles: &[String],
        actor: Actor,
    ) -> Result<Account, AdminError> {
        let roles = Roles::from_names(roles).map_err(roles_error)?;
        let changed = self
            .store
            .set_roles(id, &roles)
            .await?
            .ok_or(AdminError::NotFound)?;
        // `r` first: an instance judges its open streams by the new roles
        // before the `g` (for instances that know no `r`) would end them.
        let at = now_unix();
        self.publish(&[
            Revocation::Roles {
                user: id,
                gen: changed.gen,
                at,
                roles: roles.clone(),
            },
            Revocation::User {
                user: id,
                gen: changed.gen,
                at,
            },
        ])
        .await?;
        emit_admin(
            AdminEvent::RolesSet,
            id,
            actor,
            Some(&changed.old.to_json()),
            Some(&roles.to_json()),
        );
        self.live(id).await
    }

    /// Disable `id` (no login, no refresh, every token revoked) or enable it
    /// again (login works; the old sessions stay ended).
    pub(crate) async fn set_disabled(
        &self,
        id: UserId,
        disabled: bool,
        actor: Actor,
    ) -> Result<Account, AdminError> {
        let changed = self
            .store
            .set_disabled(id, disabled)
            .await?
            .ok_or(AdminError::NotFound)?;
        if disabled {
            // The generation the script counted up is published before
            // anything else can fail, so every access token stops even if
            // ending the sessions below does not get through. The flag is
            // set first, so no refresh or login wins a race with this.
            self.revoke_user(id, changed.gen).await?;
            self.end_sessions(id).await?;
        }
        let event = if disabled {
            AdminEvent::UserDisabled
        } else {
            AdminEvent::UserEnabled
        };
        emit_admin(
            event,
            id,
            actor,
            Some(&json!({ "disabled": changed.old })),
            Some(&json!({ "disabled": disabled })),
        );
        self.live(id).await
    }

    /// Delete `id`: its sessions end, its tokens are revoked, its email is
    /// free again, and a tombstone keeps the id from ever being reused.
    pub(crate) async fn delete(&self, id: UserId, actor: Actor) -> Result<(), AdminError> {
        self.live(id).await?;
        self.end_sessions(id).await?;
        let changed = self
            .store
            .tombstone_user(id, now_unix())
            .await?
            .ok_or(AdminError::NotFound)?;
        self.revoke_user(id, changed.gen).await?;
        // A login that opened a session between the first pass and the
        // tombstone: that session can no longer be renewed (the scripts
        // refuse a tombstone), and this ends it now.
        self.end_sessions(id).await?;
        emit_admin(AdminEvent::UserDeleted, id, actor, None, None);
        Ok(())
    }

    /// End every session of `id` and revoke its tokens (forced logout).
    pub(crate) async fn logout(&self, id: UserId, actor: Actor) -> Result<(), AdminError> {
        self.live(id).await?;
        let ended = self.end_sessions(id).await?;
        emit_admin(
            AdminEvent::SessionsRevoked,
            id,
            actor,
            None,
            Some(&json!({ "sessions_ended": ended })),
        );
        Ok(())
    }

    /// The live sessions of `id`.
    pub(crate) async fn sessions(&self, id: UserId) -> Result<Vec<SessionInfo>, AdminError> {
        self.live(id).await?;
        Ok(self.store.list_sessions(id).await?)
    }

    /// End every session of `id` and publish the revocations; how many were live.
    async fn end_sessions(&self, id: UserId) -> Result<usize, AdminError> {
        let at = now_unix();
        let (gen, sids) = self.store.revoke_all(id, at).await?;
        let mut gone: Vec<Revocation> = sids
            .iter()
            .map(|&sid| Revocation::Session { user: id, sid, at })
            .collect();
        if let Some(gen) = gen {
            gone.push(Revocation::User { user: id, gen, at });
        }
        self.publish(&gone).await?;
        Ok(sids.len())
    }

    async fn revoke_user(&self, user: UserId, gen: u64) -> Result<(), AdminError> {
        let at = now_unix();
        self.publish(&[Revocation::User { user, gen, at }]).await
    }

    async fn publish(&self, revocations: &[Revocation]) -> Result<(), AdminError> {
        if let Some(local) = &self.local {
            for r in revocations {
                local.apply(r.clone());
            }
        }
        self.store
            .publish_revocations(revocations, self.access_ttl, now_unix())
            .await?;
        Ok(())
    }
}
