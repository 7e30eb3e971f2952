//! Thread-per-core serving: several single-threaded workers share one port, each
//! request is answered, and shutdown drains every worker.

use crate::support;

use std::num::NonZeroUsize;
use std::sync::Arc;

use bonenfant::proxy::{server, Passthrough};
use support::{proxy_config, RawClient, Reply, ScriptedUpstream, Serving, PATIENCE};

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

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// One GET on a fresh connection: (status, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    drop(stream);
    let mut client = RawClient::connect(addr).await;
    client
        .send(
            format!("GET {path} HTTP/1.1\r\nHost: cas.test\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    let response = client.read_response().await?;
    Some((response.status, response.body))
}

/// Regression (issue 11, finding 9): with `SO_REUSEPORT` a second `serve` on the same
/// address, a stale process or a unit started twice, started silently and the kernel
/// split connections between two processes with separate session maps, so tickets bound
/// in one were validated in the other. Now the second refuses to start, naming the
/// address, and the first keeps every connection.
#[tokio::test]
async fn a_second_serve_on_a_taken_address_refuses_to_start_and_the_first_keeps_all_traffic() {
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.target.clone())).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let serve = |extra: &[&str], stderr: std::process::Stdio| {
        Serving(
            std::process::Command::new(env!("CARGO_BIN_EXE_bonenfant"))
                .args(["serve", "--listen", &listen, "--upstream", &upstream.url()])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        )
    };
    let mut first = serve(
        &["--admin", &admin.to_string()],
        std::process::Stdio::null(),
    );
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while get(admin, "/readyz").await.map(|r| r.0) != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first serve never got ready"
        );
        assert!(
            first.0.try_wait().unwrap().is_none(),
            "the first serve exited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut second = serve(&[], stderr.reopen().unwrap().into());
    let deadline = std::time::Instant::now() + PATIENCE;
    let exit = loop {
        if let Some(exit) = second.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second serve must exit, not serve"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!exit.success());
    let stderr = std::fs::read_to_string(stderr.path()).unwrap();
    assert!(stderr.contains(&listen), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");

    for n in 0..40 {
        let (status, body) = get(addr, &format!("/k{n}")).await.expect("an answer");
        assert_eq!((status, body), (200, format!("/k{n}").into_bytes()));
    }
    // Every one of them reached the first process.
    let (_, status) = get(admin, "/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["traffic"]["requests"], 40, "{status:#}");
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first serve still runs"
    );
}

/// The other order: an older bonenfant (or anything) listening with `SO_REUSEPORT`
/// makes `serve` refuse the address, and once `serve` listens, no socket can join it
/// with `SO_REUSEPORT`.
#[tokio::test]
async fn no_reuseport_socket_shares_the_address_either_way() {
    use socket2::{Domain, Socket, Type};
    let reuseport = |addr: std::net::SocketAddr| {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(16))
            .map(|()| socket)
    };
    let older = reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
    let taken = older.local_addr().unwrap().as_socket().unwrap();
    let refused = server::bind(taken).unwrap_err().to_string();
    assert!(refused.contains(&taken.to_string()), "{refused}");
    assert!(refused.contains("already in use"), "{refused}");
    drop(older);

    let ours = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ours.local_addr().unwrap();
    let joined = reuseport(addr).err().map(|e| e.kind());
    assert_eq!(joined, Some(std::io::ErrorKind::AddrInUse));
}

/// While `serve` waits (up to 30 s) for a Redis that is not up yet, its admin port was
/// bound but served nothing: a load balancer's health check hung until it timed out.
/// Now the admin server answers from the start: alive, not ready.
#[tokio::test]
async fn a_health_check_while_serve_waits_for_its_store_is_answered_not_ready() {
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.target.clone())).await;
    let keys = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_bonenfant"))
        .args(["keygen", "--out"])
        .arg(keys.path().join("keys"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let listen = format!("127.0.0.1:{}", free_port());
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Nothing listens there: the store stays unavailable for the whole test.
    let store = format!("redis://127.0.0.1:{}/0", free_port());
    let mut serving = Serving(
        std::process::Command::new(env!("CARGO_BIN_EXE_bonenfant"))
            .args(["serve", "--listen", &listen, "--upstream", &upstream.url()])
            .args(["--admin", &admin.to_string(), "--store", &store])
            .arg("--store-key-file")
            .arg(keys.path().join("keys/store.key"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let answer = |path: &'static str| async move {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(answer) = get(admin, path).await {
                    return answer;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer while serve waits for its store"))
    };
    assert_eq!(answer("/healthz").await.0, 200);
    assert_eq!(answer("/readyz").await.0, 503);
    assert_eq!(answer("/status").await.0, 200);
    assert!(
        serving.0.try_wait().unwrap().is_none(),
        "still waiting for its store, not gone"
    );
}
