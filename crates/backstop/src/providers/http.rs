//! What every HTTP provider shares: API keys, the prepared endpoint,
//! status → [`ProviderError`] mapping (with `retry-after`), transport error mapping, and the
//! driver that turns an SSE body into a [`ChunkStream`].

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::client::{HttpClient, SharedClient};
use super::outgoing::Outgoing;
use super::redact::Redactor;
use super::sse::{SseDecoder, SseEvent};
use super::upstream::UpstreamResponse;
use crate::{ChatRequest, Chunk, ChunkStream, EmbeddingRequest, ErrorKind, ProviderError};

/// Default time allowed to establish a TCP (and TLS) connection.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an error body we read; the message we keep is shorter still.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Where a provider's API key comes from.
#[derive(Clone)]
#[allow(dead_code)] // which variants are built depends on the enabled provider features
pub(crate) enum ApiKey {
    /// Set explicitly by the caller; wins over the environment.
    Explicit(SecretString),
    /// Read once from this environment variable (`None`: it was unset or empty).
    Env {
        var: String,
        value: Option<SecretString>,
    },
    /// No key is sent (local OpenAI-compatible servers).
    None,
}

impl ApiKey {
    /// Reads `var` from the environment now.
    pub(crate) fn from_env(var: impl Into<String>) -> Self {
        let var = var.into();
        let value = std::env::var(&var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(SecretString::from);
        ApiKey::Env { var, value }
    }

    /// The key, `Ok(None)` when none is needed, or the Auth error every call will return.
    fn resolve(&self) -> Result<Option<&SecretString>, ProviderError> {
        match self {
            ApiKey::Explicit(k) => Ok(Some(k)),
            ApiKey::Env { value: Some(k), .. } => Ok(Some(k)),
            ApiKey::Env { var, value: None } => Err(ProviderError::new(
                ErrorKind::Auth,
                format!("{var} is not set"),
            )),
            ApiKey::None => Ok(None),
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKey::Explicit(_) => f.write_str("[REDACTED]"),
            ApiKey::Env {
                var,
                value: Some(_),
            } => write!(f, "[REDACTED] (from {var})"),
            ApiKey::Env { var, value: None } => write!(f, "<missing: {var}>"),
            ApiKey::None => f.write_str("<none>"),
        }
    }
}

/// How the key travels.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // which variants are built depends on the enabled provider features
pub(crate) enum AuthScheme {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// A header carrying the bare key (Anthropic's `x-api-key`).
    Header(&'static str),
}

/// Everything needed to POST to one provider endpoint, with the URL and headers computed
/// once at construction and the failure every call would hit (missing key, bad URL,
/// unbuildable client) decided up front.
pub(crate) struct Endpoint {
    pub(crate) name: String,
    /// `gen_ai.provider.name` on the attempt span (`openai`, `anthropic`, `groq`, ...).
    system: &'static str,
    base_url: String,
    path: &'static str,
    key: ApiKey,
    scheme: AuthScheme,
    extra_headers: &'static [(&'static str, &'static str)],
    connect_timeout: Duration,
    /// `connect_timeout(..)` was called: it cannot apply to a caller's client.
    connect_timeout_set: bool,
    /// The caller's client; `None`: the process-wide pool for `connect_timeout`.
    caller_client: Option<HttpClient>,
    client: Result<ClientChoice, ProviderError>,
    prepared: Result<(Target, HeaderMap), ProviderError>,
    /// The embeddings path beside `path` (same base, key and client), for APIs that have one.
    embeddings_path: Option<&'static str>,
    /// `{base}{embeddings_path}`, computed with `prepared`.
    embeddings_url: Result<Target, ProviderError>,
    redactor: Redactor,
}

/// Where a request goes: the URL, and for a cleartext `http://` URL also the `http::Uri` the
/// direct client sends to (parsed once here, not per request). A URL with credentials in it
/// stays with reqwest, which turns them into an `Authorization` header.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: reqwest::Url,
    uri: Option<http::Uri>,
}

impl Target {
    fn new(url: reqwest::Url) -> Self {
        let plain = url.scheme() == "http" && url.username().is_empty() && url.password().is_none();
        let uri = plain
            .then(|| url.as_str().parse::<http::Uri>().ok())
            .flatten();
        Target { url, uri }
    }
}

impl Endpoint {
    pub(crate) fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        path: &'static str,
        key: ApiKey,
        scheme: AuthScheme,
        extra_headers: &'static [(&'static str, &'static str)],
    ) -> Self {
        let name = name.into();
        let mut e = Endpoint {
            system: system_of(&name),
            name,
            base_url: String::new(),
            path,
            key,
            scheme,
            extra_headers,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connect_timeout_set: false,
            caller_client: None,
            client: Ok(ClientChoice::Shared(SharedClient::new(
                DEFAULT_CONNECT_TIMEOUT,
            ))),
            prepared: Err(ProviderError::new(
                ErrorKind::InvalidRequest,
                "not prepared",
            )),
            embeddings_path: None,
            embeddings_url: Err(no_embeddings_endpoint()),
            redactor: Redactor::default(),
        };
        e.base_url = trim_base(base_url.into());
        e.prepare();
        e
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn key(&self) -> &ApiKey {
        &self.key
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whose HTTP client sends, for `Debug`: the process-wide pool or the caller's.
    pub(crate) fn client_source(&self) -> &'static str {
        match self.caller_client {
            Some(_) => "caller's",
            None => "shared pool",
        }
    }

    /// Scrubs this provider's upstream text (knows its key).
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub(crate) fn set_base_url(&mut self, url: impl Into<String>) {
        self.base_url = trim_base(url.into());
        self.prepare();
    }

    pub(crate) fn set_key(&mut self, key: ApiKey) {
        self.key = key;
        self.prepare();
    }

    pub(crate) fn set_connect_timeout(&mut self, t: Duration) {
        self.connect_timeout = t;
        self.connect_timeout_set = true;
        self.choose_client();
    }

    pub(crate) fn set_client(&mut self, client: HttpClient) {
        self.caller_client = Some(client);
        self.choose_client();
    }

    /// The caller's client, else the shared pool; both together are refused, by name, on
    /// every call (the timeout would otherwise be silently ignored).
    fn choose_client(&mut self) {
        self.client = match (&self.caller_client, self.connect_timeout_set) {
            (Some(_), true) => Err(ProviderError::new(
                ErrorKind::InvalidRequest,
                "connect_timeout(..) configures backstop's shared HTTP client and cannot apply \
                 to the client given to http_client(..): set it on that client's builder",
            )),
            (Some(client), false) => Ok(ClientChoice::Caller(client.clone())),
            (None, _) => Ok(ClientChoice::Shared(SharedClient::new(
                self.connect_timeout,
            ))),
        };
    }

    /// Serves embeddings at `{base}{path}` too.
    #[allow(dead_code)] // only the OpenAI-wire providers have one; which are built depends on features
    pub(crate) fn with_embeddings(mut self, path: &'static str) -> Self {
        self.embeddings_path = Some(path);
        self.prepare();
        self
    }

    /// Whether this endpoint's API has an embeddings path.
    pub(crate) fn embeds(&self) -> bool {
        self.embeddings_path.is_some()
    }

    /// Recomputes the URL and headers (construction time only, never per call).
    fn prepare(&mut self) {
        self.embeddings_url = match self.embeddings_path {
            Some(path) => self.url(path),
            None => Err(no_embeddings_endpoint()),
        };
        self.prepared = self.compute();
        self.redactor = Redactor::new(self.key.resolve().ok().flatten());
    }

    fn url(&self, path: &str) -> Result<Target, ProviderError> {
        let full = format!("{}{}", self.base_url, path);
        reqwest::Url::parse(&full).map(Target::new).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidRequest,
                format!("invalid base URL {:?}: {e}", self.base_url),
            )
        })
    }

    fn compute(&self) -> Result<(Target, HeaderMap), ProviderError> {
        let url = self.url(self.path)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.extra_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        if let Some(key) = self.key.resolve()? {
            let invalid = || {
                ProviderError::new(
                    ErrorKind::Auth,
                    "API key contains characters not allowed in an HTTP header",
                )
            };
            let (name, mut value) = match self.scheme {
                AuthScheme::Bearer => (
                    reqwest::header::AUTHORIZATION,
                    HeaderValue::try_from(format!("Bearer {}", key.expose_secret()))
                        .map_err(|_| invalid())?,
                ),
                AuthScheme::Header(h) => (
                    HeaderName::from_static(h),
                    HeaderValue::try_from(key.expose_secret()).map_err(|_| invalid())?,
                ),
            };
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok((url, headers))
    }

    /// What the attempt span (the current span, in a chain) says about this call: the GenAI
    /// provider and model, the server. Nothing is done when no subscriber wants the span.
    fn record_call(&self, url: &reqwest::Url, model: &str) {
        let span = tracing::Span::current();
        if span.is_disabled() {
            return;
        }
        span.record("gen_ai.provider.name", self.system);
        span.record("gen_ai.request.model", model);
        if let Some(host) = url.host_str() {
            span.record("server.address", host);
        }
        if let Some(port) = url.port_or_known_default() {
            span.record("server.port", i64::from(port));
        }
    }

    /// POSTs `body` and returns the response if it is 2xx; otherwise the classified error
    /// (`classify` refines the status map from the provider's error body).
    /// The request's id goes along as `x-request-id` and its trace context as `traceparent`
    /// (see [`trace_context`](crate::trace_context)); the error carries the provider's own id
    /// for the request when it sent one. `model` is recorded on the attempt span.
    pub(crate) async fn post(
        &self,
        body: Vec<u8>,
        classify: ClassifyFn,
        request: &ChatRequest,
        model: &str,
    ) -> Result<UpstreamResponse, ProviderError> {
        let (url, _) = self.prepared.as_ref().map_err(Clone::clone)?;
        let ids = (
            request.request_id.as_deref(),
            request.traceparent.as_deref(),
        );
        self.post_to(url, body, classify, ids, model).await
    }

    /// Like [`post`](Self::post), to the embeddings path.
    #[allow(dead_code)] // see `with_embeddings`
    pub(crate) async fn post_embeddings(
        &self,
        body: Vec<u8>,
        classify: ClassifyFn,
        request: &EmbeddingRequest,
        model: &str,
    ) -> Result<UpstreamResponse, ProviderError> {
        let url = self.embeddings_url.as_ref().map_err(Clone::clone)?;
        let ids = (
            request.request_id.as_deref(),
            request.traceparent.as_deref(),
        );
        self.post_to(url, body, classify, ids, model).await
    }

    /// POSTs to `url` with the request's id and trace context `(request_id, traceparent)`.
    async fn post_to(
        &self,
        target: &Target,
        body: Vec<u8>,
        classify: ClassifyFn,
        (request_id, caller_traceparent): (Option<&str>, Option<&str>),
        model: &str,
    ) -> Result<UpstreamResponse, ProviderError> {
        let (_, headers) = self.prepared.as_ref().map_err(Clone::clone)?;
        self.record_call(&target.url, model);
        let request_id = request_id
            .and_then(|id| HeaderValue::from_str(id).ok())
            .map(|value| (X_REQUEST_ID, value));
        let traceparent = crate::trace_context::outgoing(caller_traceparent)
            .and_then(|t| HeaderValue::from_str(&t).ok())
            .map(|value| (TRACEPARENT, value));
        let headers = Outgoing::with(headers, [request_id, traceparent]);
        let sent = match self.client.as_ref().map_err(Clone::clone)? {
            ClientChoice::Caller(client) => {
                client
                    .post(target.url.clone(), headers.to_map(), body)
                    .await
            }
            ClientChoice::Shared(shared) => {
                (shared.get())
                    .post(&target.url, target.uri.as_ref(), &headers, body)
                    .await
            }
        };
        let response = sent.map_err(|e| self.redactor.error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let upstream_id = upstream_request_id(response.headers());
        let (error, body) = error_from_response(response, classify).await;
        let mut error = self.redactor.error(error);
        error.upstream_request_id = upstream_id;
        // The raw body stays out of the error (callers and clients see it); operators get a
        // scrubbed prefix at debug level.
        tracing::debug!(
            provider = %self.name,
            status = status.as_u16(),
            kind = %error.kind,
            body = %self.redactor.clean(&String::from_utf8_lossy(&body)),
            "provider returned an error status"
        );
        Err(error)
    }
}

/// The client an endpoint sends with.
enum ClientChoice {
    /// Given with `http_client(..)`.
    Caller(HttpClient),
    /// The process-wide pool of the runtime each call runs on.
    Shared(SharedClient),
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &format_args!("{}{}", self.base_url, self.path))
            .field("api_key", &self.key)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The error of an embeddings call to an API without an embeddings path.
fn no_embeddings_endpoint() -> ProviderError {
    ProviderError::new(ErrorKind::Unsupported, "unsupported: embeddings")
}

/// The header a request's id travels in, both ways.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The GenAI `gen_ai.provider.name` for an endpoint of this built-in name.
fn system_of(name: &str) -> &'static str {
    match name {
        "anthropic" => "anthropic",
        "groq" => "groq",
        "openai" => "openai",
        _ => "openai_compatible",
    }
}

