//! The floor `bench/cas-vs-nginx.sh` measures bonenfant against: a bare hyper 1.x
//! reverse proxy with bonenfant's runtime shape and nothing else (no inspection, no
//! store, no trace, no header hygiene, no timeouts, no connection cap). Not a Criterion
//! bench: wrk drives it from outside, over real sockets, as nginx is driven.
//!
//!   bare_hyper_proxy LISTEN UPSTREAM_AUTHORITY [WORKERS [SHAPE]]
//!
//! SHAPE is how the work is spread over WORKERS threads (default: one per core):
//!
//! * `shared` (the default): one listening socket, duplicated for each thread, each
//!   running its own current-thread runtime, accepting from the shared queue and holding
//!   its own upstream pool: the shape of `bonenfant serve` (`src/proxy/server.rs`,
//!   `serve_workers_on`);
//! * `reuseport`: the same, but each thread binds its own socket with `SO_REUSEPORT`, so
//!   the kernel spreads connections over the threads by a hash of their addresses;
//! * `multi`: one multi-thread runtime of WORKERS threads, one accept loop, one upstream
//!   pool, connections stolen between threads (tokio's default server shape).
//!
//! `bench/cas-vs-nginx.sh` runs the three side by side with `RUNTIME_SHAPES=1`. Every
//! request is sent to `http://UPSTREAM_AUTHORITY` with its path and query, its headers
//! as they came, and the answer streamed back.
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
    let (listen, upstream, workers, shape) = match &args[..] {
        [listen, upstream] => (listen, upstream, None, "shared"),
        [listen, upstream, workers] => (listen, upstream, Some(workers), "shared"),
        [listen, upstream, workers, shape] => (listen, upstream, Some(workers), shape.as_str()),
        // `cargo bench` runs every bench target with `--bench`: nothing to do alone.
        _ => {
            return eprintln!(
            "usage: bare_hyper_proxy LISTEN UPSTREAM_AUTHORITY [WORKERS [shared|reuseport|multi]]"
        )
        }
    };
    let listen: SocketAddr = listen.parse().unwrap();
    let upstream: Authority = upstream.parse().unwrap();
    let workers = match workers {
        Some(n) if n != "auto" => n.parse().unwrap(),
        _ => std::thread::available_parallelism().unwrap().get(),
    };
    if shape == "multi" {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        return runtime.block_on(accept_loop(bind(listen, false), upstream));
    }
    let shared = (shape == "shared").then(|| bind(listen, false));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let listener = match &shared {
                Some(listener) => listener.try_clone().unwrap(),
                None => bind(listen, true),
            };
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(accept_loop(listener, upstream))
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// A non-blocking listening socket on `addr`, joinable by others when `reuse_port`.
fn bind(addr: SocketAddr, reuse_port: bool) -> std::net::TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    if reuse_port {
        socket.set_reuse_port(true).unwrap();
    }
    socket.set_nonblocking(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(1024).unwrap();
    socket.into()
}

/// Accepts on `listener` and serves each connection on a task of the current runtime,
/// through one upstream pool.
async fn accept_loop(listener: std::net::TcpListener, upstream: Authority) {
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
