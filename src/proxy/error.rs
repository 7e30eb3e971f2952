//! Typed errors of the transport, each with a stable code, and the HTML page a browser
//! gets for them (invariant I2: every rejection is a well-formed answer with a code).
//!
//! Errors record which side failed, as Pingora's do: [`UpstreamError`] (the ENT is down,
//! slow, or answered something unusable → 502/504), `hygiene::FrontDoorError` (the
//! client sent something the proxy refuses → 400), [`ProxyError`] (setting up the
//! proxy failed: certificates, sockets).
//!
//! Validation callers (Pronote) get a CAS `authenticationFailure` instead of a page;
//! that answer is built by the CAS exchange from [`UpstreamError::code`].

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use crate::code::Code;
use crate::pages::Brand;

/// The header every answer the proxy builds for an error carries, with its stable code,
/// so an integrator can tell a bonenfant error from an ENT error at a glance.
pub const ERROR_HEADER: HeaderName = HeaderName::from_static("x-bonenfant-error");

/// The code of an answer to a request whose handler failed unexpectedly (a bug).
pub const INTERNAL: Code = Code::ProxyInternal;

/// Seconds a client is asked to wait after an overload answer.
const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("1");

/// Setting up or running the proxy failed (not a per-request error).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("reading {what} {path}: {source}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("upstream client: {0}")]
    UpstreamSetup(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
}

impl ProxyError {
    /// Stable code for logs.
    pub fn code(&self) -> Code {
        match self {
            ProxyError::Pem { .. } => Code::ProxyPem,
            ProxyError::Tls(_) => Code::ProxyTlsConfig,
            ProxyError::UpstreamSetup(_) => Code::ProxyUpstreamSetup,
            ProxyError::Listen { .. } => Code::ProxyListen,
        }
    }
}

/// The phase of an upstream exchange a deadline cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the response head (connect, TLS, request, head).
    Head,
    /// Reading a buffered response body.
    Body,
}

/// An upstream exchange that failed. The request may or may not have reached the
/// upstream; it is never sent twice by the proxy (a CAS ticket is single use).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connection refused, unreachable, or not made within the connect timeout.
    #[error("could not connect to the upstream: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// The upstream's certificate was refused or the TLS handshake failed. Fails
    /// closed: there is no fallback to plain text or to an unverified connection.
    #[error("TLS with the upstream failed: {0}")]
    Tls(#[source] hyper_util::client::legacy::Error),
    /// No answer (head, or whole buffered body) within the upstream timeout.
    #[error("the upstream did not answer within {after:?} ({phase:?})")]
    Timeout { phase: Phase, after: Duration },
    /// A buffered answer was larger than allowed; the connection was dropped.
    #[error("the upstream answer is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The client's request body broke while it was being forwarded (cut, malformed
    /// chunking, too slow): the client's fault, not the ENT's.
    #[error("the client's request body broke while it was forwarded: {0}")]
    ClientBody(#[source] hyper_util::client::legacy::Error),
    /// The upstream broke HTTP: garbage, closed mid-message, reset.
    #[error("the upstream broke the HTTP exchange: {0}")]
    Protocol(#[source] crate::proxy::BoxError),
}

impl UpstreamError {
    /// Stable code, shown in error pages, the `X-Bonenfant-Error` header and logs.
    pub fn code(&self) -> Code {
        match self {
            UpstreamError::Connect(_) => Code::ProxyUpstreamConnect,
            UpstreamError::Tls(_) => Code::ProxyUpstreamTls,
            UpstreamError::Timeout { .. } => Code::ProxyUpstreamTimeout,
            UpstreamError::BodyTooLarge { .. } => Code::ProxyUpstreamBodyTooLarge,
            UpstreamError::ClientBody(_) => Code::ProxyRequestBodyBroken,
            UpstreamError::Protocol(_) => Code::ProxyUpstreamProtocol,
        }
    }

    /// The status a browser gets: 504 for deadlines, 502 for everything else.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The error page for a browser.
    pub fn to_response(&self) -> Response<ProxyBody> {
        page(self.status(), self.code())
    }
}

/// The answer to a connection over the connection cap (load shedding, T55).
pub fn overloaded() -> Response<ProxyBody> {
    let mut response = page(StatusCode::SERVICE_UNAVAILABLE, Code::ProxyOverloaded);
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, RETRY_AFTER_SECONDS);
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// [`branded_page`] in the default brand, for answers made before a request reaches
/// the exchange (a panicking handler, a connection over the cap).
pub fn page(status: StatusCode, code: Code) -> Response<ProxyBody> {
    branded_page(&Brand::default(), status, code)
}

/// A small HTML page in the ENT's colours saying what went wrong and what to do next,
/// with the code in small print and in [`ERROR_HEADER`]. Never cached; carries nothing
/// from the request (no reflected input).
pub fn branded_page(brand: &Brand, status: StatusCode, code: Code) -> Response<ProxyBody> {
    let mut response = html(status, crate::pages::error(brand, status, code.as_str()));
    response
        .headers_mut()
        .insert(ERROR_HEADER, HeaderValue::from_static(code.as_str()));
    response
}

/// The policy of every page bonenfant writes: nothing loads but inline style and
/// `data:` images (the inlined logo), no script, never framed, and forms post only to
/// this origin. The chooser's POST is answered by a page that refreshes to Pronote
/// (`pages::opening`), so `form-action` needs no other origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page bonenfant writes itself (error pages, the chooser): never cached, never
/// framed, no script, forms post only to this origin ([`CONTENT_SECURITY_POLICY`]).
pub fn html(status: StatusCode, html: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn page_shows_code_in_header_and_body() {
        let response = page(StatusCode::BAD_GATEWAY, Code::ProxyUpstreamConnect);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[ERROR_HEADER], "proxy.upstream_connect");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("<code>proxy.upstream_connect</code>"),
            "{text}"
        );
    }

    #[test]
    fn overload_answer_asks_to_retry_and_closes() {
        let response = overloaded();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(RETRY_AFTER));
        assert_eq!(response.headers()[CONNECTION], "close");
    }
}