/// Longest upstream request id kept; a longer value is not an id we would want in a log line.
const MAX_UPSTREAM_ID: usize = 200;

/// The provider's id for a request: `x-request-id` (OpenAI, Groq and most compatible servers)
/// or `request-id` (Anthropic). Kept only when it is printable ASCII without spaces and short,
/// since it goes into log lines and response records.
pub(crate) fn upstream_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(X_REQUEST_ID)
        .or_else(|| headers.get("request-id"))?
        .as_bytes();
    let fits = !value.is_empty()
        && value.len() <= MAX_UPSTREAM_ID
        && value.iter().all(|b| b.is_ascii_graphic());
    // Only ASCII bytes are left, so this never replaces anything.
    fits.then(|| String::from_utf8_lossy(value).into_owned())
}

/// Drops trailing slashes so `{base}{path}` never doubles them.
fn trim_base(s: String) -> String {
    s.trim().trim_end_matches('/').to_owned()
}

/// Refines a status-based classification from the provider's error body:
/// `(status, retry_after, body) -> error`.
pub(crate) type ClassifyFn = fn(u16, Option<Duration>, &[u8]) -> ProviderError;

/// Reads (a bounded prefix of) an error response and classifies it; returns the body read.
async fn error_from_response(
    mut response: UpstreamResponse,
    classify: ClassifyFn,
) -> (ProviderError, Vec<u8>) {
    let status = response.status().as_u16();
    let retry_after = super::ratelimit::retry_after(response.headers(), SystemTime::now());
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ERROR_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
            Ok(None) => break,
            // The status already tells us what happened; a broken error body adds nothing.
            Err(_) => break,
        }
    }
    (classify(status, retry_after, &body), body)
}

