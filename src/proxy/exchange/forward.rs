//! Forwarding: any request passed to the ENT unchanged (but for hygiene) and streamed
//! back, and the ENT asked about a ticket with its answer read whole (bounded).

use std::time::Instant;

use bytes::Bytes;
use http::header::ACCEPT_ENCODING;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{CasExchange, Handled};
use crate::cas::{Endpoint, Failure};
use crate::code::Code;
use crate::code::Side;
use crate::events::{self, LatencyMs, TraceEvent};
use crate::proxy::body::ProxyBody;
use crate::proxy::error::UpstreamError;
use crate::proxy::{hygiene, ConnInfo};

/// A request the proxy answers itself because it could not forward it.
pub(super) struct Refusal {
    pub code: Code,
    /// The upstream failed (else the request was refused at the front door).
    pub upstream: bool,
    pub response: Response<ProxyBody>,
}

impl Refusal {
    /// The answer and its summary: `upstream_error` when the ENT failed, else `rejected`.
    pub fn handled(self, endpoint: Option<Endpoint>, started: Instant) -> Handled {
        if !self.upstream {
            return Handled::rejected(self.response, self.code, endpoint, started);
        }
        let summary = TraceEvent::UpstreamError(events::UpstreamError {
            code: self.code,
            endpoint,
            status: self.response.status().as_u16(),
            latency_ms: LatencyMs(started.elapsed()),
        });
        Handled::new(self.response, summary)
    }
}

/// Why the ENT gave no answer bonenfant can read: the stable code and the CAS failure
/// that stands for it.
pub(super) struct EntRefusal {
    pub code: Code,
    pub failure: Failure,
    /// The ENT's HTTP error status, when it answered with one.
    pub status: Option<StatusCode>,
}

impl CasExchange {
    /// Forwards a request unchanged (but for hygiene) and streams the answer back.
    pub(super) async fn passthrough(
        &self,
        endpoint: Option<Endpoint>,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Handled {
        match self
            .forward_streaming(req.map(ProxyBody::from_client), &conn)
            .await
        {
            Ok(response) => Handled::passthrough(self.stream_back(response), endpoint, started),
            Err(refusal) => refusal.handled(endpoint, started),
        }
    }

    /// Sends a request to the upstream and returns the answer head with its body still
    /// streaming, or why it could not be and the page to answer instead.
    pub(super) async fn forward_streaming(
        &self,
        req: Request<ProxyBody>,
        conn: &ConnInfo,
    ) -> Result<Response<Incoming>, Refusal> {
        let req = self
            .passthrough
            .policy()
            .upstream_request(req, conn)
            .map_err(|refused| Refusal {
                code: refused.code(),
                upstream: false,
                response: self.error_page(refused.status(), refused.code()),
            })?;
        self.passthrough
            .upstream()
            .forward(req)
            .await
            .map_err(|failed| Refusal {
                code: failed.code(),
                // A client whose own body broke must not count as the ENT failing.
                upstream: failed.code().side() == Side::Ent,
                response: self.error_page(failed.status(), failed.code()),
            })
    }

    pub(super) fn stream_back(&self, response: Response<Incoming>) -> Response<ProxyBody> {
        hygiene::downstream_response(response)
            .map(|body| self.passthrough.upstream().stream_body(body))
    }

    /// A request body bonenfant must read (samlValidate, logout, chooser), bounded by
    /// `max-request-body` and in time; the error is its stable code.
    pub(super) async fn read_request_body(&self, body: Incoming) -> Result<Bytes, Code> {
        hygiene::read_body(
            body,
            self.config.limits.max_request_body,
            self.config.limits.header_read_timeout,
        )
        .await
        .map_err(|refused| refused.code())
    }

    /// Asks the ENT about a ticket: the request rewritten for the upstream, the answer
    /// read whole (bounded), an HTTP error status refused. Both the back channel and
    /// the retry strategy's early validation go through here.
    pub(super) async fn ask_ent(
        &self,
        mut req: Request<ProxyBody>,
        conn: &ConnInfo,
    ) -> Result<(http::response::Parts, Bytes), EntRefusal> {
        // The answer is parsed here: a compressed one could not be, and would fail every
        // validation of a client that asks for compression (python-cas, curl).
        req.headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let req = self
            .passthrough
            .policy()
            .upstream_request(req, conn)
            .map_err(|refused| EntRefusal {
                code: refused.code(),
                failure: Failure::new("INVALID_REQUEST", "malformed request"),
                status: None,
            })?;
        let (parts, body) = self
            .passthrough
            .upstream()
            .fetch(req, self.config.limits.max_validation_body)
            .await
            .map_err(|failed| EntRefusal {
                code: failed.code(),
                failure: upstream_failure(&failed),
                status: None,
            })?;
        if !parts.status.is_success() {
            return Err(EntRefusal {
                code: Code::ProxyUpstreamStatus,
                failure: Failure::internal("the ENT answered with an HTTP error"),
                status: Some(parts.status),
            });
        }
        Ok((parts, body))
    }
}

fn upstream_failure(failed: &UpstreamError) -> Failure {
    Failure::internal(format!(
        "the ENT could not be reached or answered badly ({})",
        failed.code()
    ))
}
