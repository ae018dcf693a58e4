//! Tool calls, structured output and images in both wire formats, read from the providers'
//! documented bodies and streams (`tests/fixtures/`).

use backstop::providers::fuzzing::{
    StreamEnd, parse_anthropic_message, parse_anthropic_stream, parse_openai_completion,
    parse_openai_stream,
};
use backstop::{FinishReason, ToolCall, ToolCallAccumulator};

fn assemble(chunks: &[backstop::Chunk]) -> Vec<ToolCall> {
    let mut acc = ToolCallAccumulator::default();
    for d in chunks.iter().flat_map(|c| &c.tool_calls) {
        acc.push(d);
    }
    acc.calls()
}

#[test]
fn openai_documented_tool_call_parses() {
    let c = parse_openai_completion(include_bytes!("fixtures/openai/tool_calls_completion.json"))
        .unwrap();
    assert_eq!(c.text, "");
    assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        c.tool_calls,
        vec![ToolCall::new(
            "call_abc123",
            "get_current_weather",
            "{\n\"location\": \"Boston, MA\"\n}"
        )]
    );
}

#[test]
fn openai_documented_parallel_tool_calls_keep_their_order() {
    let c = parse_openai_completion(include_bytes!(
        "fixtures/openai/parallel_tool_calls_completion.json"
    ))
    .unwrap();
    let ids: Vec<&str> = c.tool_calls.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["call_12345xyz", "call_67890abc"]);
    assert_eq!(
        c.tool_calls[1].arguments,
        "{\"location\":\"Bogotá, Colombia\"}"
    );
}

#[test]
fn openai_streamed_tool_call_fragments_assemble_into_whole_calls() {
    let input = include_bytes!("fixtures/openai/stream_tool_calls.sse");
    // Whole, and fed byte by byte: the same calls.
    for outcome in [
        parse_openai_stream([&input[..]]),
        parse_openai_stream(input.chunks(1)),
    ] {
        assert_eq!(outcome.end, StreamEnd::Done);
        assert_eq!(
            assemble(&outcome.chunks),
            vec![
                ToolCall::new(
                    "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "get_current_weather",
                    "{\"location\":\"Boston, MA\"}"
                ),
                ToolCall::new(
                    "call_9a3B7nQy0pXoVvK2Lr8sTj5u",
                    "get_current_weather",
                    "{\"location\":\"Tokyo\"}"
                ),
            ]
        );
        // The first fragment commits the stream: it is content.
        assert!(outcome.chunks[0].is_content());
        assert_eq!(
            outcome.chunks.last().unwrap().finish_reason,
            Some(FinishReason::ToolCalls)
        );
    }
}

#[test]
fn openai_stream_cut_inside_tool_arguments_is_an_error_not_a_call() {
    let input = include_str!("fixtures/openai/stream_tool_calls.sse");
    let cut = input.find("Boston").unwrap();
    let outcome = parse_openai_stream([&input.as_bytes()[..cut]]);
    assert!(
        matches!(outcome.end, StreamEnd::Truncated(_)),
        "{:?}",
        outcome.end
    );
}

#[test]
fn openai_documented_structured_output_is_message_content() {
    let c = parse_openai_completion(include_bytes!(
        "fixtures/openai/structured_output_completion.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&c.text).unwrap();
    assert_eq!(v["final_answer"], "x = -15/4");
}

#[test]
fn anthropic_documented_tool_use_parses_to_a_call_with_json_arguments() {
    let c = parse_anthropic_message(include_bytes!("fixtures/anthropic/message_tool_use.json"))
        .unwrap();
    assert!(c.text.starts_with("<thinking>"));
    assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(c.tool_calls.len(), 1);
    let call = &c.tool_calls[0];
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    );
    let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(
        args,
        serde_json::json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
}

#[test]
fn anthropic_documented_input_json_deltas_assemble_into_the_call() {
    let input = include_bytes!("fixtures/anthropic/stream_tool_use.sse");
    for outcome in [
        parse_anthropic_stream([&input[..]]),
        parse_anthropic_stream(input.chunks(7)),
    ] {
        assert_eq!(outcome.end, StreamEnd::Done);
        let text: String = outcome.chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(text, "Okay, let's check the weather for San Francisco, CA:");
        let calls = assemble(&outcome.chunks);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
        let args: serde_json::Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(
            args,
            serde_json::json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
        );
        // The call is number 0 of the answer although it is content block 1.
        assert!(
            outcome
                .chunks
                .iter()
                .flat_map(|c| &c.tool_calls)
                .all(|d| d.index == 0)
        );
        assert_eq!(
            outcome.chunks.last().unwrap().finish_reason,
            Some(FinishReason::ToolCalls)
        );
    }
}

#[test]
fn anthropic_stream_cut_inside_tool_arguments_is_an_error_not_a_call() {
    let input = include_str!("fixtures/anthropic/stream_tool_use.sse");
    let cut = input.find("renheit").unwrap();
    let outcome = parse_anthropic_stream([&input.as_bytes()[..cut]]);
    assert!(
        matches!(outcome.end, StreamEnd::Truncated(_)),
        "{:?}",
        outcome.end
    );
    // A finish arriving while a tool block is still open is refused too.
    let start = input
        .find("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}")
        .unwrap();
    let skipped = format!(
        "{}{}",
        &input[..start],
        &input[input.find("event: message_delta").unwrap()..]
    );
    let outcome = parse_anthropic_stream([skipped.as_bytes()]);
    match outcome.end {
        StreamEnd::Failed(e) => assert!(e.message.contains("inside a tool call"), "{e}"),
        other => panic!("{other:?}"),
    }
}
