//! Limits, timeouts and upstream failures: every one ends in a clear answer or a closed
//! connection, never a hang, a panic or a truncated body passed off as complete.

use crate::support;

use std::time::Duration;

use bonenfant::proxy::error::Phase;
use bonenfant::proxy::{ProxyBody, Upstream, UpstreamError};
use support::upstream::{eventually, Framing};
use support::{proxy_config, RawClient, Reply, ScriptedUpstream, TestProxy};

const GET: &[u8] = b"GET /cas/login HTTP/1.1\r\nHost: cas.test\r\n\r\n";

async fn one_answer(proxy: &TestProxy) -> Option<support::RawResponse> {
    let mut client = RawClient::connect(proxy.addr).await;
    client.send(GET).await;
    client.read_response().await
}

#[tokio::test]
async fn slow_request_head_is_cut_at_the_header_read_timeout() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.header_read_timeout = Some("200ms".into());
        raw.idle_timeout = Some("1h".into());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    client.send(b"GET /cas/login HTTP/1.1\r\nHo").await;
    assert!(client.closed().await);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn silent_connection_is_closed_at_the_idle_timeout() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.header_read_timeout = Some("1h".into());
        raw.idle_timeout = Some("200ms".into());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    assert!(client.closed().await);
}

#[tokio::test]
async fn connections_over_the_cap_get_503_with_retry_after() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("in")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.max_connections = Some(1);
    }))
    .await;
    let mut first = RawClient::connect(proxy.addr).await;
    first.send(GET).await;
    assert_eq!(first.read_response().await.unwrap().status, 200);

    let mut second = RawClient::connect(proxy.addr).await;
    second.send(GET).await;
    let shed = second.read_response().await.unwrap();
    assert_eq!(shed.status, 503);
    assert!(shed.header("retry-after").is_some());
    assert_eq!(shed.header("x-bonenfant-error"), Some("proxy.overloaded"));
    assert!(second.closed().await);
    assert_eq!(upstream.requests().len(), 1);

    // Once the first client leaves, its place is free again.
    drop(first);
    let mut admitted = false;
    for _ in 0..200 {
        if one_answer(&proxy).await.is_some_and(|r| r.status == 200) {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "the freed connection slot was never reused");
}

#[tokio::test]
async fn refused_upstream_connection_is_a_502() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let proxy = TestProxy::start(proxy_config(&format!("http://127.0.0.1:{port}/"), |_| {})).await;
    let response = one_answer(&proxy).await.unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.upstream_connect")
    );
    assert!(String::from_utf8_lossy(&response.body).contains("proxy.upstream_connect"));
}

#[tokio::test]
async fn silent_upstream_is_a_504_at_the_upstream_timeout() {
    let upstream = ScriptedUpstream::start(|_| Reply::Silent).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.upstream_timeout = Some("300ms".into());
    }))
    .await;
    let response = one_answer(&proxy).await.unwrap();
    assert_eq!(response.status, 504);
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.upstream_timeout")
    );
}

#[tokio::test]
async fn garbage_from_the_upstream_is_a_502() {
    let upstream =
        ScriptedUpstream::start(|_| Reply::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let response = one_answer(&proxy).await.unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.upstream_protocol")
    );
}

#[tokio::test]
async fn upstream_closing_before_answering_is_a_502() {
    let upstream = ScriptedUpstream::start(|_| Reply::Close).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let response = one_answer(&proxy).await.unwrap();
    assert_eq!(response.status, 502);
}

#[tokio::test]
async fn body_cut_by_the_upstream_is_never_completed_for_the_client() {
    let upstream = ScriptedUpstream::start(|_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b".to_vec())
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    assert!(
        one_answer(&proxy).await.is_none(),
        "a truncated body was completed"
    );
}

#[tokio::test]
async fn body_stalled_by_the_upstream_is_cut_at_the_idle_timeout() {
    let upstream = ScriptedUpstream::start(|_| {
        Reply::Stall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b".to_vec())
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.idle_timeout = Some("300ms".into());
    }))
    .await;
    assert!(
        one_answer(&proxy).await.is_none(),
        "a stalled body was completed"
    );
}

fn get(url: String) -> http::Request<ProxyBody> {
    http::Request::get(url)
        .header("host", "cas.test")
        .body(ProxyBody::empty())
        .unwrap()
}

