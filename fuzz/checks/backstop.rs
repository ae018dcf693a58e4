//! The checks behind the `backstop` fuzz targets, shared with the corpus replay test
//! (`crates/backstop/tests/fuzz_corpus.rs` includes this file): each takes raw bytes, must not
//! panic, and asserts the properties noted on it.
#![allow(dead_code)]

use backstop::providers::fuzzing::{self, StreamEnd, StreamOutcome};

/// Inputs up to this size are also split at every byte; longer ones at a few chosen points.
const SMALL: usize = 512;

/// A cheap, deterministic hash of the input (FNV-1a), to pick split points.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Ways to cut `data` into chunks besides "whole": one byte at a time (small inputs), and
/// three cuttings at points derived from the input's hash (two-way, three-way, and a fixed
/// stride). Each is a list of chunk boundaries.
fn splits(data: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut out = Vec::new();
    let n = data.len();
    if n < 2 {
        return out;
    }
    if n <= SMALL {
        out.push(data.chunks(1).collect());
    }
    let h = hash(data);
    let a = (h as usize) % n;
    let b = ((h >> 32) as usize) % n;
    let (lo, hi) = (a.min(b), a.max(b));
    out.push(vec![&data[..a], &data[a..]]);
    out.push(vec![&data[..lo], &data[lo..hi], &data[hi..]]);
    let stride = 1 + (h >> 48) as usize % 17;
    out.push(data.chunks(stride).collect());
    out
}

/// SSE decoder: never panics, and the events, the stop error and the "mid-event" flag do not
/// depend on how the bytes were chunked.
pub fn sse_decoder(data: &[u8]) {
    let whole = fuzzing::decode_sse([data]);
    for chunks in splits(data) {
        let cuts: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        let split = fuzzing::decode_sse(chunks);
        assert_eq!(whole, split, "chunk sizes {cuts:?}");
    }
    for event in &whole.0 {
        // A dispatched event never holds a line end in its type or id, and its data holds
        // `\n` only as the joiner of `data:` lines.
        assert!(!event.data.contains('\r'), "{event:?}");
        for field in [&event.event, &event.id].into_iter().flatten() {
            assert!(!field.contains(['\r', '\n']), "{event:?}");
        }
    }
}

/// Properties of a parsed stream that hold whatever the input.
fn check_stream(outcome: &StreamOutcome) {
    // The model is reported once, on the first chunk, or never.
    assert!(
        outcome.chunks.iter().skip(1).all(|c| c.model.is_none()),
        "{outcome:?}"
    );
    if let StreamEnd::Failed(e) = &outcome.end {
        // Rendering the error must not panic either.
        assert!(!e.to_string().is_empty());
    }
}

/// A stream parser over `chunks`; the same outcome however the bytes are cut.
fn stream(data: &[u8], parse: impl Fn(Vec<&[u8]>) -> StreamOutcome) {
    let whole = parse(vec![data]);
    check_stream(&whole);
    for chunks in splits(data) {
        let cuts: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(whole, parse(chunks), "chunk sizes {cuts:?}");
    }
}

/// Error statuses every error body is classified under.
const STATUSES: [u16; 8] = [400, 401, 403, 404, 413, 429, 500, 503];

/// OpenAI completion body: parses or fails without panicking; the same bytes as an error body
/// classify under every status, keeping the status and always with a message (the
/// provider's, the body, or the status text).
pub fn openai_completion(data: &[u8]) {
    if let Err(e) = fuzzing::parse_openai_completion(data) {
        assert!(!e.to_string().is_empty());
    }
    for status in STATUSES {
        let e = fuzzing::classify_openai_error(status, data);
        assert_eq!(e.status, Some(status));
        assert!(!e.message.is_empty());
    }
}

/// OpenAI SSE stream: no panic, chunking does not matter, model reported once.
pub fn openai_stream(data: &[u8]) {
    stream(data, |c: Vec<&[u8]>| fuzzing::parse_openai_stream(c));
}

/// Anthropic message body and error bodies, as for OpenAI.
pub fn anthropic_completion(data: &[u8]) {
    if let Err(e) = fuzzing::parse_anthropic_message(data) {
        assert!(!e.to_string().is_empty());
    }
    for status in STATUSES {
        let e = fuzzing::classify_anthropic_error(status, data);
        assert_eq!(e.status, Some(status));
        assert!(!e.message.is_empty());
    }
}

/// Anthropic SSE stream, as for OpenAI.
pub fn anthropic_stream(data: &[u8]) {
    stream(data, |c: Vec<&[u8]>| fuzzing::parse_anthropic_stream(c));
}
