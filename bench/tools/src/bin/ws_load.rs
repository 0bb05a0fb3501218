//! WebSocket load for bench/websocket.sh: an echo server, a closed-loop echo
//! client, and a holder of many idle connections, so the proxy's CPU per
//! message and memory per open WebSocket can be measured beside nginx's.
//!
//! ```text
//! ws_load server 127.0.0.1:PORT
//! ws_load echo ws://HOST:PORT/PATH CONNS SECONDS [TOKEN]   -> "messages N seconds S"
//! ws_load idle ws://HOST:PORT/PATH N [TOKEN]               -> "open N", then holds them until stdin closes
//! ```

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn usage() -> ! {
    eprintln!("usage: ws_load server ADDR | echo URL CONNS SECONDS [TOKEN] | idle URL N [TOKEN]");
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage())
}

async fn connect(url: &str, token: Option<&str>) -> Result<Ws, String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(t) = token {
        let v = format!("Bearer {t}")
            .parse()
            .map_err(|_| "bad token".to_string())?;
        req.headers_mut().insert("authorization", v);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn server(addr: &str) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn echo(url: String, conns: usize, seconds: u64, token: Option<String>) {
    let count = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (url, token, count) = (url.clone(), token.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = match connect(&url, token.as_deref()).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("connect: {e}"),
            };
            let payload = "x".repeat(64);
            while Instant::now() < end {
                if ws.send(Message::text(payload.clone())).await.is_err() {
                    return;
                }
                match ws.next().await {
                    Some(Ok(m)) if m.is_text() => count.fetch_add(1, Ordering::Relaxed),
                    _ => return,
                };
            }
            let _ = ws.close(None).await;
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "messages {} seconds {:.2}",
        count.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

async fn idle(url: String, n: usize, token: Option<String>) {
    // A few hundred handshakes at a time: the proxy's accept queue is not what is measured.
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (url, token, sem) = (url.clone(), token.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            connect(&url, token.as_deref())
                .await
                .map_err(|e| eprintln!("connect: {e}"))
                .ok()
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        if let Ok(Some(ws)) = t.await {
            open.push(ws);
        }
    }
    println!("open {}", open.len());
    // Held until the script closes our stdin.
    let mut buf = [0u8; 1];
    let _ = tokio::io::stdin().read(&mut buf).await;
    drop(open);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => server(&arg::<String>(&args, 2)).await,
        Some("echo") => {
            echo(
                arg(&args, 2),
                arg(&args, 3),
                arg(&args, 4),
                args.get(5).cloned(),
            )
            .await
        }
        Some("idle") => idle(arg(&args, 2), arg(&args, 3), args.get(4).cloned()).await,
        _ => usage(),
    }
}
