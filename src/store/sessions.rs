//! Sessions (refresh-token families): create, rotate with reuse detection, list, revoke, cap per user.
//!
//! Long file: five Lua scripts (create, rotate, password failure, end all, revoke) sit beside the Rust that calls them, so each atomic step reads in one place.
//!
//! Each session is a hash in its user's slot (`user:{id}:session:<sid>`)
//! holding the fingerprints of its current and previous refresh token, and the
//! user's sessions are a sorted set in the same slot: every atomic step is one
//! Lua script whose keys all come through KEYS and share one hash tag, so it
//! runs unchanged on Redis Cluster. The global lookup `rt:<fingerprint>` lives
//! in any slot and is written beside the script, in the same round trip but
//! not the same pipeline (a cluster node answers only for its own slots); a
//! lookup the session does not name fails closed, so a crash between the two can lose a
//! session, never resurrect one.

use super::{eval, Lua, Store, StoreError};
use crate::auth::access::Stamp;
use crate::auth::refresh::Fingerprint;
use crate::auth::roles::Roles;
use crate::domain::{SessionId, UserId};
use std::net::IpAddr;
use std::sync::LazyLock;

/// How sessions live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionPolicy {
    /// Idle lifetime: a session not refreshed for this long ends (the refresh TTL).
    pub idle_ttl_ms: u64,
    /// Absolute lifetime from login; `None`: renewable without end (the original service).
    pub max_lifetime_ms: Option<u64>,
    /// A replay of the previous token within this window is a duplicate, not theft.
    pub reuse_grace_ms: u64,
    /// Live sessions per user; the least recently used goes first.
    pub max_per_user: u64,
}

/// What must still hold when a session is opened, checked in the same atomic
/// step: a login or password change that raced with another password change
/// (or a logout everywhere) must not leave a session behind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Guard<'a> {
    /// The user's stored password hash is still this one (the one just verified or set).
    PasswordIs(&'a str),
    /// The user has never ended every session: a refresh token from before
    /// sessions existed is older than any such ending, so it dies with it.
    NeverLoggedOutEverywhere,
}

/// What opening a session did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// It exists, at the user's token generation and roles `stamp`; the
    /// `evicted` older sessions were ended in the same step to stay within the cap.
    Yes {
        /// The generation and roles its access tokens carry.
        stamp: Stamp,
        /// Sessions ended to make room.
        evicted: Vec<SessionId>,
    },
    /// Its guard no longer held (or the user is disabled): nothing was written.
    Stale,
}

/// A session being opened by a login.
pub(crate) struct NewSession<'a> {
    /// Whose.
    pub user: UserId,
    /// Its id.
    pub sid: SessionId,
    /// Its first refresh token.
    pub fingerprint: &'a Fingerprint,
    /// Client address at login.
    pub ip: Option<IpAddr>,
    /// User-Agent at login (truncated by the caller).
    pub user_agent: &'a str,
}

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// The token was current: the new one replaces it; new access tokens
    /// carry the user's generation and roles `stamp`.
    Rotated {
        /// The user's token generation and roles now.
        stamp: Stamp,
    },
    /// The token was the previous one, within the grace window: refused, nothing revoked.
    Duplicate,
    /// The token was used before, after the grace window: the whole session is revoked.
    Reused,
    /// The session no longer exists (revoked, expired, its user disabled, or
    /// it never named this token).
    Gone,
}

/// Who a refresh token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A token of a session.
    Session(UserId, SessionId),
    /// A token issued before sessions existed (its lookup holds a bare user id):
    /// it is taken once and traded for a new session, so an upgrade logs nobody out.
    Legacy(UserId),
}

/// A session as `GET /sessions` shows it.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    /// Its id.
    pub sid: SessionId,
    /// Login time (ms).
    pub created_at_ms: u64,
    /// Last refresh (ms).
    pub last_used_at_ms: u64,
    /// Client address at login.
    pub ip: String,
    /// User-Agent at login.
    pub user_agent: String,
}

static CREATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
-- No session for a user that is gone (deleted: only a tombstone is left) or disabled.
if redis.call('EXISTS', KEYS[3]) == 0 or redis.call('HEXISTS', KEYS[3], 'deleted_at') == 1
  or redis.call('HGET', KEYS[3], 'disabled') == '1' then return {'stale'} end
if ARGV[9] == 'password' then
  if redis.call('HGET', KEYS[3], 'password_hash') ~= ARGV[10] then return {'stale'} end
elseif redis.call('HEXISTS', KEYS[3], 'sessions_nbf') == 1 then
  return {'stale'}
end
local now, idle = tonumber(ARGV[3]), tonumber(ARGV[5])
local abs_end = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'created_at', now, 'last_used_at', now,
  'abs_end', abs_end, 'ip', ARGV[6], 'ua', ARGV[7])
redis.call('PEXPIRE', KEYS[1], math.min(idle, abs_end - now))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - idle)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], idle)
local stamp = redis.call('HMGET', KEYS[3], 'gen', 'roles')
local out = {'opened', stamp[1] or '0', stamp[2] or ''}
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #popped, 2 do
    -- Ended here, in the same atomic step: the hash of an evicted session is
    -- in the user's slot (ARGV[11] is that slot's session key prefix).
    local key = ARGV[11] .. popped[i]
    local gone = redis.call('HMGET', key, 'cur', 'prev')
    redis.call('DEL', key)
    out[#out + 1] = popped[i]
    out[#out + 1] = gone[1] or ''
    out[#out + 1] = gone[2] or ''
  end
end
return out
",
    )
});

static ROTATE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local s = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'prev_at', 'abs_end')
if not s[1] then return {'gone'} end
local now, grace, idle = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local abs_end = tonumber(s[4])
if now >= abs_end or redis.call('HGET', KEYS[3], 'disabled') == '1'
  or redis.call('EXISTS', KEYS[3]) == 0 or redis.call('HEXISTS', KEYS[3], 'deleted_at') == 1 then
  -- Past its end, or its user was disabled or deleted: the session ends with its tokens.
  redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
  return {'gone', s[1], s[2] or ''}
end
if s[1] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[3], 'prev', ARGV[2], 'prev_at', now, 'last_used_at', now)
  local ttl = math.min(idle, abs_end - now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  -- The new token's lookup, when it shares this script (a single Redis): it
  -- lives no longer than the session, with no command after the script.
  if KEYS[4] then redis.call('SET', KEYS[4], ARGV[7], 'PX', ttl) end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], idle)
  local stamp = redis.call('HMGET', KEYS[3], 'gen', 'roles')
  return {'rotated', tostring(ttl), s[2] or '', stamp[1] or '0', stamp[2] or ''}
end
if s[2] == ARGV[2] and now - tonumber(s[3]) <= grace then return {'duplicate'} end
redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
return {'reused', s[1], s[2] or ''}
",
    )
});

/// Count one wrong current password against a live session; the count after
/// (0: no such session).
static PASSWORD_FAILURE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'password_failures', 1)
",
    )
});

/// Count the user's token generation up and mark that every session ended
/// (`sessions_nbf`, for refresh tokens from before sessions existed); the new
/// generation, or false for a user that does not exist.
static END_ALL: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'sessions_nbf', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'gen', 1)
",
    )
});

static REVOKE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local gone = redis.call('HMGET', KEYS[1], 'cur', 'prev')
redis.call('DEL', KEYS[1]); redis.call('ZREM', KEYS[2], ARGV[1])
return {gone[1] or '', gone[2] or ''}
",
    )
});

/// `SET key value PX ttl_ms`.
fn set_px(key: &str, value: &str, ttl_ms: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value).arg("PX").arg(ttl_ms);
    cmd
}

/// A generation as a script returns it (a decimal string).
fn parse_gen(v: Option<&String>) -> Result<u64, StoreError> {
    v.and_then(|g| g.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("a user generation of {v:?}")))
}

