//! An experiment for `bench/split.sh`: what forwarding costs on pingora-core's
//! HTTP/1 session types without pingora-proxy's loop and connection pool.
//!
//! Each client connection keeps one upstream connection of its own (no shared
//! pool, no idle-watch task, no peer check), requests are forwarded one after
//! another, bodies streamed. It handles what the benchmark sends and little
//! else: no retries, no upgrades, no 100-continue, errors just close. It is a
//! measurement of the floor such a design would have, not a proxy to run.
//!
//! With a third argument (an HS256 secret) it also checks the Bearer token with
//! authgate's own `AccessTokens` (the same verified-token cache) and replaces
//! X-User-Id, as HAProxy's `jwt_verify` set-up in the benchmark does; a bad
//! token just closes the connection.
//!
//! `cargo run --release --example h1_loop -- LISTEN_ADDR UPSTREAM_ADDR [SECRET]`

use async_trait::async_trait;
use authgate::auth::access::{bearer_token, AccessTokens};
use authgate::config::Secret;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::http::v1::client::HttpSession as Upstream;
use pingora_core::protocols::http::ServerSession as Downstream;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Stream;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{Server, ShutdownWatch};
use pingora_core::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Forward {
    upstream: SocketAddr,
    tokens: Option<AccessTokens>,
}

impl Forward {
    async fn connect(&self) -> Option<Upstream> {
        let tcp = tokio::net::TcpStream::connect(self.upstream).await.ok()?;
        tcp.set_nodelay(true).ok()?;
        let stream: Stream = Box::new(L4Stream::from(tcp));
        Some(Upstream::new(stream))
    }

    /// One request: false when either side cannot be reused.
    async fn forward(&self, down: &mut Downstream, up: &mut Option<Upstream>) -> Option<()> {
        let mut session = match up.take() {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut req = Box::new(down.req_header().clone());
        if let Some(tokens) = &self.tokens {
            let header = req.headers.get(http::header::AUTHORIZATION);
            let user = bearer_token(header.map(|h| h.as_bytes()))
                .and_then(|t| tokens.verify(t))
                .ok()?;
            req.remove_header("x-user-id");
            req.insert_header("X-User-Id", user.0.to_string()).ok()?;
        }
        session.write_request_header(req).await.ok()?;
        while let Some(chunk) = down.read_request_body().await.ok()? {
            session.write_body(&chunk).await.ok()?;
        }
        session.finish_body().await.ok()?;
        session.read_response().await.ok()?;
        let resp = Box::new(session.resp_header()?.clone());
        down.write_response_header(resp).await.ok()?;
        while let Some(chunk) = session.read_body_bytes().await.ok()? {
            down.write_response_body(chunk, false).await.ok()?;
        }
        session.respect_keepalive();
        *up = session.reuse().await.map(Upstream::new);
        Some(())
    }
}

#[async_trait]
impl ServerApp for Forward {
    async fn process_new(self: &Arc<Self>, stream: Stream, _: &ShutdownWatch) -> Option<Stream> {
        let mut stream = stream;
        let mut up: Option<Upstream> = None;
        loop {
            let mut down = Downstream::new_http1(stream);
            down.set_keepalive(Some(60));
            if !matches!(down.read_request().await, Ok(true)) {
                return None;
            }
            self.forward(&mut down, &mut up).await?;
            stream = down.finish().await.ok()??.into_parts().0;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(Ok(upstream))) = (args.first(), args.get(1).map(|a| a.parse())) else {
        eprintln!("usage: h1_loop LISTEN_ADDR UPSTREAM_IP:PORT [SECRET]");
        std::process::exit(2);
    };
    let tokens = args
        .get(2)
        .map(|s| AccessTokens::new(&Secret::new(s.as_bytes().to_vec()), 30, 10_000));
    let conf = ServerConf {
        threads: 1,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = Service::new("h1 loop".into(), Forward { upstream, tokens });
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
