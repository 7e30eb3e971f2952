//! Starting and stopping the CAS proxy: the address bound (refusing one another process
//! listens on), the session store opened (waiting for a Redis that is not up yet), the
//! admin server and the health probes, the workers, and the `startup` and `shutdown`
//! events that frame a run in the trace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use super::exchange::{CasExchange, SetupError};
use super::{ConnInfo, Handler, ProxyBody, ProxyError};
use crate::admin::{Dependency, Health, Metrics};
use crate::code::Code;
use crate::config::Config;
use crate::events::{self, TraceEvent, TraceLog};
use crate::session::clock::duration_ms;
use crate::session::{AnyStore, SessionId, SessionStore, StoreConfig, StoreError};

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The reason is in the message, not a `source`: printed as a chain, it would
    /// be said twice.
    #[error("binding {addr}: {reason}")]
    Bind {
        addr: std::net::SocketAddr,
        reason: std::io::Error,
    },
}

/// A proxy serving in the background (the demo, tests): where it listens and how to
/// stop it.
pub struct RunningProxy {
    pub addr: std::net::SocketAddr,
    /// The admin server's address, when `--admin` is set (port 0 picks one).
    pub admin: Option<std::net::SocketAddr>,
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
    store_config.keys = config.secrets.store_keys.clone();
    store_config.redis_ca = config.store_ca.clone();
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

/// Binds `config.listen` (port 0 picks one), and the admin server's address when
/// set, and serves in the background.
pub async fn spawn(config: Arc<Config>, trace: TraceLog) -> Result<RunningProxy, ServeError> {
    let listener = bind_proxy(config.listen)?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|reason| ServeError::Bind {
            addr: config.listen,
            reason,
        })?;
    let addr = listener.local_addr().map_err(|reason| ServeError::Bind {
        addr: config.listen,
        reason,
    })?;
    let admin = bind_admin(&config).await?;
    let admin_addr = match &admin {
        Some(admin) => Some(admin.local_addr().map_err(|reason| ServeError::Bind {
            addr: config.admin.unwrap_or(config.listen),
            reason,
        })?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let requests = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(
        listener,
        admin,
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
        admin: admin_addr,
        metrics,
        requests,
        stop: Some(stop),
        task,
    })
}

/// `bonenfant serve`: one worker thread per core (each with its own runtime and
/// upstream pool, sharing the session map: `bench/results/` shows why), serving until
/// `shutdown`, draining, and saying so in the trace.
///
/// The proxy's address is bound first, before the store is waited for: an address
/// another process listens on fails at once, naming it (issue 11, finding 9).
pub async fn serve(
    config: Arc<Config>,
    trace: TraceLog,
    workers: std::num::NonZeroUsize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = bind_proxy(config.listen)?;
    let admin = bind_admin(&config).await?;
    // Where it really listens (`--listen …:0` picks a port), for the start-up line.
    let bound_proxy = listener.local_addr().unwrap_or(config.listen);
    let bound_admin = admin.as_ref().and_then(|a| a.local_addr().ok());
    let tls = match &config.tls {
        Some((cert, key)) => Some(super::tls::server_config(cert, key)?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let run = Run::start(&config, &metrics, &trace, admin);
    let exchange = exchange(&config, &trace, &metrics).await?;
    run.store_opened(&config, &exchange, &metrics)?;
    startup_event(&config, &trace);
    super::announce::log(&config, bound_proxy, bound_admin);
    let readiness = run.readiness.clone();
    let (_bound, drained) = super::server::serve_workers_on(
        listener,
        workers,
        tls,
        &config.limits,
        || exchange.for_worker().map(Arc::new),
        async move {
            shutdown.await;
            readiness.set_serving(false);
        },
    )?;
    run.readiness.set_serving(true);
    let result = drained.await;
    run.finish(&trace, result.is_ok());
    result.map_err(ServeError::from)
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
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
    let run = Run::start(&config, &metrics, &trace, admin);
    let exchange = exchange(&config, &trace, &metrics).await?;
    run.store_opened(&config, &exchange, &metrics)?;
    startup_event(&config, &trace);
    run.readiness.set_serving(true);
    let readiness = run.readiness.clone();
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
            readiness.set_serving(false);
        },
    )
    .await;
    run.finish(&trace, result.is_ok());
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

/// Binds the proxy's address ([`super::server::bind`]).
fn bind_proxy(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    super::server::bind(addr).map_err(|error| match error {
        ProxyError::Listen { addr, source } => ServeError::Bind {
            addr,
            reason: source,
        },
        other => other.into(),
    })
}

/// Binds `--admin` when it is set.
async fn bind_admin(config: &Config) -> Result<Option<tokio::net::TcpListener>, ServeError> {
    let Some(addr) = config.admin else {
        return Ok(None);
    };
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|reason| ServeError::Bind {
            addr,
            reason: super::server::explain_in_use(reason, "--admin"),
        })
}

/// What runs beside the proxy: readiness, and with `--admin` the admin server and the
/// probes that keep the ENT's and the store's health current when traffic does not.
struct Run {
    readiness: crate::admin::Readiness,
    /// Stops the admin server and the probes.
    stop: tokio::sync::watch::Sender<bool>,
    /// The session store once open; the admin server answers before that.
    store: Arc<OnceLock<Arc<AnyStore>>>,
}

impl Run {
    /// Starts the admin server at once, before the store is open: while `serve` waits for
    /// a Redis that is not up yet, `/healthz` answers and `/readyz` says 503 (not
    /// serving), rather than a connection that hangs until a load balancer times out.
    fn start(
        config: &Config,
        metrics: &Arc<Metrics>,
        trace: &TraceLog,
        admin: Option<tokio::net::TcpListener>,
    ) -> Self {
        // Under --strict-correlation every validation the store cannot correlate is
        // refused: an instance cut off from its store should get no traffic
        // (docs/operations.md).
        let readiness =
            crate::admin::Readiness::new(metrics.health().clone(), config.strict_correlation);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let store: Arc<OnceLock<Arc<AnyStore>>> = Arc::default();
        if let Some(listener) = admin {
            let opened = Arc::clone(&store);
            let state = crate::admin::AdminState::new(
                Arc::clone(metrics),
                readiness.clone(),
                trace.losses().clone(),
                move || opened.get().map(|store| store.stats()).unwrap_or_default(),
            )
            .with_directory(config.directory_index.clone());
            let mut admin_stopped = stopped;
            tokio::spawn(crate::admin::serve(listener, state, async move {
                let _ = admin_stopped.wait_for(|stop| *stop).await;
            }));
        }
        Self {
            readiness,
            stop,
            store,
        }
    }

