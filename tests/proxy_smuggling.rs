//! Request smuggling on a raw socket (T31, T32): each attack is followed by a pipelined
//! request for `/smuggled`, which must never reach the upstream, and the upstream never
//! sees Content-Length and Transfer-Encoding together or a partial body as complete.

use crate::support;

use support::{proxy_config, RawClient, Reply, ScriptedUpstream, TestProxy};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: cas.test\r\n\r\n";

/// Sends `attack` + the smuggled request, reads every answer until the proxy closes.
async fn attack(proxy: &TestProxy, attack: &str) -> Vec<u16> {
    let mut client = RawClient::connect(proxy.addr).await;
    client.send(format!("{attack}{SMUGGLED}").as_bytes()).await;
    let mut statuses = Vec::new();
    while let Some(response) = client.read_response().await {
        statuses.push(response.status);
        if response.header("connection") == Some("close") {
            break;
        }
    }
    statuses
}

#[tokio::test]
async fn smuggled_requests_never_reach_the_upstream() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("ok")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let attacks = [
        // CL.TE: a front end trusting Content-Length would forward "0\r\n\r\nG" as body.
        "POST /a HTTP/1.1\r\nHost: cas.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        // TE.CL: a back end trusting Content-Length would see "8\r\n" and then a request.
        "POST /b HTTP/1.1\r\nHost: cas.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        "POST /c HTTP/1.1\r\nHost: cas.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        "POST /d HTTP/1.1\r\nHost: cas.test\r\nContent-Length: 4, 5\r\n\r\nabcde",
        "POST /e HTTP/1.1\r\nHost: cas.test\r\nContent-Length: +4\r\n\r\nabcd",
        "POST /f HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST /g HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST /h HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /i HTTP/1.0\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /j HTTP/1.1\r\nHost: cas.test\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        "POST /k HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "POST /l HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    ];
    for request in attacks {
        let statuses = attack(&proxy, request).await;
        assert!(
            statuses.len() <= 1,
            "{request:?}: the pipelined request was answered too: {statuses:?}"
        );
    }
    for seen in upstream.requests() {
        assert_ne!(seen.target, "/smuggled");
        assert!(
            !(seen.header("content-length").is_some()
                && seen.header("transfer-encoding").is_some()),
            "{}: upstream got both framings",
            seen.target
        );
    }
}

#[tokio::test]
async fn broken_chunked_bodies_never_arrive_as_complete() {
    let upstream = ScriptedUpstream::start(|_| Reply::ok("ok")).await;
    let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
    let attacks = [
        "POST /bad-size HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nzz\r\n",
        "POST /overflow HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n10000000000000000\r\n",
        "POST /no-crlf HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n",
    ];
    for request in attacks {
        let statuses = attack(&proxy, request).await;
        assert!(
            statuses.iter().all(|s| *s != 200),
            "{request:?}: {statuses:?}"
        );
    }
    // Early end of stream in the middle of a chunk.
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(
            b"POST /eof HTTP/1.1\r\nHost: cas.test\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        )
        .await;
    drop(client);
    // A well-formed request afterwards is served: the proxy is fine.
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(b"GET /after HTTP/1.1\r\nHost: cas.test\r\n\r\n")
        .await;
    assert_eq!(client.read_response().await.unwrap().status, 200);
    let seen: Vec<String> = upstream.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        seen,
        ["/after"],
        "a partial body reached the upstream as complete"
    );
}
