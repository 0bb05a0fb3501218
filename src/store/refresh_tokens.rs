//! Refresh tokens issued before sessions existed (a lookup holding a bare user id): taken once with GETDEL, or deleted at logout.

use super::{Store, StoreError};
use crate::auth::refresh::Fingerprint;
use crate::domain::UserId;

impl Store {
    /// Consume a refresh token: of any number of concurrent calls for one token,
    /// exactly one gets its user, because GETDEL is a single atomic step.
    pub(crate) async fn take_refresh(
        &self,
        fingerprint: &Fingerprint,
    ) -> Result<Option<UserId>, StoreError> {
        let v: Option<String> = self
            .redis
            .query(redis::cmd("GETDEL").arg(self.keys.refresh(fingerprint)))
            .await?;
        v.map(|s| {
            s.parse().map(UserId::new).map_err(|_| {
                StoreError::Corrupt(format!("refresh token key holds {s:?}, not a user id"))
            })
        })
        .transpose()
    }

    /// Revoke a refresh token; whether it existed.
    pub(crate) async fn revoke_refresh(
        &self,
        fingerprint: &Fingerprint,
    ) -> Result<bool, StoreError> {
        let n: u64 = self
            .redis
            .query(redis::cmd("DEL").arg(self.keys.refresh(fingerprint)))
            .await?;
        Ok(n > 0)
    }
}
