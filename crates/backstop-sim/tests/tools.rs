//! Tool calls, tool results, structured output and images in both wire formats, streamed and
//! not, with faults still applying.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use backstop_sim::Fault;
use common::*;
use serde_json::{Value, json};

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]})
}

fn openai_tools(messages: Value, stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": messages,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}]})
}

fn anthropic_tools(messages: Value, stream: bool) -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "stream": stream, "messages": messages,
        "tools": [{"name": "get_weather", "input_schema": weather_schema()}]})
}

fn data(events: &[Sse]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect()
}

#[tokio::test]
async fn openai_answers_offered_tools_with_a_tool_call_whole_and_streamed() {
    let sim = sim().await;
    let ask = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let v = json_of(post(&Route::OpenAi.url(&sim), &openai_tools(ask.clone(), false)).await).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null(), "{v}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "sim", "days": 1}));

    let (text, failed) =
        read_all(post(&Route::OpenAi.url(&sim), &openai_tools(ask, true)).await).await;
    assert!(!failed);
    let chunks = data(&parse_sse(&text));
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
    assert!(
        first["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), args);
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")]);
    assert!(text.ends_with("data: [DONE]\n\n"));
    sim.shutdown().await;
}

#[tokio::test]
async fn anthropic_answers_offered_tools_with_tool_use_whole_and_streamed() {
    let sim = sim().await;
    let ask = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let v = json_of(
        post(
            &Route::Anthropic.url(&sim),
            &anthropic_tools(ask.clone(), false),
        )
        .await,
    )
    .await;
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["input"], json!({"city": "sim", "days": 1}));

    let (text, _) =
        read_all(post(&Route::Anthropic.url(&sim), &anthropic_tools(ask, true)).await).await;
    let events = parse_sse(&text);
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let v = data(&events);
    let start = v
        .iter()
        .find(|e| e["type"] == "content_block_start")
        .unwrap();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["input"], json!({}));
    let partial: String = v
        .iter()
        .filter(|e| e["delta"]["type"] == "input_json_delta")
        .map(|e| e["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"city": "sim", "days": 1})
    );
    let delta = v.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_tool_result_gets_a_final_answer_quoting_it() {
    let sim = sim().await;
    let openai = openai_tools(
        json!([{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"}]),
        false,
    );
    let v = json_of(post(&Route::OpenAi.url(&sim), &openai).await).await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("Simulated answer from openai after the tool returned: sunny, 21C."),
        "{text}"
    );

    let anthropic = anthropic_tools(
        json!([{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny, 21C"}]}]),
        true,
    );
    let (text, _) = read_all(post(&Route::Anthropic.url(&sim), &anthropic).await).await;
    let (answer, _) = content_text(&parse_sse(&text));
    assert!(
        answer.starts_with("Simulated answer from anthropic after the tool returned: sunny, 21C."),
        "{answer}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn structured_output_answers_json_valid_against_the_schema() {
    let sim = sim().await;
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}}, "required": ["name", "age"], "additionalProperties": false});
    let body = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "Who?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": schema}}});
    let v = json_of(post(&Route::OpenAi.url(&sim), &body).await).await;
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"name": "sim", "age": 18})
    );

    let body = json!({"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": "Who?"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}}});
    let v = json_of(post(&Route::Anthropic.url(&sim), &body).await).await;
    let text = v["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"name": "sim", "age": 18})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn image_parts_are_accepted_and_recorded() {
    let sim = sim().await;
    let body = json!({"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "text", "text": "What is this?"}]}]});
    let v = json_of(post(&Route::Anthropic.url(&sim), &body).await).await;
    assert!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Simulated answer from anthropic to: What is this?")
    );
    assert_eq!(
        sim.requests()[0].body["messages"][0]["content"][0]["source"]["media_type"],
        "image/png"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_apply_to_tool_calls() {
    let sim = sim().await;
    sim.fail_next(1, Fault::Disconnect { after_chunks: 2 });
    let ask = json!([{"role": "user", "content": "Weather?"}]);
    let (text, failed) =
        read_all(post(&Route::OpenAi.url(&sim), &openai_tools(ask.clone(), true)).await).await;
    assert!(failed, "the stream is cut");
    assert!(
        !text.contains(r#""finish_reason":"tool_calls""#),
        "no finish: {text}"
    );
    sim.fail_next(1, Fault::Status(503));
    let r = post(&Route::Anthropic.url(&sim), &anthropic_tools(ask, false)).await;
    assert_eq!(r.status(), 503);
    sim.shutdown().await;
}
