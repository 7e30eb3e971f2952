//! TLS on both sides: browsers reach the proxy over rustls with HTTP/1.1 or HTTP/2
//! (ALPN); the proxy reaches the upstream over verified TLS only, and fails closed
//! (502, `proxy.upstream_tls`) on any certificate problem (T38).

use crate::support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use support::client::https_client;
use support::{proxy_config, RawClient, Reply, ScriptedUpstream, TestPki, TestProxy};

/// A TLS upstream presenting `cert` (chain, key).
async fn tls_upstream(cert: (std::path::PathBuf, std::path::PathBuf)) -> ScriptedUpstream {
    let config = bonenfant::proxy::tls::server_config(&cert.0, &cert.1).unwrap();
    ScriptedUpstream::start_tls(|_| Reply::ok("over tls"), config).await
}

#[tokio::test]
async fn browsers_reach_the_proxy_over_tls_with_http1_and_http2() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("proxy", &["127.0.0.1"]);
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.target.clone())).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.tls_cert = Some(cert);
        raw.tls_key = Some(key);
    }))
    .await;
    for h2 in [false, true] {
        let client = https_client(pki.client_config(&[]), h2);
        let uri = format!("https://127.0.0.1:{}/cas/login?h2={h2}", proxy.addr.port());
        let response = client
            .request(
                http::Request::get(uri)
                    .body(Full::<Bytes>::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let expected = if h2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(response.version(), expected);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], format!("/cas/login?h2={h2}").as_bytes());
    }
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.header("x-forwarded-proto"), Some("https"));
        assert_eq!(
            request.all("host"),
            [format!("127.0.0.1:{}", proxy.addr.port())]
        );
    }
}

#[tokio::test]
async fn plain_http_to_a_tls_listener_gets_no_answer() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("proxy", &["127.0.0.1"]);
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.tls_cert = Some(cert);
        raw.tls_key = Some(key);
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET / HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    assert!(client.read_response().await.is_none());
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn upstream_over_tls_verified_with_the_configured_ca() {
    let pki = TestPki::new();
    let upstream = tls_upstream(pki.leaf("ent", &["localhost"])).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.upstream_ca = Some(pki.ca_path().to_owned());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /cas/login HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"over tls");
}

#[tokio::test]
async fn bad_upstream_certificates_fail_closed() {
    let pki = TestPki::new();
    let cases = [
        ("self-signed", pki.self_signed("self", &["localhost"])),
        ("wrong hostname", pki.leaf("other", &["other.example"])),
        ("expired", pki.expired_leaf("expired", &["localhost"])),
    ];
    for (case, cert) in cases {
        let upstream = tls_upstream(cert).await;
        let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
            raw.upstream_ca = Some(pki.ca_path().to_owned());
        }))
        .await;
        let mut client = RawClient::connect(proxy.addr).await;
        client
            .send(b"GET /cas/serviceValidate?ticket=ST-1 HTTP/1.1\r\nHost: cas.test\r\n\r\n")
            .await;
        let response = client.read_response().await.unwrap();
        assert_eq!(response.status, 502, "{case}");
        assert_eq!(
            response.header("x-bonenfant-error"),
            Some("proxy.upstream_tls"),
            "{case}"
        );
        assert!(
            upstream.requests().is_empty(),
            "{case}: the request reached the upstream"
        );
    }
}

#[tokio::test]
async fn webpki_roots_do_not_trust_a_private_ca() {
    let pki = TestPki::new();
    let upstream = tls_upstream(pki.leaf("ent", &["localhost"])).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET / HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.upstream_tls")
    );
}

#[tokio::test]
async fn plain_http_upstream_behind_an_https_url_fails_closed() {
    let pki = TestPki::new();
    let plain = ScriptedUpstream::start(|_| Reply::ok("plain")).await;
    let url = format!("https://localhost:{}/", plain.addr.port());
    let proxy = TestProxy::start(proxy_config(&url, |raw| {
        raw.upstream_ca = Some(pki.ca_path().to_owned());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET / HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.upstream_tls")
    );
}

#[tokio::test]
async fn tls_handshake_must_finish_within_the_header_read_timeout() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("proxy", &["127.0.0.1"]);
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.tls_cert = Some(cert);
        raw.tls_key = Some(key);
        raw.header_read_timeout = Some("200ms".into());
        raw.idle_timeout = Some("1h".into());
    }))
    .await;
    let mut client = RawClient::connect(proxy.addr).await;
    // The first bytes of a ClientHello record, then nothing.
    client.send(&[0x16, 0x03, 0x01]).await;
    assert!(client.closed().await);
}

#[tokio::test]
async fn http2_connections_over_the_cap_get_503() {
    let pki = TestPki::new();
    let (cert, key) = pki.leaf("proxy", &["127.0.0.1"]);
    let upstream = ScriptedUpstream::start(|_| Reply::ok("in")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |raw| {
        raw.tls_cert = Some(cert);
        raw.tls_key = Some(key);
        raw.max_connections = Some(1);
    }))
    .await;
    let uri = format!("https://127.0.0.1:{}/", proxy.addr.port());
    let get = || {
        http::Request::get(&uri)
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    let first = https_client(pki.client_config(&[]), true);
    assert_eq!(first.request(get()).await.unwrap().status(), 200);
    let second = https_client(pki.client_config(&[]), true);
    let shed = second.request(get()).await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["x-bonenfant-error"], "proxy.overloaded");
}
