//! The few HTTP pieces the simulators share: an accept loop with shutdown, a bounded
//! body reader, response builders, query/form/cookie readers and a plain HTTP client.
//!
//! Deliberately small: the simulators are test doubles, not the proxy. They speak
//! HTTP/1.1 and HTTP/2 (hyper-util's `auto` builder) over plain TCP on loopback.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Every simulator answer and request body: small, fully buffered.
pub type Body = Full<Bytes>;

/// The client the simulators use for back-channel calls and the scripted browser.
pub type HttpClient = Client<HttpConnector, Body>;

/// Largest request body a simulator reads (forms, SOAP requests, logout requests are a
/// few KiB at most).
pub const MAX_BODY: usize = 64 * 1024;

/// Pause after a failed `accept` (out of file descriptors, …) before trying again, so a
/// saturated machine does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Accepts connections on `listener` and answers each request with `handler` until
/// `shutdown` completes; then stops accepting and drops the live connections.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                let handler = handler.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let answer = handler(request);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    // A client that goes away mid-request is not the simulator's concern.
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    Ok(())
}

/// A simulator's request handler, shared by every connection.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// [`serve`] with a shared [`Handler`].
pub async fn serve_handler<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve(
        listener,
        move |request| Arc::clone(&handler).handle(request),
        shutdown,
    )
    .await
}

/// A client for plain-HTTP loopback calls.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Reads a whole body, refusing more than [`MAX_BODY`] bytes.
pub async fn read_body<B>(body: B) -> Option<Bytes>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}

/// The first value of `name` in a query string or form body.
pub fn param(encoded: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The value of the request cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// An answer with a body and its content type.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An HTML page.
pub fn html(status: StatusCode, page: String) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", page)
}

/// A whole simulator page, in French: `title` in the browser's tab, then `body`. Written
/// with `maud`, which escapes every value unless told otherwise.
pub fn page(title: &str, body: maud::Markup) -> String {
    maud::html! {
        (maud::DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                title { (title) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// A `302 Found` to `location` (what real CAS servers and Pronote send).
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = respond(StatusCode::FOUND, "text/plain; charset=utf-8", Bytes::new());
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
            response
        }
        Err(_) => respond(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "bad redirect target\n",
        ),
    }
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(response: &mut Response<Body>, cookie: &cookie::Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// A simulator running on its own task; dropping it stops it.
#[derive(Debug)]
pub struct Server {
    /// `http://ADDR/`, where clients reach it.
    base_url: url::Url,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

// === impl Server ===

impl Server {
    /// Runs `run(listener, shutdown)` on a new task.
    pub fn spawn<R, F>(listener: TcpListener, run: R) -> io::Result<Self>
    where
        R: FnOnce(TcpListener, futures_util::future::BoxFuture<'static, ()>) -> F,
        F: Future<Output = io::Result<()>> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let base_url = url::Url::parse(&format!("http://{addr}/")).map_err(io::Error::other)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            // A dropped sender is a stop too.
            let _ = stopped.await;
        });
        let task = tokio::spawn(run(listener, shutdown));
        Ok(Self {
            base_url,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://ADDR/`.
    pub fn base_url(&self) -> &url::Url {
        &self.base_url
    }

    /// Stops the server and waits for its accept loop to end.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Unix seconds now (0 should the clock sit before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now, as an RFC 3339 instant (SAML `IssueInstant`).
pub fn now_rfc3339() -> String {
    cookie::time::OffsetDateTime::now_utc()
        .format(&cookie::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
