//! The processes `bench/vs-nginx.sh` runs side by side (not a Criterion bench: the
//! load comes from wrk, outside, against real sockets, as nginx is measured).
//!
//! * `proxy_passthrough upstream ADDR` — a tiny keep-alive HTTP/1.1 server answering
//!   every request `200` with a 13-byte body: the common upstream.
//! * `proxy_passthrough proxy LISTEN UPSTREAM_URL [WORKERS]` — bonenfant's transparent
//!   proxy with default limits: `proxy::run_passthrough` on this runtime, or with
//!   WORKERS, `proxy::run_workers` (one single-threaded runtime per worker).
//!
//! `BONENFANT_BENCH_RUNTIME=current` runs either on a single-threaded runtime.
//!
//! Built with the release profile by `cargo bench --bench proxy_passthrough --no-run`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark prints its figures

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;

use bonenfant::config::RawConfig;
use bonenfant::proxy::Passthrough;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // BONENFANT_BENCH_RUNTIME=current: one thread, to see what cross-thread wake-ups
    // of the multi-threaded scheduler cost on this machine.
    let mut runtime = match std::env::var("BONENFANT_BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build().expect("tokio runtime");
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["upstream", addr] => runtime.block_on(upstream(addr)),
        ["proxy", listen, upstream] => runtime.block_on(proxy(listen, upstream, None)),
        ["proxy", listen, upstream, workers] => {
            let workers = workers.parse().expect("a number of workers ≥ 1");
            runtime.block_on(proxy(listen, upstream, Some(workers)))
        }
        // `cargo bench` runs every bench target with `--bench`: nothing to do alone.
        _ => eprintln!(
            "usage: proxy_passthrough upstream ADDR | proxy LISTEN UPSTREAM_URL [WORKERS]"
        ),
    }
}

async fn upstream(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("bind upstream");
    let builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection(
                TokioIo::new(stream),
                service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"Hello, world!",
                    ))))
                }),
            )
            .into_owned();
        tokio::spawn(connection);
    }
}

async fn proxy(listen: &str, upstream: &str, workers: Option<NonZeroUsize>) {
    let raw = RawConfig {
        listen: Some(listen.parse().expect("listen address")),
        upstream: Some(upstream.parse().expect("upstream URL")),
        ..RawConfig::default()
    };
    let config = raw.validate().expect("configuration");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = match workers {
        None => bonenfant::proxy::run_passthrough(&config, shutdown).await,
        Some(workers) => {
            let handler = || Passthrough::new(&config).map(Arc::new);
            bonenfant::proxy::run_workers(&config, workers, handler, shutdown).await
        }
    };
    served.expect("proxy");
}
