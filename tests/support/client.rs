//! Clients: a raw socket that writes exact bytes and reads responses loosely, and
//! hyper clients (plain, or TLS with the test CA and a chosen ALPN).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::PATIENCE;

/// A response as read off the wire.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, duplicates kept, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A TCP client writing exact bytes.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Connects from a chosen loopback source address (127.0.0.2 …).
    pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> RawClient {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        RawClient {
            stream: socket.connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes; `false` at end of stream or on a reset.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("no answer within {PATIENCE:?}"),
        }
    }

    /// The next response, or `None` when the connection closed first.
    pub async fn read_response(&mut self) -> Option<RawResponse> {
        let (status, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 128];
            let mut response = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(len)) = response.parse(&self.buf) {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (response.code?, headers, len);
            }
            if !self.fill().await {
                return None;
            }
        };
        self.buf.drain(..head_len);
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let size_line = self.line().await?;
                let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
                if size == 0 {
                    while !self.line().await?.is_empty() {}
                    break;
                }
                let data = self.take(size + 2).await?;
                response.body.extend_from_slice(&data[..size]);
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().ok()?;
            response.body = self.take(len).await?;
        } else if !(100..200).contains(&status) && status != 204 && status != 304 {
            while self.fill().await {}
            response.body = std::mem::take(&mut self.buf);
        }
        Some(response)
    }

    /// The raw bytes of the next response head (status line and headers, through the
    /// blank line), for answers whose body must not be read (HEAD).
    pub async fn read_response_head(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(self.buf.drain(..end + 4).collect());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return String::from_utf8(line[..end].to_vec()).ok();
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Whether the server closes the connection (reads until end of stream, dropping
    /// whatever else arrives). Bounded by [`PATIENCE`].
    pub async fn closed(&mut self) -> bool {
        while self.fill().await {}
        true
    }
}

/// A plain HTTP/1.1 hyper client.
pub fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A TLS hyper client trusting `tls` (ALPN from its config; HTTP/2 if `h2`).
pub fn https_client(
    tls: Arc<rustls::ClientConfig>,
    h2: bool,
) -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_only();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = if h2 {
        connector.enable_http2().wrap_connector(http)
    } else {
        connector.enable_http1().wrap_connector(http)
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(h2);
    builder.build(connector)
}