/// The base classification of an error status, with the provider's own message when its
/// error body had one. A body in no error shape we know is not relayed (it may be a debug
/// proxy's echo of our request, credentials included): the message then says only what the
/// status and the body's size were. Providers refine the kind from body codes.
pub(crate) fn status_error(
    status: u16,
    retry_after: Option<Duration>,
    message: Option<&str>,
    body: &[u8],
) -> ProviderError {
    let kind = ErrorKind::from_status(status, retry_after);
    let message = match message {
        Some(m) if !m.trim().is_empty() => m.trim().to_owned(),
        _ => summary_message(status, body),
    };
    ProviderError::new(kind, message).with_status(status)
}

/// The status text, and the size of a body we do not show.
fn summary_message(status: u16, body: &[u8]) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error status");
    if body.trim_ascii().is_empty() {
        reason.to_owned()
    } else {
        format!(
            "{reason} (error body in no known format, {} bytes, not shown)",
            body.len()
        )
    }
}

/// Maps a transport error: refused, reset, TLS, connect timeout and a body cut mid-way are
/// all Connect (reqwest labels body read failures "decode" errors, but we never ask it to
/// decode anything: our own parsers report Protocol). Failures of our own process (out of
/// descriptors, memory, ports; the client shutting down) are `LocalResource`. The URL is left
/// out of the message.
pub(crate) fn from_reqwest(e: &reqwest::Error) -> ProviderError {
    let kind = if is_local_failure(e) {
        ErrorKind::LocalResource
    } else if e.is_builder() {
        ErrorKind::InvalidRequest
    } else {
        ErrorKind::Connect
    };
    ProviderError::new(kind, error_chain(e))
}

