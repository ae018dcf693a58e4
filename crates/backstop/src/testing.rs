//! Scripted in-memory providers for your own tests (cargo feature `testing`).
//!
//! A [`ScriptedProvider`] plays a script of per-call [`Step`]s — reply, stream chunks, fail
//! with an [`ErrorKind`], delay, hang, stream some chunks then fail — and counts the calls it
//! receives, so a test can prove an open breaker made no call. The last step of a script
//! repeats forever. Works with `tokio::time::pause` for deterministic timing.
//!
//! ```
//! use backstop::testing::{ScriptedProvider, Step};
//! use backstop::{CircuitBreaker, ErrorKind, FallbackChain};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Overloaded)]);
//! let backup = ScriptedProvider::new("backup").script([Step::reply("hello")]);
//! let chain = FallbackChain::builder()
//!     .provider(primary.clone(), CircuitBreaker::new("primary"))
//!     .provider(backup.clone(), CircuitBreaker::new("backup"))
//!     .build()
//!     .unwrap();
//! let result = chain.generate("hi").await.unwrap();
//! assert_eq!(result.provider_used, "backup");
//! assert_eq!(result.text, "hello");
//! assert_eq!(primary.calls(), 1);
//! # });
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream;

use crate::{
    BoxFuture, ChatRequest, Chunk, ChunkStream, Completion, EmbeddingRequest, Embeddings,
    ErrorKind, FinishReason, Provider, ProviderError, ToolCall, ToolCallDelta, Unsupported, Usage,
};

/// What a scripted provider does on one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answer with this text (streamed as one chunk).
    Reply(String),
    /// Stream these chunks, `gap` apart (non-streaming calls get them joined, after the gaps).
    Chunks {
        /// The text deltas.
        chunks: Vec<String>,
        /// Delay before each chunk after the first.
        gap: Duration,
    },
    /// Fail at once with this kind.
    Fail(ErrorKind),
    /// Wait, then do the inner step.
    Delay(Duration, Box<Step>),
    /// Never answer.
    Hang,
    /// Stream these chunks, then fail with this kind (non-streaming calls just fail).
    ChunksThenFail(Vec<String>, ErrorKind),
    /// Stream these chunks, then stall forever without ending.
    ChunksThenHang(Vec<String>),
    /// Stream these chunks, then end without a finish reason (a truncated stream from a
    /// provider that does not check its terminal marker). Non-streaming calls fail `Protocol`.
    ChunksThenEnd(Vec<String>),
    /// Answer with no text, only this finish reason (an empty or filtered answer).
    Finish(FinishReason),
    /// Call these tools (finish reason `ToolCalls`); streamed as each call's opening fragment
    /// and its arguments in two halves.
    ToolCalls(Vec<ToolCall>),
    /// Stream the text `"Let me check. "`, this call's opening fragment and the first half of
    /// its arguments, then fail with this kind (a stream cut mid-arguments). Non-streaming
    /// calls just fail.
    ToolCallThenFail(ToolCall, ErrorKind),
}

impl Step {
    /// `Step::Reply`.
    pub fn reply(text: impl Into<String>) -> Self {
        Step::Reply(text.into())
    }
    /// `Step::Chunks` with no gap.
    pub fn chunks<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Step::Chunks {
            chunks: chunks.into_iter().map(Into::into).collect(),
            gap: Duration::ZERO,
        }
    }
    /// `Step::Chunks` with `gap` between chunks.
    pub fn spaced_chunks<S: Into<String>>(
        chunks: impl IntoIterator<Item = S>,
        gap: Duration,
    ) -> Self {
        Step::Chunks {
            chunks: chunks.into_iter().map(Into::into).collect(),
            gap,
        }
    }
    /// `Step::Fail`.
    pub fn fail(kind: ErrorKind) -> Self {
        Step::Fail(kind)
    }
    /// `Step::Delay`.
    pub fn delay(d: Duration, then: Step) -> Self {
        Step::Delay(d, Box::new(then))
    }
    /// `Step::Hang`.
    pub fn hang() -> Self {
        Step::Hang
    }
    /// `Step::ChunksThenFail`.
    pub fn chunks_then_fail<S: Into<String>>(
        chunks: impl IntoIterator<Item = S>,
        kind: ErrorKind,
    ) -> Self {
        Step::ChunksThenFail(chunks.into_iter().map(Into::into).collect(), kind)
    }
    /// `Step::ChunksThenHang`.
    pub fn chunks_then_hang<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Step::ChunksThenHang(chunks.into_iter().map(Into::into).collect())
    }
    /// `Step::ChunksThenEnd`.
    pub fn chunks_then_end<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Step::ChunksThenEnd(chunks.into_iter().map(Into::into).collect())
    }
    /// `Step::ToolCalls` with one call.
    pub fn tool_call(id: &str, name: &str, arguments: &str) -> Self {
        Step::ToolCalls(vec![ToolCall::new(id, name, arguments)])
    }
    /// `Step::Finish`.
    pub fn finish(reason: FinishReason) -> Self {
        Step::Finish(reason)
    }
}

