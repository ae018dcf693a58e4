//! Tools, structured output and images over HTTP: the gateway in front of simulators, a chain
//! whose first provider speaks Anthropic's format and fails over to an OpenAI-format one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use backstop_sim::{Fault, SimConfig};
use serde_json::{Value, json};
use support::{Spec, TestGateway, header, sse_data};

/// Anthropic first, then OpenAI; broken streams resume on the next provider.
const CHAIN: &str = "anthropic_first";

async fn start() -> TestGateway {
    TestGateway::start_with(Spec {
        sim: SimConfig {
            record: true,
            ..SimConfig::default()
        },
        extra_toml: format!(
            "\n[chains.{CHAIN}]\nproviders = [\"anthropic\", \"openai\"]\nstream_resume = true\ntimeout = \"5s\"\n"
        ),
        ..Spec::default()
    })
    .await
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }})
}

fn ask() -> Value {
    json!({"role": "user", "content": "What is the weather in Paris?"})
}

/// A chat request: status 200; `(answering provider, body or SSE events)`.
async fn chat(gw: &TestGateway, body: &Value) -> (String, Value) {
    let r = gw.chat(body).await;
    let status = r.status();
    let provider = header(&r, "x-backstop-provider")
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let v = if body["stream"] == true {
        // (Comments, such as a resume seam, carry no data.)
        let events: Vec<String> = sse_data(&text)
            .into_iter()
            .filter(|e| !e.is_empty())
            .collect();
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
        Value::Array(
            events[..events.len() - 1]
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect(),
        )
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (provider, v)
}

/// The assistant message of an answer, streamed (assembled from deltas as the OpenAI SDK
/// does) or not; and its finish reason.
fn message_of(v: &Value) -> (Value, String) {
    let Some(chunks) = v.as_array() else {
        let choice = &v["choices"][0];
        return (
            choice["message"].clone(),
            choice["finish_reason"].as_str().unwrap().to_owned(),
        );
    };
    let mut content = String::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = String::new();
    for c in chunks
        .iter()
        .filter(|c| !c["choices"].as_array().unwrap().is_empty())
    {
        let d = &c["choices"][0]["delta"];
        content.push_str(d["content"].as_str().unwrap_or_default());
        for t in d["tool_calls"].as_array().into_iter().flatten() {
            let i = t["index"].as_u64().unwrap() as usize;
            if i == calls.len() {
                assert!(
                    t["id"].is_string(),
                    "the first fragment names the call: {t}"
                );
                assert_eq!(t["type"], "function");
                calls.push(json!({"id": t["id"], "type": "function",
                    "function": {"name": t["function"]["name"], "arguments": ""}}));
            }
            let args = calls[i]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
                + t["function"]["arguments"].as_str().unwrap_or_default();
            calls[i]["function"]["arguments"] = json!(args);
        }
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish = f.to_owned();
        }
    }
    let mut m = json!({"role": "assistant", "content": if content.is_empty() { Value::Null } else { json!(content) }});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    (m, finish)
}

/// Call → tool result → answer, through `CHAIN`; returns who answered each turn.
async fn round_trip(gw: &TestGateway, stream: bool) -> (String, String) {
    let first =
        json!({"model": CHAIN, "stream": stream, "messages": [ask()], "tools": [weather_tool()]});
    let (p1, v) = chat(gw, &first).await;
    let (call_msg, finish) = message_of(&v);
    assert_eq!(finish, "tool_calls", "{v}");
    assert!(call_msg["content"].is_null(), "{call_msg}");
    let call = &call_msg["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "sim"}), "arguments complete and valid");

    let second = json!({"model": CHAIN, "stream": stream, "tools": [weather_tool()], "messages": [
        ask(), call_msg,
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}
    ]});
    let (p2, v) = chat(gw, &second).await;
    let (answer, finish) = message_of(&v);
    assert_eq!(finish, "stop", "{v}");
    let text = answer["content"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "Simulated answer from {p2} after the tool returned: sunny, 21C."
        )),
        "{text}"
    );
    (p1, p2)
}

