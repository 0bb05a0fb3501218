//! A TCP relay in front of Redis that sees every command: which connection
//! sent it, and in which flight (the commands a client sent before the next
//! reply reached it), so a test can count round trips, not only commands.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One command as the relay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The client connection (in accept order).
    pub conn: usize,
    /// The flight of that connection it was sent in (a new one after each reply).
    pub flight: usize,
    /// The command name, upper case (`GET`, `EVAL`...).
    pub name: String,
}

/// A relay listening on a port of its own, forwarding to `target`.
pub struct RedisRelay {
    /// Where clients connect.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RedisRelay {
    /// Listen on 127.0.0.1 (any port) and relay every connection to `target`.
    pub async fn start(target: SocketAddr) -> RedisRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let conns = AtomicUsize::new(0);
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let conn = conns.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(relay(conn, client, server, log.clone()));
            }
        });
        RedisRelay { addr, seen }
    }

    /// `redis://` URL of the relay.
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    /// Every command seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("relay log").clone()
    }
}

async fn relay(conn: usize, client: TcpStream, server: TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Set when a reply went back: the client's next bytes start a new flight.
    let replied = Arc::new(AtomicBool::new(true));
    let replied_up = replied.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut flight = 0;
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if replied_up.swap(false, Ordering::SeqCst) {
                flight += 1;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some((name, used)) = parse_command(&pending) {
                pending.drain(..used);
                log.lock()
                    .expect("relay log")
                    .push(Seen { conn, flight, name });
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            replied.store(true, Ordering::SeqCst);
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
}

/// The first RESP command in `b` (an array of bulk strings): its name and its
/// length in bytes, or None while it is incomplete.
fn parse_command(b: &[u8]) -> Option<(String, usize)> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = b.get(at..)?.windows(2).position(|w| w == b"\r\n")? + at;
        Some((&b[at..end], end + 2))
    }
    let (head, mut at) = line(b, 0)?;
    let count: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut name = String::new();
    for i in 0..count {
        let (len, next) = line(b, at)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        let arg = b.get(next..next + len)?;
        if i == 0 {
            name = String::from_utf8_lossy(arg).to_uppercase();
        }
        at = next + len + 2;
        if b.len() < at {
            return None;
        }
    }
    Some((name, at))
}
