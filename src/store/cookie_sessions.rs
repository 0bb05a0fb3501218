//! Browser sessions' refresh: the cookie's token rotated, and its successor kept for a grace time so racing tabs share one refresh.
//!
//! Tabs of one browser send the same cookie at once; the first request after
//! the access part expired rotates the session's refresh token, and every
//! other one, arriving with the old token while the new cookie is on its way,
//! must be served with the new token rather than be taken for a thief
//! (RFC 9700 §4.14.2 reuse detection). So a rotation keeps, in the session's
//! own hash, the new token sealed under the old one (`n:<old fingerprint>` →
//! `<ms> <sealed>`): only a holder of the old token can open it, so a copy of
//! Redis yields no session. Entries older than the grace time are dropped at
//! the next rotation and no longer honoured; past it, the old token is reuse
//! and the session ends. The JSON `POST /refresh` contract is `sessions.rs`'s
//! and unchanged.

use super::sessions::parse_stamp;
use super::{eval, Store, StoreError};
use crate::auth::access::Stamp;
use crate::auth::refresh::Fingerprint;
use crate::domain::{SessionId, UserId};

/// What presenting a cookie's refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Advance {
    /// It was current and is now replaced (by the caller's new token).
    Rotated(Stamp),
    /// It was current; asked not to rotate, nothing changed.
    Current(Stamp),
    /// It was rotated within the grace time: its successor, still sealed.
    Successor(String, Stamp),
    /// It was rotated before the grace time: the session has been ended.
    Reused,
    /// The session no longer exists (revoked, expired, its user disabled or deleted).
    Gone,
}

// KEYS: session hash, the user's session index, the user record.
// ARGV: sid, presented fp, new fp, now ms, grace ms, idle ms, sealed new token, rotate (1/0).
const ADVANCE: &str = r"
local s = redis.call('HMGET', KEYS[1], 'cur', 'abs_end')
if not s[1] then return {'gone'} end
local now, grace, idle = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local abs_end = tonumber(s[2])
if now >= abs_end or redis.call('HGET', KEYS[3], 'disabled') == '1'
  or redis.call('EXISTS', KEYS[3]) == 0 or redis.call('HEXISTS', KEYS[3], 'deleted_at') == 1 then
  redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
  return {'gone'}
end
local stamp = redis.call('HMGET', KEYS[3], 'gen', 'roles')
local gen, roles = stamp[1] or '0', stamp[2] or ''
if s[1] == ARGV[2] then
  if ARGV[8] ~= '1' then return {'current', gen, roles} end
  -- Successors past the grace time are no longer honoured: drop them.
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'n:' then
      local at = tonumber(string.match(redis.call('HGET', KEYS[1], f), '^(%d+)'))
      if not at or now - at > grace then redis.call('HDEL', KEYS[1], f) end
    end
  end
  redis.call('HSET', KEYS[1], 'cur', ARGV[3], 'prev', ARGV[2], 'prev_at', now,
    'last_used_at', now, 'n:' .. ARGV[2], now .. ' ' .. ARGV[7])
  redis.call('PEXPIRE', KEYS[1], math.min(idle, abs_end - now))
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], idle)
  return {'rotated', gen, roles}
end
local n = redis.call('HGET', KEYS[1], 'n:' .. ARGV[2])
if n then
  local at, sealed = string.match(n, '^(%d+) (%x+)$')
  if at and now - tonumber(at) <= grace then return {'successor', gen, roles, sealed} end
end
redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
return {'reused'}
";

/// One step of a cookie refresh.
pub(crate) struct Step<'a> {
    /// Whose session.
    pub user: UserId,
    /// Which.
    pub sid: SessionId,
    /// The token the cookie holds.
    pub presented: &'a Fingerprint,
    /// The token that replaces it if it is current.
    pub next: &'a Fingerprint,
    /// `next` sealed under the presented token (hex).
    pub sealed: &'a str,
    /// Rotate a current token (false: only say that it is current).
    pub rotate: bool,
}

impl Store {
    /// Present a cookie's refresh token (`ADVANCE` above), in one round trip.
    pub(crate) async fn advance_cookie(
        &self,
        step: &Step<'_>,
        grace_ms: u64,
        idle_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Advance, StoreError> {
        let session = self.keys.session(step.user, step.sid);
        let sessions = self.keys.sessions(step.user);
        let user_key = self.keys.user(step.user.0);
        let mut cmd = eval(ADVANCE, &[&session, &sessions, &user_key]);
        cmd.arg(step.sid.to_string())
            .arg(step.presented.as_str())
            .arg(step.next.as_str())
            .arg(now_ms)
            .arg(grace_ms)
            .arg(idle_ttl_ms)
            .arg(step.sealed)
            .arg(if step.rotate { "1" } else { "0" });
        let reply: Vec<String> = self.redis.query(&cmd).await?;
        let stamp = || parse_stamp(reply.get(1), reply.get(2));
        Ok(match reply.first().map(String::as_str) {
            Some("rotated") => Advance::Rotated(stamp()?),
            Some("current") => Advance::Current(stamp()?),
            Some("successor") => match reply.get(3) {
                Some(sealed) => Advance::Successor(sealed.clone(), stamp()?),
                None => return Err(StoreError::Corrupt("a successor without its token".into())),
            },
            Some("reused") => Advance::Reused,
            Some("gone") => Advance::Gone,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "advance script answered {other:?}"
                )))
            }
        })
    }

    /// The user's token generation and roles now (`None`: no such user), for a
    /// cookie whose access part carries no roles.
    pub(crate) async fn stamp(&self, user: UserId) -> Result<Option<Stamp>, StoreError> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let (email, deleted, gen, roles): Row = self
            .redis
            .query(redis::cmd("HMGET").arg(self.keys.user(user.0)).arg(&[
                "email",
                "deleted_at",
                "gen",
                "roles",
            ]))
            .await?;
        if email.is_none() || deleted.is_some() {
            return Ok(None);
        }
        let gen = gen.unwrap_or_else(|| "0".into());
        Ok(Some(parse_stamp(Some(&gen), roles.as_ref())?))
    }
}
