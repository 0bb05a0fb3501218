//! Open long-lived streams (upgraded WebSockets, streamed responses, gRPC streams) by the identity that opened them, so a revocation ends them on every instance.
//!
//! A WebSocket is registered with a duplicate of its upstream socket's fd:
//! the duplicate is ours, so its number can never be reused under us while
//! the entry exists. Cutting it shuts that socket down (`SHUT_RDWR`), which
//! pingora-proxy's upgraded loop sees as the upstream ending; the stream's
//! ended flag then tells the response-body filter to end the client side
//! with a WebSocket close frame (1008). Only HTTP/1 upstream connections are
//! ever registered that way: an h2 connection is shared by other streams.
//!
//! Any other stream (a response without a length, such as Server-Sent Events,
//! or a gRPC call) is registered with a signal instead: the body loop that
//! relays it (the fast path's, or pingora-proxy's through
//! `ProxyHttp::response_end_signal`, patched in vendor/pingora-proxy) waits on
//! it beside the upstream and ends the response when it fires, with gRPC
//! trailers or a clean end of body.
//!
//! Only revocations and time limits cut: a token that merely expires leaves
//! its stream open. A role change (`Revocation::Roles`) re-checks each of
//! the user's streams against the roles it was opened with, which its
//! upstream was told (`X-User-Roles`) and may still act on: a stream whose
//! roles are all still held stays open (the change added roles, or took
//! away only ones granted after it opened); any other ends
//! (`EndReason::Forbidden`). A route that still admits the user is not
//! enough: its upstream would go on serving a demoted user as an admin.

use super::revocations::{Identity, Revocation};
use crate::domain::UserId;
use crate::metrics::METRICS;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why the gateway ended a stream (the close frame's reason and the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// A revocation covered the session it was opened with.
    Revoked,
    /// The route's `max_stream_seconds` ran out.
    MaxDuration,
    /// A WebSocket carried nothing either way for `websocket_idle_seconds`.
    Idle,
    /// The user's roles changed, and lost one the stream was opened with.
    Forbidden,
}

const OPEN: u8 = 0;

impl EndReason {
    fn code(self) -> u8 {
        match self {
            EndReason::Revoked => 1,
            EndReason::MaxDuration => 2,
            EndReason::Idle => 3,
            EndReason::Forbidden => 4,
        }
    }

    fn from_code(c: u8) -> Option<EndReason> {
        match c {
            1 => Some(EndReason::Revoked),
            2 => Some(EndReason::MaxDuration),
            3 => Some(EndReason::Idle),
            4 => Some(EndReason::Forbidden),
            _ => None,
        }
    }
}

/// How a stream is ended from outside its loop.
enum Ending {
    /// An upgraded connection: shut down (our duplicate of) its upstream socket.
    Socket(OwnedFd),
    /// A streamed response: wake the body loop relaying it.
    Signal(Arc<Notify>),
}

/// One registered stream's handle, shared by the registry and the request.
pub(crate) struct StreamCut {
    ending: Ending,
    ended: AtomicU8,
}

impl StreamCut {
    /// A handle over (a duplicate of) an upgraded stream's upstream socket.
    pub(crate) fn new(upstream: OwnedFd) -> Arc<StreamCut> {
        Arc::new(StreamCut {
            ending: Ending::Socket(upstream),
            ended: AtomicU8::new(OPEN),
        })
    }

    /// A handle over a streamed response, ended through `signal()`.
    pub(crate) fn signalled() -> Arc<StreamCut> {
        Arc::new(StreamCut {
            ending: Ending::Signal(Arc::new(Notify::new())),
            ended: AtomicU8::new(OPEN),
        })
    }

    /// The signal a streamed response's body loop waits on (none for an
    /// upgraded connection, which its socket's shutdown ends).
    pub(crate) fn signal(&self) -> Option<&Arc<Notify>> {
        match &self.ending {
            Ending::Signal(n) => Some(n),
            Ending::Socket(_) => None,
        }
    }

    /// Whether, and why, the gateway ended this stream.
    pub(crate) fn ended(&self) -> Option<EndReason> {
        EndReason::from_code(self.ended.load(Ordering::Acquire))
    }

    /// Whether a revocation ended this stream.
    #[cfg(test)]
    pub(crate) fn revoked(&self) -> bool {
        self.ended() == Some(EndReason::Revoked)
    }

