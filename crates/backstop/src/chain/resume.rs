//! Stream resume: when a committed stream breaks, the next provider continues the answer from
//! the text already delivered, and the caller sees one stream.
//!
//! The continuation request is the original conversation plus the delivered text, in the form
//! the target takes: assistant prefill (the partial answer as a trailing assistant message)
//! where accepted, else the partial answer quoted in a user message asking to continue from
//! exactly that point — a form every chat model accepts. A 400 to prefill switches the
//! provider to the quoted form, remembered per provider. The seam drops a continuation's
//! restatement of the text already delivered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{Instrument, Span};

use super::attempt::Reply;
use super::policy::Step;
use super::trace::{self, AttemptMeta, AttemptSpan, Role};
use super::{ChainInner, stream::open_until_content};
use crate::{
    Attempt, AttemptOutcome, ChatRequest, Chunk, ChunkStream, ErrorKind, Message, Permit,
    ProviderError,
};

/// How a continuation request is phrased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// The partial answer as a trailing assistant message.
    Prefill,
    /// The partial answer quoted in a user message asking for the rest.
    Ask,
}

/// What a provider is known to accept (per chain entry, shared by every request).
#[derive(Debug, Default)]
pub(crate) struct FormMemory(AtomicU8);

impl FormMemory {
    fn get(&self) -> Form {
        match self.0.load(Ordering::Relaxed) {
            2 => Form::Ask,
            _ => Form::Prefill,
        }
    }
    fn set(&self, form: Form) {
        self.0.store(
            match form {
                Form::Prefill => 1,
                Form::Ask => 2,
            },
            Ordering::Relaxed,
        );
    }
}

/// The request that asks for the rest of `delivered`.
pub(super) fn continuation(request: &ChatRequest, delivered: &str, form: Form) -> ChatRequest {
    let mut r = request.clone();
    r.messages.push(Message::assistant(delivered));
    if form == Form::Ask {
        r.messages.push(Message::user(format!(
            "Your previous answer was cut off. Continue it from exactly where it stopped: do not \
             repeat any of it, add no preamble, start with the very next characters. The answer \
             so far, between the markers:\n<<<\n{delivered}\n>>>"
        )));
    }
    r
}

/// Shortest restatement the seam drops (shorter matches are likely real text).
const MIN_OVERLAP: usize = 3;
/// Longest end of the delivered text a continuation is checked against.
const MAX_OVERLAP: usize = 256;
/// A continuation that restarts the whole answer is recognised up to this length.
const MAX_RESTART: usize = 16 * 1024;

/// Joins a continuation onto the delivered text: holds back the continuation's first
/// characters while they could still be a restatement of the delivered text's end (or of all
/// of it), then drops the restatement and lets the rest through.
#[derive(Debug)]
pub(super) struct Seam {
    delivered: String,
    held: String,
    decided: bool,
}

impl Seam {
    pub(super) fn new(delivered: &str) -> Self {
        Self {
            delivered: delivered.to_owned(),
            held: String::new(),
            decided: false,
        }
    }

    /// The text to pass on for this piece of the continuation (empty while held back).
    pub(super) fn push(&mut self, text: &str) -> String {
        if self.decided {
            return text.to_owned();
        }
        self.held.push_str(text);
        if self.could_still_repeat() {
            return String::new();
        }
        self.decide()
    }

    /// The continuation ended (or a finish reason arrived): whatever is held back, decided now.
    pub(super) fn flush(&mut self) -> String {
        if self.decided {
            String::new()
        } else {
            self.decide()
        }
    }

    /// Start offsets (char boundaries) of the delivered text's candidate restatements.
    fn suffix_starts(&self) -> impl Iterator<Item = usize> + '_ {
        let d = &self.delivered;
        let lowest = d.len().saturating_sub(MAX_OVERLAP);
        (lowest..=d.len().saturating_sub(MIN_OVERLAP))
            .filter(move |p| d.is_char_boundary(*p) && *p < d.len())
    }

    fn could_still_repeat(&self) -> bool {
        let d = &self.delivered;
        let h = &self.held;
        if d.len() <= MAX_RESTART && h.len() < d.len() && d.starts_with(h.as_str()) {
            return true;
        }
        self.suffix_starts()
            .any(|p| d.len() - p > h.len() && d[p..].starts_with(h.as_str()))
    }

    fn decide(&mut self) -> String {
        self.decided = true;
        let d = &self.delivered;
        let h = std::mem::take(&mut self.held);
        let skip = if d.len() <= MAX_RESTART && h.starts_with(d.as_str()) {
            d.len()
        } else {
            self.suffix_starts()
                .find(|&p| h.starts_with(&d[p..]))
                .map_or(0, |p| d.len() - p)
        };
        h[skip..].to_owned()
    }
}

