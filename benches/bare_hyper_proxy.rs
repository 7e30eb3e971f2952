//! The floor `bench/cas-vs-nginx.sh` measures bonenfant against: a bare hyper 1.x
//! reverse proxy with bonenfant's runtime shape and nothing else (no inspection, no
//! store, no trace, no header hygiene, no timeouts, no connection cap). Not a Criterion
//! bench: wrk drives it from outside, over real sockets, as nginx is driven.
//!
//!   bare_hyper_proxy LISTEN UPSTREAM_AUTHORITY [WORKERS]
//!
//! One listening socket, duplicated for each of WORKERS threads (default: one per
//! core), each running its own current-thread runtime, accepting from the shared queue
//! and holding its own upstream pool: the shape of `bonenfant serve`
//! (`src/proxy/server.rs`, `serve_workers_on`). Every request is sent to
//! `http://UPSTREAM_AUTHORITY` with its path and query, its headers as they came, and
//! the answer streamed back.
//!
//! Built by `bench/cas-vs-nginx.sh` with `cargo build --bench bare_hyper_proxy`.
#![allow(clippy::print_stderr, clippy::unwrap_used)] // a benchmark, not the library

use std::convert::Infallible;
use std::net::SocketAddr;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, hyper::Error>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, upstream, workers) = match &args[..] {
        [listen, upstream] => (listen, upstream, None),
        [listen, upstream, workers] => (listen, upstream, Some(workers.parse().unwrap())),
        // `cargo bench` runs every bench target with `--bench`: nothing to do alone.
        _ => return eprintln!("usage: bare_hyper_proxy LISTEN UPSTREAM_AUTHORITY [WORKERS]"),
    };
    let listen: SocketAddr = listen.parse().unwrap();
    let upstream: Authority = upstream.parse().unwrap();
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().unwrap().get());
    let listener = std::net::TcpListener::bind(listen).unwrap();
    listener.set_nonblocking(true).unwrap();
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let listener = listener.try_clone().unwrap();
            let upstream = upstream.clone();
            std::thread::spawn(move || worker(listener, upstream))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

fn worker(listener: std::net::TcpListener, upstream: Authority) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (client, upstream) = (client.clone(), upstream.clone());
            let service = service_fn(move |req| forward(client.clone(), upstream.clone(), req));
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    upstream: Authority,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let mut target = parts.uri.into_parts();
    target.scheme = Some(Scheme::HTTP);
    target.authority = Some(upstream);
    target
        .path_and_query
        .get_or_insert(PathAndQuery::from_static("/"));
    parts.uri = Uri::from_parts(target).unwrap();
    Ok(
        match client.request(Request::from_parts(parts, body)).await {
            Ok(response) => response.map(BodyExt::boxed_unsync),
            Err(_) => {
                let mut failed =
                    Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
                *failed.status_mut() = StatusCode::BAD_GATEWAY;
                failed
            }
        },
    )
}
