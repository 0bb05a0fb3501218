//! Plain body-less HTTP/1.1 GET and HEAD requests, served through the gateway's own phases without pingora-proxy's state machine.
//!
//! pingora-proxy drives every request through a general machine: cache and
//! module phases, two tasks joined by channels to stream bodies both ways, a
//! shared upstream pool with a watcher task per idle connection. For a request
//! with no body, no upgrade and no hop-by-hop headers beyond `Connection:
//! keep-alive|close`, none of that has work to do. Such a request is read here
//! by pingora-core's HTTP/1 session, as before, and goes through the same
//! `Gateway` phases in the same order (edge, auth endpoints, routing, token
//! check, peer selection, retries and passive health, upstream request headers,
//! response filter, failure answers, metrics and access log): only the driving
//! loop and the upstream pool (`upstream_pool.rs`) are this module's own.
//!
//! Which requests come here is decided from the raw bytes before anything is
//! parsed (`classify`); everything else is handed to pingora-proxy with the
//! bytes already read (`set_pipelined_prefix`), so it sees the request exactly
//! as the client sent it. `fast_path: false` in the config sends every
//! request to pingora-proxy.

use super::upstream_pool::UpstreamPool;
use crate::proxy::{Gateway, RequestCtx};
use http::Version;
use pingora_core::apps::{HttpPersistentSettings, ReusedHttpStream};
use pingora_core::connectors::{ConnectorOptions, TransportConnector};
use pingora_core::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora_core::protocols::http::v2::server::HttpSession as H2Stream;
use pingora_core::protocols::http::HttpTask;
use pingora_core::protocols::Stream;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::ShutdownWatch;
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::Session;
use std::sync::Arc;

/// Request headers that make a request something other than plain and
/// body-less: framing, expectations, upgrades, and the hop-by-hop headers
/// pingora-proxy strips before forwarding. Any of them sends the request to
/// pingora-proxy, which knows what each means.
const NOT_PLAIN: [&str; 11] = [
    "content-length",
    "transfer-encoding",
    "expect",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "http2-settings",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Most headers a fast-path request may carry; more go to pingora-proxy.
const MAX_HEADERS: usize = 64;

/// How long an upstream may take to start answering before the fast path also
/// watches the client, to give up (and free the upstream connection) if it has
/// gone. pingora-proxy watches from the start; a read per request that would
/// find nothing is what the fast path saves by waiting this long first.
const WATCH_CLIENT_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// What to do with the bytes of a request read so far.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Exactly one complete plain request: the fast path serves it.
    Fast,
    /// Anything else, including what the check cannot parse: pingora-proxy.
    Pingora,
    /// The header is not complete yet.
    NeedMore,
}

/// The fast path serves HTTP/1.1 GET or HEAD in origin form with one Host, no
/// body, no header from `NOT_PLAIN`, and `Connection` (at most one) only
/// `keep-alive` or `close`.
///
/// Mirrors what pingora-proxy 0.9.1 treats specially in a request
/// (`HttpProxy::proxy_1to1` and `proxy_handle_downstream` in proxy_h1.rs:
/// bodies, upgrades, hop-by-hop headers): anything of the kind goes there.
pub(super) fn classify(buf: &[u8]) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        // Bytes after the header (a body, a pipelined request) go to pingora-proxy.
        Ok(httparse::Status::Complete(n)) if n == buf.len() => {}
        Ok(httparse::Status::Partial) => return Verdict::NeedMore,
        _ => return Verdict::Pingora,
    }
    if req.version != Some(1)
        || !matches!(req.method, Some("GET" | "HEAD"))
        || !req.path.is_some_and(|p| p.starts_with('/'))
    {
        return Verdict::Pingora;
    }
    let (mut hosts, mut connections) = (0, 0);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("connection") {
            connections += 1;
            let v = h.value;
            if !(v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")) {
                return Verdict::Pingora;
            }
        } else if NOT_PLAIN.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
            return Verdict::Pingora;
        }
    }
    if hosts == 1 && connections <= 1 {
        Verdict::Fast
    } else {
        Verdict::Pingora
    }
}

