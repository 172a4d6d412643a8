//! HTTP/1.1 by hand over a real socket, for the web listener's tests: what a county system's
//! HTTP client sends, without a client library between the test and the bytes.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Cluster;

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// `POST path` with `body` as JSON, with `Authorization: Bearer token` when given.
pub async fn post_json(address: SocketAddr, path: &str, token: Option<&str>, body: &str) -> HttpAnswer {
    request(address, "POST", path, token, Some(("application/json", body))).await
}

/// One request on its own connection (`Connection: close`).
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> HttpAnswer {
    let stream = TcpStream::connect(address)
        .await
        .expect("connect to the web listener");
    request_on(stream, method, path, token, body).await
}

/// One request on `stream` (plain TCP or TLS), which it closes.
pub async fn request_on<S>(
    mut stream: S,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> HttpAnswer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let (content_type, text) = body.unwrap_or(("application/json", ""));
    head.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        text.len()
    ));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // a TLS peer may close without close_notify once the answer is complete
    let _ = stream.read_to_end(&mut raw).await;
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> HttpAnswer {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(key, value)| key == "transfer-encoding" && value.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpAnswer {
        status,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|window| window == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

/// One request with `headers` besides the usual ones (`Cookie`, ...), as a browser sends it, on
/// its own connection; the body a form (`application/x-www-form-urlencoded`) unless given.
pub async fn request_with_headers(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> HttpAnswer {
    let (content_type, text) = body.unwrap_or(("application/x-www-form-urlencoded", ""));
    let mut all = headers.to_vec();
    all.push(("Content-Type", content_type));
    request_bytes(address, method, path, &all, text.as_bytes()).await
}

/// One request with a body of raw bytes (a multipart upload, a GBK file) and any extra
/// headers, on its own connection.
pub async fn request_bytes(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpAnswer {
    let mut stream = TcpStream::connect(address)
        .await
        .expect("connect to the web listener");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse_answer(&raw)
}

impl HttpAnswer {
    /// Every value of the header `name` (`set-cookie` comes once per cookie).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Restarts `county` with its web listener (console and API) on loopback, `require_login` as
/// given; where it listens.
pub async fn with_web_listener(cluster: &mut Cluster, county: &str, require_login: bool) -> SocketAddr {
    cluster
        .restart_with_web(
            county,
            hancha::config::WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: Some(require_login),
                tls: None,
            },
        )
        .await;
    cluster.web_address(county)
}
