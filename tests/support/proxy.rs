//! The proxy under test, on 127.0.0.1:0, stopped when dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bonenfant::config::{Config, RawConfig};
use bonenfant::proxy::{self, server, Handler, Passthrough, ProxyError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A validated configuration for `upstream`, listening on 127.0.0.1:0, after `tweak`.
pub fn proxy_config(upstream: &str, tweak: impl FnOnce(&mut RawConfig)) -> Config {
    let mut raw = RawConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        upstream: Some(upstream.parse().unwrap()),
        ..RawConfig::default()
    };
    tweak(&mut raw);
    raw.validate().unwrap()
}

pub struct TestProxy {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ProxyError>>>,
}

impl TestProxy {
    /// The pass-through proxy for `config`.
    pub async fn start(config: Config) -> TestProxy {
        let handler = Arc::new(Passthrough::new(&config).unwrap());
        TestProxy::start_with(config, handler).await
    }

    /// Any handler, served with `config`'s TLS and limits.
    pub async fn start_with<H: Handler>(config: Config, handler: Arc<H>) -> TestProxy {
        let listener = TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = config
            .tls
            .as_ref()
            .map(|(cert, key)| proxy::tls::server_config(cert, key).unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(async move {
            server::serve(listener, tls, &config.limits, handler, shutdown).await
        });
        TestProxy {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts the graceful shutdown; the returned future completes when `serve`
    /// returned.
    pub fn shutdown(&mut self) -> impl Future<Output = Result<(), ProxyError>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take();
        async move {
            match task {
                Some(task) => task.await.unwrap(),
                None => Ok(()),
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
