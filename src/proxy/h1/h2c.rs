//! Tells a cleartext HTTP/2 connection (h2c, prior knowledge) from an HTTP/1 one, reading no further than the first byte that differs from the HTTP/2 preface.
//!
//! Pingora's own h2c check (`ServerApp::process_new`, pingora-core 0.9.1) reads
//! all 24 bytes of the preface before deciding, so an HTTP/1.0 request shorter
//! than that (`GET / HTTP/1.0\r\n\r\n` is 18) waits for bytes that never come,
//! and every HTTP/1 connection leaves the parked loop for Pingora's. Here a
//! request starting `G`, `H`, `D`, `O`, `C`, `T` is known at its first byte and
//! `PUT`/`POST`/`PATCH` at their second, so an HTTP/1 client on an `h2c: true`
//! listener keeps its idle parking and fast path; only a connection that
//! really begins `PR` reads on, within the request-head deadline.

use pingora_core::protocols::Stream;

/// What a client sends first on an HTTP/2 connection (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a new cleartext connection speaks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Speaks {
    /// HTTP/2: the whole preface arrived (and is still unread on the stream).
    Http2,
    /// Anything else: HTTP/1's parser decides what it is.
    Http1,
    /// Closed, or the preface stopped arriving before `deadline`.
    Gone,
}

/// Peek at `stream` one byte further at a time until it differs from the
/// preface or the preface is whole; every byte peeked stays on the stream.
pub(crate) async fn sniff(stream: &mut Stream, deadline: tokio::time::Instant) -> Speaks {
    let mut seen = [0u8; PREFACE.len()];
    for n in 1..=PREFACE.len() {
        // `try_peek` reads exactly `n` bytes (the ones rewound by the last
        // peek first) and rewinds them all again.
        match tokio::time::timeout_at(deadline, stream.try_peek(&mut seen[..n])).await {
            Ok(Ok(true)) => {}
            // A stream that cannot peek (TLS) is not h2c.
            Ok(Ok(false)) => return Speaks::Http1,
            _ => return Speaks::Gone,
        }
        if seen[n - 1] != PREFACE[n - 1] {
            return Speaks::Http1;
        }
    }
    Speaks::Http2
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair: the client's socket and the server's Stream.
    async fn pair() -> (tokio::net::TcpStream, Stream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (
            client,
            Box::new(pingora_core::protocols::l4::stream::Stream::from(server)),
        )
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(300)
    }

    /// Sniff what `sent` begins with; then every byte sent is still there to read.
    async fn sniffed(sent: &[u8]) -> Speaks {
        let (mut client, mut server) = pair().await;
        client.write_all(sent).await.unwrap();
        let speaks = sniff(&mut server, soon()).await;
        let mut back = vec![0u8; sent.len()];
        if speaks != Speaks::Gone {
            server.read_exact(&mut back).await.unwrap();
            assert_eq!(back, sent, "the sniffed bytes are read again");
        }
        speaks
    }

    #[tokio::test]
    async fn http1_is_known_without_waiting_for_24_bytes() {
        for short in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"HEAD",
            b"POST",
            b"PUT",
            b"PATCH",
            b"PRX",
        ] {
            let speaks = sniffed(short).await;
            assert_eq!(
                speaks,
                Speaks::Http1,
                "{:?}",
                String::from_utf8_lossy(short)
            );
        }
        // A lone "P" could still be the preface: it waits, up to the deadline.
        assert_eq!(sniffed(b"P").await, Speaks::Gone);
    }

    #[tokio::test]
    async fn the_whole_preface_is_http2_and_a_part_of_it_times_out() {
        assert_eq!(sniffed(PREFACE).await, Speaks::Http2);
        let mut preface_and_frames = PREFACE.to_vec();
        preface_and_frames.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(sniffed(&preface_and_frames).await, Speaks::Http2);
        assert_eq!(sniffed(&PREFACE[..23]).await, Speaks::Gone);
    }

    #[tokio::test]
    async fn a_closed_connection_is_gone() {
        let (client, mut server) = pair().await;
        drop(client);
        assert_eq!(sniff(&mut server, soon()).await, Speaks::Gone);
    }
}
