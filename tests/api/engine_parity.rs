//! The fast path and pingora-proxy, fed the edge fuzzers' corpora (fuzz/corpus/canonical_path, fuzz/corpus/host): what the upstream receives and what the client gets back are the same bytes either way.

use crate::helpers::raw::{try_read_response, RawUpstream};
use crate::helpers::*;
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Every input of one fuzz corpus, in name order (so both runs send the same list).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// `bytes` as a request target: printable ASCII as it is, anything else
/// (space, controls, non-ASCII) percent-encoded, as a client would send it.
fn as_target(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x21..0x7f).contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The requests: each canonical_path input as the target of a GET, on its
/// own and under the public `/pub` route (so it is forwarded when the edge
/// admits it), with a token; each host input as the `Host` (and, after its
/// `\n`, an absolute-form target's authority) of a GET to `/pub/x` and to
/// the host-specific `/host/x`. A host value that cannot be one header line
/// (CR, LF or NUL inside it) is left out, and counted.
fn requests() -> (Vec<(String, String)>, usize) {
    let tok = token(7);
    let mut out = Vec::new();
    for (name, input) in corpus("canonical_path") {
        // The fuzzer's optional 0xFF and encoding pick are not part of the path.
        let path = input.split(|&b| b == 0xFF).next().unwrap_or(&[]);
        let target = as_target(path);
        for (label, t) in [("", target.clone()), ("/pub", format!("/pub{target}"))] {
            out.push((
                format!("canonical_path/{name}{label}"),
                format!(
                    "GET {t} HTTP/1.1\r\nHost: a.example\r\nAuthorization: Bearer {tok}\r\nX-Request-Id: parity\r\n\r\n"
                ),
            ));
        }
    }
    let mut left_out = 0;
    for (name, input) in corpus("host") {
        let (host, authority) = match input.split_first() {
            Some((0, rest)) => (None, rest),
            _ => {
                let mut parts = input.splitn(2, |&b| b == b'\n');
                let host = parts.next().unwrap_or(&[]);
                (Some(host), parts.next().unwrap_or(&[]))
            }
        };
        let writable = |v: &[u8]| !v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0);
        if !host.is_none_or(writable)
            || !writable(authority)
            || std::str::from_utf8(authority).is_err()
        {
            left_out += 1;
            continue;
        }
        let authority = std::str::from_utf8(authority).unwrap_or("");
        for path in ["/pub/x", "/host/x"] {
            let target = if authority.is_empty() {
                path.to_owned()
            } else {
                format!("http://{authority}{path}")
            };
            let mut head = format!("GET {target} HTTP/1.1\r\n").into_bytes();
            if let Some(h) = host {
                head.extend_from_slice(b"Host: ");
                head.extend_from_slice(h);
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(b"X-Request-Id: parity\r\n\r\n");
            out.push((
                format!("host/{name}{path}"),
                String::from_utf8_lossy(&head).into_owned(),
            ));
        }
    }
    (out, left_out)
}

/// Each request on a connection of its own (a refusal may close it): the
/// status and head (without `Date`) and body of the answer, or "closed".
async fn answers(gw: &TestGateway, requests: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (label, request) in requests {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let answer = match try_read_response(&mut s).await {
            Some(r) => {
                let head: Vec<&str> = r
                    .head
                    .lines()
                    .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
                    .collect();
                format!("{}\n{}", head.join("\n"), r.body)
            }
            None => "closed".to_owned(),
        };
        out.push(format!("{label}: {answer}"));
    }
    out
}

#[tokio::test]
async fn the_edge_corpora_reach_the_upstream_alike_through_both_engines() {
    let (requests, left_out) = requests();
    println!(
        "{} requests from the edge corpora; {left_out} host inputs left out (CR, LF or NUL cannot go in one header line)",
        requests.len()
    );
    let mut runs = Vec::new();
    for engine in ["fast", "parked"] {
        let up = RawUpstream::start().await;
        let gw = TestGateway::builder()
            .yaml(&crate::edge::routes(&up))
            .http1_engine(engine)
            .start();
        let before = gw.metric("authgate_fast_path_requests_total").await;
        let got = answers(&gw, &requests).await;
        let fast = gw.metric("authgate_fast_path_requests_total").await - before;
        runs.push((engine, up.requests(), got, fast));
    }
    let (fast, pingora) = (&runs[0], &runs[1]);
    assert!(fast.3 > 0.0, "the fast path served none of them");
    assert_eq!(pingora.3, 0.0, "the fast path served requests with it off");
    assert!(
        fast.1.len() >= 10,
        "too few forwarded to compare: {:#?}",
        fast.1
    );
    assert_eq!(fast.1, pingora.1, "what the upstream received");
    for (f, p) in fast.2.iter().zip(&pingora.2) {
        assert_eq!(f, p, "the answers differ");
    }
}
