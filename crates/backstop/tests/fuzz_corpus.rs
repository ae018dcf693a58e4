//! Replays every committed fuzz corpus seed of the `backstop` targets (`fuzz/corpus/<target>/`)
//! through the same checks the fuzz targets run (`fuzz/checks/backstop.rs`), so a crash the
//! fuzzer once found, once its input is saved there, stays fixed under plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../../fuzz/checks/backstop.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

use replay::{replay, seeds};

#[test]
fn sse_decoder_corpus() {
    replay("sse_decoder", checks::sse_decoder);
}

#[test]
fn openai_completion_corpus() {
    replay("openai_completion", checks::openai_completion);
}

#[test]
fn openai_stream_corpus() {
    replay("openai_stream", checks::openai_stream);
}

#[test]
fn anthropic_completion_corpus() {
    replay("anthropic_completion", checks::anthropic_completion);
}

#[test]
fn anthropic_stream_corpus() {
    replay("anthropic_stream", checks::anthropic_stream);
}

/// The documented fixtures are among the seeds and parse to what the providers' unit tests
/// expect, so the corpus starts from real traffic.
#[test]
fn documented_fixtures_are_seeds_and_parse() {
    use backstop::providers::fuzzing::{self, StreamEnd};
    let openai = seeds("openai_stream");
    let (_, basic) = openai
        .iter()
        .find(|(n, _)| n == "stream_basic.sse")
        .unwrap();
    let out = fuzzing::parse_openai_stream([basic.as_slice()]);
    assert_eq!(out.end, StreamEnd::Done);
    let text: String = out.chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(text, "Hello!");

    let anthropic = seeds("anthropic_stream");
    let (_, basic) = anthropic
        .iter()
        .find(|(n, _)| n == "stream_basic.sse")
        .unwrap();
    assert_eq!(
        fuzzing::parse_anthropic_stream([basic.as_slice()]).end,
        StreamEnd::Done
    );

    let completions = seeds("openai_completion");
    let (_, body) = completions
        .iter()
        .find(|(n, _)| n == "chat_completion.json")
        .unwrap();
    assert!(fuzzing::parse_openai_completion(body).is_ok());
    let messages = seeds("anthropic_completion");
    let (_, body) = messages.iter().find(|(n, _)| n == "message.json").unwrap();
    assert!(fuzzing::parse_anthropic_message(body).is_ok());
}