/// Maps a failure of the direct client or of a body it is reading (hyper's errors): as
/// [`from_reqwest`], Connect unless our own process ran out of something.
pub(crate) fn from_transport(e: &(dyn std::error::Error + 'static)) -> ProviderError {
    let kind = if is_local_failure(e) {
        ErrorKind::LocalResource
    } else {
        ErrorKind::Connect
    };
    ProviderError::new(kind, error_chain(e))
}

/// Raw OS error numbers that mean this process, not the peer, ran out of something.
#[cfg(unix)]
const LOCAL_ERRNOS: [i32; 4] = [
    12, // ENOMEM
    23, // ENFILE
    24, // EMFILE
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    55, // ENOBUFS
    #[cfg(not(any(target_os = "macos", target_os = "ios", target_os = "freebsd")))]
    105, // ENOBUFS
];
#[cfg(not(unix))]
const LOCAL_ERRNOS: [i32; 0] = [];

fn io_is_local(io: &std::io::Error) -> bool {
    if io.raw_os_error().is_some_and(|n| LOCAL_ERRNOS.contains(&n))
        || matches!(
            io.kind(),
            std::io::ErrorKind::OutOfMemory | std::io::ErrorKind::AddrNotAvailable
        )
    {
        return true;
    }
    // `io::Error::new(kind, inner)` hides `inner` from `source()`; look inside.
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .is_some_and(io_is_local)
}

/// True when an error, or anything in its source chain, is a resource failure of our own
/// process: EMFILE, ENFILE, ENOMEM, ENOBUFS, no local address/port left, or the HTTP
/// client's connection task gone because the runtime is shutting down.
pub(crate) fn is_local_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io_is_local(io)
        {
            return true;
        }
        // hyper-util's pooled client when its background task was dropped (runtime shutdown).
        let text = err.to_string();
        if text.contains("dispatch task is gone")
            || text.contains("runtime dropped the dispatch task")
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// `error: cause: cause`, without the URL reqwest likes to add.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = current {
        let part = if first {
            let mut s = err.to_string();
            // reqwest renders "error sending request for url (…)"; keep just the words.
            if let Some(i) = s.find(" for url (") {
                s.truncate(i);
            }
            s
        } else {
            err.to_string()
        };
        if !message.contains(&part) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&part);
        }
        first = false;
        current = err.source();
    }
    message
}

