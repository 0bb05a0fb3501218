//! Idle upstream connections of the fast path: one short-held lock, one sweeper task, no task per connection.
//!
//! Pingora's pool (`pingora_core::connectors`) puts each released connection
//! behind its own `Arc<Mutex>` and spawns a task that watches it while it is
//! idle. Here released connections go into one list, checked when taken (closed
//! by the upstream, i.e. readable, or idle past the peer's `idle_timeout`: dropped)
//! and swept by a single task every `SWEEP_EVERY`, so an idle connection is
//! closed within that much of its timeout, or of the upstream closing it.

use futures_util::FutureExt;
use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_core::protocols::Stream;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How often idle connections are checked between uses.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

struct Idle {
    key: u64,
    /// The peer's address, checked on reuse besides the key (as Pingora's pool
    /// checks the socket): a hash collision must not hand out another peer's connection.
    addr: SocketAddr,
    stream: Stream,
    since: Instant,
    timeout: Option<Duration>,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        self.timeout
            .is_some_and(|t| now.saturating_duration_since(self.since) >= t)
    }
}

/// Idle connections by peer (`Peer::reuse_hash`), at most `cap` in all.
pub(super) struct UpstreamPool {
    idle: Mutex<Vec<Idle>>,
    cap: usize,
    sweeper: OnceLock<()>,
}

impl UpstreamPool {
    /// An empty pool keeping at most `cap` idle connections.
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(UpstreamPool {
            idle: Mutex::new(Vec::new()),
            cap,
            sweeper: OnceLock::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // A panic while holding the lock leaves a valid Vec: keep using it.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently released live connection for `key` (a peer's
    /// `reuse_hash`) to `addr`, if any.
    pub(super) fn take(&self, key: u64, addr: &SocketAddr) -> Option<Stream> {
        let now = Instant::now();
        loop {
            let mut idle = {
                let mut pool = self.lock();
                let at = pool.iter().rposition(|c| c.key == key && c.addr == *addr)?;
                pool.remove(at)
            };
            if !idle.expired(now) && still_open(&mut idle.stream) {
                return Some(idle.stream);
            }
        }
    }

    /// Keep `stream` for the next request to the same peer; the oldest goes when `cap` are kept.
    pub(super) fn release(
        self: &Arc<Self>,
        key: u64,
        addr: SocketAddr,
        stream: Stream,
        timeout: Option<Duration>,
    ) {
        if self.cap == 0 {
            return;
        }
        self.sweeper.get_or_init(|| {
            tokio::spawn(sweep(Arc::downgrade(self)));
        });
        let dropped = {
            let mut pool = self.lock();
            let dropped = (pool.len() >= self.cap).then(|| pool.remove(0));
            pool.push(Idle {
                key,
                addr,
                stream,
                since: Instant::now(),
                timeout,
            });
            dropped
        };
        // Closed outside the lock.
        drop(dropped);
    }

    /// Drop every connection that expired or that the upstream closed.
    ///
    /// The check is a read (a syscall) per connection: it runs on the list taken
    /// out of the lock, so requests are not held up meanwhile (a take that comes
    /// in between finds nothing and connects anew). Oldest first stays the order.
    fn sweep_once(&self) {
        let now = Instant::now();
        let mut checked = std::mem::take(&mut *self.lock());
        checked.retain_mut(|c| !c.expired(now) && still_open(&mut c.stream));
        let mut gone = Vec::new();
        {
            let mut pool = self.lock();
            // Released during the check: newer than every checked one.
            let newer = std::mem::take(&mut *pool);
            *pool = checked;
            pool.extend(newer);
            while pool.len() > self.cap {
                gone.push(pool.remove(0));
            }
        }
        drop(gone);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The pool's sweeper, until the pool is gone.
async fn sweep(pool: Weak<UpstreamPool>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.sweep_once();
    }
}

/// Whether an idle connection is still open and silent, the test Pingora's pool
/// makes on reuse: an upstream never speaks first, so anything readable (data,
/// end of stream, an error) means it cannot carry another request.
/// Mirrors `test_reusable_stream` in pingora-core 0.9.1's connectors/mod.rs.
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    // `unconstrained`: tokio's task budget would otherwise report "pending" for
    // a connection that has in fact been closed.
    tokio::task::unconstrained(stream.read(&mut byte))
        .now_or_never()
        .is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::protocols::l4::stream::Stream as L4Stream;
    use tokio::io::AsyncWriteExt;

    fn addr() -> SocketAddr {
        SocketAddr::Inet("127.0.0.1:1".parse().unwrap())
    }

    async fn pair() -> (Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Box::new(L4Stream::from(client)), server)
    }

    #[tokio::test]
    async fn a_released_connection_is_taken_back_once_and_only_for_its_peer() {
        let pool = UpstreamPool::new(4);
        let (stream, _server) = pair().await;
        pool.release(1, addr(), stream, None);
        assert!(pool.take(2, &addr()).is_none());
        let elsewhere = SocketAddr::Inet("127.0.0.1:2".parse().unwrap());
        assert!(
            pool.take(1, &elsewhere).is_none(),
            "same key, another address"
        );
        assert!(pool.take(1, &addr()).is_some());
        assert!(pool.take(1, &addr()).is_none());
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_or_spoke_on_is_not_reused() {
        let pool = UpstreamPool::new(4);
        let (closed, server) = pair().await;
        drop(server);
        let (spoke, mut server2) = pair().await;
        server2.write_all(b"HTTP/1.1 408\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.release(3, addr(), closed, None);
        pool.release(3, addr(), spoke, None);
        assert!(pool.take(3, &addr()).is_none());
    }

    #[tokio::test]
    async fn beyond_the_cap_the_oldest_goes() {
        let pool = UpstreamPool::new(1);
        let (a, _s1) = pair().await;
        let (b, _s2) = pair().await;
        pool.release(5, addr(), a, None);
        pool.release(5, addr(), b, None);
        assert_eq!(pool.len(), 1);
    }

    #[tokio::test]
    async fn the_sweeper_closes_expired_and_closed_connections_between_uses() {
        let pool = UpstreamPool::new(4);
        let (old, mut s1) = pair().await;
        let (closed, s2) = pair().await;
        let (live, _s3) = pair().await;
        pool.release(6, addr(), old, Some(Duration::from_millis(100)));
        pool.release(7, addr(), closed, None);
        pool.release(8, addr(), live, None);
        drop(s2);
        tokio::time::sleep(SWEEP_EVERY * 3).await;
        assert_eq!(pool.len(), 1, "only the live connection is kept");
        // The expired one was closed, not just forgotten.
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncReadExt::read(&mut s1, &mut buf),
        )
        .await
        .expect("closed, so readable")
        .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(pool.take(8, &addr()).is_some());
    }
}
