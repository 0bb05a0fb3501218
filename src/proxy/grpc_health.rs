//! `health_check: {kind: grpc}`: the gRPC health protocol (`grpc.health.v1.Health/Check`) over HTTP/2, a peer is up while it answers `SERVING`.
//!
//! pingora-load-balancing's `HttpHealthCheck` sends a body-less request and
//! looks at the status line only; a gRPC server answers 200 whatever its
//! health, with the verdict in a protobuf message and in trailers. The two
//! messages are one optional string out and one enum back, so they are
//! encoded here rather than pulling prost and a build step into the gateway
//! for them; `tests/api/grpc.rs` checks them against grpcio's own servicer.

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::Backend;
use std::time::Duration;

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;
/// A health answer is a few bytes; anything longer is not one.
const MAX_ANSWER: usize = 4096;
const FAILED: ErrorType = ErrorType::Custom("grpc health check");

/// One cluster's gRPC health check.
pub(crate) struct GrpcHealthCheck {
    /// The cluster's peer settings (TLS, SNI, HTTP/2, timeouts); the address is set per check.
    template: HttpPeer,
    /// `:authority` of the check.
    host: String,
    /// The framed `HealthCheckRequest`.
    request: Bytes,
    connector: Connector,
}

/// Longest wait for each step of a check (connect, each read, each write).
const CHECK_STEP_TIMEOUT: Duration = Duration::from_secs(1);

impl GrpcHealthCheck {
    /// A check asking about `service` ("" for the server as a whole) through peers like `template`.
    pub(crate) fn new(mut template: HttpPeer, host: &str, service: &str) -> Box<Self> {
        // As Pingora's own TCP and HTTP checks: 1 s to connect and per read,
        // not the cluster's request timeouts (30 s reads by default), which let
        // one stalled answer hold the peer's last state for a minute.
        let step = Some(CHECK_STEP_TIMEOUT);
        template.options.connection_timeout = step;
        template.options.read_timeout = step;
        template.options.write_timeout = step;
        Box::new(GrpcHealthCheck {
            template,
            host: host.to_owned(),
            request: frame(&encode_request(service)),
            connector: Connector::new(None),
        })
    }

    async fn ask(&self, peer: &HttpPeer) -> Result<()> {
        let (mut session, _) = self.connector.get_http_session(peer).await?;
        let timeout = peer.options.read_timeout;
        session.set_read_timeout(timeout);
        session.set_write_timeout(timeout);
        let HttpSession::H2(h2) = &mut session else {
            return Error::e_explain(FAILED, "the peer did not speak HTTP/2");
        };
        let mut req = RequestHeader::build("POST", CHECK_PATH.as_bytes(), None)?;
        req.insert_header("host", self.host.as_str())?;
        req.insert_header("content-type", "application/grpc")?;
        req.insert_header("te", "trailers")?;
        h2.write_request_header(Box::new(req), false)?;
        h2.write_request_body(self.request.clone(), true).await?;
        h2.read_response_header().await?;
        let header = h2.response_header().ok_or_else(|| Error::new(FAILED))?;
        if header.status != 200 {
            return Error::e_explain(FAILED, format!("HTTP status {}", header.status));
        }
        // A trailers-only answer (an error such as NOT_FOUND for an unknown service).
        if let Some(status) = header.headers.get("grpc-status") {
            return Error::e_explain(FAILED, format!("grpc-status {status:?}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = h2.read_response_body().await? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Error::e_explain(FAILED, "answer too long");
            }
            body.extend_from_slice(&chunk);
        }
        let trailers = h2.read_trailers().await?;
        let status = trailers.as_ref().and_then(|t| t.get("grpc-status"));
        if status.map(|s| s.as_bytes()) != Some(b"0") {
            return Error::e_explain(FAILED, format!("grpc-status {status:?}"));
        }
        match unframe(&body).and_then(decode_status) {
            Some(SERVING) => Ok(()),
            Some(other) => Error::e_explain(FAILED, format!("serving status {other}")),
            None => Error::e_explain(FAILED, "not a HealthCheckResponse"),
        }
    }
}

#[async_trait]
impl HealthCheck for GrpcHealthCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let mut peer = self.template.clone();
        peer._address = target.addr.clone();
        // Connect and read timeouts bound each step; this bounds a peer that
        // trickles bytes forever.
        let limit = peer
            .options
            .connection_timeout
            .unwrap_or(Duration::from_secs(1))
            + peer.options.read_timeout.unwrap_or(Duration::from_secs(1)) * 2;
        tokio::time::timeout(limit, self.ask(&peer))
            .await
            .unwrap_or_else(|_| Error::e_explain(FAILED, "timed out"))
    }

    fn health_threshold(&self, _success: bool) -> usize {
        // As pingora's own checks: one answer flips the state.
        1
    }
}

/// `HealthCheckRequest { string service = 1; }`; the empty string is the default and not written.
fn encode_request(service: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        m.push(0x0a); // field 1, length-delimited
        put_varint(&mut m, service.len() as u64);
        m.extend_from_slice(service.as_bytes());
    }
    m
}

/// The gRPC length-prefixed message: uncompressed flag, 4-byte length.
fn frame(message: &[u8]) -> Bytes {
    let mut f = Vec::with_capacity(5 + message.len());
    f.push(0);
    f.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    f.extend_from_slice(message);
    Bytes::from(f)
}

/// The one uncompressed message of `body`.
fn unframe(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    (flag == 0 && rest.len() == 4 + len).then(|| &rest[4..])
}

/// `HealthCheckResponse.status` (field 1, an enum); absent is 0, UNKNOWN.
fn decode_status(mut m: &[u8]) -> Option<u64> {
    let mut status = 0;
    while !m.is_empty() {
        let tag = take_varint(&mut m)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => status = take_varint(&mut m)?,
            (_, 0) => {
                take_varint(&mut m)?;
            }
            (_, 2) => {
                let len = usize::try_from(take_varint(&mut m)?).ok()?;
                m = m.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(status)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(m: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = m.split_first()?;
        *m = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_the_wire_format() {
        assert_eq!(&frame(&encode_request(""))[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &frame(&encode_request("a.B"))[..],
            &[0, 0, 0, 0, 5, 0x0a, 3, b'a', b'.', b'B']
        );
        // SERVING, NOT_SERVING, an empty message (UNKNOWN), an unknown field skipped.
        assert_eq!(
            unframe(&[0, 0, 0, 0, 2, 8, 1]).and_then(decode_status),
            Some(1)
        );
        assert_eq!(
            unframe(&[0, 0, 0, 0, 2, 8, 2]).and_then(decode_status),
            Some(2)
        );
        assert_eq!(unframe(&[0, 0, 0, 0, 0]).and_then(decode_status), Some(0));
        assert_eq!(decode_status(&[0x12, 1, b'x', 8, 1]), Some(1));
        // Truncated, compressed, trailing bytes, a varint that never ends.
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 8]), None);
        assert_eq!(unframe(&[1, 0, 0, 0, 2, 8, 1]), None);
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 8, 1, 0]), None);
        assert_eq!(decode_status(&[8, 0xff, 0xff]), None);
        assert_eq!(decode_status(&[0x0d, 1, 2, 3, 4]), None);
    }
}