    /// The store is open: the status page counts it, and with `--admin` the probes start.
    fn store_opened(
        &self,
        config: &Config,
        exchange: &CasExchange,
        metrics: &Metrics,
    ) -> Result<(), ServeError> {
        let store = Arc::clone(exchange.store());
        let _ = self.store.set(Arc::clone(&store));
        if config.admin.is_some() {
            let health = metrics.health().clone();
            let upstream = super::Upstream::new(config)?.reporting_to(health.clone());
            tokio::spawn(probe(
                upstream,
                config.upstream.clone(),
                store,
                health,
                self.stop.subscribe(),
            ));
        }
        Ok(())
    }

    /// Stops the admin server and the probes, and writes the last event of the run.
    fn finish(self, trace: &TraceLog, ok: bool) {
        let _ = self.stop.send(true);
        trace.emit(TraceEvent::Shutdown(events::Shutdown {
            reason: if ok { "signal" } else { "error" },
            events_lost: trace.losses().lost(),
        }));
    }
}

/// How often the probes run. Light: a `HEAD` of the upstream base only when no
/// exchange with the ENT happened for as long, and one read of a random session key.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long a probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps the ENT's and the store's health current while traffic says nothing, until
/// `stopped`.
async fn probe(
    upstream: super::Upstream,
    base: url::Url,
    store: Arc<AnyStore>,
    health: Health,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = tick.tick() => {}
        }
        let quiet = health
            .now_ms()
            .saturating_sub(health.last_observed_ms(Dependency::Ent))
            >= duration_ms(PROBE_INTERVAL);
        let ent = async {
            // The upstream client reports the outcome itself.
            if quiet {
                let _ = upstream.probe(&base, PROBE_TIMEOUT).await;
            }
        };
        let store = async {
            match tokio::time::timeout(PROBE_TIMEOUT, store.session(&SessionId::random())).await {
                Ok(Ok(_)) => health.succeeded(Dependency::Store),
                Ok(Err(error)) => health.failed(Dependency::Store, error.code()),
                Err(_) => health.failed(Dependency::Store, Code::StoreUnavailable),
            }
        };
        tokio::join!(ent, store);
    }
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