type StepFn = dyn Fn(u64) -> Step + Send + Sync;

enum Script {
    Queue {
        steps: Mutex<VecDeque<Step>>,
        last: Mutex<Option<Step>>,
    },
    Func(Box<StepFn>),
}

struct Inner {
    name: String,
    model: String,
    script: Script,
    calls: AtomicU64,
    /// Parameters this provider cannot honour (see [`ScriptedProvider::cannot`]).
    cannot: Vec<String>,
    requests: Mutex<Vec<ChatRequest>>,
}

/// An in-memory provider that plays a script. Clones share the script and the call count.
#[derive(Clone)]
pub struct ScriptedProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedProvider")
            .field("name", &self.inner.name)
            .field("calls", &self.calls())
            .finish()
    }
}

impl ScriptedProvider {
    /// A provider that answers `"answer from {name}"` until given a script.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let default = Step::Reply(format!("answer from {name}"));
        Self::build(
            name,
            Script::Queue {
                steps: Mutex::new(VecDeque::new()),
                last: Mutex::new(Some(default)),
            },
        )
    }

    /// A provider whose step for call number `n` (from 0) is `f(n)`; handy for random faults.
    pub fn from_fn(
        name: impl Into<String>,
        f: impl Fn(u64) -> Step + Send + Sync + 'static,
    ) -> Self {
        Self::build(name.into(), Script::Func(Box::new(f)))
    }

    fn build(name: String, script: Script) -> Self {
        let model = format!("{name}-model");
        Self {
            inner: Arc::new(Inner {
                name,
                model,
                script,
                calls: AtomicU64::new(0),
                cannot: Vec::new(),
                requests: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Replaces the script; its last step repeats once the others are used up.
    #[must_use = "this returns the changed value; the original is consumed"]
    pub fn script(self, steps: impl IntoIterator<Item = Step>) -> Self {
        let steps: VecDeque<Step> = steps.into_iter().collect();
        let last = steps.back().cloned();
        let inner = Inner {
            name: self.inner.name.clone(),
            model: self.inner.model.clone(),
            script: Script::Queue {
                steps: Mutex::new(steps),
                last: Mutex::new(last),
            },
            calls: AtomicU64::new(0),
            cannot: self.inner.cannot.clone(),
            requests: Mutex::new(Vec::new()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Declares parameters this provider cannot honour (names as in
    /// [`ChatRequest::features`]): a request using one is refused by [`Provider::check`].
    /// Set it before [`script`](Self::script) or after, but before handing out clones.
    #[must_use]
    pub fn cannot(self, params: &[&str]) -> Self {
        let inner = Inner {
            name: self.inner.name.clone(),
            model: self.inner.model.clone(),
            script: match Arc::try_unwrap(self.inner) {
                Ok(inner) => inner.script,
                Err(_) => Script::Queue {
                    steps: Mutex::new(VecDeque::new()),
                    last: Mutex::new(None),
                },
            },
            calls: AtomicU64::new(0),
            cannot: params.iter().map(|p| (*p).to_owned()).collect(),
            requests: Mutex::new(Vec::new()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Appends steps to a queued script (shared with clones already handed out).
    pub fn push(&self, steps: impl IntoIterator<Item = Step>) {
        if let Script::Queue { steps: queue, last } = &self.inner.script {
            let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.extend(steps);
            if let Some(s) = queue.back() {
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
            }
        }
    }

    /// Calls received so far (`complete` and `stream`).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::SeqCst)
    }

    fn next_step(&self, request: &ChatRequest) -> Step {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        self.step()
    }

    /// The script's next step (counts a call).
    fn step(&self) -> Step {
        let n = self.inner.calls.fetch_add(1, Ordering::SeqCst);
        match &self.inner.script {
            Script::Func(f) => f(n),
            Script::Queue { steps, last } => {
                let next = steps.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                next.or_else(|| last.lock().unwrap_or_else(|p| p.into_inner()).clone())
                    .unwrap_or(Step::Fail(ErrorKind::Server))
            }
        }
    }

    fn error(&self, kind: ErrorKind) -> ProviderError {
        ProviderError::new(
            kind,
            format!(
                "scripted {} failure from {}",
                kind.as_str(),
                self.inner.name
            ),
        )
    }

    fn completion(&self, text: String) -> Completion {
        let output = text.split_whitespace().count() as u32;
        Completion {
            text,
            model: self.inner.model.clone(),
            usage: Some(Usage::new(1, output)),
            finish_reason: Some(FinishReason::Stop),
            refusal: None,
            tool_calls: Vec::new(),
            upstream_request_id: None,
        }
    }
}

/// The vector a scripted provider named `provider` gives `text`: `size` numbers in [0, 1)
/// that differ between providers and texts, so a test can tell who answered.
pub fn scripted_vector(provider: &str, text: &str, size: u32) -> Vec<f32> {
    // FNV-1a over provider and text, then one step of an LCG per dimension.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in provider.bytes().chain([0]).chain(text.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..size)
        .map(|_| {
            h = h
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (h >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// Follows `Delay`s, sleeping for each.
async fn settle(mut step: Step) -> Step {
    while let Step::Delay(d, inner) = step {
        tokio::time::sleep(d).await;
        step = *inner;
    }
    step
}

impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Embeddings follow the same script: an answering step gives each text the vector
    /// [`scripted_vector`] (of `dimensions`, default 4), a failing one fails.
    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        let step = self.step();
        Box::pin(async move {
            match settle(step).await {
                Step::Hang | Step::ChunksThenHang(_) | Step::Delay(..) => {
                    std::future::pending().await
                }
                Step::Fail(kind)
                | Step::ChunksThenFail(_, kind)
                | Step::ToolCallThenFail(_, kind) => Err(self.error(kind)),
                Step::ChunksThenEnd(_) => Err(self.error(ErrorKind::Protocol)),
                Step::Reply(_) | Step::Chunks { .. } | Step::Finish(_) | Step::ToolCalls(_) => {
                    let size = request.dimensions.unwrap_or(4);
                    let vectors = request
                        .input
                        .iter()
                        .map(|t| scripted_vector(&self.inner.name, t, size))
                        .collect();
                    Ok(Embeddings::new(vectors, self.inner.model.clone()))
                }
            }
        })
    }

    /// Serves embeddings unless declared otherwise with `.cannot(&["embeddings"])`.
    fn check_embeddings(&self, _request: &EmbeddingRequest) -> Result<(), Unsupported> {
        let mut u = Unsupported::new();
        u.add_if(
            self.inner.cannot.iter().any(|c| c == "embeddings"),
            "embeddings",
        );
        u.into_result()
    }

    fn check(&self, request: &ChatRequest) -> Result<(), Unsupported> {
        let mut u = Unsupported::new();
        for f in request.features() {
            u.add_if(self.inner.cannot.contains(&f), &f);
        }
        u.into_result()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        let step = self.next_step(request);
        Box::pin(async move {
            match settle(step).await {
                Step::Reply(text) => Ok(self.completion(text)),
                Step::Chunks { chunks, gap } => {
                    tokio::time::sleep(gap.saturating_mul(chunks.len().saturating_sub(1) as u32))
                        .await;
                    Ok(self.completion(chunks.concat()))
                }
                Step::Fail(kind) | Step::ChunksThenFail(_, kind) => Err(self.error(kind)),
                Step::ChunksThenEnd(_) => Err(self.error(ErrorKind::Protocol)),
                Step::Finish(reason) => Ok(Completion {
                    finish_reason: Some(reason),
                    ..self.completion(String::new())
                }),
                Step::ToolCalls(calls) => Ok(Completion {
                    finish_reason: Some(FinishReason::ToolCalls),
                    tool_calls: calls,
                    ..self.completion(String::new())
                }),
                Step::ToolCallThenFail(_, kind) => Err(self.error(kind)),
                Step::Hang | Step::ChunksThenHang(_) | Step::Delay(..) => {
                    std::future::pending().await
                }
            }
        })
    }

    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        let step = self.next_step(request);
        Box::pin(async move {
            let (chunks, gap, end) = match settle(step).await {
                Step::ToolCalls(calls) => {
                    let model = self.inner.model.clone();
                    return Ok(tool_stream(calls, None, model));
                }
                Step::ToolCallThenFail(call, kind) => {
                    let model = self.inner.model.clone();
                    return Ok(tool_stream(vec![call], Some(self.error(kind)), model));
                }
                Step::Reply(text) => (vec![text], Duration::ZERO, End::Finish(FinishReason::Stop)),
                Step::Chunks { chunks, gap } => (chunks, gap, End::Finish(FinishReason::Stop)),
                Step::ChunksThenEnd(chunks) => (chunks, Duration::ZERO, End::Clean),
                Step::Finish(reason) => (Vec::new(), Duration::ZERO, End::Finish(reason)),
                Step::Fail(kind) => return Err(self.error(kind)),
                Step::ChunksThenFail(chunks, kind) => {
                    (chunks, Duration::ZERO, End::Fail(self.error(kind)))
                }
                Step::ChunksThenHang(chunks) => (chunks, Duration::ZERO, End::Hang),
                Step::Hang | Step::Delay(..) => std::future::pending().await,
            };
            let model = self.inner.model.clone();
            Ok(scripted_stream(chunks, gap, end, model))
        })
    }
}

enum End {
    /// A last chunk with this finish reason and usage, then the end.
    Finish(FinishReason),
    /// The end, without a finish reason.
    Clean,
    Fail(ProviderError),
    Hang,
}

/// Each call's opening fragment and its arguments in two halves, then the `ToolCalls` finish;
/// with `fail`, one call's opening and first half, then the error.
fn tool_stream(calls: Vec<ToolCall>, fail: Option<ProviderError>, model: String) -> ChunkStream {
    let mut items: Vec<Result<Chunk, ProviderError>> = Vec::new();
    if fail.is_some() {
        items.push(Ok(Chunk {
            model: Some(model.clone()),
            ..Chunk::text("Let me check. ")
        }));
    }
    for (i, call) in calls.iter().enumerate() {
        let index = i as u32;
        let mut mid = call.arguments.len() / 2;
        while !call.arguments.is_char_boundary(mid) {
            mid -= 1;
        }
        let mut start = Chunk::tool_call(ToolCallDelta::start(index, &call.id, &call.name));
        if i == 0 && fail.is_none() {
            start.model = Some(model.clone());
        }
        items.push(Ok(start));
        items.push(Ok(Chunk::tool_call(ToolCallDelta::arguments(
            index,
            &call.arguments[..mid],
        ))));
        if fail.is_none() {
            items.push(Ok(Chunk::tool_call(ToolCallDelta::arguments(
                index,
                &call.arguments[mid..],
            ))));
        }
    }
    match fail {
        Some(e) => items.push(Err(e)),
        None => items.push(Ok(Chunk {
            finish_reason: Some(FinishReason::ToolCalls),
            usage: Some(Usage::new(1, 1)),
            ..Chunk::default()
        })),
    }
    Box::pin(stream::iter(items))
}

fn scripted_stream(chunks: Vec<String>, gap: Duration, end: End, model: String) -> ChunkStream {
    let output = chunks.len() as u32;
    let items = chunks.into_iter().enumerate().map(move |(i, text)| {
        let model = (i == 0).then(|| model.clone());
        (
            i,
            Chunk {
                text,
                model,
                ..Chunk::default()
            },
        )
    });
    let body = stream::unfold((items, Some(end)), move |(mut items, end)| async move {
        match items.next() {
            Some((i, chunk)) => {
                if i > 0 && !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                Some((Ok(chunk), (items, end)))
            }
            None => match end {
                Some(End::Finish(reason)) => {
                    let last = Chunk {
                        finish_reason: Some(reason),
                        usage: Some(Usage::new(1, output)),
                        ..Chunk::default()
                    };
                    Some((Ok(last), (items, None)))
                }
                Some(End::Clean) | None => None,
                Some(End::Fail(e)) => Some((Err(e), (items, None))),
                Some(End::Hang) => std::future::pending().await,
            },
        }
    });
    Box::pin(body)
}