/// The generation and roles a create or rotate script read from the user record.
pub(super) fn parse_stamp(
    gen: Option<&String>,
    roles: Option<&String>,
) -> Result<Stamp, StoreError> {
    let roles = roles.map_or(Ok(Roles::NONE), |r| Roles::from_stored(r));
    Ok(Stamp {
        gen: parse_gen(gen)?,
        roles: roles.map_err(|e| StoreError::Corrupt(format!("a user's roles: {e}")))?,
    })
}

/// The value of a refresh lookup key: `<user>:<sid>`.
fn owner_value(user: UserId, sid: SessionId) -> String {
    format!("{}:{sid}", user.get())
}

/// Refresh-token lookups a rotation left behind, for [`Store::forget_later`]:
/// key names, kept inside the store.
#[must_use]
pub(crate) struct StaleLookups(Vec<String>);

impl Store {
    /// Open a session with its first refresh token. Sessions over the cap are
    /// ended here and returned, so the caller can publish their revocation.
    pub(crate) async fn create_session(
        &self,
        s: &NewSession<'_>,
        guard: Guard<'_>,
        policy: &SessionPolicy,
        now_ms: u64,
    ) -> Result<Opened, StoreError> {
        let abs_end = policy
            .max_lifetime_ms
            .map_or(i64::MAX as u64 / 2, |m| now_ms + m);
        let session = self.keys.session(s.user, s.sid);
        let sessions = self.keys.sessions(s.user);
        let user = self.keys.user(s.user.get());
        let ip = s.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let (mode, expected) = match guard {
            Guard::PasswordIs(hash) => ("password", hash),
            Guard::NeverLoggedOutEverywhere => ("legacy", ""),
        };
        let lookup = self.keys.refresh(s.fingerprint);
        let lookup_ttl = policy.idle_ttl_ms.min(abs_end - now_ms);
        let set_lookup = set_px(&lookup, &owner_value(s.user, s.sid), lookup_ttl);
        let mut create = eval(&CREATE, &[&session, &sessions, &user]);
        create
            .arg(s.sid.to_string())
            .arg(s.fingerprint.as_str())
            .arg(now_ms)
            .arg(abs_end)
            .arg(policy.idle_ttl_ms)
            .arg(ip)
            .arg(s.user_agent)
            .arg(policy.max_per_user)
            .arg(mode)
            .arg(expected)
            .arg(self.keys.session_prefix(s.user));
        // The lookup lives in another slot than the session: one round trip,
        // not always one pipeline (Redis::both). Either alone is harmless: a
        // lookup names a session that must list its token.
        let ((), reply): ((), Vec<String>) = self.redis.both(&set_lookup, &create).await?;
        match reply.first().map(String::as_str) {
            Some("opened") => {}
            Some("stale") => {
                // The lookup written beside the script names no session.
                self.forget_lookups(&[lookup]).await?;
                return Ok(Opened::Stale);
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "create script answered {other:?}"
                )))
            }
        }
        let stamp = parse_stamp(reply.get(1), reply.get(2))?;
        let mut evicted = Vec::new();
        let mut lookups = Vec::new();
        for ended in reply.get(3..).unwrap_or_default().chunks(3) {
            if let Some(sid) = ended.first().and_then(|sid| SessionId::parse(sid)) {
                evicted.push(sid);
            }
            lookups.extend(
                ended[1..]
                    .iter()
                    .filter(|f| !f.is_empty())
                    .map(|f| self.keys.refresh_hex(f)),
            );
        }
        // The evicted sessions are already gone; their lookups name nothing.
        if let Err(e) = self.forget_lookups(&lookups).await {
            log::debug!("could not delete the lookups of evicted sessions: {e}");
        }
        Ok(Opened::Yes { stamp, evicted })
    }

    /// Whose session a refresh token belongs to, if the lookup still exists.
    pub(crate) async fn refresh_owner(
        &self,
        fp: &Fingerprint,
    ) -> Result<Option<Owner>, StoreError> {
        let v: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.refresh(fp)))
            .await?;
        let Some(v) = v else { return Ok(None) };
        let parsed = v
            .split_once(':')
            .and_then(|(u, s)| Some((UserId::new(u.parse().ok()?), SessionId::parse(s)?)));
        match (parsed, v.parse::<u64>()) {
            (Some((user, sid)), _) => Ok(Some(Owner::Session(user, sid))),
            (None, Ok(user)) => Ok(Some(Owner::Legacy(UserId::new(user)))),
            (None, Err(_)) => Err(StoreError::Corrupt(format!(
                "refresh lookup holds {v:?}, not <user>:<session>"
            ))),
        }
    }

    /// Present `fp` of session `sid` and, if it is current, replace it with
    /// `new_fp`: the compare-and-rotate script writes the new lookup itself on
    /// a single Redis, so the refresh costs two round trips with
    /// `refresh_owner`. On a cluster the lookup lives in another slot: it is
    /// set beside the script (concurrently) and, when the session ends sooner
    /// than the idle TTL, its expiry shortened after it (a third round trip).
    pub(crate) async fn rotate(
        &self,
        user: UserId,
        sid: SessionId,
        fp: &Fingerprint,
        new_fp: &Fingerprint,
        policy: &SessionPolicy,
        now_ms: u64,
    ) -> Result<(Rotation, StaleLookups), StoreError> {
        let session = self.keys.session(user, sid);
        let sessions = self.keys.sessions(user);
        let new_lookup = self.keys.refresh(new_fp);
        let user_key = self.keys.user(user.get());
        let cluster = self.redis.is_cluster();
        let mut keys = vec![session.as_str(), sessions.as_str(), user_key.as_str()];
        if !cluster {
            keys.push(new_lookup.as_str());
        }
        let mut rotate = eval(&ROTATE, &keys);
        rotate
            .arg(sid.to_string())
            .arg(fp.as_str())
            .arg(new_fp.as_str())
            .arg(now_ms)
            .arg(policy.reuse_grace_ms)
            .arg(policy.idle_ttl_ms)
            .arg(owner_value(user, sid));
        let reply: Vec<String> = if cluster {
            // Two slots, one round trip (see create_session).
            let set_lookup = set_px(&new_lookup, &owner_value(user, sid), policy.idle_ttl_ms);
            let ((), reply): ((), Vec<String>) = self.redis.both(&set_lookup, &rotate).await?;
            reply
        } else {
            self.redis.query(&rotate).await?
        };
        let mut stale = Vec::new();
        let outcome = match reply.first().map(String::as_str) {
            Some("rotated") => {
                // The token two generations back loses its lookup; the new one
                // lives no longer than the session.
                if let Some(old) = reply.get(2).filter(|f| !f.is_empty()) {
                    stale.push(self.keys.refresh_hex(old));
                }
                if let Some(ttl) = reply.get(1).and_then(|t| t.parse::<u64>().ok()) {
                    if cluster && ttl < policy.idle_ttl_ms {
                        let _: () = self
                            .redis
                            .query(redis::cmd("PEXPIRE").arg(&new_lookup).arg(ttl))
                            .await?;
                    }
                }
                Rotation::Rotated {
                    stamp: parse_stamp(reply.get(3), reply.get(4))?,
                }
            }
            Some("duplicate") => Rotation::Duplicate,
            Some("reused") => {
                stale.extend(
                    reply[1..]
                        .iter()
                        .filter(|f| !f.is_empty())
                        .map(|f| self.keys.refresh_hex(f)),
                );
                Rotation::Reused
            }
            Some("gone") => {
                stale.extend(
                    reply[1..]
                        .iter()
                        .filter(|f| !f.is_empty())
                        .map(|f| self.keys.refresh_hex(f)),
                );
                Rotation::Gone
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "rotate script answered {other:?}"
                )))
            }
        };
        if cluster && !matches!(outcome, Rotation::Rotated { .. }) {
            // This lookup names a token no session will ever hold.
            stale.push(new_lookup);
        }
        Ok((outcome, StaleLookups(stale)))
    }

    /// Delete `stale` off the answer's path (`forget_lookups` in a task).
    pub(crate) fn forget_later(self: &std::sync::Arc<Self>, stale: StaleLookups) {
        if stale.0.is_empty() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.forget_lookups(&stale.0).await {
                log::debug!("could not delete stale refresh lookups: {e}");
            }
        });
    }

    /// Delete lookup keys that no longer matter; best effort, off the answer's path.
    async fn forget_lookups(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        // One DEL: a cluster client splits it by slot.
        let _: u64 = self.redis.query(redis::cmd("DEL").arg(keys)).await?;
        Ok(())
    }

    /// Count a wrong current password sent with a token of session `sid`; how
    /// many the session has had (0 when it no longer exists).
    pub(crate) async fn count_password_failure(
        &self,
        user: UserId,
        sid: SessionId,
    ) -> Result<u64, StoreError> {
        let cmd = eval(&PASSWORD_FAILURE, &[&self.keys.session(user, sid)]);
        self.redis.query(&cmd).await
    }

    /// End one session; whether it existed.
    pub(crate) async fn revoke_session(
        &self,
        user: UserId,
        sid: SessionId,
    ) -> Result<bool, StoreError> {
        let session = self.keys.session(user, sid);
        let sessions = self.keys.sessions(user);
        let mut revoke = eval(&REVOKE, &[&session, &sessions]);
        revoke.arg(sid.to_string());
        let gone: Vec<String> = self.redis.query(&revoke).await?;
        let lookups: Vec<String> = gone
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| self.keys.refresh_hex(f))
            .collect();
        let existed = !lookups.is_empty();
        self.forget_lookups(&lookups).await?;
        Ok(existed)
    }

    /// End every session of `user`: count the user's token generation up (every
    /// access token minted before is revoked by it, on every instance, once it is
    /// published) and end each live session. The new generation (`None`: no such
    /// user) and the ids that were live. Also marks the user (`sessions_nbf`) so
    /// that no refresh token from before sessions existed can open one any more.
    pub(crate) async fn revoke_all(
        &self,
        user: UserId,
        now_s: u64,
    ) -> Result<(Option<u64>, Vec<SessionId>), StoreError> {
        let mut end_all = eval(&END_ALL, &[&self.keys.user(user.get())]);
        end_all.arg(now_s);
        let gen: Option<u64> = self.redis.query(&end_all).await?;
        let sids: Vec<String> = self
            .redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.keys.sessions(user))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let sids: Vec<SessionId> = sids.iter().filter_map(|s| SessionId::parse(s)).collect();
        for sid in &sids {
            self.revoke_session(user, *sid).await?;
        }
        Ok((gen, sids))
    }

    /// The user's live sessions, most recently created first.
    pub(crate) async fn list_sessions(&self, user: UserId) -> Result<Vec<SessionInfo>, StoreError> {
        let sessions_key = self.keys.sessions(user);
        let sids: Vec<String> = self
            .redis
            .query(redis::cmd("ZRANGE").arg(&sessions_key).arg(0).arg(-1))
            .await?;
        let sids: Vec<SessionId> = sids.iter().filter_map(|s| SessionId::parse(s)).collect();
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for sid in &sids {
            pipe.cmd("HMGET").arg(self.keys.session(user, *sid)).arg(&[
                "created_at",
                "last_used_at",
                "ip",
                "ua",
            ]);
        }
        type Row = (Option<u64>, Option<u64>, Option<String>, Option<String>);
        let rows: Vec<Row> = self.redis.pipeline(&pipe).await?;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for (sid, (created, used, ip, ua)) in sids.into_iter().zip(rows) {
            match (created, used) {
                (Some(created_at_ms), Some(last_used_at_ms)) => out.push(SessionInfo {
                    sid,
                    created_at_ms,
                    last_used_at_ms,
                    ip: ip.unwrap_or_default(),
                    user_agent: ua.unwrap_or_default(),
                }),
                // Its hash expired while idle: drop it from the index too.
                _ => expired.push(sid.to_string()),
            }
        }
        if !expired.is_empty() {
            let _: () = self
                .redis
                .query(redis::cmd("ZREM").arg(&sessions_key).arg(&expired))
                .await?;
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at_ms));
        Ok(out)
    }
}
