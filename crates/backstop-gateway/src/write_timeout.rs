//! A client that stops reading must not hold a stream (and its upstream request) forever:
//! a connection whose writes make no progress for `client_write_timeout` fails with
//! `TimedOut`, hyper drops the connection, the response body and with it the upstream
//! stream — a cancellation, neutral for the provider's breaker.
//!
//! The clock runs only while a write is blocked (the socket's buffers are full), never while
//! the gateway itself has nothing to send.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Called once when a connection is cut for not reading.
pub type OnTimeout = Arc<dyn Fn() + Send + Sync>;

/// An I/O stream whose blocked writes time out.
pub struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
    on_timeout: Option<OnTimeout>,
}

impl<T> std::fmt::Debug for WriteTimeout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTimeout")
            .field("timeout", &self.timeout)
            .field("armed", &self.armed)
            .finish()
    }
}

impl<T> WriteTimeout<T> {
    /// Wraps `inner`; `on_timeout` runs when a write has been blocked for `timeout`.
    pub fn new(inner: T, timeout: Duration, on_timeout: Option<OnTimeout>) -> Self {
        Self {
            inner,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            on_timeout,
        }
    }

    /// A write could not proceed: start the clock if it is not running, fail when it is out.
    fn blocked<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if !self.armed {
            self.armed = true;
            self.timer.as_mut().reset(Instant::now() + self.timeout);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                if let Some(f) = self.on_timeout.take() {
                    f();
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client read nothing for client_write_timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Pending => self.blocked(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_fails_after_the_timeout_and_progress_resets_the_clock() {
        // A pipe with a 16-byte buffer that nobody reads: the second write blocks.
        let (client, mut reader) = tokio::io::duplex(16);
        let cut = Arc::new(AtomicUsize::new(0));
        let counter = cut.clone();
        let mut w = WriteTimeout::new(
            client,
            Duration::from_secs(30),
            Some(Arc::new(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
        );
        w.write_all(&[0; 16]).await.unwrap();
        // The reader drains just in time, twice: progress resets the clock each time.
        let drain = async {
            let mut buf = [0u8; 16];
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_secs(29)).await;
                tokio::io::AsyncReadExt::read_exact(&mut reader, &mut buf)
                    .await
                    .unwrap();
            }
            reader
        };
        let (written, reader) = tokio::join!(w.write_all(&[1; 32]), drain);
        written.unwrap();
        assert_eq!(cut.load(Ordering::Relaxed), 0);
        // Now nobody reads: the write fails after exactly the timeout.
        let start = Instant::now();
        let e = w.write_all(&[2; 32]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(cut.load(Ordering::Relaxed), 1);
        drop(reader);
    }
}
