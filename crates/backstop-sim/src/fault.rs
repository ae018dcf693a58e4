//! Faults the simulator can inject, and the plan that decides which request gets which.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One failure mode applied to one request.
///
/// JSON form (control API): externally tagged, snake_case, e.g. `{"status":503}`,
/// `{"rate_limited":{"retry_after_secs":1}}`, `"context_length"`, `"hang"`,
/// `{"latency_ms":250}`, `{"disconnect":{"after_chunks":2}}`,
/// `{"in_band_error":{"after_chunks":1,"status":529}}`.
///
/// "Chunks" always means *content* chunks: OpenAI/Groq chunks carrying
/// `delta.content`, Anthropic `content_block_delta` events. The preamble (OpenAI role
/// chunk; Anthropic `message_start`, `content_block_start`, `ping`) is sent before
/// them, so `after_chunks: 0` fails before the first token. `after_chunks` larger
/// than the reply's chunk count is capped at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FaultRepr", into = "FaultRepr")]
pub enum Fault {
    /// That status with the provider's own error body (non-4xx/5xx values become 500).
    Status(u16),
    /// 429 with rate-limit body and `retry-after` (seconds or HTTP date) / `retry-after-ms`.
    RateLimited {
        /// `retry-after: N` (seconds).
        retry_after_secs: Option<u64>,
        /// `retry-after-ms: N`.
        retry_after_ms: Option<u64>,
        /// Send `retry-after` as an HTTP date (now + `retry_after_secs`, default 1 s).
        retry_after_http_date: bool,
    },
    /// 400 context-length error (OpenAI code `context_length_exceeded`; Anthropic
    /// `invalid_request_error` "prompt is too long: N tokens > M maximum").
    ContextLength,
    /// OpenAI/Groq: 400 with code `content_filter`. Anthropic: 200 with
    /// `stop_reason: "refusal"` and no content (streamed: no content block).
    ContentFilter,
    /// 200 whose body is not JSON (streaming: a `data:` event that is not JSON, then end).
    MalformedBody,
    /// Never sends headers, until the client gives up (or the simulator shuts down).
    Hang,
    /// Extra delay before the headers of this request.
    Latency(Duration),
    /// Streaming: N content chunks, then the connection is aborted mid-body.
    /// Non-streaming: 200 headers and half the JSON body, then aborted.
    Disconnect {
        /// Content chunks sent first.
        after_chunks: usize,
    },
    /// Streaming: N content chunks, then a clean end without `[DONE]` / `message_stop`.
    /// Non-streaming: 200 with the JSON body cut in half (clean end, valid length).
    Truncate {
        /// Content chunks sent first.
        after_chunks: usize,
    },
    /// Streaming: N content chunks, then `data: {not json`, then a clean end.
    /// Non-streaming: same as [`Fault::MalformedBody`].
    MalformedChunk {
        /// Content chunks sent first.
        after_chunks: usize,
    },
    /// Streaming: N content chunks, then an in-band error event, then a clean end.
    /// Non-streaming: same as [`Fault::Status`] with `status`.
    InBandError {
        /// Content chunks sent first.
        after_chunks: usize,
        /// Status whose error type/message the event carries.
        status: u16,
    },
    /// Streaming: N content chunks, then nothing more while the connection stays open.
    /// Non-streaming: 200 headers and half the JSON body, then nothing more.
    Stall {
        /// Content chunks sent first.
        after_chunks: usize,
    },
    /// Streaming: the whole answer with its finish reason and usage, then a clean end without
    /// the terminal marker (`data: [DONE]` / `message_stop`): complete by the finish rule.
    /// Non-streaming: an ordinary answer.
    NoTerminalMarker,
    /// Streaming: N content chunks, an unparseable event, then the rest of the answer as usual
    /// (a provider that emits one garbled event). Non-streaming: an ordinary answer.
    GarbledEvent {
        /// Content chunks sent first.
        after_chunks: usize,
    },
}