/// T36: an answer abandoned over the cap closes its connection; the next request gets
/// its own answer on another connection.
#[tokio::test]
async fn oversized_buffered_answer_is_refused_and_its_connection_not_reused() {
    let upstream = ScriptedUpstream::start(|req| match req.target.as_str() {
        "/big" => Reply::ok(vec![b'x'; 1 << 20]),
        "/big-chunked" => Reply::ok(vec![b'y'; 1 << 20]).framing(Framing::Chunked),
        other => Reply::ok(other.to_owned()),
    })
    .await;
    let config = proxy_config(&upstream.url(), |_| {});
    let client = Upstream::new(&config).unwrap();
    let base = upstream.url();

    for (big, next) in [("big", "one"), ("big-chunked", "two")] {
        let refused = client.fetch(get(format!("{base}{big}")), 1024).await;
        assert!(
            matches!(refused, Err(UpstreamError::BodyTooLarge { limit: 1024 })),
            "{big}: {refused:?}"
        );
        let (parts, body) = client
            .fetch(get(format!("{base}{next}")), 1024)
            .await
            .unwrap();
        assert_eq!(parts.status, 200);
        assert_eq!(&body[..], format!("/{next}").as_bytes());
    }
    let seen = upstream.requests();
    let conn_of = |target: &str| seen.iter().find(|r| r.target == target).unwrap().conn;
    assert_ne!(conn_of("/one"), conn_of("/big"));
    assert_ne!(conn_of("/two"), conn_of("/big-chunked"));
}

#[tokio::test]
async fn buffered_fetch_from_a_silent_upstream_times_out() {
    let upstream = ScriptedUpstream::start(|req| match req.target.as_str() {
        "/silent" => Reply::Silent,
        _ => Reply::Stall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".to_vec()),
    })
    .await;
    let config = proxy_config(&upstream.url(), |raw| {
        raw.upstream_timeout = Some("300ms".into());
    });
    let client = Upstream::new(&config).unwrap();
    let head = client
        .fetch(get(format!("{}silent", upstream.url())), 1024)
        .await;
    assert!(
        matches!(
            head,
            Err(UpstreamError::Timeout {
                phase: Phase::Head,
                ..
            })
        ),
        "{head:?}"
    );
    let body = client
        .fetch(get(format!("{}stall", upstream.url())), 1024)
        .await;
    assert!(
        matches!(
            body,
            Err(UpstreamError::Timeout {
                phase: Phase::Body,
                ..
            })
        ),
        "{body:?}"
    );
    eventually(|| upstream.requests().len() == 2).await;
}

#[tokio::test]
async fn upgrade_is_never_passed_on_and_an_unasked_switch_is_a_502() {
    let upstream = ScriptedUpstream::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /ws HTTP/1.1\r\nHost: cas.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.upstream_protocol")
    );
    let seen = &upstream.requests()[0];
    assert!(seen.header("upgrade").is_none());
}

/// T37: many connections trickling a request head are all cut at the header-read
/// timeout, while a well-behaved client is served meanwhile.
#[tokio::test]
async fn slowloris_connections_are_cut_and_others_still_served() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("served")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.header_read_timeout = Some("300ms".into());
        raw.idle_timeout = Some("1h".into());
    }))
    .await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut client = RawClient::connect(proxy.addr).await;
        client.send(b"GET /cas/login HTTP/1.1\r\nX-A: ").await;
        slow.push(client);
    }
    let served = one_answer(&proxy).await.unwrap();
    assert_eq!(served.body, b"served");
    for client in &mut slow {
        assert!(client.closed().await);
    }
    assert_eq!(upstream.requests().len(), 1);
}

/// A handler that panics on `/panic` and answers everything else.
struct Fragile;

impl bonenfant::proxy::Handler for Fragile {
    async fn call(
        &self,
        req: http::Request<hyper::body::Incoming>,
        _conn: bonenfant::proxy::ConnInfo,
    ) -> http::Response<ProxyBody> {
        assert_ne!(req.uri().path(), "/panic", "a bug in a handler");
        http::Response::new(ProxyBody::full("fine"))
    }
}

#[tokio::test]
async fn a_panicking_handler_still_answers_500_and_the_connection_lives() {
    let config = proxy_config("http://127.0.0.1:9/", |_| {});
    let proxy = TestProxy::start_with(config, std::sync::Arc::new(Fragile)).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /panic HTTP/1.1\r\nHost: cas.test\r\n\r\nGET /next HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    let failed = client.read_response().await.unwrap();
    assert_eq!(failed.status, 500);
    assert_eq!(failed.header("x-bonenfant-error"), Some("proxy.internal"));
    let next = client.read_response().await.unwrap();
    assert_eq!((next.status, &next.body[..]), (200, &b"fine"[..]));
}
