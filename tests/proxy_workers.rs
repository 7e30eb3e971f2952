//! Thread-per-core serving: several single-threaded workers share one port, each
//! request is answered, and shutdown drains every worker.

use crate::support;

use std::num::NonZeroUsize;
use std::sync::Arc;

use bonenfant::proxy::{server, Passthrough};
use support::{proxy_config, RawClient, Reply, ScriptedUpstream, PATIENCE};

#[tokio::test]
async fn workers_share_the_port_and_drain_on_shutdown() {
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.target.clone())).await;
    let config = proxy_config(&upstream.url(), |_| {});
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, drained) = server::serve_workers(
        config.listen,
        NonZeroUsize::new(2).unwrap(),
        None,
        &config.limits,
        || Passthrough::new(&config).map(Arc::new),
        async move {
            let _ = stopped.await;
        },
    )
    .unwrap();
    assert_ne!(addr.port(), 0);
    for n in 0..20 {
        let mut client = RawClient::connect(addr).await;
        client
            .send(format!("GET /w{n} HTTP/1.1\r\nHost: cas.test\r\n\r\n").as_bytes())
            .await;
        let response = client.read_response().await.unwrap();
        assert_eq!(response.body, format!("/w{n}").as_bytes());
    }
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, drained)
        .await
        .expect("workers did not drain")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
