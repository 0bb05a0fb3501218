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
use super::{eval, Lua, Store, StoreError};
use crate::auth::access::Stamp;
use crate::auth::refresh::Fingerprint;
use crate::domain::{SessionId, UserId};
use std::sync::LazyLock;

/// What presenting a cookie's refresh token did; `ttl_ms` is how long the
/// session can still live (idle lifetime, capped by its absolute end).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Advance {
    /// It was current and is now replaced (by the caller's new token).
    Rotated(Stamp, u64),
    /// It was current; asked not to rotate, nothing changed.
    Current(Stamp, u64),
    /// It was rotated within the grace time: its successor, still sealed.
    Successor(String),
    /// It was rotated before the grace time: the session has been ended.
    Reused,
    /// Rotated before the grace time, but reached through a successor (not
    /// presented by anyone): nothing ended, nothing to serve.
    Stale,
    /// The session no longer exists (revoked, expired, its user disabled or deleted).
    Gone,
}

/// Successor entries a session keeps at most, the newest: the grace time
/// bounds them too, this bounds the script's work whatever it is set to.
const MAX_SUCCESSORS: usize = 8;

// KEYS: session hash, the user's session index, the user record.
// ARGV: sid, presented fp, new fp, grace ms, idle ms, sealed new token,
//       rotate (1/0), reuse ends the session (1/0), most successors kept.
// Time is Redis's own, so instances with skewed clocks agree on the grace.
static ADVANCE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'cur', 'abs_end')
if not s[1] then return {'gone'} end
local grace, idle = tonumber(ARGV[4]), tonumber(ARGV[5])
local abs_end = tonumber(s[2])
if now >= abs_end or redis.call('HGET', KEYS[3], 'disabled') == '1'
  or redis.call('EXISTS', KEYS[3]) == 0 or redis.call('HEXISTS', KEYS[3], 'deleted_at') == 1 then
  redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
  return {'gone'}
end
local stamp = redis.call('HMGET', KEYS[3], 'gen', 'roles')
local gen, roles = stamp[1] or '0', stamp[2] or ''
local ttl = math.min(idle, abs_end - now)
if s[1] == ARGV[2] then
  if ARGV[7] ~= '1' then return {'current', gen, roles, tostring(ttl)} end
  -- Successors past the grace time are no longer honoured, and only the
  -- newest few are kept: drop the rest.
  local kept = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'n:' then
      local at = tonumber(string.match(redis.call('HGET', KEYS[1], f), '^(%d+)'))
      if not at or now - at > grace then redis.call('HDEL', KEYS[1], f)
      else kept[#kept + 1] = {at, f} end
    end
  end
  table.sort(kept, function(a, b) return a[1] > b[1] end)
  for i = tonumber(ARGV[9]), #kept do redis.call('HDEL', KEYS[1], kept[i][2]) end
  redis.call('HSET', KEYS[1], 'cur', ARGV[3], 'prev', ARGV[2], 'prev_at', now,
    'last_used_at', now, 'n:' .. ARGV[2], now .. ' ' .. ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], idle)
  return {'rotated', gen, roles, tostring(ttl)}
end
local n = redis.call('HGET', KEYS[1], 'n:' .. ARGV[2])
if n then
  local at, sealed = string.match(n, '^(%d+) (%x+)$')
  if at and now - tonumber(at) <= grace then return {'successor', sealed} end
end
if ARGV[8] ~= '1' then return {'stale'} end
redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
return {'reused'}
",
    )
});

/// One step of a cookie refresh.
pub(crate) struct Step<'a> {
    /// Whose session.
    pub user: UserId,
    /// Which.
    pub sid: SessionId,
    /// The token the cookie holds, or one reached from it.
    pub presented: &'a Fingerprint,
    /// The token that replaces it if it is current.
    pub next: &'a Fingerprint,
    /// `next` sealed under the presented token (hex).
    pub sealed: &'a str,
    /// The cookie's own token (not one reached through a successor): a
    /// current one is rotated, a stale one is reuse and ends the session.
    pub presented_by_client: bool,
}

impl Store {
    /// Present a cookie's refresh token (`ADVANCE` above), in one round trip.
    pub(crate) async fn advance_cookie(
        &self,
        step: &Step<'_>,
        grace_ms: u64,
        idle_ttl_ms: u64,
    ) -> Result<Advance, StoreError> {
        let session = self.keys.session(step.user, step.sid);
        let sessions = self.keys.sessions(step.user);
        let user_key = self.keys.user(step.user.get());
        let by_client = if step.presented_by_client { "1" } else { "0" };
        let mut cmd = eval(&ADVANCE, &[&session, &sessions, &user_key]);
        cmd.arg(step.sid.to_string())
            .arg(step.presented.as_str())
            .arg(step.next.as_str())
            .arg(grace_ms)
            .arg(idle_ttl_ms)
            .arg(step.sealed)
            .arg(by_client)
            .arg(by_client)
            .arg(MAX_SUCCESSORS);
        let reply: Vec<String> = self.redis.query(&cmd).await?;
        let stamp = || parse_stamp(reply.get(1), reply.get(2));
        let ttl = || {
            reply
                .get(3)
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("advance script answered {reply:?}")))
        };
        Ok(match reply.first().map(String::as_str) {
            Some("rotated") => Advance::Rotated(stamp()?, ttl()?),
            Some("current") => Advance::Current(stamp()?, ttl()?),
            Some("successor") => match reply.get(1) {
                Some(sealed) => Advance::Successor(sealed.clone()),
                None => return Err(StoreError::Corrupt("a successor without its token".into())),
            },
            Some("reused") => Advance::Reused,
            Some("stale") => Advance::Stale,
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
            .query(redis::cmd("HMGET").arg(self.keys.user(user.get())).arg(&[
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
