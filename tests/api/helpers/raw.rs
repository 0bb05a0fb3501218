//! Raw sockets on both sides: a client that sends bytes exactly as written, and an upstream that records exactly what reached it.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that records each request's raw bytes (head and body) and answers 200 `{}`.
pub struct RawUpstream {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    /// Start one on the current runtime.
    pub async fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw");
        let addr = listener.local_addr().expect("raw addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, seen.clone()));
            }
        });
        RawUpstream {
            addr,
            requests,
            task,
        }
    }

    /// Every request received so far, as text.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    /// The last request received: its request line and header lines.
    pub fn last(&self) -> Option<RawRequest> {
        self.requests().last().map(|r| RawRequest::parse(r))
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request as the upstream saw it.
#[derive(Debug)]
pub struct RawRequest {
    /// `GET /path HTTP/1.1`
    pub line: String,
    /// Header (name, value) pairs, names as sent.
    pub headers: Vec<(String, String)>,
}

impl RawRequest {
    fn parse(text: &str) -> RawRequest {
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or("").to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
            .collect();
        RawRequest { line, headers }
    }

    /// The request target.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// Values of headers whose name equals `name` ignoring case.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Header names that a CGI-style server would read as `name` (case and `_`/`-` folded).
    pub fn spellings_of(&self, name: &str) -> Vec<&str> {
        let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
        let want = fold(name);
        self.headers
            .iter()
            .filter(|(n, _)| fold(n) == want)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    loop {
        let Some(request) = read_message(&mut stream).await else {
            return;
        };
        seen.lock().expect("lock").push(request);
        let body = b"{}";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body).await.is_err()
        {
            return;
        }
    }
}

/// Read one HTTP/1 message (head, then a Content-Length or chunked body).
async fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let done = match length {
            Some(n) => buf.len() >= head_end + n,
            None if chunked => find(&buf[head_end..], b"0\r\n\r\n").is_some(),
            None => true,
        };
        if done {
            return Some(buf);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return Some(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The head, as text (read through `Debug` in assertion messages).
    #[allow(dead_code)]
    pub head: String,
    /// The body, as text.
    pub body: String,
}

impl RawResponse {
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Send `request` exactly as written and read one response (10 s at most).
pub async fn send_raw(addr: std::net::SocketAddr, request: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    read_response(&mut s).await
}

/// Read one response from `s`, `None` if it closes first; panic after 10 s.
pub async fn try_read_response(s: &mut TcpStream) -> Option<RawResponse> {
    let msg = tokio::time::timeout(Duration::from_secs(10), read_message(s))
        .await
        .expect("response within 10 s")?;
    let text = String::from_utf8_lossy(&msg).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Some(RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// Read one response from `s`, or panic after 10 s.
pub async fn read_response(s: &mut TcpStream) -> RawResponse {
    try_read_response(s).await.expect("a response")
}

/// Whether the server closes `s` (end of stream or reset) within 5 s, reading
/// and dropping whatever else it sends.
pub async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}
