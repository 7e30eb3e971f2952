//! The one body type the proxy answers with and sends upstream: [`ProxyBody`].
//!
//! Responses come from three places (the upstream's streamed answer, a page the proxy
//! builds, an answer the CAS exchange re-serialised), so one boxed type carries all of
//! them; the box costs one allocation per message and keeps every signature simple.
//! Streamed upstream bodies get an idle deadline ([`IdleTimeout`]): an upstream that
//! stops sending mid-body must not hold a client connection, an upstream connection
//! and a task forever.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::time::Sleep;

/// The error every body in the proxy is boxed into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed body of `Bytes` frames. `Send` but not `Sync`, so that any body a handler
/// builds fits (hyper's server does not need `Sync`).
pub struct ProxyBody {
    inner: UnsyncBoxBody<Bytes, BoxError>,
}

// === impl ProxyBody ===

impl ProxyBody {
    /// Wraps any body whose error converts into [`BoxError`].
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ProxyBody {
            inner: body.map_err(Into::into).boxed_unsync(),
        }
    }

    /// A client's request body on its way to the upstream. Its errors are marked as
    /// the client's ([`ClientBodyError`]), so that a broken upload is never counted as
    /// the ENT failing.
    pub fn from_client<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ProxyBody {
            inner: body
                .map_err(|e| -> BoxError { Box::new(ClientBodyError(e.into())) })
                .boxed_unsync(),
        }
    }

    /// A body of no bytes.
    pub fn empty() -> Self {
        ProxyBody::new(Empty::<Bytes>::new())
    }

    /// A body of these bytes, with an exact length (so a `Content-Length` is sent).
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ProxyBody::new(Full::new(bytes.into()))
    }

    /// A streamed body (typically the upstream's `Incoming`) that fails with
    /// [`BodyIdleTimeout`] when no frame arrives for `idle`. hyper then aborts the
    /// message it was writing, so a truncated answer is never passed off as complete.
    pub fn streaming<B>(body: B, idle: Duration) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ProxyBody::new(IdleTimeout::new(body, idle))
    }
}

impl Default for ProxyBody {
    fn default() -> Self {
        ProxyBody::empty()
    }
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody").finish_non_exhaustive()
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client's request body failed while bonenfant was forwarding it.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {0}")]
pub struct ClientBodyError(#[source] pub BoxError);

/// A body that sent no frame within its idle deadline.
#[derive(Debug, thiserror::Error)]
#[error("body idle for longer than {0:?}")]
pub struct BodyIdleTimeout(pub Duration);

pin_project_lite::pin_project! {
    /// Fails a body that makes no progress for `idle`.
    ///
    /// The deadline is armed only when the inner body is pending, and disarmed by the
    /// next frame: a body whose frames are already buffered costs no timer operation.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        idle: Duration,
        // Created on the first pending poll, reused (reset) afterwards; boxed so the
        // wrapper stays small for bodies that never wait.
        sleep: Option<Pin<Box<Sleep>>>,
        // Whether `sleep` counts from the first pending poll since the last frame.
        armed: bool,
    }
}

// === impl IdleTimeout ===

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            sleep: None,
            armed: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            *this.armed = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let sleep = match this.sleep {
            Some(sleep) if *this.armed => sleep,
            Some(sleep) => {
                sleep
                    .as_mut()
                    .reset(tokio::time::Instant::now() + *this.idle);
                sleep
            }
            None => this.sleep.insert(Box::pin(tokio::time::sleep(*this.idle))),
        };
        *this.armed = true;
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(*this.idle)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    #[tokio::test]
    async fn full_body_keeps_its_exact_length() {
        let body = ProxyBody::full("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_stream_fails_after_idle_deadline() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        tx.send(Ok(Frame::data(Bytes::from_static(b"first"))))
            .await
            .unwrap();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let mut body = ProxyBody::streaming(StreamBody::new(stream), Duration::from_secs(5));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first");
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.downcast_ref::<BodyIdleTimeout>().is_some(), "{err}");
        drop(tx);
    }
}