/// Reads a whole 2xx body; a cut-off body is a transport failure.
pub(crate) async fn read_body(response: UpstreamResponse) -> Result<Bytes, ProviderError> {
    response.bytes().await
}

/// What a wire format makes of one SSE event.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing for the caller (ping, role-only delta, block bookkeeping).
    Skip,
    /// A chunk for the caller.
    Chunk(Chunk),
    /// The terminal marker: the stream is complete.
    Done,
    /// A failure: an in-band error event.
    Fail(ProviderError),
    /// An event we cannot read: skipped and counted, the stream goes on.
    Unreadable(ProviderError),
}

/// A wire format's streaming state machine.
pub(crate) trait StreamParser: Send + 'static {
    /// Interprets one event.
    fn on_event(&mut self, event: &SseEvent) -> Step;
    /// The terminal marker's name, for the truncated-stream error message.
    fn terminal_marker(&self) -> &'static str;
}

/// What [`SseChunks::next`] has for the caller.
#[derive(Debug)]
pub(crate) enum Next {
    /// A chunk, or the one error that ends the stream.
    Item(Result<Chunk, ProviderError>),
    /// Every pushed byte is consumed; push more (or call `end_of_body`).
    NeedBytes,
    /// The stream is over: terminal marker seen, or an error already returned.
    End,
}

