//! A small test DSL for the proxy, shared by every `tests/proxy_*.rs` (and reusable by
//! other integration tests): a scripted upstream that records what reaches it, a
//! raw-socket client for exact bytes, a test PKI, and the proxy itself on loopback.
//!
//! ```ignore
//! let upstream = ScriptedUpstream::start(|_req| Reply::ok("hello")).await;
//! let proxy = TestProxy::start(proxy_config(&upstream.url(), |_| {})).await;
//! let mut client = RawClient::connect(proxy.addr).await;
//! client.send(b"GET / HTTP/1.1\r\nHost: cas.test\r\n\r\n").await;
//! assert_eq!(client.read_response().await.unwrap().status, 200);
//! ```
#![allow(dead_code, unused_imports)]

pub mod cas;
pub mod client;
pub mod pki;
pub mod proxy;
pub mod reroll;
pub mod upstream;

pub use client::{RawClient, RawResponse};
pub use pki::TestPki;
pub use proxy::{proxy_config, TestProxy};
pub use upstream::{Recorded, Reply, ScriptedUpstream};

/// A `bonenfant serve` (or any) process a test started, killed by its PID when the test
/// ends, passed or not.
pub struct Serving(pub std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Generous bound for anything a test waits on, so a broken build fails instead of
/// hanging; never an assertion about speed.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);