    /// End the stream for `why` unless it has been ended already, counted
    /// in `authgate_streams_closed_total{reason=label}`; true when this call
    /// ended it. The count comes first: whoever sees the stream end (its
    /// client, a test reading /metrics next) sees it counted.
    pub(crate) fn end(&self, why: EndReason, label: &str) -> bool {
        if self
            .ended
            .compare_exchange(OPEN, why.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        METRICS.streams_closed.with_label_values(&[label]).inc();
        match &self.ending {
            // SAFETY: the fd is owned by `self` and open for as long as `self`
            // lives. A failure (the peer already gone) leaves nothing to end.
            Ending::Socket(fd) => unsafe {
                libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
            },
            // A permit is kept if the loop is not waiting at this moment.
            Ending::Signal(n) => n.notify_one(),
        }
        true
    }
}

/// One registered stream.
struct Open {
    /// Who opened it, with the token's generation and roles.
    identity: Identity,
    /// Generations whose role change this stream was re-checked against
    /// and still admitted by: the `g` of the same generation, published
    /// with it for older instances, does not end it.
    readmitted: Vec<u64>,
    cut: Arc<StreamCut>,
}

impl Open {
    /// What `r` does to this stream.
    fn judge(&mut self, r: &Revocation) -> Judgement {
        if !r.covers(&self.identity) {
            return Judgement::Untouched;
        }
        match r {
            Revocation::Roles { gen, .. } | Revocation::User { gen, .. }
                if self.readmitted.contains(gen) =>
            {
                Judgement::Untouched
            }
            Revocation::Roles { gen, roles, .. } => {
                if self.identity.roles.within(roles) {
                    self.readmitted.push(*gen);
                    Judgement::Untouched
                } else {
                    Judgement::End(EndReason::Forbidden)
                }
            }
            _ => Judgement::End(EndReason::Revoked),
        }
    }
}

enum Judgement {
    Untouched,
    End(EndReason),
}

/// The registry of this instance's open streams, by user: every revocation
/// names one user, so applying one (and the feed re-applies every kept
/// revocation every few seconds) looks only at that user's streams.
#[derive(Default)]
pub(crate) struct OpenStreams {
    next: AtomicU64,
    open: Mutex<HashMap<UserId, HashMap<u64, Open>>>,
}

/// Keeps a stream registered; dropping it (the request ends) unregisters it.
pub(crate) struct Registration {
    streams: Arc<OpenStreams>,
    user: UserId,
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.open.lock() {
            if let Some(mine) = open.get_mut(&self.user) {
                mine.remove(&self.key);
            }
            forget_if_none_open(&mut open, self.user);
        }
    }
}

/// Drop `user`'s entry once none of their streams is open.
fn forget_if_none_open(open: &mut HashMap<UserId, HashMap<u64, Open>>, user: UserId) {
    if open.get(&user).is_some_and(HashMap::is_empty) {
        open.remove(&user);
    }
}

impl OpenStreams {
    /// Register a stream opened by `identity`.
    pub(crate) fn register(
        self: &Arc<Self>,
        identity: Identity,
        cut: Arc<StreamCut>,
    ) -> Registration {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let user = identity.user;
        if let Ok(mut open) = self.open.lock() {
            open.entry(user).or_default().insert(
                key,
                Open {
                    identity,
                    readmitted: Vec::new(),
                    cut,
                },
            );
        }
        Registration {
            streams: self.clone(),
            user,
            key,
        }
    }

    /// End every open stream `r` covers; returns how many.
    pub(crate) fn revoke(&self, r: &Revocation) -> usize {
        let Ok(mut open) = self.open.lock() else {
            return 0;
        };
        let Some(mine) = open.get_mut(&r.user()) else {
            return 0;
        };
        let mut cut = 0;
        mine.retain(|_, stream| match stream.judge(r) {
            Judgement::Untouched => true,
            Judgement::End(why) => {
                if stream.cut.end(why, r.reason()) {
                    cut += 1;
                }
                false
            }
        });
        forget_if_none_open(&mut open, r.user());
        cut
    }

    /// End one stream now: it was revoked before it was registered.
    pub(crate) fn cut_now(&self, cut: &StreamCut) {
        cut.end(EndReason::Revoked, "revoked_while_opening");
    }

