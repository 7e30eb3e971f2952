//! A scripted upstream on 127.0.0.1:0 that speaks just enough HTTP/1.1 to be told
//! exactly what to answer (well-formed, slow, silent, truncated or garbage) and records
//! every request and connection that reaches it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Which connection (1, 2, …, in accept order) it came on.
    pub conn: usize,
    pub method: String,
    pub target: String,
    /// Header names lower-cased, in received order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// How a response body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length,
    Chunked,
    /// No length: the body ends when the connection closes.
    Close,
}

/// What the upstream does with a request.
#[derive(Clone, Debug)]
pub enum Reply {
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        framing: Framing,
    },
    /// These exact bytes, then close.
    Raw(Vec<u8>),
    /// Wait, then reply.
    After(Duration, Box<Reply>),
    /// Never answer; hold the connection.
    Silent,
    /// These exact bytes, then hold the connection without another byte.
    Stall(Vec<u8>),
    /// Close without a byte.
    Close,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200).body(body)
    }

    pub fn status(status: u16) -> Reply {
        Reply::Http {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            framing: Framing::Length,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Reply {
        if let Reply::Http { body, .. } = &mut self {
            *body = bytes.into();
        }
        self
    }

    pub fn framing(mut self, how: Framing) -> Reply {
        if let Reply::Http { framing, .. } = &mut self {
            *framing = how;
        }
        self
    }

    pub fn after(self, delay: Duration) -> Reply {
        Reply::After(delay, Box::new(self))
    }
}

type Script = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The running upstream; stops when dropped.
pub struct ScriptedUpstream {
    pub addr: SocketAddr,
    tls: bool,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ScriptedUpstream {
    /// A plain HTTP upstream answering each request with `script`.
    pub async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::launch(Arc::new(script), None).await
    }

    /// The same over TLS with this server configuration.
    pub async fn start_tls(
        script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        Self::launch(Arc::new(script), Some(tls)).await
    }

    async fn launch(script: Arc<Script>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let (log, count) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let conn = count.fetch_add(1, Ordering::SeqCst) + 1;
                let (script, log, acceptor) = (script.clone(), log.clone(), acceptor.clone());
                tasks.spawn(async move {
                    match acceptor {
                        None => serve_conn(stream, conn, script, log).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_conn(stream, conn, script, log).await;
                            }
                        }
                    }
                });
            }
        });
        ScriptedUpstream {
            addr,
            tls: is_tls,
            requests,
            connections,
            task,
        }
    }

    /// The base URL to give the proxy as `--upstream` (`localhost` over TLS, to
    /// match the test certificate).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/", self.addr.port())
        } else {
            format!("http://{}/", self.addr)
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived (bounded by [`super::PATIENCE`]).
    pub async fn wait_for_requests(&self, n: usize) {
        eventually(|| self.requests.lock().unwrap().len() >= n).await;
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `condition` until it holds, panicking after [`super::PATIENCE`].
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    let wait = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(super::PATIENCE, wait)
        .await
        .expect("condition never became true");
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut stream: S,
    conn: usize,
    script: Arc<Script>,
    log: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buf, conn).await {
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = script(&request);
        log.lock().unwrap().push(request);
        if !write_reply(&mut stream, reply).await || close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

async fn take<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    n: usize,
) -> Option<Vec<u8>> {
    while buf.len() < n {
        fill(stream, buf).await?;
    }
    Some(buf.drain(..n).collect())
}

async fn line<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..end + 2).collect();
            return String::from_utf8(line[..end].to_vec()).ok();
        }
        fill(stream, buf).await?;
    }
}

async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    conn: usize,
) -> Option<Recorded> {
    let (mut recorded, head_len) = loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(len) = request.parse(buf).ok()? {
                let recorded = Recorded {
                    conn,
                    method: request.method?.to_owned(),
                    target: request.path?.to_owned(),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    body: Vec::new(),
                };
                break (recorded, len);
            }
        }
        fill(stream, buf).await?;
    };
    buf.drain(..head_len);
    let chunked = recorded
        .all("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let size_line = line(stream, buf).await?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !line(stream, buf).await?.is_empty() {}
                break;
            }
            let data = take(stream, buf, size).await?;
            recorded.body.extend_from_slice(&data);
            take(stream, buf, 2).await?;
        }
    } else if let Some(len) = recorded.header("content-length") {
        let len: usize = len.trim().parse().ok()?;
        recorded.body = take(stream, buf, len).await?;
    }
    Some(recorded)
}

/// Writes the reply; `false` when the connection must close afterwards.
fn write_reply<'a, S: AsyncWrite + Unpin + Send + 'a>(
    stream: &'a mut S,
    reply: Reply,
) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
    Box::pin(async move {
        match reply {
            Reply::Http {
                status,
                headers,
                body,
                framing,
            } => {
                let mut out = format!("HTTP/1.1 {status} Scripted\r\n");
                for (name, value) in &headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                match framing {
                    Framing::Length => out.push_str(&format!("Content-Length: {}\r\n", body.len())),
                    Framing::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
                    Framing::Close => out.push_str("Connection: close\r\n"),
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                match framing {
                    Framing::Chunked => {
                        for chunk in body.chunks(7) {
                            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                            bytes.extend_from_slice(chunk);
                            bytes.extend_from_slice(b"\r\n");
                        }
                        bytes.extend_from_slice(b"0\r\n\r\n");
                    }
                    _ => bytes.extend_from_slice(&body),
                }
                stream.write_all(&bytes).await.is_ok() && framing != Framing::Close
            }
            Reply::Raw(bytes) => {
                let _ = stream.write_all(&bytes).await;
                false
            }
            Reply::After(delay, reply) => {
                tokio::time::sleep(delay).await;
                write_reply(stream, *reply).await
            }
            Reply::Silent => std::future::pending().await,
            Reply::Stall(bytes) => {
                let _ = stream.write_all(&bytes).await;
                std::future::pending().await
            }
            Reply::Close => false,
        }
    })
}