/// Serde mirror of [`Fault`] (durations as milliseconds, optional fields defaulted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum FaultRepr {
    Status(u16),
    RateLimited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        #[serde(default)]
        retry_after_http_date: bool,
    },
    ContextLength,
    ContentFilter,
    MalformedBody,
    Hang,
    LatencyMs(u64),
    Disconnect {
        #[serde(default)]
        after_chunks: usize,
    },
    Truncate {
        #[serde(default)]
        after_chunks: usize,
    },
    MalformedChunk {
        #[serde(default)]
        after_chunks: usize,
    },
    InBandError {
        #[serde(default)]
        after_chunks: usize,
        status: u16,
    },
    Stall {
        #[serde(default)]
        after_chunks: usize,
    },
    NoTerminalMarker,
    GarbledEvent {
        #[serde(default)]
        after_chunks: usize,
    },
}

impl From<FaultRepr> for Fault {
    fn from(r: FaultRepr) -> Self {
        match r {
            FaultRepr::Status(s) => Fault::Status(s),
            FaultRepr::RateLimited {
                retry_after_secs,
                retry_after_ms,
                retry_after_http_date,
            } => Fault::RateLimited {
                retry_after_secs,
                retry_after_ms,
                retry_after_http_date,
            },
            FaultRepr::ContextLength => Fault::ContextLength,
            FaultRepr::ContentFilter => Fault::ContentFilter,
            FaultRepr::MalformedBody => Fault::MalformedBody,
            FaultRepr::Hang => Fault::Hang,
            FaultRepr::LatencyMs(ms) => Fault::Latency(Duration::from_millis(ms)),
            FaultRepr::Disconnect { after_chunks } => Fault::Disconnect { after_chunks },
            FaultRepr::Truncate { after_chunks } => Fault::Truncate { after_chunks },
            FaultRepr::MalformedChunk { after_chunks } => Fault::MalformedChunk { after_chunks },
            FaultRepr::InBandError {
                after_chunks,
                status,
            } => Fault::InBandError {
                after_chunks,
                status,
            },
            FaultRepr::Stall { after_chunks } => Fault::Stall { after_chunks },
            FaultRepr::NoTerminalMarker => Fault::NoTerminalMarker,
            FaultRepr::GarbledEvent { after_chunks } => Fault::GarbledEvent { after_chunks },
        }
    }
}

impl From<Fault> for FaultRepr {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Status(s) => FaultRepr::Status(s),
            Fault::RateLimited {
                retry_after_secs,
                retry_after_ms,
                retry_after_http_date,
            } => FaultRepr::RateLimited {
                retry_after_secs,
                retry_after_ms,
                retry_after_http_date,
            },
            Fault::ContextLength => FaultRepr::ContextLength,
            Fault::ContentFilter => FaultRepr::ContentFilter,
            Fault::MalformedBody => FaultRepr::MalformedBody,
            Fault::Hang => FaultRepr::Hang,
            Fault::Latency(d) => {
                FaultRepr::LatencyMs(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }
            Fault::Disconnect { after_chunks } => FaultRepr::Disconnect { after_chunks },
            Fault::Truncate { after_chunks } => FaultRepr::Truncate { after_chunks },
            Fault::MalformedChunk { after_chunks } => FaultRepr::MalformedChunk { after_chunks },
            Fault::InBandError {
                after_chunks,
                status,
            } => FaultRepr::InBandError {
                after_chunks,
                status,
            },
            Fault::Stall { after_chunks } => FaultRepr::Stall { after_chunks },
            Fault::NoTerminalMarker => FaultRepr::NoTerminalMarker,
            Fault::GarbledEvent { after_chunks } => FaultRepr::GarbledEvent { after_chunks },
        }
    }
}

impl Fault {
    /// Checks values the wire cannot express (status outside 400..=599).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Fault::Status(s) | Fault::InBandError { status: s, .. } if !(400..=599).contains(s) => {
                Err(format!(
                    "status {s} is not an error status (expected 400..=599)"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Which requests a random fault applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Streamed and non-streamed requests (the default).
    #[default]
    All,
    /// Streamed requests only (mid-stream faults that a whole body cannot show).
    Stream,
    /// Non-streamed requests only.
    NonStream,
}

impl Scope {
    fn covers(self, stream: bool) -> bool {
        match self {
            Scope::All => true,
            Scope::Stream => stream,
            Scope::NonStream => !stream,
        }
    }
}

/// Queued and random faults; the rng is seeded so decisions repeat per request order.
#[derive(Debug)]
pub(crate) struct FaultPlan {
    queue: VecDeque<(u32, Fault)>,
    random: Vec<(Fault, f64, Scope)>,
    rng: SmallRng,
    seed: u64,
}

impl FaultPlan {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            random: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
            seed,
        }
    }

