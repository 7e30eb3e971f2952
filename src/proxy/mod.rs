//! The transport of the reverse proxy: a hyper 1.x server (HTTP/1.1, and HTTP/2 through
//! ALPN on TLS) in front of a pooled, verified upstream client, with the limits, header
//! hygiene and error pages a proxy in front of an identity provider needs. It decides
//! nothing about identity: a [`Handler`] does (the CAS exchange; [`Passthrough`] for
//! everything else).
//!
//! # Layout
//!
//! * [`server`]: accept loop, connection cap, TLS, timeouts, graceful shutdown.
//! * [`hygiene`]: what a request must be to enter, and how it is rewritten on its way
//!   to the upstream and back (Host, hop-by-hop, `X-Forwarded-*`).
//! * [`upstream`]: the pooled upstream client: `forward` (streaming) and `fetch`
//!   (buffered up to a cap, for answers that are inspected).
//! * [`body`]: [`ProxyBody`], the one body type, and the idle deadline on streams.
//! * [`error`]: typed errors with stable codes, and the error pages.
//! * [`tls`]: rustls configurations for both sides.
//! * [`passthrough`]: the forwarding handler, and [`run`] to serve a configuration.
//!
//! # Behaviours decided here (each documented where it is implemented)
//!
//! * The upstream receives the client's `Host` ([`HostPolicy::Keep`], full front);
//!   `X-Forwarded-For/-Proto/-Host` are rebuilt unless the peer is a trusted proxy.
//! * Header names with `_` are dropped on the way in (nginx's default); `CONNECT` and
//!   non-path targets are refused; two `Host`s, none, or one contradicting the target's
//!   authority are refused with 400.
//! * Plain TCP is HTTP/1.1 only; TLS offers `h2` and `http/1.1`. The upstream is spoken
//!   to in HTTP/1.1 only, over a verified TLS connection when it is `https`.
//! * The proxy never retries a request (tickets are single use); hyper retries only a
//!   request never started on a pooled connection the upstream had closed.
//! * Over the connection cap: `503` + `Retry-After` + close. Upstream refused or broken:
//!   `502`; upstream too slow: `504`; each error page names a stable code, also in the
//!   `X-Bonenfant-Error` header.
//! * Any answer's `Content-Length` is made to agree with its body before it is written.

pub mod announce;
pub mod body;
pub mod error;
pub mod exchange;
pub mod hygiene;
pub mod passthrough;
pub mod serve;
pub mod server;
pub mod tls;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;

use http::{Request, Response, Version};
use hyper::body::Incoming;

pub use body::{BoxError, ProxyBody};
pub use error::{ProxyError, UpstreamError};
pub use hygiene::{ForwardPolicy, FrontDoorError, HostPolicy};
pub use passthrough::{run, run_passthrough, run_workers, Passthrough};
pub use upstream::Upstream;

/// What the server knows about the connection a request came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The TCP peer: the client, or the last proxy in front of bonenfant.
    pub peer: SocketAddr,
    /// The local address the connection was accepted on.
    pub local: SocketAddr,
    /// Whether the connection is TLS (decides `X-Forwarded-Proto`, `Secure` cookies).
    pub tls: bool,
    /// The connection's protocol: `HTTP_2` when ALPN chose `h2`, else `HTTP_11`
    /// (a request on it may still say HTTP/1.0).
    pub version: Version,
}

/// Answers one request. Called once per request, concurrently; it must always produce
/// a response (errors are answers: error pages, CAS failures).
pub trait Handler: Send + Sync + 'static {
    fn call(
        &self,
        req: Request<Incoming>,
        conn: ConnInfo,
    ) -> impl Future<Output = Response<ProxyBody>> + Send;
}