    /// Streams registered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.open
            .lock()
            .map_or(0, |o| o.values().map(HashMap::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::roles::Roles;
    use crate::domain::SessionId;
    use std::os::unix::net::UnixStream;

    fn id(user: u64, sid: u128, gen: u64) -> Identity {
        Identity {
            user: UserId::new(user),
            sid: Some(SessionId(sid)),
            gen,
            roles: Roles::NONE,
        }
    }

    #[test]
    fn a_revocation_cuts_only_the_streams_it_covers() {
        let streams = Arc::new(OpenStreams::default());
        let (a, _a_peer) = UnixStream::pair().unwrap();
        let (b, _b_peer) = UnixStream::pair().unwrap();
        let cut_a = StreamCut::new(a.into());
        let cut_b = StreamCut::new(b.into());
        let _ra = streams.register(id(7, 1, 0), cut_a.clone());
        let rb = streams.register(id(7, 2, 0), cut_b.clone());
        let n = streams.revoke(&Revocation::Session {
            user: UserId::new(7),
            sid: SessionId(1),
            at: 0,
        });
        assert_eq!(n, 1);
        assert!(cut_a.revoked() && !cut_b.revoked());
        assert_eq!(streams.len(), 1);
        // Minted at the new generation: not covered.
        assert_eq!(
            streams.revoke(&Revocation::User {
                user: UserId::new(7),
                gen: 0,
                at: 0
            }),
            0
        );
        drop(rb);
        assert_eq!(streams.len(), 0, "a finished request unregisters");
    }

    #[test]
    fn a_role_change_ends_only_the_streams_opened_with_a_role_it_takes_away() {
        let streams = Arc::new(OpenStreams::default());
        let roles = |names: &[&str]| Roles::from_names(names).unwrap();
        let open = |held: &[&str], gen| {
            let cut = StreamCut::signalled();
            let mut identity = id(5, 1, gen);
            identity.roles = roles(held);
            (streams.register(identity, cut.clone()), cut)
        };
        let (_a, as_staff) = open(&["staff"], 2);
        let (_b, with_none) = open(&[], 2);
        let change = |gen, to: &[&str]| Revocation::Roles {
            user: UserId::new(5),
            gen,
            at: 0,
            roles: roles(to),
        };
        let g = |gen| Revocation::User {
            user: UserId::new(5),
            gen,
            at: 0,
        };
        // staff -> staff, admin: an addition ends nothing, nor does the `g`
        // published with it, nor a replay.
        assert_eq!(streams.revoke(&change(3, &["staff", "admin"])), 0);
        assert_eq!(streams.revoke(&g(3)), 0);
        assert_eq!(
            streams.revoke(&change(3, &["staff", "admin"])),
            0,
            "a replay"
        );
        // A stream opened with the new token's roles.
        let (_c, as_admin) = open(&["admin", "staff"], 3);
        // admin taken away: only the stream that was told `admin` ends.
        assert_eq!(streams.revoke(&change(4, &["staff"])), 1);
        assert_eq!(as_admin.ended(), Some(EndReason::Forbidden));
        assert!(as_staff.ended().is_none() && with_none.ended().is_none());
        // staff taken away: the stream opened with it ends; one opened with
        // no roles stays until a `g` of its own generation.
        assert_eq!(streams.revoke(&change(5, &[])), 1);
        assert_eq!(as_staff.ended(), Some(EndReason::Forbidden));
        assert!(with_none.ended().is_none());
        assert_eq!(streams.revoke(&g(6)), 1);
        assert_eq!(with_none.ended(), Some(EndReason::Revoked));
        assert_eq!(streams.len(), 0);
    }

    #[test]
    fn a_logout_all_learnt_after_a_later_role_change_still_ends_the_stream() {
        // Published by two instances, delivered out of generation order.
        let streams = Arc::new(OpenStreams::default());
        let cut = StreamCut::signalled();
        let _r = streams.register(id(5, 1, 2), cut.clone());
        streams.revoke(&Revocation::Roles {
            user: UserId::new(5),
            gen: 4,
            at: 0,
            roles: Roles::NONE,
        });
        assert!(cut.ended().is_none());
        streams.revoke(&Revocation::User {
            user: UserId::new(5),
            gen: 3,
            at: 0,
        });
        assert_eq!(cut.ended(), Some(EndReason::Revoked));
    }

    #[test]
    fn a_revocation_looks_only_at_its_users_streams_and_empty_users_go() {
        let streams = Arc::new(OpenStreams::default());
        let other = StreamCut::signalled();
        let mine = StreamCut::signalled();
        let _o = streams.register(id(8, 1, 0), other.clone());
        let r = streams.register(id(7, 1, 0), mine.clone());
        let all_of_7 = Revocation::User {
            user: UserId::new(7),
            gen: 5,
            at: 0,
        };
        assert_eq!(streams.revoke(&all_of_7), 1);
        assert!(other.ended().is_none() && mine.ended().is_some());
        drop(r);
        assert_eq!(streams.len(), 1);
        assert_eq!(
            streams.open.lock().unwrap().len(),
            1,
            "user 7's entry is gone"
        );
        assert_eq!(streams.revoke(&all_of_7), 0, "nothing left of user 7");
    }

    #[tokio::test]
    async fn a_revocation_wakes_a_signalled_stream_even_before_it_waits() {
        let streams = Arc::new(OpenStreams::default());
        let cut = StreamCut::signalled();
        let _r = streams.register(id(9, 1, 0), cut.clone());
        let signal = cut
            .signal()
            .cloned()
            .expect("a signalled stream has a signal");
        // The body loop is busy writing when the revocation lands: the permit
        // must wait for its next turn.
        let n = streams.revoke(&Revocation::User {
            user: UserId::new(9),
            gen: 1,
            at: 0,
        });
        assert_eq!(n, 1);
        assert_eq!(cut.ended(), Some(EndReason::Revoked));
        tokio::time::timeout(std::time::Duration::from_secs(1), signal.notified())
            .await
            .expect("the loop wakes on its next wait");
        // Ending twice signals once.
        assert!(!cut.end(EndReason::MaxDuration, "max_stream_seconds"));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), signal.notified())
                .await
                .is_err()
        );
    }
}
