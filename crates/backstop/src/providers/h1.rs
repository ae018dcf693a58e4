//! One HTTP/1.1 connection to a cleartext upstream, driven by the task that sends on it: it
//! writes a request, reads the response head (httparse) and hands the body over to
//! [`Framing`]. hyper's client connection, used before, kept a task, a request channel and
//! two 8 KiB buffers per connection: about 24 KiB of each open stream's 36 KiB
//! (BENCHMARKS.md). Here a connection is its socket and one buffer that starts at 2 KiB.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::h1_body::Framing;
use super::outgoing::Outgoing;

/// Largest response head read (status line and headers); hyper's default limit is larger
/// only for the buffer, not for what an LLM API sends (a few hundred bytes to 2 KiB).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 128;
/// First read size; doubled while reads fill it, up to [`MAX_READ`].
const FIRST_READ: usize = 2 * 1024;
const MAX_READ: usize = 64 * 1024;

/// A connection: its socket and the bytes read from it but not yet used.
pub(crate) struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// How much room the next read asks for.
    next_read: usize,
}

/// A response head read from a connection, with how its body is delimited.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// Whether the connection can carry another request once this body has ended.
    pub(crate) reusable: bool,
}

/// Why a request failed on a connection, and whether it could have reached the server.
pub(crate) struct SendError {
    pub(crate) error: io::Error,
    /// Nothing of a response arrived before the connection failed: on a reused connection,
    /// the server closed it as it sat idle. The pool sends the request once more on a new
    /// one (a server that read it before closing sees it twice, as from the chain's retry).
    pub(crate) no_response: bool,
}

impl Conn {
    pub(crate) fn new(io: TcpStream) -> Self {
        Conn {
            io,
            buf: BytesMut::new(),
            next_read: FIRST_READ,
        }
    }

    /// Whether an idle connection can take a request: nothing unread, not closed by the server.
    pub(crate) fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `POST path` with `headers` (a `Host` added when missing, the body's length set)
    /// and `body`, then reads the response head.
    pub(crate) async fn send(
        &mut self,
        authority: &str,
        path: &str,
        headers: &Outgoing<'_>,
        body: &[u8],
    ) -> Result<Head, SendError> {
        let head = request_head(authority, path, headers, body.len());
        let no_response = |error| SendError {
            error,
            no_response: true,
        };
        self.write_all(&head, body).await.map_err(no_response)?;
        self.read_head().await
    }

    async fn write_all(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let mut written = 0;
        let total = head.len() + body.len();
        while written < total {
            let n = if let Some(rest) = head.get(written..).filter(|r| !r.is_empty()) {
                self.io
                    .write_vectored(&[IoSlice::new(rest), IoSlice::new(body)])
                    .await?
            } else {
                self.io
                    .write(body.get(written - head.len()..).unwrap_or_default())
                    .await?
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        Ok(())
    }

    async fn read_head(&mut self) -> Result<Head, SendError> {
        let mut received = false;
        loop {
            if !self.buf.is_empty() {
                received = true;
                if let Some(head) = self.parse_head().map_err(|error| SendError {
                    error,
                    no_response: false,
                })? {
                    return Ok(head);
                }
            }
            self.reserve();
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) => {
                    return Err(SendError {
                        error: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the upstream closed the connection before its response head ended",
                        ),
                        no_response: !received,
                    });
                }
                Ok(n) => self.grow(n),
                Err(error) => {
                    return Err(SendError {
                        error,
                        no_response: !received,
                    });
                }
            }
        }
    }