/// The fast path serves an HTTP/2 GET or HEAD stream whose HEADERS frame
/// ended it (no body can follow), with an origin-form `:path` and no header
/// from `NOT_PLAIN`; HTTP/2 has no `Connection` (the h2 crate refuses one).
///
/// The same rule as `classify` for HTTP/1: what pingora-proxy 0.9.1 would
/// treat specially (a body, `te: trailers`, an extended CONNECT) goes there.
/// Pingora's HTTP/2 server has already refused the ambiguous authorities and
/// targets (`invalid_request_authority` in its v2/server.rs).
pub(super) fn classify_h2(stream: &H2Stream) -> Verdict {
    let req = stream.req_header();
    let plain = matches!(req.method, http::Method::GET | http::Method::HEAD)
        && stream.is_body_done()
        && req.raw_path().starts_with(b"/")
        && !req
            .headers
            .keys()
            .any(|n| n == http::header::CONNECTION || NOT_PLAIN.contains(&n.as_str()));
    if plain {
        Verdict::Fast
    } else {
        Verdict::Pingora
    }
}

/// The fast path's share of the gateway: its phases, an upstream connector, its pool.
pub(crate) struct FastPath {
    gateway: Arc<Gateway>,
    connector: TransportConnector,
    pool: Arc<UpstreamPool>,
    /// Tries per request, as pingora-proxy's `max_retries`.
    max_tries: usize,
}

impl FastPath {
    /// Connections are made as pingora-proxy makes them (same TLS roots, bind
    /// addresses and timeouts from `conf`); up to `conf.upstream_keepalive_pool_size`
    /// idle ones are kept, as pingora-proxy's pool keeps.
    pub(crate) fn new(gateway: Arc<Gateway>, conf: &ServerConf) -> Self {
        FastPath {
            gateway,
            connector: TransportConnector::new(Some(ConnectorOptions::from_server_conf(conf))),
            pool: UpstreamPool::new(conf.upstream_keepalive_pool_size),
            max_tries: conf.max_retries.max(1),
        }
    }