#[tokio::test]
async fn tool_round_trip_fails_over_from_anthropic_to_openai() {
    for stream in [false, true] {
        let gw = start().await;
        gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
        assert_eq!(
            round_trip(&gw, stream).await,
            ("openai".into(), "openai".into()),
            "stream: {stream}"
        );
        assert!(
            gw.sim("anthropic").request_count() >= 1,
            "Anthropic was tried first"
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn tool_round_trip_through_anthropic_translates_both_ways() {
    for stream in [false, true] {
        let gw = start().await;
        assert_eq!(
            round_trip(&gw, stream).await,
            ("anthropic".into(), "anthropic".into()),
            "stream: {stream}"
        );
        let sent = gw.sim("anthropic").requests();
        assert_eq!(
            sent[0].body["tools"],
            json!([{"name": "get_weather", "description": "Current weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
        );
        let turn = &sent[1].body["messages"];
        assert_eq!(turn[1]["role"], "assistant");
        assert_eq!(turn[1]["content"][0]["type"], "tool_use");
        assert_eq!(turn[1]["content"][0]["input"], json!({"city": "sim"}));
        assert_eq!(turn[2]["role"], "user");
        assert_eq!(turn[2]["content"][0]["type"], "tool_result");
        assert_eq!(
            turn[2]["content"][0]["tool_use_id"],
            turn[1]["content"][0]["id"]
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn a_stream_that_fails_mid_tool_call_is_not_resumed() {
    let gw = start().await;
    gw.sim("anthropic")
        .fail_next(1, Fault::Disconnect { after_chunks: 3 });
    let body =
        json!({"model": CHAIN, "stream": true, "messages": [ask()], "tools": [weather_tool()]});
    let r = gw.chat(&body).await;
    assert_eq!(r.status(), 200);
    let events = sse_data(&r.text().await.unwrap());
    assert_ne!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(
        last["error"].is_object(),
        "ends with an error event: {last}"
    );
    assert_eq!(gw.sim("openai").request_count(), 0, "not resumed elsewhere");

    // The same break in a text answer is resumed: the chain does resume streams.
    gw.sim("anthropic")
        .fail_next(1, Fault::Disconnect { after_chunks: 3 });
    let text = json!({"model": CHAIN, "stream": true, "messages": [ask()]});
    let (_, v) = chat(&gw, &text).await;
    assert_eq!(message_of(&v).1, "stop");
    assert_eq!(gw.sim("openai").request_count(), 1, "resumed on OpenAI");
    gw.shutdown().await;
}

#[tokio::test]
async fn json_schema_answers_are_parseable_json_from_either_format() {
    let gw = start().await;
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": false});
    let body = json!({"model": CHAIN, "messages": [{"role": "user", "content": "Invent a person."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": schema}}});
    for (fault, provider) in [(None, "anthropic"), (Some(Fault::Status(503)), "openai")] {
        if let Some(f) = fault {
            gw.sim("anthropic").set_random(f, 1.0);
        }
        for stream in [false, true] {
            let mut b = body.clone();
            b["stream"] = json!(stream);
            let (p, v) = chat(&gw, &b).await;
            assert_eq!(p, provider);
            let (m, finish) = message_of(&v);
            assert_eq!(finish, "stop");
            let parsed: Value = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
            assert_eq!(
                parsed,
                json!({"name": "sim", "age": 1}),
                "{provider} stream={stream}"
            );
        }
    }
    let sent = gw.sim("anthropic").requests();
    assert_eq!(sent[0].body["output_config"]["format"]["schema"], schema);
    assert_eq!(
        gw.sim("openai").requests()[0].body["response_format"]["json_schema"]["strict"],
        true
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn json_object_mode_answers_a_json_object_via_anthropic() {
    let gw = start().await;
    for stream in [false, true] {
        let body = json!({"model": CHAIN, "stream": stream,
            "messages": [{"role": "user", "content": "Give JSON."}],
            "response_format": {"type": "json_object"}});
        let (p, v) = chat(&gw, &body).await;
        assert_eq!(p, "anthropic");
        let (m, finish) = message_of(&v);
        assert_eq!(
            finish, "stop",
            "the forced tool is an answer, not a tool call: {v}"
        );
        assert!(m.get("tool_calls").is_none(), "{m}");
        let parsed: Value = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
        assert_eq!(
            parsed,
            json!({"answer": "simulated by backstop-sim"}),
            "stream: {stream}"
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn image_parts_reach_anthropic_as_image_blocks() {
    let gw = start().await;
    let body = json!({"model": CHAIN, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    ]}]});
    let (p, v) = chat(&gw, &body).await;
    assert_eq!(p, "anthropic");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Simulated answer from anthropic to: What is in these?"),
        "{v}"
    );
    let content = &gw.sim("anthropic").requests()[0].body["messages"][0]["content"];
    assert_eq!(
        *content,
        json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.invalid/cat.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
        ])
    );
    // Passed through unchanged to an OpenAI-format provider.
    gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
    let (p, _) = chat(&gw, &body).await;
    assert_eq!(p, "openai");
    assert_eq!(
        gw.sim("openai").requests()[0].body["messages"][0]["content"],
        body["messages"][0]["content"]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn parallel_tool_calls_arrive_whole_and_in_order_from_either_format() {
    let gw = start().await;
    let time_tool = json!({"type": "function", "function": {"name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}});
    for (fault, provider) in [(None, "anthropic"), (Some(Fault::Status(503)), "openai")] {
        if let Some(f) = fault {
            gw.sim("anthropic").set_random(f, 1.0);
        }
        for stream in [false, true] {
            let body = json!({"model": CHAIN, "stream": stream, "messages": [ask()],
                "tools": [weather_tool(), time_tool.clone()]});
            let (p, v) = chat(&gw, &body).await;
            assert_eq!(p, provider);
            let (m, finish) = message_of(&v);
            assert_eq!(finish, "tool_calls");
            let calls = m["tool_calls"].as_array().unwrap();
            let names: Vec<&str> = calls
                .iter()
                .map(|c| c["function"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                ["get_weather", "get_time"],
                "{provider} stream={stream}: {m}"
            );
            assert_ne!(calls[0]["id"], calls[1]["id"]);
            let args: Vec<Value> = calls
                .iter()
                .map(|c| {
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap()
                })
                .collect();
            assert_eq!(args, [json!({"city": "sim"}), json!({"zone": "sim"})]);

            // Parallel calls off: one call, and Anthropic is told so.
            let mut one = body.clone();
            one["parallel_tool_calls"] = json!(false);
            let (_, v) = chat(&gw, &one).await;
            let (m, _) = message_of(&v);
            assert_eq!(m["tool_calls"].as_array().unwrap().len(), 1, "{m}");
        }
    }
    let sent = gw.sim("anthropic").requests();
    assert_eq!(
        sent[1].body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        gw.sim("openai").requests()[1].body["parallel_tool_calls"],
        false
    );
    gw.shutdown().await;
}