/// One provider taking over a stream: who, and at which byte of the delivered text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Contribution {
    /// The provider (breaker) name.
    pub provider: String,
    /// Bytes of answer text delivered before this provider's part.
    pub offset: usize,
}

impl Contribution {
    /// `provider` wrote the text from byte `offset` on.
    pub fn new(provider: impl Into<String>, offset: usize) -> Self {
        Self {
            provider: provider.into(),
            offset,
        }
    }
}

/// A provider that took over: its committed stream, the chunks read to commit it, its permit.
pub(super) struct Takeover {
    pub(super) stream: ChunkStream,
    pub(super) buffered: Vec<Chunk>,
    pub(super) permit: Permit,
    pub(super) provider: String,
    /// The candidates after it, for a later resume.
    pub(super) rest: Vec<usize>,
}

/// What a stream needs to resume: the chain, the original request, who may still answer.
pub(super) struct Resumer {
    pub(super) chain: Arc<ChainInner>,
    pub(super) request: Arc<ChatRequest>,
    /// Entries not yet used by this request, in its order.
    pub(super) candidates: Vec<usize>,
    pub(super) left: u32,
    /// The request's span, parent of every continuation attempt's.
    pub(super) span: Span,
}

pub(super) type TakeoverFuture =
    Pin<Box<dyn Future<Output = (Option<Takeover>, Vec<Attempt>)> + Send>>;

impl Resumer {
    /// Tries the candidates in order until one continues `delivered`, each with the chain's
    /// retry policy and budget; every try is recorded.
    pub(super) fn takeover(
        &mut self,
        delivered: String,
        deadline: Option<Instant>,
    ) -> TakeoverFuture {
        self.left = self.left.saturating_sub(1);
        let chain = self.chain.clone();
        let request = self.request.clone();
        let mut candidates = std::mem::take(&mut self.candidates);
        let span = self.span.clone();
        Box::pin(async move {
            let mut attempts = Vec::new();
            // Providers not on a rate-limit hold first (a stable sort keeps the order otherwise).
            candidates.sort_by_key(|&i| chain.entries[i].breaker.hold().is_held());
            for (k, &index) in candidates.iter().enumerate() {
                let target = Target {
                    index,
                    delivered: &delivered,
                    deadline,
                    span: &span,
                };
                match continue_on(&chain, &request, target, &mut attempts).await {
                    Continued::Yes(stream, buffered, permit) => {
                        // Next time: those after it, those that failed just now, then itself.
                        let rest = candidates[k + 1..]
                            .iter()
                            .chain(&candidates[..k])
                            .chain([&index])
                            .copied()
                            .collect();
                        let provider = chain.entries[index].breaker.name().to_owned();
                        let takeover = Takeover {
                            stream,
                            buffered,
                            permit,
                            provider,
                            rest,
                        };
                        return (Some(takeover), attempts);
                    }
                    Continued::No => {}
                    Continued::Stop => break,
                }
            }
            (None, attempts)
        })
    }
}

/// How one candidate's continuation went.
enum Continued {
    Yes(ChunkStream, Vec<Chunk>, Permit),
    /// Try the next candidate.
    No,
    /// No candidate may continue: the deadline passed or the error stops the chain.
    Stop,
}

/// Who continues what: the entry, the text delivered so far, the request's deadline and span.
struct Target<'a> {
    index: usize,
    delivered: &'a str,
    deadline: Option<Instant>,
    span: &'a Span,
}