/// The one state machine from SSE body bytes to chunks: the decoder, the wire format's parser,
/// and the stream-ending rules. A stream is complete at its terminal marker, or when the body
/// ends cleanly after a finish reason was delivered; a body that ends before either is a
/// `Protocol` error. An unreadable event is skipped and counted on the next chunk. Used by the
/// HTTP streams and by the fuzz entry points alike.
pub(crate) struct SseChunks<P> {
    decoder: SseDecoder,
    parser: P,
    over: bool,
    /// A chunk with a finish reason went out.
    finished: bool,
    /// Unreadable events skipped since the last chunk went out.
    skipped: u32,
}

impl<P: StreamParser> SseChunks<P> {
    pub(crate) fn new(parser: P) -> Self {
        Self {
            decoder: SseDecoder::new(),
            parser,
            over: false,
            finished: false,
            skipped: 0,
        }
    }

    /// Feeds body bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    /// Feeds a piece of the body, read in place.
    pub(crate) fn push_bytes(&mut self, bytes: bytes::Bytes) {
        self.decoder.push_bytes(bytes);
    }

    /// True when the bytes pushed so far end inside an event.
    pub(crate) fn has_partial(&self) -> bool {
        self.decoder.has_partial()
    }

    /// The next item from the bytes pushed so far.
    pub(crate) fn next(&mut self) -> Next {
        while !self.over {
            match self.decoder.next_event() {
                Ok(Some(event)) => {
                    let step = self.parser.on_event(&event);
                    // Its buffer takes the next event's data (several often come in one piece).
                    self.decoder.recycle(event.data);
                    match step {
                        Step::Skip => {}
                        Step::Chunk(c) => return Next::Item(Ok(self.out(c))),
                        Step::Done => self.over = true,
                        Step::Fail(e) => return self.fail(e),
                        Step::Unreadable(e) => {
                            self.skipped = self.skipped.saturating_add(1);
                            tracing::debug!(error = %e, "skipped an unreadable stream event");
                        }
                    }
                }
                Ok(None) => return Next::NeedBytes,
                Err(e) => return self.fail(ProviderError::protocol(e.to_string())),
            }
        }
        self.flush_skipped()
    }

    /// A chunk on its way out, carrying the count of events skipped before it.
    fn out(&mut self, mut chunk: Chunk) -> Chunk {
        if chunk.finish_reason.is_some() {
            self.finished = true;
        }
        chunk.skipped_events = std::mem::take(&mut self.skipped);
        chunk
    }

    /// At the end: a metadata chunk for events skipped after the last chunk, then the end.
    fn flush_skipped(&mut self) -> Next {
        match std::mem::take(&mut self.skipped) {
            0 => Next::End,
            n => Next::Item(Ok(Chunk {
                skipped_events: n,
                ..Chunk::default()
            })),
        }
    }

    /// Ends the stream with `error` (a transport failure, or one found here).
    pub(crate) fn fail(&mut self, error: ProviderError) -> Next {
        self.over = true;
        self.skipped = 0;
        Next::Item(Err(error))
    }

