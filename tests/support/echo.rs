//! An echo upstream built on hyper: every request is answered with JSON of its method, path, query, headers and body.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

async fn echo(name: String, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    // Headers as [name, value] pairs, keeping repeats.
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if path == "/slow" {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    let json = serde_json::json!({
        "upstream": name,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    });
    let mut resp = Response::new(Full::new(Bytes::from(json.to_string())));
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Serve echo responses on `listener` forever; `name` is reported in each answer, `hits` counts requests.
pub(crate) async fn serve(listener: tokio::net::TcpListener, name: String, hits: Arc<AtomicUsize>) {
    let (_keep, stop) = tokio::sync::watch::channel(false);
    serve_until(listener, name, hits, stop).await
}

/// Like `serve`, until `stop` turns true: then the listener and every open connection close.
pub(crate) async fn serve_until(
    listener: tokio::net::TcpListener,
    name: String,
    hits: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let name = name.clone();
        let hits = hits.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                hits.fetch_add(1, Ordering::SeqCst);
                echo(name.clone(), req)
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}