    /// Serve one eligible request on `session` (its bytes already set as the
    /// session's prefix); the connection back when it can carry another request.
    pub(super) async fn serve(
        &self,
        mut session: Session,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.downstream_session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                // What pingora-proxy answers a request its parser refuses.
                if matches!(e.etype(), ErrorType::InvalidHTTPHeader) {
                    let _ = session.downstream_session.respond_error(400).await;
                }
                session.downstream_session.shutdown().await;
                return None;
            }
        }
        if *shutdown.borrow() {
            session.set_keepalive(None);
        }
        crate::metrics::METRICS.fast_path.inc();
        let gw = &*self.gateway;
        let mut ctx = RequestCtx::new();
        gw.early_request(&mut session, &mut ctx);
        if gw.filter_request(&mut session, &mut ctx).await {
            gw.log_request(&session, &ctx);
            return finish(session).await;
        }
        let (error, tries) = self.proxy(&mut session, &mut ctx).await;
        if let Some(e) = &error {
            let answer = crate::proxy::failure::answer(&mut session, e, &mut ctx).await;
            if !gw.suppress_error_log(e) {
                log::error!(
                    "Fail to proxy: {e}, status: {}, tries: {tries}, {}",
                    answer.error_code,
                    gw.request_summary(&session, &ctx)
                );
            }
        }
        gw.log_request(&session, &ctx);
        // After a failure the client connection is not reused, as in pingora-proxy.
        match error {
            None => finish(session).await,
            Some(_) => None,
        }
    }

    /// Forward to the route's upstream and relay the answer: the error if none
    /// was relayed, and the tries made.
    async fn proxy(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> (Option<Box<Error>>, usize) {
        let gw = &*self.gateway;
        let mut last = None;
        for tries in 1..=self.max_tries {
            let peer = match gw.upstream_peer(ctx) {
                Ok(p) => p,
                Err(e) => return (Some(e), tries),
            };
            let key = peer.reuse_hash();
            let stream = match self.pool.take(key, peer.address()) {
                Some(s) => s,
                None => match self.connector.new_stream(&*peer).await {
                    Ok(s) => s,
                    Err(mut e) => {
                        e.as_up();
                        let e = gw.connect_failed(ctx, e).into_up();
                        if e.retry() {
                            last = Some(e);
                            continue;
                        }
                        return (Some(e), tries);
                    }
                },
            };
            match self.exchange(session, ctx, stream, &peer, key).await {
                Ok(()) => return (None, tries),
                Err(e) => {
                    // As pingora-proxy's `error_while_proxy` hook: the same policy.
                    let e = gw.proxy_failed(session, ctx, &peer, e);
                    if e.retry() {
                        last = Some(e);
                        continue;
                    }
                    return (Some(e), tries);
                }
            }
        }
        (last, self.max_tries)
    }

    /// One request and its answer over `stream`; the connection goes back to the
    /// pool (under `key`, the peer's `reuse_hash`) when the upstream can take
    /// another request on it.
    ///
    /// Mirrors pingora-proxy 0.9.1's `proxy_to_h1_upstream` and
    /// `proxy_handle_upstream` (proxy_h1.rs) for a body-less request; a
    /// failure is judged by the gateway's `error_while_proxy` policy.
    async fn exchange(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        stream: Stream,
        peer: &HttpPeer,
        key: u64,
    ) -> Result<()> {
        let mut up = UpstreamSession::new_with_options(stream, peer);
        up.read_timeout = peer.options.read_timeout;
        up.write_timeout = peer.options.write_timeout;

        let mut req = session.req_header().clone();
        req.set_version(Version::HTTP_11);
        // `classify` let through no hop-by-hop header but this one.
        req.remove_header(&http::header::CONNECTION);
        if session.req_header().version == Version::HTTP_2 {
            // HTTP/2 carries `:authority`, HTTP/1 upstreams read `Host`: as
            // pingora-proxy's `proxy_to_h1_upstream`, with the same function.
            pingora_proxy::set_h1_host_from_authority(&mut req).map_err(|e| e.into_down())?;
        }
        crate::proxy::headers::prepare_upstream_request(
            session,
            &mut req,
            ctx,
            &self.gateway.edge,
        )?;
        up.write_request_header(Box::new(req))
            .await
            .map_err(|e| e.into_up())?;

        let mut task = first_response_task(session, &mut up).await?;
        loop {
            let end = match task {
                HttpTask::Header(mut header, end) => {
                    if header.status == http::StatusCode::SWITCHING_PROTOCOLS {
                        // Nothing asked for an upgrade.
                        return Error::e_explain(
                            ErrorType::InvalidHTTPHeader,
                            "101 without Upgrade",
                        )
                        .map_err(|e| e.into_up());
                    }
                    let informational = header.status.is_informational();
                    if !informational {
                        chunk_if_unframed(session, &mut header, end)?;
                    }
                    // As pingora-proxy: every header the client gets, 1xx included.
                    self.gateway.filter_response(&mut header, ctx)?;
                    session
                        .write_response_header(header, end)
                        .await
                        .map_err(|e| e.into_down())?;
                    end && !informational
                }
                HttpTask::Body(data, end) => {
                    session
                        .write_response_body(data, end)
                        .await
                        .map_err(|e| e.into_down())?;
                    end
                }
                HttpTask::Done => {
                    session
                        .write_response_body(None, true)
                        .await
                        .map_err(|e| e.into_down())?;
                    true
                }
                HttpTask::Trailer(_) | HttpTask::UpgradedBody(..) => {
                    return Error::e_explain(
                        ErrorType::InvalidHTTPHeader,
                        "unexpected upstream frame",
                    )
                    .map_err(|e| e.into_up());
                }
                HttpTask::Failed(e) => return Err(e.into_up()),
            };
            if end {
                break;
            }
            task = match crate::proxy::streams::end_signal(ctx) {
                None => up.read_response_task().await.map_err(|e| e.into_up())?,
                Some(signal) => tokio::select! {
                    t = up.read_response_task() => t.map_err(|e| e.into_up())?,
                    _ = signal.notified() => {
                        // Revoked, or out of time: end the body cleanly; the
                        // upstream connection, mid-answer, is dropped.
                        session
                            .write_response_body(None, true)
                            .await
                            .map_err(|e| e.into_down())?;
                        return Ok(());
                    }
                },
            };
        }
        up.respect_keepalive();
        if let Some(stream) = up.reuse().await {
            let addr = peer.address().clone();
            self.pool.release(key, addr, stream, peer.idle_timeout());
        }
        Ok(())
    }
}

