//! Start-up configuration.

use std::time::Duration;

/// How a simulator instance behaves when no fault applies.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Delay before response headers, every request.
    pub latency: Duration,
    /// Streaming: delay between the headers/preamble and the first content chunk.
    pub ttft: Duration,
    /// Streaming: delay between content chunks.
    pub chunk_delay: Duration,
    /// Content chunks per reply (values below 1 count as 1).
    pub chunks: usize,
    /// Seed for random faults; the same seed and request order give the same faults.
    pub seed: u64,
    /// Keep a request log (the last [`crate::MAX_RECORDED`] requests).
    pub record: bool,
    /// Answer a conversation that ends with an assistant message (prefill) with a 400, as
    /// recent Claude models do.
    pub reject_prefill: bool,
    /// A continuation repeats this many characters of the partial answer before going on.
    pub continuation_overlap: usize,
}

impl Default for SimConfig {
    /// Zero delays, 8 chunks, seed 0, recording on, prefill accepted, exact continuations.
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            ttft: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            chunks: 8,
            seed: 0,
            record: true,
            reject_prefill: false,
            continuation_overlap: 0,
        }
    }
}