/// One candidate continues `delivered`: prefill first (or the form it is known to take),
/// retried like a first attempt (policy, budget, backoff inside the deadline).
async fn continue_on(
    chain: &ChainInner,
    request: &ChatRequest,
    target: Target<'_>,
    attempts: &mut Vec<Attempt>,
) -> Continued {
    let Target {
        index,
        delivered,
        deadline,
        span: parent,
    } = target;
    let entry = &chain.entries[index];
    let name = entry.breaker.name();
    let policy = chain
        .retry
        .max_retries(entry.options.retries.unwrap_or(chain.retry.max_retries));
    let limit = chain
        .ttft_timeout
        .or(entry.options.attempt_timeout)
        .or(chain.attempt_timeout);
    let mut form = entry.resume_form.get();
    let mut retries_done = 0;
    let mut last_error = None;
    loop {
        let meta = AttemptMeta {
            chain: &chain.name,
            breaker: &entry.breaker,
            operation: "chat",
            model: entry.provider.model(),
            role: Role::Resume,
            retry: retries_done,
        };
        let Ok(permit) = entry.breaker.try_acquire() else {
            trace::skipped(&meta, parent);
            let error = last_error
                .take()
                .unwrap_or_else(ProviderError::circuit_open);
            attempts.push(Attempt::new(
                name,
                AttemptOutcome::Skipped,
                Some(error),
                Duration::ZERO,
            ));
            return Continued::No;
        };
        let begun = Instant::now();
        let left = deadline.map(|d| d.saturating_duration_since(begun));
        if left == Some(Duration::ZERO) {
            return Continued::Stop;
        }
        let budget = match (limit, left) {
            (Some(l), Some(r)) => Some(l.min(r)),
            (l, r) => l.or(r),
        };
        let span = AttemptSpan::new(trace::attempt(
            &meta,
            trace::admitted_state(&meta, permit.is_probe()),
            Some(parent),
        ));
        let req = continuation(request, delivered, form);
        let call = open_until_content(&*entry.provider, &req).instrument(span.span().clone());
        let result = match budget {
            Some(b) => tokio::time::timeout(b, call).await.unwrap_or_else(|_| {
                Err(ProviderError::timeout(format!(
                    "continuation: no first token within {}ms",
                    b.as_millis()
                )))
            }),
            None => call.await,
        };
        let latency = begun.elapsed();
        let error = match result {
            Ok(answer) => {
                let (stream, buffered) = answer.traced(span);
                entry.resume_form.set(form);
                let mut attempt = Attempt::new(name, AttemptOutcome::Success, None, latency);
                attempt.upstream_request_id =
                    buffered.iter().find_map(|c| c.upstream_request_id.clone());
                attempts.push(attempt);
                return Continued::Yes(stream, buffered, permit);
            }
            Err(e) => {
                span.failed(&e);
                e
            }
        };
        let mut attempt = Attempt::new(name, AttemptOutcome::Failed, Some(error.clone()), latency);
        attempt
            .upstream_request_id
            .clone_from(&error.upstream_request_id);
        attempts.push(attempt);
        if form == Form::Prefill && error.kind == ErrorKind::InvalidRequest {
            // The model does not take prefill: ask in words instead, and remember. The permit
            // drops with a neutral verdict; this is not a retry.
            tracing::debug!(provider = name, error = %error, "continuation prefill refused; asking instead");
            form = Form::Ask;
            entry.resume_form.set(form);
            continue;
        }
        permit.record(error.kind.breaker_effect());
        chain.note_rate_limit(entry, error.kind);
        match chain.next_step(entry, error.kind, &policy, retries_done, deadline) {
            Step::Retry(wait) => {
                last_error = Some(error);
                tokio::time::sleep(wait).await;
                retries_done += 1;
            }
            Step::Next => return Continued::No,
            Step::Stop => return Continued::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seam(delivered: &str, pieces: &[&str]) -> String {
        let mut s = Seam::new(delivered);
        let mut out: String = pieces.iter().map(|p| s.push(p)).collect();
        out.push_str(&s.flush());
        out
    }

    #[test]
    fn a_plain_continuation_passes_through() {
        assert_eq!(seam("The cat sat", &[" on", " the mat."]), " on the mat.");
    }

    #[test]
    fn a_restated_end_is_dropped_across_pieces() {
        assert_eq!(
            seam("The cat sat on", &[" sat", " on", " the mat."]),
            " the mat."
        );
        assert_eq!(seam("The cat sat on", &[" sat on the mat."]), " the mat.");
    }

    #[test]
    fn a_restart_of_the_whole_answer_is_dropped() {
        assert_eq!(
            seam("The cat sat", &["The ", "cat sat", " on the mat."]),
            " on the mat."
        );
    }

    #[test]
    fn short_coincidences_are_kept() {
        // Two characters of overlap are more likely real text than a restatement.
        assert_eq!(seam("I said no", &["no", " more."]), "no more.");
    }

    #[test]
    fn held_text_is_flushed_when_the_continuation_ends() {
        assert_eq!(seam("abc def", &[" de"]), " de");
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        assert_eq!(seam("héllo wörld", &["wörld", " ünd"]), " ünd");
    }

    #[test]
    fn continuation_requests_take_both_forms() {
        let r = ChatRequest::user("q");
        let p = continuation(&r, "half an", Form::Prefill);
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.messages[1], Message::assistant("half an"));
        let a = continuation(&r, "half an", Form::Ask);
        assert_eq!(a.messages.len(), 3);
        assert_eq!(a.messages[2].role, crate::Role::User);
        assert!(a.messages[2].content.contains("<<<\nhalf an\n>>>"));
    }
}
