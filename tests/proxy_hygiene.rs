//! Header hygiene at both doors (T33 Host rules, T34 hop-by-hop, T35 X-Forwarded-For
//! trust), checked on what the upstream actually receives.

use crate::support;

use std::net::{IpAddr, Ipv4Addr};

use support::{proxy_config, RawClient, Reply, ScriptedUpstream, TestProxy};

const TRUSTED_HOP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn send(proxy: &TestProxy, from: IpAddr, request: &str) -> support::RawResponse {
    let mut client = RawClient::connect_from(from, proxy.addr).await;
    client.send(request.as_bytes()).await;
    client.read_response().await.expect("an answer")
}

#[tokio::test]
async fn hop_by_hop_and_connection_listed_headers_never_reach_the_upstream() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let response = send(
        &proxy,
        CLIENT,
        "GET / HTTP/1.1\r\nHost: cas.test\r\nConnection: X-Forwarded-For, Cookie, X-Private\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n\
         X-Private: 1\r\nCookie: TGC=secret\r\nX_Forwarded_For: 6.6.6.6\r\nX-Kept: yes\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200);
    let seen = &upstream.requests()[0];
    for name in [
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "x-private",
        "cookie",
        "x_forwarded_for",
    ] {
        assert!(seen.header(name).is_none(), "{name} reached the upstream");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
    // The client listed X-Forwarded-For in Connection: the proxy's own is still there.
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
}

#[tokio::test]
async fn hop_by_hop_headers_of_the_answer_never_reach_the_client() {
    let upstream = ScriptedUpstream::start(|_| {
        Reply::ok("x")
            .header("Connection", "X-Backend-Secret")
            .header("X-Backend-Secret", "1")
            .header("Keep-Alive", "timeout=5")
            .header("Upgrade", "h2c")
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let response = send(&proxy, CLIENT, "GET / HTTP/1.1\r\nHost: cas.test\r\n\r\n").await;
    for name in ["x-backend-secret", "keep-alive", "upgrade"] {
        assert!(response.header(name).is_none(), "{name} reached the client");
    }
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_overwritten() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.trusted_proxies = Some(vec!["127.0.0.2/32".parse().unwrap()]);
    }))
    .await;
    send(
        &proxy,
        CLIENT,
        "GET / HTTP/1.1\r\nHost: cas.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: evil.example\r\n\
         X-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n\r\n",
    )
    .await;
    let seen = &upstream.requests()[0];
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-host"), Some("cas.test"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert!(seen.header("forwarded").is_none());
    assert!(seen.header("x-real-ip").is_none());
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_hop_is_extended() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.trusted_proxies = Some(vec!["127.0.0.2/32".parse().unwrap()]);
    }))
    .await;
    send(
        &proxy,
        TRUSTED_HOP,
        "GET / HTTP/1.1\r\nHost: cas.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\
         X-Forwarded-Proto: https\r\n\r\n",
    )
    .await;
    let seen = &upstream.requests()[0];
    assert_eq!(seen.all("x-forwarded-for"), ["1.2.3.4, 5.6.7.8, 127.0.0.2"]);
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
}

#[tokio::test]
async fn host_is_refused_when_doubled_missing_or_contradicted() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let cases = [
        (
            "GET / HTTP/1.1\r\nHost: cas.test\r\nHost: evil.example\r\n\r\n",
            "proxy.host_duplicate",
        ),
        ("GET / HTTP/1.1\r\n\r\n", "proxy.host_missing"),
        (
            "GET http://evil.example/cas/login HTTP/1.1\r\nHost: cas.test\r\n\r\n",
            "proxy.host_mismatch",
        ),
        (
            "GET / HTTP/1.1\r\nHost: user@cas.test\r\n\r\n",
            "proxy.host_invalid",
        ),
        (
            "OPTIONS * HTTP/1.1\r\nHost: cas.test\r\n\r\n",
            "proxy.target_form",
        ),
    ];
    for (request, code) in cases {
        let response = send(&proxy, CLIENT, request).await;
        assert_eq!(response.status, 400, "{request:?}");
        assert_eq!(
            response.header("x-bonenfant-error"),
            Some(code),
            "{request:?}"
        );
        assert_eq!(response.header("connection"), Some("close"), "{request:?}");
        assert!(String::from_utf8_lossy(&response.body).contains(code));
    }
    assert!(
        upstream.requests().is_empty(),
        "a refused request reached the upstream"
    );
}

#[tokio::test]
async fn client_host_is_forwarded_and_forwarded_host_replaced() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let response = send(
        &proxy,
        CLIENT,
        "GET http://cas.test/cas/login HTTP/1.1\r\nHost: cas.test\r\nX-Forwarded-Host: evil\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200);
    let seen = &upstream.requests()[0];
    assert_eq!(seen.target, "/cas/login");
    assert_eq!(seen.all("host"), ["cas.test"]);
    assert_eq!(seen.header("x-forwarded-host"), Some("cas.test"));
}
