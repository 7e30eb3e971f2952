//! The forwarding handler: front-door checks → rewrite for the upstream → forward →
//! clean the answer → stream it back; any failure becomes an error page. The CAS
//! exchange uses [`Passthrough::forward`] for everything it does not inspect.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::body::ProxyBody;
use super::error::ProxyError;
use super::hygiene::{self, ForwardPolicy};
use super::upstream::Upstream;
use super::{server, tls, ConnInfo, Handler};
use crate::config::Config;

/// Forwards every request to the upstream, unchanged but for hygiene.
#[derive(Clone, Debug)]
pub struct Passthrough {
    policy: ForwardPolicy,
    upstream: Upstream,
}

// === impl Passthrough ===

impl Passthrough {
    pub fn new(config: &Config) -> Result<Self, ProxyError> {
        Ok(Passthrough {
            policy: ForwardPolicy::from_config(config)?,
            upstream: Upstream::new(config)?,
        })
    }

    /// The same handler, telling `health` how each exchange with the ENT went
    /// ([`Upstream::reporting_to`]).
    pub fn reporting_to(mut self, health: crate::admin::Health) -> Self {
        self.upstream = self.upstream.reporting_to(health);
        self
    }

    /// The rewrite rules in use.
    pub fn policy(&self) -> &ForwardPolicy {
        &self.policy
    }

    /// The upstream client (shared pool).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Forwards one request and streams the answer back, or answers an error page.
    pub async fn forward(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<ProxyBody> {
        if let Err(refused) = hygiene::check_front_door(&req) {
            return refused.to_response();
        }
        let req = match self.policy.upstream_request(req, conn) {
            Ok(req) => req.map(ProxyBody::from_client),
            Err(refused) => return refused.to_response(),
        };
        match self.upstream.forward(req).await {
            Ok(response) => {
                hygiene::downstream_response(response).map(|body| self.upstream.stream_body(body))
            }
            Err(failed) => {
                tracing::debug!(code = %failed.code(), error = %failed, "upstream exchange failed");
                failed.to_response()
            }
        }
    }
}

impl Handler for Passthrough {
    async fn call(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        self.forward(req, &conn).await
    }
}

/// Binds `config.listen`, loads the TLS certificate if configured, and serves
/// `handler` until `shutdown` completes (then drains, see [`server::serve`]).
pub async fn run<H: Handler>(
    config: &Config,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let listener = TcpListener::from_std(server::bind(config.listen)?).map_err(|source| {
        ProxyError::Listen {
            addr: config.listen,
            source,
        }
    })?;
    server::serve(listener, tls, &config.limits, handler, shutdown).await
}

/// [`run`] on `workers` threads with a single-threaded runtime each (see
/// [`server::serve_workers`]); `make_handler` is called once per worker.
pub async fn run_workers<H, M>(
    config: &Config,
    workers: NonZeroUsize,
    make_handler: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError>
where
    H: Handler,
    M: FnMut() -> Result<Arc<H>, ProxyError>,
{
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let (_bound, drained) = server::serve_workers(
        config.listen,
        workers,
        tls,
        &config.limits,
        make_handler,
        shutdown,
    )?;
    drained.await
}

/// `bonenfant serve` without CAS inspection: a transparent reverse proxy.
pub async fn run_passthrough(
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    run(config, Arc::new(Passthrough::new(config)?), shutdown).await
}