    /// The body ended: unless the terminal marker or a finish reason was seen, that is a
    /// truncated stream.
    pub(crate) fn end_of_body(&mut self) -> Next {
        if self.over || self.finished {
            self.over = true;
            return self.flush_skipped();
        }
        let marker = self.parser.terminal_marker();
        let detail = if self.decoder.has_partial() {
            " (mid-event)"
        } else {
            ""
        };
        self.fail(ProviderError::protocol(format!(
            "stream ended before {marker}{detail}"
        )))
    }
}

struct StreamState<P> {
    body: futures_util::stream::BoxStream<'static, Result<Bytes, ProviderError>>,
    chunks: SseChunks<P>,
    redactor: Redactor,
    /// The provider's id for the request, until it rides out on the first item.
    upstream_id: Option<String>,
}

/// Turns a 2xx SSE response into a [`ChunkStream`] that ends only after the terminal marker;
/// any failure is one `Err` item (its message scrubbed by `redactor`), after which the
/// stream ends. The first item (chunk or error) carries the provider's id for the request.
pub(crate) fn chunk_stream<P: StreamParser>(
    response: UpstreamResponse,
    parser: P,
    redactor: Redactor,
) -> ChunkStream {
    // Boxed: `unfold` moves its state into each item's future and back out (memcpy was
    // 3,400 instructions of a 16-chunk stream with the state inline).
    let state = Box::new(StreamState {
        upstream_id: upstream_request_id(response.headers()),
        body: response.bytes_stream(),
        chunks: SseChunks::new(parser),
        redactor,
    });
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            let next = match st.chunks.next() {
                Next::NeedBytes => match st.body.next().await {
                    Some(Ok(bytes)) => {
                        st.chunks.push_bytes(bytes);
                        continue;
                    }
                    Some(Err(e)) => st.chunks.fail(e),
                    None => st.chunks.end_of_body(),
                },
                next => next,
            };
            return match next {
                Next::Item(Err(e)) => {
                    let mut e = st.redactor.error(e);
                    if let Some(id) = st.upstream_id.take() {
                        e.upstream_request_id = Some(id);
                    }
                    Some((Err(e), st))
                }
                Next::Item(Ok(mut chunk)) => {
                    if let Some(id) = st.upstream_id.take() {
                        chunk.upstream_request_id = Some(id);
                    }
                    Some((Ok(chunk), st))
                }
                Next::End | Next::NeedBytes => None,
            };
        }
    }))
}

/// Parses a JSON body as `serde_json::from_slice` does, for fewer instructions: on bytes
/// serde_json checks UTF-8 string by string; one check of the whole body first (std's
/// word-at-a-time ASCII path) is cheaper, and a body that fails it is parsed from the bytes,
/// so the error still says where. The providers read answers with it, the gateway requests.
///
/// # Errors
///
/// serde_json's, with its line and column.
pub fn from_json_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(s) => serde_json::from_str(s),
        Err(_) => serde_json::from_slice(body),
    }
}

/// Parses one JSON event payload, mapping failure to Protocol.
pub(crate) fn parse_event_json<'a, T: serde::Deserialize<'a>>(
    data: &'a str,
    what: &str,
) -> Result<T, ProviderError> {
    serde_json::from_str(data)
        .map_err(|e| ProviderError::protocol(format!("malformed {what} event: {e}")))
}