    /// True when some fault may apply (the server skips the lock otherwise).
    pub(crate) fn is_active(&self) -> bool {
        !self.queue.is_empty() || !self.random.is_empty()
    }

    pub(crate) fn push_next(&mut self, n: u32, fault: Fault) {
        if n > 0 {
            self.queue.push_back((n, fault));
        }
    }

    pub(crate) fn push_random(&mut self, fault: Fault, rate: f64, scope: Scope) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.random.push((fault, rate, scope));
    }

    /// Drops every fault and reseeds the rng, so a new plan replays identically.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.random.clear();
        self.rng = SmallRng::seed_from_u64(self.seed);
    }

    /// The fault for the next request: the queue first (FIFO), else one draw per
    /// random entry in insertion order (entries outside their scope never hit), first hit wins.
    pub(crate) fn next_fault(&mut self, stream: bool) -> Option<Fault> {
        if let Some((remaining, fault)) = self.queue.front_mut() {
            let fault = fault.clone();
            *remaining -= 1;
            if *remaining == 0 {
                self.queue.pop_front();
            }
            return Some(fault);
        }
        let mut hit = None;
        for (fault, rate, scope) in &self.random {
            let draw: f64 = self.rng.random();
            if hit.is_none() && scope.covers(stream) && draw < *rate {
                hit = Some(fault.clone());
            }
        }
        hit
    }

    pub(crate) fn queued(&self) -> u64 {
        self.queue.iter().map(|(n, _)| u64::from(*n)).sum()
    }

    pub(crate) fn random_entries(&self) -> &[(Fault, f64, Scope)] {
        &self.random
    }

    pub(crate) fn queue_entries(&self) -> impl Iterator<Item = &(u32, Fault)> {
        self.queue.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let faults = [
            Fault::Status(503),
            Fault::RateLimited {
                retry_after_secs: Some(2),
                retry_after_ms: None,
                retry_after_http_date: true,
            },
            Fault::ContextLength,
            Fault::Hang,
            Fault::Latency(Duration::from_millis(250)),
            Fault::InBandError {
                after_chunks: 1,
                status: 529,
            },
            Fault::Stall { after_chunks: 3 },
            Fault::NoTerminalMarker,
            Fault::GarbledEvent { after_chunks: 2 },
        ];
        for f in faults {
            let s = serde_json::to_string(&f).unwrap();
            let back: Fault = serde_json::from_str(&s).unwrap();
            assert_eq!(back, f, "{s}");
        }
        let f: Fault = serde_json::from_str(r#"{"rate_limited":{"retry_after_secs":1}}"#).unwrap();
        assert_eq!(
            f,
            Fault::RateLimited {
                retry_after_secs: Some(1),
                retry_after_ms: None,
                retry_after_http_date: false
            }
        );
        assert!(serde_json::from_str::<Fault>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn scoped_random_faults_hit_only_their_requests() {
        let mut p = FaultPlan::new(1);
        p.push_random(Fault::Stall { after_chunks: 2 }, 1.0, Scope::Stream);
        p.push_random(Fault::Status(500), 1.0, Scope::NonStream);
        for _ in 0..20 {
            assert_eq!(p.next_fault(true), Some(Fault::Stall { after_chunks: 2 }));
            assert_eq!(p.next_fault(false), Some(Fault::Status(500)));
        }
        let json = r#"{"rate":0.5,"fault":"hang","scope":"stream"}"#;
        let r: crate::control::RandomFault = serde_json::from_str(json).unwrap();
        assert_eq!(r.scope, Scope::Stream);
    }

    #[test]
    fn queue_is_fifo_and_exact() {
        let mut p = FaultPlan::new(0);
        p.push_next(2, Fault::Status(500));
        p.push_next(1, Fault::Hang);
        assert_eq!(p.next_fault(false), Some(Fault::Status(500)));
        assert_eq!(p.next_fault(false), Some(Fault::Status(500)));
        assert_eq!(p.next_fault(false), Some(Fault::Hang));
        assert_eq!(p.next_fault(false), None);
        assert!(!p.is_active());
    }
}