    /// A complete head at the start of the buffer, consumed; interim (1xx) responses skipped.
    fn parse_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            // Where each kept header's name and value lie in the buffer, and how it is named
            // (`kept`): the values are then sliced out of the head without a copy (as hyper does).
            let mut spans = [[0u32; 4]; MAX_HEADERS];
            // (A fifth u32 in each span made the zeroing a byte loop: 2,600 instructions.)
            let mut names = [0u8; MAX_HEADERS];
            let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                &self.buf,
                &mut slots,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => return Ok(None),
                Ok(_) => {
                    return Err(invalid(format!(
                        "the upstream's response head is longer than {} KiB",
                        MAX_HEAD / 1024
                    )));
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "the upstream sent an invalid HTTP/1.1 response head: {e}"
                    )));
                }
            };
            let code = response.code.unwrap_or_default();
            let status = StatusCode::from_u16(code)
                .map_err(|_| invalid(format!("the upstream sent status {code}")))?;
            if status.is_informational() {
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(invalid("the upstream switched protocols".to_owned()));
                }
                self.buf.advance(len);
                continue;
            }
            let http11 = response.version == Some(1);
            let base = self.buf.as_ptr() as usize;
            let at = |part: &[u8]| {
                let start = (part.as_ptr() as usize).saturating_sub(base);
                // Within a head of at most MAX_HEAD bytes, so the offsets fit.
                [start, start + part.len()].map(|o| u32::try_from(o).unwrap_or(u32::MAX))
            };
            let read = response
                .headers
                .iter()
                .filter_map(|h| Some((kept(h.name.as_bytes())?, h)));
            let mut count = 0;
            for ((span, named), (how, h)) in spans.iter_mut().zip(&mut names).zip(read) {
                let [a, b] = at(h.name.as_bytes());
                let [c, d] = at(h.value);
                *span = [a, b, c, d];
                *named = how;
                count += 1;
            }
            let head = self.buf.split_to(len).freeze();
            let part = |from: u32, to: u32| {
                let (from, to) = (from as usize, to as usize);
                (from <= to && to <= head.len()).then(|| head.slice(from..to))
            };
            let mut headers = HeaderMap::with_capacity(count);
            for (&[a, b, c, d], &how) in spans.iter().zip(&names).take(count) {
                let bad = || invalid("the upstream sent a bad response head".to_owned());
                let known = usize::from(how).checked_sub(1).and_then(|i| EXACT.get(i));
                let name = match known {
                    Some((_, name)) => name.clone(),
                    None => {
                        let name = part(a, b).ok_or_else(bad)?;
                        HeaderName::from_bytes(&name).map_err(|_| {
                            invalid(format!(
                                "the upstream sent a bad header name {:?}",
                                String::from_utf8_lossy(&name)
                            ))
                        })?
                    }
                };
                let value = HeaderValue::from_maybe_shared(part(c, d).ok_or_else(bad)?)
                    .map_err(|_| invalid(format!("the upstream sent a bad value for {name}")))?;
                headers.append(name, value);
            }
            let (framing, delimited) = framing(status, &headers)?;
            let reusable = delimited && http11 && !has_token(&headers, &CONNECTION, "close");
            return Ok(Some(Head {
                status,
                headers,
                framing,
                reusable,
            }));
        }
    }

    /// The bytes read but not yet used.
    pub(crate) fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Reads more into the buffer, waking `cx` when the socket has something; `0` at its end.
    /// An empty buffer is let go while waiting: a stream between events holds no buffer.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            if self.io.poll_read_ready(cx)?.is_pending() {
                // tokio clears readiness after a short read, so waiting starts here, not
                // only after a read that would block.
                if self.buf.is_empty() {
                    self.buf = BytesMut::new();
                }
                return Poll::Pending;
            }
            self.reserve();
            match self.io.try_read_buf(&mut self.buf) {
                Ok(n) => {
                    self.grow(n);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new();
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Reads whatever has already arrived, without waiting; `Ok(None)` when nothing has.
    pub(crate) fn read_now(&mut self) -> io::Result<Option<usize>> {
        self.reserve();
        match self.io.try_read_buf(&mut self.buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn reserve(&mut self) {
        if self.buf.capacity() - self.buf.len() < self.next_read / 2 {
            self.buf.reserve(self.next_read);
        }
    }

    /// A read that filled the room it had asks for twice as much next time.
    fn grow(&mut self, n: usize) {
        if n >= self.next_read {
            self.next_read = (self.next_read * 2).min(MAX_READ);
        }
    }
}

/// The response headers read by exact name: the framing, the upstream's request id and the
/// retry hints. Kept as names made once, so a head's names are neither parsed nor copied.
static EXACT: [(&[u8], HeaderName); 7] = [
    (b"content-length", CONTENT_LENGTH),
    (b"transfer-encoding", TRANSFER_ENCODING),
    (b"connection", CONNECTION),
    (b"x-request-id", HeaderName::from_static("x-request-id")),
    (b"request-id", HeaderName::from_static("request-id")),
    (b"retry-after", http::header::RETRY_AFTER),
    (b"retry-after-ms", HeaderName::from_static("retry-after-ms")),
];

/// How a response header is kept, if anything reads it: `Some(i)` as `EXACT[i - 1]`'s name,
/// `Some(0)` parsed (a rate-limit hint, [`super::ratelimit`]), `None` not at all. Only these
/// enter a head's map: the others (a provider such as OpenAI sends twenty or more) would each
/// cost a name check, a hash and often a copy, for nobody. httparse has checked every name.
fn kept(name: &[u8]) -> Option<u8> {
    const PREFIXES: [&[u8]; 2] = [b"x-ratelimit-", b"anthropic-ratelimit-"];
    // The first byte rules out nearly every header before a comparison.
    if !matches!(
        name.first()?.to_ascii_lowercase(),
        b'a' | b'c' | b'r' | b't' | b'x'
    ) {
        return None;
    }
    if let Some(i) = EXACT.iter().position(|(n, _)| name.eq_ignore_ascii_case(n)) {
        return u8::try_from(i + 1).ok();
    }
    PREFIXES
        .iter()
        .any(|p| {
            name.get(..p.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(p))
        })
        .then_some(0)
}

/// `POST` request head: the origin-form path, `Host` unless given, the caller's headers and
/// the body's `Content-Length` (a caller's own framing headers are replaced by it).
fn request_head(authority: &str, path: &str, headers: &Outgoing<'_>, body_len: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(64 + path.len() + headers.len() * 48);
    head.extend_from_slice(b"POST ");
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains(&HOST) {
        head.extend_from_slice(b"host: ");
        head.extend_from_slice(authority.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers.iter() {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    // reqwest's one default header, so an upstream sees the same request from both clients
    // (and a caller's own reqwest client keeps its own default).
    if !headers.contains(&ACCEPT) {
        head.extend_from_slice(b"accept: */*\r\n");
    }
    head.extend_from_slice(b"content-length: ");
    head.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// How a response's body is delimited (RFC 9112 §6.3), and whether that delimiting leaves
/// the connection usable afterwards (a body that ends with the connection does not).
fn framing(status: StatusCode, headers: &HeaderMap) -> io::Result<(Framing, bool)> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::length(0), true));
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        // Chunked only when it is the last coding; a Content-Length beside it is ignored,
        // and the connection is not trusted with another request.
        let chunked = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        let clean = chunked && !headers.contains_key(CONTENT_LENGTH);
        let framing = if chunked {
            Framing::chunked()
        } else {
            Framing::until_close()
        };
        return Ok((framing, clean));
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = parse_length(part)
                .ok_or_else(|| invalid("the upstream sent an invalid Content-Length".to_owned()))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid(
                    "the upstream sent two different Content-Lengths".to_owned(),
                ));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Framing::length(n), true),
        None => (Framing::until_close(), false),
    })
}

