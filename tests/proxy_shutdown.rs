//! Graceful shutdown (T51): the listener closes, requests in flight complete, and what
//! outlives the grace period is cut rather than waited for.

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use support::client::http_client;
use support::{proxy_config, RawClient, Reply, ScriptedUpstream, TestProxy, PATIENCE};

#[tokio::test]
async fn shutdown_drains_requests_in_flight_and_refuses_new_connections() {
    let upstream = ScriptedUpstream::start(|req| {
        Reply::ok(req.target.clone()).after(Duration::from_millis(500))
    })
    .await;
    let mut proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let client = http_client();
    let mut in_flight = Vec::new();
    for n in 0..10 {
        let request = http::Request::get(proxy.url(&format!("/v{n}")))
            .body(Full::<Bytes>::default())
            .unwrap();
        let client = client.clone();
        in_flight.push(tokio::spawn(async move {
            let response = client.request(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }));
    }
    upstream.wait_for_requests(10).await;
    let stopped = tokio::spawn(proxy.shutdown());
    for (n, request) in in_flight.into_iter().enumerate() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(&body[..], format!("/v{n}").as_bytes());
    }
    tokio::time::timeout(PATIENCE, stopped)
        .await
        .expect("serve did not return")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(proxy.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_cuts_what_outlives_the_grace_period() {
    let upstream = ScriptedUpstream::start(|_| Reply::Silent).await;
    let mut proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.upstream_timeout = Some("1h".into());
        raw.shutdown_grace = Some("300ms".into());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /cas/serviceValidate HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    upstream.wait_for_requests(1).await;
    tokio::time::timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("serve waited past its grace period")
        .unwrap();
    assert!(client.read_response().await.is_none());
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let mut proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.shutdown_grace = Some("1h".into());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET / HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    assert_eq!(client.read_response().await.unwrap().status, 200);
    tokio::time::timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("an idle connection held the shutdown")
        .unwrap();
    assert!(client.closed().await);
}
