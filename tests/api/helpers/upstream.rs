//! Upstreams for the gateway to forward to: a live echo server, or an address where nothing listens.

use super::echo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An echo upstream on the current tokio runtime.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests it has received.
    pub hits: Arc<AtomicUsize>,
    name: String,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Upstream {
    /// Start one named `name`.
    pub async fn start(name: &str) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo");
        Self::serve(listener, name, Arc::new(AtomicUsize::new(0)))
    }

    fn serve(listener: tokio::net::TcpListener, name: &str, hits: Arc<AtomicUsize>) -> Upstream {
        let addr = listener.local_addr().expect("echo addr");
        let (stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(echo::serve_until(
            listener,
            name.to_owned(),
            hits.clone(),
            rx,
        ));
        Upstream {
            addr,
            hits,
            name: name.to_owned(),
            stop,
        }
    }

    /// Close the listener and every connection, as a crashed peer would.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Listen again on the same port, keeping the hit counter.
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        *self = Self::serve(listener, &self.name.clone(), self.hits.clone());
    }

    /// Requests seen so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// An address where nothing listens, held so no other test can start listening there:
/// the socket is bound (without SO_REUSEADDR) but never listens, so connecting is refused.
pub struct DeadPort {
    /// The address.
    pub addr: SocketAddr,
    _hold: tokio::net::TcpSocket,
}

impl DeadPort {
    /// Reserve one.
    pub fn new() -> DeadPort {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let addr = sock.local_addr().expect("local addr");
        DeadPort { addr, _hold: sock }
    }
}
