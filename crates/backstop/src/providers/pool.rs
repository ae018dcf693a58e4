//! The direct client's connections: per origin, idle HTTP/1.1 connections ([`h1`](super::h1))
//! reused last in, first out. hyper-util's pooled client, used before, hashed its
//! `(scheme, authority)` key with SipHash three times per request and ran its checkout and
//! return machinery around it: about 10,000 instructions of a proxied request's ~100,000
//! (BENCHMARKS.md). Here an origin is found by comparing its authority with the few the
//! process talks to, and a connection goes back to its origin when its response body ends.
//!
//! A connection is reused only after its response was read to the end (by the reader, or,
//! when the reader stopped at its format's end marker, from what had already arrived when it
//! dropped the body); one whose body was dropped early is closed with it. An idle connection
//! the server closed is seen closed at checkout; one it closes as the request arrives gives no
//! response at all, and the request is sent once more on a new connection.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, Uri};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::h1::{self, Conn};
use super::h1_body::Framing;
use super::outgoing::Outgoing;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    conn: Conn,
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

impl<C> Pool<C>
where
    C: Service<Uri, Response = TokioIo<TcpStream>, Error = BoxError>
        + Clone
        + Send
        + Sync
        + 'static,
    C::Future: Send,
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

    /// POSTs `body` with `headers` to `target` (absolute, `http://`) on an idle connection to
    /// its origin, or on a new one; the response's body returns the connection when it ends.
    pub(crate) async fn send(
        &self,
        target: &Uri,
        headers: &Outgoing<'_>,
        body: &[u8],
    ) -> Result<Response<PooledBody>, BoxError> {
        let authority = target
            .authority()
            .ok_or("the upstream URI has no host")?
            .as_str();
        // HTTP/1.1 sends the origin form: the path and query only.
        let path = target.path_and_query().map_or("/", |p| p.as_str());
        let (origin, idle) = self.checkout(authority);
        let reused = idle.is_some();
        let mut conn = match idle {
            Some(c) => c,
            None => self.connect(target).await?,
        };
        let head = match conn.send(authority, path, headers, body).await {
            Ok(head) => head,
            // Closed while idle, so the request never reached the server: once more, on a new one.
            Err(e) if reused && e.no_response => {
                conn = self.connect(target).await?;
                conn.send(authority, path, headers, body)
                    .await
                    .map_err(|e| e.error)?
            }
            Err(e) => return Err(e.error.into()),
        };
        let mut response = Response::new(PooledBody {
            conn: Some(conn),
            framing: head.framing,
            home: head.reusable.then(|| (self.shared.clone(), origin)),
        });
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        Ok(response)
    }

    /// The origin's index, and its most recently used connection that is still open.
    fn checkout(&self, authority: &str) -> (usize, Option<Conn>) {
        let mut origins = self.shared.lock();
        let index = origins
            .iter()
            .position(|o| o.authority == authority)
            .unwrap_or_else(|| {
                origins.push(Origin {
                    authority: authority.to_owned(),
                    idle: Vec::new(),
                });
                origins.len() - 1
            });
        let Some(origin) = origins.get_mut(index) else {
            return (index, None);
        };
        while let Some(mut idle) = origin.idle.pop() {
            if idle.since.elapsed() < self.shared.idle_timeout && idle.conn.is_usable() {
                return (index, Some(idle.conn));
            }
        }
        (index, None)
    }

    async fn connect(&self, target: &Uri) -> Result<Conn, BoxError> {
        let io = self.connector.clone().call(target.clone()).await?;
        Ok(Conn::new(io.into_inner()))
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Origin>> {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection whose response ended goes back to its origin's idle list.
    fn put(&self, origin: usize, conn: Conn) {
        let now = Instant::now();
        let mut origins = self.lock();
        if let Some(o) = origins.get_mut(origin) {
            // The oldest idle one, unused too long, goes as this one comes back.
            if o.idle
                .first()
                .is_some_and(|i| now.duration_since(i.since) >= self.idle_timeout)
            {
                o.idle.remove(0);
            }
            o.idle.push(Idle { conn, since: now });
        }
    }
}

/// A response body read from its connection, which goes back to the pool when the body ends
/// (unless the response said the connection ends with it).
pub(crate) struct PooledBody {
    conn: Option<Conn>,
    framing: Framing,
    /// Where the connection goes back to; `None` when it cannot carry another request.
    home: Option<(Arc<Shared>, usize)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let (Some(conn), Some((shared, origin))) = (self.conn.take(), self.home.take()) {
            shared.put(origin, conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(h1::poll_body(conn, &mut this.framing, cx)) {
            Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Err(e)) => {
                this.conn = None;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                this.release();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for PooledBody {
    /// A reader that stopped at its format's end marker (an SSE `[DONE]`) leaves the body's
    /// last bytes unread: when they have already arrived, the connection goes back too. One
    /// still inside its response is closed.
    fn drop(&mut self) {
        if self.home.is_some()
            && let Some(conn) = self.conn.as_mut()
            && h1::finish_now(conn, &mut self.framing)
        {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::future::Future;

    use http_body_util::BodyExt;
    use hyper_util::client::legacy::connect::HttpConnector;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

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
        /// A whole response saying `Connection: close`, the connection left open.
        SaysClose,
        /// These bytes, then the connection closed.
        Raw(&'static [u8]),
        /// The first request on a connection answered, the second read and left unanswered
        /// as the connection closes: a server ending an idle connection as a request arrives.
        DropSecond,
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
        let mut on_this_connection = 0;
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
            on_this_connection += 1;
            match serve {
                Serve::DropSecond if on_this_connection > 1 => return,
                Serve::KeepAlive | Serve::CloseAfter | Serve::DropSecond => {
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
                Serve::SaysClose => {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
                        )
                        .await;
                }
                Serve::Raw(bytes) => {
                    let _ = socket.write_all(bytes).await;
                    return;
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

    /// The request every test sends: `{}` to `url`.
    struct Post(Uri);

    fn post(url: &str) -> Post {
        Post(url.parse().unwrap())
    }

    impl<C> Pool<C>
    where
        C: Service<Uri, Response = TokioIo<TcpStream>, Error = BoxError>
            + Clone
            + Send
            + Sync
            + 'static,
        C::Future: Send,
    {
        async fn post(&self, post: Post) -> Result<Response<PooledBody>, BoxError> {
            self.send(&post.0, &Outgoing::new(&http::HeaderMap::new()), b"{}")
                .await
        }
    }

    async fn read(response: Response<PooledBody>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn responses_read_to_the_end_give_their_connection_back() {
        let (url, accepted, requests) = server(Serve::KeepAlive).await;
        let pool = pool();
        for _ in 0..5 {
            let r = pool.post(post(&url)).await.unwrap();
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
        let (a, b) = tokio::join!(pool.post(post(&url)), pool.post(post(&url)));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((read(a).await, read(b).await), ("ok".into(), "ok".into()));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let r = pool.post(post(&url)).await.unwrap();
        assert_eq!(read(r).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_reused_and_each_request_is_sent_once() {
        let (url, accepted, requests) = server(Serve::CloseAfter).await;
        let pool = pool();
        for n in 1..=4 {
            let r = pool.post(post(&url)).await.unwrap();
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
    async fn a_reused_connection_closed_without_any_response_is_sent_on_a_new_one() {
        let (url, accepted, requests) = server(Serve::DropSecond).await;
        let pool = pool();
        assert_eq!(read(pool.post(post(&url)).await.unwrap()).await, "ok");
        // The pool's connection looks alive; the server reads the request and closes it.
        assert_eq!(read(pool.post(post(&url)).await.unwrap()).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        // On a new connection the same failure is the caller's error, not a second try.
        let (url, accepted, requests) = server(Serve::Raw(b"")).await;
        let message = error_of(pool.post(post(&url)).await).await;
        assert!(
            message.contains("before its response head ended"),
            "{message}"
        );
        assert_eq!(
            (
                accepted.load(Ordering::SeqCst),
                requests.load(Ordering::SeqCst)
            ),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn a_body_dropped_after_its_last_bytes_arrived_gives_its_connection_back() {
        let (url, accepted, requests) = server(Serve::Chunked).await;
        let pool = pool();
        for _ in 0..3 {
            let mut r = pool.post(post(&url)).await.unwrap();
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
        let mut r = pool.post(post(&url)).await.unwrap();
        let first = r.body_mut().frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ok");
        drop(r);
        let r = pool.post(post(&url)).await.unwrap();
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
        read(pool.post(post(&url)).await.unwrap()).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        read(pool.post(post(&url)).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    async fn error_of(result: Result<Response<PooledBody>, BoxError>) -> String {
        match result {
            Err(e) => e.to_string(),
            Ok(r) => match r.into_body().collect().await {
                Err(e) => e.to_string(),
                Ok(body) => panic!("no error; body {:?}", body.to_bytes()),
            },
        }
    }

    #[tokio::test]
    async fn interim_responses_are_skipped_and_a_body_may_run_to_the_close() {
        let (url, _, _) = server(Serve::Raw(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ))
        .await;
        let r = pool().post(post(&url)).await.unwrap();
        assert_eq!(read(r).await, "ok");
        let (url, accepted, _) = server(Serve::Raw(b"HTTP/1.1 200 OK\r\n\r\nall of it")).await;
        let pool = pool();
        assert_eq!(
            read(pool.post(post(&url)).await.unwrap()).await,
            "all of it"
        );
        assert_eq!(
            read(pool.post(post(&url)).await.unwrap()).await,
            "all of it"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "a body ended by the close ends its connection"
        );
    }

    #[tokio::test]
    async fn a_response_saying_close_does_not_give_its_connection_back() {
        let (url, accepted, _) = server(Serve::SaysClose).await;
        let pool = pool();
        for _ in 0..2 {
            assert_eq!(read(pool.post(post(&url)).await.unwrap()).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn garbage_and_cut_off_responses_are_errors_that_say_what_was_wrong() {
        let cases: [(&'static [u8], &str); 5] = [
            (
                b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
                "invalid HTTP/1.1 response head",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
                "before the response body ended",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nab",
                "two different Content-Lengths",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-len",
                "before its response head ended",
            ),
        ];
        for (reply, expected) in cases {
            let (url, _, requests) = server(Serve::Raw(reply)).await;
            let message = error_of(pool().post(post(&url)).await).await;
            assert!(message.contains(expected), "{reply:?}: {message}");
            assert_eq!(requests.load(Ordering::SeqCst), 1, "{reply:?}: sent once");
        }
    }

    #[tokio::test]
    async fn a_response_head_past_the_limit_is_refused() {
        static HUGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut r = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
            r.resize(r.len() + 70 * 1024, b'a');
            r.extend_from_slice(b"\r\n\r\n");
            r
        });
        let (url, _, _) = server(Serve::Raw(HUGE.as_slice())).await;
        let message = error_of(pool().post(post(&url)).await).await;
        assert!(message.contains("longer than 64 KiB"), "{message}");
    }
}