/// The upstream's first answer, or the client's departure: past
/// `WATCH_CLIENT_AFTER`, a client that closes its connection (or sends bytes,
/// which a body-less request cannot have) ends the request, as pingora-proxy
/// ends it, instead of holding an upstream connection for an answer nobody reads.
async fn first_response_task(session: &mut Session, up: &mut UpstreamSession) -> Result<HttpTask> {
    let downstream = &mut session.downstream_session;
    let client_gone = async {
        tokio::time::sleep(WATCH_CLIENT_AFTER).await;
        downstream.read_body_or_idle(true).await
    };
    tokio::select! {
        biased;
        task = up.read_response_task() => task.map_err(|e| e.into_up()),
        gone = client_gone => match gone {
            Err(e) => Err(e.into_down()),
            // Not reached with no body expected; stop waiting all the same.
            Ok(_) => Error::e_explain(ErrorType::ConnectionClosed, "client left").map_err(|e| e.into_down()),
        },
    }
}

/// As pingora-proxy: a response without Content-Length or Transfer-Encoding
/// (HTTP/1.0 style, ended by closing) is sent on as chunked, so the client
/// connection can stay open. Mirrors `h1_response_filter` in pingora-proxy
/// 0.9.1's proxy_h1.rs.
fn chunk_if_unframed(
    session: &Session,
    header: &mut pingora_http::ResponseHeader,
    end: bool,
) -> Result<()> {
    let no_body = session.req_header().method == http::Method::HEAD
        || matches!(header.status.as_u16(), 204 | 304);
    if !no_body
        && !end
        && header
            .headers
            .get(http::header::TRANSFER_ENCODING)
            .is_none()
        && header.headers.get(http::header::CONTENT_LENGTH).is_none()
    {
        header.set_version(Version::HTTP_11);
        header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}

/// End the request and hand back the connection: mirrors `HttpProxy::finish`
/// in pingora-proxy 0.9.1's lib.rs.
async fn finish(session: Session) -> Option<ReusedHttpStream> {
    let settings = HttpPersistentSettings::for_session(&session.downstream_session);
    let downstream = session.downstream_session;
    downstream
        .finish()
        .await
        .ok()
        .flatten()
        .map(|s| ReusedHttpStream::from_reusable_stream(s, settings))
}

#[cfg(test)]
mod tests {
    use super::{classify, Verdict};

    fn eligible(buf: &[u8]) -> bool {
        classify(buf) == Verdict::Fast
    }

    const PLAIN: &str = "GET /api/x?q=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n";

    #[test]
    fn a_plain_get_or_head_is_eligible() {
        assert!(eligible(PLAIN.as_bytes()));
        assert!(eligible(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(eligible(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"
        ));
        assert!(eligible(
            b"GET / HTTP/1.1\r\nhost: a\r\nconnection: Close\r\n\r\n"
        ));
    }

    #[test]
    fn anything_else_goes_to_pingora_proxy() {
        let not = [
            // other methods, versions, target forms
            "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            // no Host, two Hosts
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            // a body, or framing of one
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            // upgrades, expectations, hop-by-hop headers, nominated ones
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: keep-alive\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic eDp5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-user-id\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-user-id\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: close\r\n\r\n",
            // followed by more bytes
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            // malformed
            "GET / HTTP/1.1\nHost: a\n\n\0",
            "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for req in not {
            assert!(!eligible(req.as_bytes()), "{req:?}");
        }
        let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert!(
            !eligible(req.as_bytes()),
            "more headers than the fast path parses"
        );
    }

    #[test]
    fn an_incomplete_header_needs_more_bytes() {
        assert_eq!(classify(b"G"), Verdict::NeedMore);
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Verdict::NeedMore
        );
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Verdict::Fast
        );
    }
}
