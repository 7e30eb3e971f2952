//! The pooled client to the upstream ENT.
//!
//! One hyper-util `legacy::Client` over a hyper-rustls connector: keep-alive pooling,
//! TCP_NODELAY, an explicit connect timeout, TLS verified against the webpki roots or
//! `--upstream-ca` (never disabled; an `https` upstream is only ever reached over TLS).
//! The upstream side speaks HTTP/1.1 only: the client's `Host` is forwarded as is, which
//! HTTP/2's `:authority` would contradict, and one protocol means one set of states.
//!
//! **Retries.** bonenfant itself never retries: a CAS ticket is single use, so a request
//! whose bytes may have reached the ENT must not be sent again. The only retry is
//! hyper's own, for a request that was never started because the pooled connection it
//! was given had been closed by the upstream (`retry_canceled_requests`).
//!
//! **Reuse.** A connection goes back to the pool only once its response was read to the
//! end; an answer abandoned part-way (size cap, deadline, error) closes its connection,
//! so the next request can never read the previous one's leftover bytes (T36).
//!
//! **Health.** Every exchange tells the ENT's health ([`Upstream::reporting_to`]): an
//! answer is a success, a failure to connect, a timeout, a broken exchange or a gateway
//! status (502, 503, 504: the ENT's own front server saying the CAS behind it is gone)
//! is a failure. A client's broken body is the client's failure, not the ENT's.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::{ClientBodyError, ProxyBody};
use super::error::{Phase, ProxyError, UpstreamError};
use super::tls;
use crate::admin::{Dependency, Health};
use crate::code::{Code, Side};
use crate::config::Config;

/// Idle pooled connections are closed after this: below Apache's 5 s default
/// `KeepAliveTimeout`, so the proxy closes an idle connection before the upstream
/// does and a request is rarely written onto a connection the upstream is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Idle connections kept per upstream: enough for bursts of a few hundred requests per
/// second, bounded so an idle proxy holds few sockets (I5).
const POOL_MAX_IDLE: usize = 256;

/// TCP keep-alive probes on upstream sockets, to notice a vanished upstream.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The client to the upstream, cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client<HttpsConnector<TcpConnector>, ProxyBody>,
    /// Deadline for the response head (and, in [`Upstream::fetch`], the whole body).
    timeout: Duration,
    /// Longest pause between two frames of a streamed response body.
    body_idle: Duration,
    /// Where each exchange reports the ENT's health, if anywhere.
    health: Option<Health>,
}

// === impl Upstream ===

