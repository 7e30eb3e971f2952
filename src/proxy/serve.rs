//! Starting and stopping the CAS proxy: the session store opened (waiting for a Redis
//! that is not up yet), the admin server, the workers, and the `startup` and `shutdown`
//! events that frame a run in the trace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use super::exchange::{CasExchange, SetupError};
use super::{ConnInfo, Handler, ProxyBody, ProxyError};
use crate::admin::Metrics;
use crate::config::Config;
use crate::events::{self, TraceEvent, TraceLog};
use crate::session::{AnyStore, SessionStore, StoreConfig, StoreError};

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A proxy serving in the background (the demo, tests): where it listens and how to
/// stop it.
pub struct RunningProxy {
    pub addr: std::net::SocketAddr,
    pub metrics: Arc<Metrics>,
    /// Requests handed to the handler, counted by the transport: the independent
    /// figure the trace's summary events must match, one for one.
    requests: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl RunningProxy {
    /// `http://ADDR` (or https when TLS is configured).
    pub fn base_url(&self, tls: bool) -> url::Url {
        let scheme = if tls { "https" } else { "http" };
        url::Url::parse(&format!("{scheme}://{}/", self.addr))
            .unwrap_or_else(|_| unreachable!("socket addresses form valid URLs"))
    }

    /// Requests the server handed to the handler so far.
    pub fn requests_handled(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops accepting, drains in-flight requests, and waits for the end.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }
}

/// How long startup waits for a Redis store that does not answer yet: Redis started in
/// the same breath as bonenfant, or restarting. A wrong URL is reported after it.
const STORE_STARTUP_WAIT: Duration = Duration::from_secs(30);

/// The handler for `config`, over a freshly opened session store.
async fn exchange(
    config: &Arc<Config>,
    trace: &TraceLog,
    metrics: &Arc<Metrics>,
) -> Result<CasExchange, SetupError> {
    let mut store_config = StoreConfig::default();
    store_config.sessions.ttl = config.limits.session_ttl;
    store_config.sessions.max_entries = config.limits.max_sessions;
    store_config.last_pupils.ttl = config.pin.flip_window.max(store_config.last_pupils.ttl);
    let store = open_store(&config.store, &store_config.clamped()).await?;
    CasExchange::new(
        Arc::clone(config),
        Arc::new(store),
        trace.clone(),
        Arc::clone(metrics),
    )
    .await
}

/// Opens the session store, waiting up to [`STORE_STARTUP_WAIT`] for one that is
/// unavailable (and saying so), failing at once on any other error.
async fn open_store(url: &str, config: &StoreConfig) -> Result<AnyStore, StoreError> {
    let deadline = tokio::time::Instant::now() + STORE_STARTUP_WAIT;
    let mut warned = false;
    loop {
        match AnyStore::from_url(url, config).await {
            Err(StoreError::Unavailable(reason)) if tokio::time::Instant::now() < deadline => {
                if !warned {
                    tracing::warn!(
                        %reason,
                        wait_s = STORE_STARTUP_WAIT.as_secs(),
                        "session store unavailable; waiting for it before serving"
                    );
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            opened => return opened,
        }
    }
}

/// Binds `config.listen` (port 0 picks one) and serves in the background.
pub async fn spawn(config: Arc<Config>, trace: TraceLog) -> Result<RunningProxy, ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics = Arc::new(Metrics::new());
    let requests = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(
        listener,
        config,
        trace,
        Arc::clone(&metrics),
        Arc::clone(&requests),
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(RunningProxy {
        addr,
        metrics,
        requests,
        stop: Some(stop),
        task,
    })
}

/// `bonenfant serve`: one worker thread per core (each with its own runtime and
/// upstream pool, sharing the session map: `bench/results/` shows why), serving until
/// `shutdown`, draining, and saying so in the trace.
pub async fn serve(
    config: Arc<Config>,
    trace: TraceLog,
    workers: std::num::NonZeroUsize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    let exchange = exchange(&config, &trace, &metrics).await?;
    let readiness = crate::admin::Readiness::default();
    let admin = start_admin(&config, &exchange, &metrics, &trace, &readiness).await?;
    startup_event(&config, &trace);
    super::announce::log(&config);
    let drained = readiness.clone();
    let result = super::passthrough::run_workers(
        &config,
        workers,
        || exchange.for_worker().map(Arc::new),
        async move {
            shutdown.await;
            drained.set_serving(false);
        },
    );
    readiness.set_serving(true);
    let result = result.await;
    finish(admin, &trace, result.is_ok());
    result.map_err(ServeError::from)
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Arc<Config>,
    trace: TraceLog,
    metrics: Arc<Metrics>,
    requests: Arc<AtomicU64>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(super::tls::server_config(cert, key)?),
        None => None,
    };
    let exchange = exchange(&config, &trace, &metrics).await?;
    let readiness = crate::admin::Readiness::default();
    let admin = start_admin(&config, &exchange, &metrics, &trace, &readiness).await?;
    startup_event(&config, &trace);
    readiness.set_serving(true);
    let drained = readiness.clone();
    let result = super::server::serve(
        listener,
        tls,
        &config.limits,
        Arc::new(Counted {
            inner: exchange,
            requests,
        }),
        async move {
            shutdown.await;
            drained.set_serving(false);
        },
    )
    .await;
    finish(admin, &trace, result.is_ok());
    result.map_err(ServeError::from)
}

/// A handler that counts the requests it is handed, before the handler sees them.
struct Counted {
    inner: CasExchange,
    requests: Arc<AtomicU64>,
}

impl Handler for Counted {
    async fn call(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.inner.call(req, conn).await
    }
}

/// Starts the admin server when `--admin` is set; the sender stops it.
async fn start_admin(
    config: &Config,
    exchange: &CasExchange,
    metrics: &Arc<Metrics>,
    trace: &TraceLog,
    readiness: &crate::admin::Readiness,
) -> Result<tokio::sync::watch::Sender<bool>, ServeError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if let Some(addr) = config.admin {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let store = Arc::clone(exchange.store());
        let state = crate::admin::AdminState::new(
            Arc::clone(metrics),
            readiness.clone(),
            trace.losses().clone(),
            move || store.stats(),
        );
        let mut stopped = stopped;
        tokio::spawn(crate::admin::serve(listener, state, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }
    Ok(stop)
}

fn startup_event(config: &Config, trace: &TraceLog) {
    trace.emit(TraceEvent::Startup(events::Startup {
        version: env!("CARGO_PKG_VERSION"),
        pin_strategy: config.pin.mode.as_str(),
        store: if config.store == "memory" {
            "memory"
        } else {
            "redis"
        },
        pseudonym_key: if config.raw.pseudonym_key_file.is_some() {
            events::KeySource::File
        } else {
            events::KeySource::Random
        },
    }));
}

/// Stops the admin server and writes the last event of the run.
fn finish(admin: tokio::sync::watch::Sender<bool>, trace: &TraceLog, ok: bool) {
    let _ = admin.send(true);
    trace.emit(TraceEvent::Shutdown(events::Shutdown {
        reason: if ok { "signal" } else { "error" },
        events_lost: trace.losses().lost(),
    }));
}
