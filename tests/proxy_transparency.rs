//! Transparency: what is not CAS passes through unchanged, bytes in = bytes out, but
//! for header hygiene.

use crate::support;

use support::upstream::Framing;
use support::{proxy_config, RawClient, Reply, ScriptedUpstream, TestProxy};

#[tokio::test]
async fn get_keeps_path_and_query_byte_exact() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("hello")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let target = "/cas/login?service=https%3A%2F%2F0330001a.index-education.net%2Fpronote%2F&a=%zz&b=x+y&&c=";
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(format!("GET {target} HTTP/1.1\r\nHost: cas.test\r\n\r\n").as_bytes())
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, target);
    assert_eq!(seen[0].header("host"), Some("cas.test"));
}

#[tokio::test]
async fn upstream_base_path_is_joined_before_the_request_path() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("")).await;
    let base = format!("{}ent/", upstream.url());
    let proxy = TestProxy::start(proxy_config(&base, |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /cas/login?x=1 HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    assert_eq!(client.read_response().await.unwrap().status, 200);
    assert_eq!(upstream.requests()[0].target, "/ent/cas/login?x=1");
}

#[tokio::test]
async fn post_bodies_pass_with_content_length_and_chunked() {
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.body.clone())).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    let form = b"username=parent&password=s%C3%A9cret&lt=LT-1&execution=e1s1&_eventId=submit";
    client
        .send(
            format!(
                "POST /cas/login HTTP/1.1\r\nHost: cas.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                form.len()
            )
            .as_bytes(),
        )
        .await;
    client.send(form).await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, form);

    client
        .send(b"POST /cas/samlValidate HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.body, b"hello world");

    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, form);
    assert_eq!(
        seen[0].header("content-length"),
        Some(&*form.len().to_string())
    );
    assert_eq!(seen[1].body, b"hello world");
    for request in &seen {
        assert!(
            !(request.header("content-length").is_some()
                && request.header("transfer-encoding").is_some()),
            "upstream got both Content-Length and Transfer-Encoding"
        );
    }
}

#[tokio::test]
async fn status_location_and_every_set_cookie_come_back() {
    let upstream = ScriptedUpstream::start(|_| {
        Reply::status(302)
            .header(
                "Location",
                "https://0330001a.index-education.net/pronote/?ticket=ST-1-abc",
            )
            .header("Set-Cookie", "TGC=TGT-1; Path=/cas; Secure; HttpOnly")
            .header("Set-Cookie", "JSESSIONID=42; Path=/")
            .header("Set-Cookie", "lang=fr")
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /cas/login?service=x HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    let response = client.read_response().await.unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("https://0330001a.index-education.net/pronote/?ticket=ST-1-abc")
    );
    assert_eq!(
        response.all("set-cookie"),
        [
            "TGC=TGT-1; Path=/cas; Secure; HttpOnly",
            "JSESSIONID=42; Path=/",
            "lang=fr"
        ]
    );
}

#[tokio::test]
async fn error_statuses_from_the_upstream_pass_unchanged() {
    let upstream = ScriptedUpstream::start(|req| match req.target.as_str() {
        "/missing" => Reply::status(404).body("not here"),
        _ => Reply::status(500).body("boom"),
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /missing HTTP/1.1\r\nHost: cas.test\r\n\r\nGET /broken HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    let first = client.read_response().await.unwrap();
    assert_eq!((first.status, &first.body[..]), (404, &b"not here"[..]));
    let second = client.read_response().await.unwrap();
    assert_eq!((second.status, &second.body[..]), (500, &b"boom"[..]));
    assert!(second.header("x-bonenfant-error").is_none());
}

#[tokio::test]
async fn chunked_and_close_delimited_answers_arrive_whole() {
    let body: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let expected = body.clone();
    let upstream = ScriptedUpstream::start(move |req| {
        let framing = if req.target == "/chunked" {
            Framing::Chunked
        } else {
            Framing::Close
        };
        Reply::ok(body.clone()).framing(framing)
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    for path in ["/chunked", "/close"] {
        let mut client = RawClient::connect(proxy.addr).await;
        client
            .send(format!("GET {path} HTTP/1.1\r\nHost: cas.test\r\n\r\n").as_bytes())
            .await;
        let response = client.read_response().await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len(), expected.len(), "{path}");
        assert!(response.body == expected, "{path}: body differs");
    }
}

#[tokio::test]
async fn keep_alive_client_gets_each_answer_in_order() {
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.target.clone())).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    for n in 0..5 {
        client
            .send(format!("GET /r{n} HTTP/1.1\r\nHost: cas.test\r\n\r\n").as_bytes())
            .await;
        let response = client.read_response().await.unwrap();
        assert_eq!(response.body, format!("/r{n}").as_bytes());
    }
}

#[tokio::test]
async fn head_answers_keep_their_content_length_without_a_body() {
    let upstream = ScriptedUpstream::start(|req| match req.method.as_str() {
        "HEAD" => Reply::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/html\r\n\r\n".to_vec(),
        ),
        _ => Reply::ok("next"),
    })
    .await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"HEAD /cas/login HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    // Read the HEAD answer's head only: it has no body whatever its Content-Length.
    let raw = client.read_response_head().await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("content-length: 1234"), "{text}");
    assert_eq!(upstream.requests()[0].method, "HEAD");
    // The client connection is still in step: the next answer is the GET's.
    client
        .send(b"GET /next HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    assert_eq!(client.read_response().await.unwrap().body, b"next");
}

#[tokio::test]
async fn expect_continue_is_answered_by_the_proxy_and_not_forwarded() {
    let upstream = ScriptedUpstream::start(|req| Reply::ok(req.body.clone())).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"POST /cas/samlValidate HTTP/1.1\r\nHost: cas.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = client.read_response().await.unwrap();
    assert_eq!(interim.status, 100);
    client.send(b"hello").await;
    let response = client.read_response().await.unwrap();
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    assert!(upstream.requests()[0].header("expect").is_none());
}
