//! A demo upstream: answers every request with a JSON echo of what it received.
//!
//! `cargo run --example echo -- 127.0.0.1:9000`

#[path = "../tests/support/echo.rs"]
mod echo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("echo upstream listening on {addr}");
    echo::serve(listener, "echo".into(), Default::default()).await;
    Ok(())
}