/// Saturating conversion for token counts.
pub(crate) fn tokens(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Encodes a request body: the translated fields `o`, plus the caller's untranslated ones
/// that came in this provider's own `format` (never overriding a translated field).
#[cfg(feature = "anthropic")]
pub(crate) fn encode_body(
    mut o: serde_json::Map<String, serde_json::Value>,
    params: &crate::Params,
    format: crate::ApiFormat,
) -> Result<Vec<u8>, ProviderError> {
    if let Some((from, extra)) = &params.extra
        && *from == format
    {
        for (k, v) in extra {
            o.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    serde_json::to_vec(&serde_json::Value::Object(o)).map_err(|e| {
        ProviderError::new(
            ErrorKind::InvalidRequest,
            format!("cannot encode request: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_never_relays_an_unknown_body() {
        let e = status_error(502, None, None, b"  authorization: Bearer sk-leaked  ");
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(e.status, Some(502));
        assert_eq!(
            e.message,
            "Bad Gateway (error body in no known format, 35 bytes, not shown)"
        );
        let e = status_error(503, None, Some(""), b"");
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.message, "Service Unavailable");
        let e = status_error(500, None, Some(&"x".repeat(5000)), b"");
        assert!(e.message.len() <= crate::MAX_MESSAGE_LEN + 3);
    }

    #[test]
    fn resource_failures_of_our_own_process_are_local() {
        for errno in [12, 23, 24] {
            let e = std::io::Error::from_raw_os_error(errno);
            assert!(is_local_failure(&e), "errno {errno}");
        }
        let nested = std::io::Error::other(std::io::Error::from_raw_os_error(24));
        assert!(is_local_failure(&nested), "found in the source chain");
        let addr = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        assert!(is_local_failure(&addr));
        for peer in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::TimedOut,
        ] {
            assert!(!is_local_failure(&std::io::Error::from(peer)), "{peer:?}");
        }
    }

    #[test]
    fn base_urls_lose_trailing_slashes() {
        assert_eq!(trim_base(" http://h:1/v1/// ".into()), "http://h:1/v1");
    }

    #[test]
    fn missing_env_key_names_the_variable_and_debug_redacts() {
        let key = ApiKey::Env {
            var: "SOME_KEY".into(),
            value: None,
        };
        let err = key.resolve().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Auth);
        assert_eq!(err.message, "SOME_KEY is not set");
        let key = ApiKey::Explicit(SecretString::from("sk-very-secret"));
        assert!(!format!("{key:?}").contains("very-secret"));
    }

    #[test]
    fn endpoint_marks_the_auth_header_sensitive() {
        let e = Endpoint::new(
            "t",
            "http://127.0.0.1:1/",
            "/x",
            ApiKey::Explicit(SecretString::from("sk-abc")),
            AuthScheme::Bearer,
            &[("anthropic-version", "2023-06-01")],
        );
        let (target, headers) = e.prepared.as_ref().unwrap();
        assert_eq!(target.url.as_str(), "http://127.0.0.1:1/x");
        let auth = headers.get("authorization").unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth.to_str().unwrap(), "Bearer sk-abc");
        assert_eq!(headers.get("anthropic-version").unwrap(), "2023-06-01");
        assert!(!format!("{e:?}").contains("sk-abc"));
    }

    #[test]
    fn only_cleartext_targets_get_a_uri_for_the_direct_client() {
        let target = |base: &str| {
            let e = Endpoint::new("t", base, "/v1/x", ApiKey::None, AuthScheme::Bearer, &[]);
            e.prepared.as_ref().unwrap().0.clone()
        };
        let plain = target("http://127.0.0.1:8080");
        assert_eq!(plain.uri.unwrap().to_string(), "http://127.0.0.1:8080/v1/x");
        assert!(
            target("https://api.example.com").uri.is_none(),
            "TLS stays with reqwest"
        );
        assert!(
            target("http://user:secret@127.0.0.1:8080").uri.is_none(),
            "credentials in the URL stay with reqwest, which sends them as basic auth"
        );
    }

    #[test]
    fn invalid_key_bytes_are_an_auth_error_without_the_key() {
        let e = Endpoint::new(
            "t",
            "http://127.0.0.1:1",
            "/x",
            ApiKey::Explicit(SecretString::from("sk-bad\nkey")),
            AuthScheme::Header("x-api-key"),
            &[],
        );
        let err = e.prepared.as_ref().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Auth);
        assert!(!err.message.contains("sk-bad"));
    }
}