fn parse_length(part: &[u8]) -> Option<u64> {
    let digits = part.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether a comma-separated header has `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

pub(crate) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The body of a response head already read: a frame at a time, from the connection.
pub(crate) fn poll_body(
    conn: &mut Conn,
    framing: &mut Framing,
    cx: &mut Context<'_>,
) -> Poll<Option<io::Result<Bytes>>> {
    loop {
        match framing.decode(conn.buffer()) {
            Err(e) => return Poll::Ready(Some(Err(e))),
            Ok(Some(data)) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
            Ok(Some(_)) => {}
            Ok(None) if framing.is_done() => return Poll::Ready(None),
            Ok(None) => match ready!(conn.poll_read(cx)) {
                Ok(0) => return Poll::Ready(framing.at_close().err().map(Err)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            },
        }
    }
}

/// Finishes a body from what has already arrived, without waiting: whether it ended.
pub(crate) fn finish_now(conn: &mut Conn, framing: &mut Framing) -> bool {
    loop {
        match framing.decode(conn.buffer()) {
            Err(_) => return false,
            Ok(Some(_)) => {}
            Ok(None) if framing.is_done() => return true,
            Ok(None) => match conn.read_now() {
                Ok(Some(n)) if n > 0 => {}
                _ => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A connection to `addr` that has sent `POST /` and read the response head.
    async fn post_to(addr: std::net::SocketAddr) -> (Conn, Head) {
        let mut conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        let empty = HeaderMap::new();
        match conn
            .send(&addr.to_string(), "/", &Outgoing::new(&empty), b"{}")
            .await
        {
            Ok(head) => (conn, head),
            Err(e) => panic!("{}", e.error),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// A stream between events holds no read buffer: once what arrived is used, waiting for
    /// more lets the buffer go (tokio clears readiness after a short read, so no read that
    /// would block comes first).
    #[tokio::test]
    async fn waiting_for_more_bytes_lets_an_empty_buffer_go() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await.unwrap();
            s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 100\r\n\r\ndata: x\n\n",
            )
            .await
            .unwrap();
            let _ = done_rx.await;
        });
        let (mut conn, head) = post_to(addr).await;
        assert_eq!(head.status, StatusCode::OK);
        // The first event, with the head or just after it.
        while conn.buffer().is_empty() {
            std::future::poll_fn(|cx| conn.poll_read(cx)).await.unwrap();
        }
        let _event = conn.buffer().split();
        let waiting = std::future::poll_fn(|cx| Poll::Ready(conn.poll_read(cx))).await;
        assert!(waiting.is_pending(), "nothing more was sent");
        assert_eq!(conn.buffer().capacity(), 0, "the empty buffer is let go");
        done_tx.send(()).unwrap();
        server.await.unwrap();
    }

    /// The head's map holds what the framing, the request id and the rate-limit hints read,
    /// whatever the case the upstream wrote them in, and none of the rest.
    #[tokio::test]
    async fn a_head_keeps_the_headers_something_reads() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await.unwrap();
            s.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
                  X-Request-Id: req_1\r\nopenai-version: 2020-10-01\r\n\
                  X-RateLimit-Reset-Requests: 1s\r\nRetry-After: 3\r\nSet-Cookie: a=b\r\n\
                  anthropic-ratelimit-tokens-reset: 2024-06-01T12:00:45Z\r\n\
                  Content-Length: 2\r\n\r\n{}",
            )
            .await
            .unwrap();
        });
        let (mut conn, head) = post_to(addr).await;
        let mut names: Vec<&str> = head.headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "anthropic-ratelimit-tokens-reset",
                "content-length",
                "retry-after",
                "x-ratelimit-reset-requests",
                "x-request-id",
            ]
        );
        assert_eq!(head.headers["x-request-id"], "req_1");
        let mut framing = head.framing;
        let body = std::future::poll_fn(|cx| poll_body(&mut conn, &mut framing, cx)).await;
        assert_eq!(
            body.unwrap().unwrap(),
            &b"{}"[..],
            "framed by the kept Content-Length"
        );
        server.await.unwrap();
    }

    #[test]
    fn every_header_a_reader_asks_for_is_kept() {
        let limits = super::super::ratelimit::OPENAI_LIMITS
            .iter()
            .chain(super::super::ratelimit::ANTHROPIC_LIMITS.iter())
            .flat_map(|(remaining, reset)| [*remaining, *reset]);
        for name in limits.chain([
            "retry-after",
            "retry-after-ms",
            "x-request-id",
            "request-id",
            "Content-Length",
            "transfer-encoding",
            "connection",
        ]) {
            assert!(kept(name.as_bytes()).is_some(), "{name}");
        }
        for name in [
            "content-type",
            "date",
            "x-ratelimit",
            "openai-processing-ms",
            "set-cookie",
        ] {
            assert!(kept(name.as_bytes()).is_none(), "{name}");
        }
    }

    #[test]
    fn the_request_head_has_host_the_headers_and_the_body_length_once() {
        let h = headers(&[
            ("authorization", "Bearer k"),
            ("content-length", "999"),
            ("transfer-encoding", "chunked"),
        ]);
        let set = [
            Some((
                HeaderName::from_static("x-request-id"),
                HeaderValue::from_static("req_9"),
            )),
            None,
        ];
        let head = request_head(
            "127.0.0.1:9",
            "/v1/chat/completions?x=1",
            &Outgoing::with(&h, set),
            42,
        );
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\
             authorization: Bearer k\r\nx-request-id: req_9\r\naccept: */*\r\n\
             content-length: 42\r\n\r\n"
        );
        let own_host = headers(&[("host", "api.example"), ("accept", "application/json")]);
        let own_host = Outgoing::new(&own_host);
        let head = String::from_utf8(request_head("127.0.0.1:9", "/", &own_host, 0)).unwrap();
        assert_eq!(head.matches("host:").count(), 1, "{head}");
        assert!(head.contains("host: api.example\r\n"));
        assert!(head.contains("accept: application/json\r\n") && !head.contains("*/*"));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let ok = StatusCode::OK;
        let (f, reuse) = framing(ok, &headers(&[("content-length", "12")])).unwrap();
        assert!(reuse && f.is_length(12));
        let (f, reuse) = framing(ok, &headers(&[("content-length", "5, 5")])).unwrap();
        assert!(reuse && f.is_length(5));
        assert!(framing(ok, &headers(&[("content-length", "5, 6")])).is_err());
        assert!(
            framing(
                ok,
                &headers(&[("content-length", "5"), ("content-length", "6")])
            )
            .is_err()
        );
        for bad in ["-1", "+5", "0x10", "", "1 2", "99999999999999999999"] {
            assert!(
                framing(ok, &headers(&[("content-length", bad)])).is_err(),
                "{bad:?}"
            );
        }
        let (f, reuse) = framing(ok, &headers(&[("transfer-encoding", "gzip, Chunked")])).unwrap();
        assert!(reuse && f.is_chunked());
        // Chunked beside a length: chunked wins, the connection is not reused.
        let both = headers(&[("transfer-encoding", "chunked"), ("content-length", "3")]);
        let (f, reuse) = framing(ok, &both).unwrap();
        assert!(!reuse && f.is_chunked());
        // A coding other than chunked last, or no framing at all: the body runs to the close.
        let (f, reuse) = framing(ok, &headers(&[("transfer-encoding", "chunked, gzip")])).unwrap();
        assert!(!reuse && f.is_until_close());
        let (f, reuse) = framing(ok, &HeaderMap::new()).unwrap();
        assert!(!reuse && f.is_until_close());
        let (f, reuse) = framing(StatusCode::NO_CONTENT, &HeaderMap::new()).unwrap();
        assert!(reuse && f.is_length(0));
    }
}
