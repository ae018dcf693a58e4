//! The direct client's connections: per origin, idle HTTP/1.1 connections (hyper's
//! `client::conn::http1`) reused last in, first out. hyper-util's pooled client, used before,
//! hashed its `(scheme, authority)` key with SipHash three times per request and ran its
//! checkout and return machinery around it: about 10,000 instructions of a proxied request's
//! ~100,000 (BENCHMARKS.md). Here an origin is found by comparing its authority with the few
//! the process talks to, and a connection goes back to its origin when its response body ends.
//!
//! A connection is reused only after its response was read to the end (by the reader, or by
//! the connection when the reader stopped at its end marker); one whose body was dropped
//! early is closed with it. A reused connection the server closed while it was idle
//! fails before the request is written: the request is then sent once more on a new one.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use tower_service::Service;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Sender = SendRequest<Full<Bytes>>;

/// Connections to every origin the process sends to, opened with `connector`.
pub(crate) struct Pool<C> {
    connector: C,
    shared: Arc<Shared>,
}

struct Shared {
    idle_timeout: Duration,
    /// Origins are only ever added, so an index names one for good. A handful at most (one
    /// per configured upstream host): a linear scan beats hashing.
    origins: Mutex<Vec<Origin>>,
}

struct Origin {
    authority: String,
    /// Oldest first; taken from the back.
    idle: Vec<Idle>,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl<C: Clone> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            connector: self.connector.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<C, Io> Pool<C>
where
    C: Service<Uri, Response = Io, Error = BoxError> + Clone + Send + Sync + 'static,
    C::Future: Send,
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    /// A pool whose connections are closed after `idle_timeout` unused.
    pub(crate) fn new(connector: C, idle_timeout: Duration) -> Self {
        Pool {
            connector,
            shared: Arc::new(Shared {
                idle_timeout,
                origins: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends `request` (its URI absolute, `http://`) on an idle connection to its origin, or
    /// on a new one; the response's body returns the connection when read to its end.
    pub(crate) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, BoxError> {
        let target = request.uri().clone();
        let authority = target
            .authority()
            .ok_or("the upstream URI has no host")?
            .as_str();
        if !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_str(authority)?);
        }
        // HTTP/1.1 sends the origin form: the path and query only.
        *request.uri_mut() = Uri::from(
            target
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let (origin, idle) = self.checkout(authority).await;
        let reused = idle.is_some();
        let mut sender = match idle {
            Some(s) => s,
            None => self.connect(&target).await?,
        };
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut e) => match e.take_message() {
                // Closed while idle, before this request was written: once more, on a new one.
                Some(request) if reused => {
                    sender = self.connect(&target).await?;
                    sender.send_request(request).await?
                }
                _ => return Err(e.into_error().into()),
            },
        };
        let checkin = Checkin {
            sender,
            shared: self.shared.clone(),
            origin,
        };
        Ok(response.map(|inner| PooledBody {
            inner,
            checkin: Some(checkin),
        }))
    }

    /// The origin's index, and its most recently used connection that is still open.
    async fn checkout(&self, authority: &str) -> (usize, Option<Sender>) {
        let mut origin = None;
        loop {
            // One lock in the usual case: find the origin and take its newest idle connection.
            let (index, idle) = {
                let mut origins = self.shared.lock();
                let index = origin.unwrap_or_else(|| {
                    origins
                        .iter()
                        .position(|o| o.authority == authority)
                        .unwrap_or_else(|| {
                            origins.push(Origin {
                                authority: authority.to_owned(),
                                idle: Vec::new(),
                            });
                            origins.len() - 1
                        })
                });
                (index, origins.get_mut(index).and_then(|o| o.idle.pop()))
            };
            origin = Some(index);
            let Some(mut idle) = idle else {
                return (index, None);
            };
            if idle.sender.is_closed() || idle.since.elapsed() >= self.shared.idle_timeout {
                continue;
            }
            // Its last response was read to the end: ready at once, or as soon as its
            // connection task has seen that end.
            if idle.sender.ready().await.is_ok() {
                return (index, Some(idle.sender));
            }
        }
    }

    async fn connect(&self, target: &Uri) -> Result<Sender, BoxError> {
        let io = self.connector.clone().call(target.clone()).await?;
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Origin>> {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection on its way back to its origin's idle list.
struct Checkin {
    sender: Sender,
    shared: Arc<Shared>,
    origin: usize,
}

impl Checkin {
    fn put(self) {
        if self.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let timeout = self.shared.idle_timeout;
        let mut origins = self.shared.lock();
        if let Some(o) = origins.get_mut(self.origin) {
            // The oldest idle one, unused too long, goes as this one comes back.
            if o.idle
                .first()
                .is_some_and(|i| now.duration_since(i.since) >= timeout)
            {
                o.idle.remove(0);
            }
            o.idle.push(Idle {
                sender: self.sender,
                since: now,
            });
        }
    }
}

/// A response body that returns its connection to the pool when it has been read to the end.
pub(crate) struct PooledBody {
    inner: Incoming,
    checkin: Option<Checkin>,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(checkin) = this.checkin.take()
        {
            checkin.put();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    /// A reader that stopped at its format's end marker (an SSE `[DONE]`) leaves the body's
    /// last bytes unpolled; the connection already took them in and is ready for the next
    /// request: it goes back too. One that is not ready is still in this response: closed.
    fn drop(&mut self) {
        if let Some(checkin) = self.checkin.take()
            && checkin.sender.is_ready()
        {
            checkin.put();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// How a test server answers each request on a connection.
    #[derive(Clone, Copy)]
    enum Serve {
        /// A whole response, the connection kept open.
        KeepAlive,
        /// A whole response (no `Connection: close`), then the connection closed: a server
        /// ending an idle connection as the client reuses it.
        CloseAfter,
        /// Headers and part of a chunked body, then nothing more.
        Endless,
        /// A whole chunked body in one write, as an SSE stream's last event and its end.
        Chunked,
    }

    /// A loopback HTTP/1.1 server counting the connections it accepted and requests it read.
    async fn server(serve: Serve) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (a, r) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(socket, serve, r.clone()));
            }
        });
        (format!("http://{addr}/v1/x?q=1"), accepted, requests)
    }

    async fn answer(mut socket: TcpStream, serve: Serve, requests: Arc<AtomicUsize>) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // One request: headers, then a body of its content-length.
            let head_end = loop {
                if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            };
            let head = String::from_utf8_lossy(&seen[..head_end]).to_lowercase();
            assert!(head.starts_with("post /v1/x?q=1 http/1.1\r\n"), "{head}");
            assert!(head.contains("\r\nhost: 127.0.0.1:"), "{head}");
            let length: usize = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            while seen.len() < head_end + length {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            seen.drain(..head_end + length);
            requests.fetch_add(1, Ordering::SeqCst);
            match serve {
                Serve::KeepAlive | Serve::CloseAfter => {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    if matches!(serve, Serve::CloseAfter) {
                        return;
                    }
                }
                Serve::Chunked => {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
                        .await;
                }
                Serve::Endless => {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n",
                        )
                        .await;
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    #[derive(Clone)]
    struct Plain(HttpConnector);

    impl Service<Uri> for Plain {
        type Response = TokioIo<TcpStream>;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.0.poll_ready(cx).map_err(Into::into)
        }

        fn call(&mut self, uri: Uri) -> Self::Future {
            let connecting = self.0.call(uri);
            Box::pin(async move { connecting.await.map_err(Into::into) })
        }
    }

    fn pool() -> Pool<Plain> {
        Pool::new(Plain(HttpConnector::new()), Duration::from_secs(90))
    }

    fn post(url: &str) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(Bytes::from_static(b"{}")));
        *r.method_mut() = http::Method::POST;
        *r.uri_mut() = url.parse().unwrap();
        r
    }

    async fn read(response: Response<PooledBody>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn responses_read_to_the_end_give_their_connection_back() {
        let (url, accepted, requests) = server(Serve::KeepAlive).await;
        let pool = pool();
        for _ in 0..5 {
            let r = pool.send(post(&url)).await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(read(r).await, "ok");
        }
        assert_eq!(requests.load(Ordering::SeqCst), 5);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection served all five"
        );
        // Two at once need two connections; both come back.
        let (a, b) = tokio::join!(pool.send(post(&url)), pool.send(post(&url)));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((read(a).await, read(b).await), ("ok".into(), "ok".into()));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let r = pool.send(post(&url)).await.unwrap();
        assert_eq!(read(r).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_reused_and_each_request_is_sent_once() {
        let (url, accepted, requests) = server(Serve::CloseAfter).await;
        let pool = pool();
        for n in 1..=4 {
            let r = pool.send(post(&url)).await.unwrap();
            assert_eq!(read(r).await, "ok", "request {n}");
            // Let the close reach the client sometimes before the next request, sometimes not.
            if n % 2 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(
            requests.load(Ordering::SeqCst),
            4,
            "each request sent exactly once"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_body_dropped_after_its_last_bytes_arrived_gives_its_connection_back() {
        let (url, accepted, requests) = server(Serve::Chunked).await;
        let pool = pool();
        for _ in 0..3 {
            let mut r = pool.send(post(&url)).await.unwrap();
            let data = r.body_mut().frame().await.unwrap().unwrap();
            assert_eq!(data.into_data().unwrap(), "ok");
            // The reader stops at the data, as one that saw `[DONE]`; the connection has the
            // terminator by the time it is dropped.
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(r);
        }
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (url, accepted, _) = server(Serve::Endless).await;
        let pool = pool();
        let mut r = pool.send(post(&url)).await.unwrap();
        let first = r.body_mut().frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ok");
        drop(r);
        let r = pool.send(post(&url)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the unfinished one was not reused"
        );
    }

    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_not_reused() {
        let (url, accepted, _) = server(Serve::KeepAlive).await;
        let pool = Pool::new(Plain(HttpConnector::new()), Duration::from_millis(50));
        read(pool.send(post(&url)).await.unwrap()).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        read(pool.send(post(&url)).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