impl Upstream {
    /// A client for `config.upstream`, with the limits of `config.limits`.
    pub fn new(config: &Config) -> Result<Upstream, ProxyError> {
        let tls = tls::client_config(config.upstream_ca.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.limits.upstream_connect_timeout));
        http.set_keepalive(Some(TCP_KEEPALIVE));
        let builder = HttpsConnectorBuilder::new().with_tls_config(tls);
        let builder = match config.upstream.scheme() {
            "https" => builder.https_only(),
            _ => builder.https_or_http(),
        };
        let connector = builder.enable_http1().wrap_connector(TcpConnector(http));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Upstream {
            client,
            timeout: config.limits.upstream_timeout,
            body_idle: config.limits.idle_timeout,
            health: None,
        })
    }

    /// The same client, telling `health` how each exchange with the ENT went.
    pub fn reporting_to(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// Asks the ENT something light (`HEAD` of `base`, within `timeout`) to learn its
    /// health when no traffic does: any answer but a gateway status is a success.
    pub async fn probe(
        &self,
        base: &url::Url,
        timeout: Duration,
    ) -> Result<StatusCode, UpstreamError> {
        let request = Request::head(base.as_str())
            .header(http::header::USER_AGENT, "bonenfant-probe")
            .body(ProxyBody::empty())
            .map_err(|e| UpstreamError::Protocol(Box::new(e)))?;
        let response = self
            .send_within(request, Instant::now() + timeout, timeout)
            .await?;
        Ok(response.status())
    }

    /// Sends `req` and returns the response head with its body still streaming. Fails
    /// with [`UpstreamError::Timeout`] when the head does not come within the upstream
    /// timeout. Wrap the body with [`Upstream::stream_body`] before handing it on.
    pub async fn forward(
        &self,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send(req, Instant::now() + self.timeout).await
    }

    /// Sends `req`, the response head due by `deadline`. The proxy never asks for a
    /// protocol upgrade (it strips `Upgrade`), so a `101` answer is a protocol error.
    async fn send(
        &self,
        req: Request<ProxyBody>,
        deadline: Instant,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send_within(req, deadline, self.timeout).await
    }

    /// [`Self::send`], `after` being what a timeout says it waited; reports health.
    async fn send_within(
        &self,
        req: Request<ProxyBody>,
        deadline: Instant,
        after: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let sent = async {
            let response = tokio::time::timeout_at(deadline, self.client.request(req))
                .await
                .map_err(|_| UpstreamError::Timeout {
                    phase: Phase::Head,
                    after,
                })?
                .map_err(classify)?;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                return Err(UpstreamError::Protocol(
                    "unrequested protocol switch".into(),
                ));
            }
            Ok(response)
        };
        let sent = sent.await;
        match &sent {
            Ok(response) => self.report(Ok(response.status())),
            Err(error) => self.report(Err(error.code())),
        }
        sent
    }

    /// Tells the ENT's health how an exchange went: its answer's status, or the code
    /// it failed with.
    fn report(&self, outcome: Result<StatusCode, Code>) {
        let Some(health) = &self.health else {
            return;
        };
        match outcome {
            Ok(
                StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT,
            ) => {
                health.failed(Dependency::Ent, Code::ProxyUpstreamStatus);
            }
            Ok(_) => health.succeeded(Dependency::Ent),
            // The ENT answered, too much: a refusal of that answer, not an outage.
            Err(Code::ProxyUpstreamBodyTooLarge) => health.succeeded(Dependency::Ent),
            Err(code) if code.side() == Side::Ent => health.failed(Dependency::Ent, code),
            Err(_) => {}
        }
    }

    /// Sends `req` and reads the whole answer, at most `max_body` bytes, head and body
    /// within the upstream timeout. Over the cap or the deadline, the answer is dropped
    /// and so is its connection.
    pub async fn fetch(
        &self,
        req: Request<ProxyBody>,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), UpstreamError> {
        let deadline = Instant::now() + self.timeout;
        let timeout = |phase| UpstreamError::Timeout {
            phase,
            after: self.timeout,
        };
        let response = self.send(req, deadline).await?;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_body as u64) {
            return Err(UpstreamError::BodyTooLarge { limit: max_body });
        }
        let (parts, body) = response.into_parts();
        let collected = tokio::time::timeout_at(deadline, Limited::new(body, max_body).collect())
            .await
            .map_err(|_| timeout(Phase::Body))
            .and_then(|read| {
                read.map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        UpstreamError::BodyTooLarge { limit: max_body }
                    } else {
                        UpstreamError::Protocol(e)
                    }
                })
            });
        match collected {
            Ok(collected) => Ok((parts, collected.to_bytes())),
            Err(error) => {
                // The head came, the body did not: the ENT failed after all.
                self.report(Err(error.code()));
                Err(error)
            }
        }
    }

    /// The upstream's streamed body, failing when it stalls longer than the idle timeout.
    pub fn stream_body(&self, body: Incoming) -> ProxyBody {
        ProxyBody::streaming(body, self.body_idle)
    }
}

/// Sorts a client error by the side and phase that failed. A connect error that did
/// not come from the TCP connector came from the TLS layer above it (handshake refused,
/// certificate refused, connection closed mid-handshake).
fn classify(error: hyper_util::client::legacy::Error) -> UpstreamError {
    if in_chain::<ClientBodyError>(&error) {
        UpstreamError::ClientBody(error)
    } else if !error.is_connect() {
        UpstreamError::Protocol(Box::new(error))
    } else if is_tls(&error) || !in_chain::<TcpConnectError>(&error) {
        UpstreamError::Tls(error)
    } else {
        UpstreamError::Connect(error)
    }
}

/// Whether an error of type `E` is in the chain.
fn in_chain<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<E>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// Whether a rustls error is anywhere in the chain. tokio-rustls and hyper-rustls wrap
/// it in `io::Error`s, whose `source()` skips the wrapped error itself, so each
/// `io::Error` is opened with `get_ref` as well.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            if is_tls(inner) {
                return true;
            }
        }
        next = error.source();
    }
    false
}

/// The TCP connector under the TLS layer, tagging its errors so that a failed TCP
/// connect ([`UpstreamError::Connect`]) is told apart from a failed TLS handshake
/// ([`UpstreamError::Tls`]).
#[derive(Clone, Debug)]
pub struct TcpConnector(HttpConnector);

/// A TCP connect failure (refused, unreachable, connect timeout, DNS).
#[derive(Debug, thiserror::Error)]
#[error("tcp connect: {0}")]
pub struct TcpConnectError(#[source] crate::proxy::BoxError);

// === impl TcpConnector ===

impl tower_service::Service<http::Uri> for TcpConnector {
    type Response = TokioIo<TcpStream>;
    type Error = TcpConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, TcpConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TcpConnectError>> {
        self.0
            .poll_ready(cx)
            .map_err(|e| TcpConnectError(Box::new(e)))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move { connecting.await.map_err(|e| TcpConnectError(Box::new(e))) })
    }
}
