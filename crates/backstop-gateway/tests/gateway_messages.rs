//! `POST /v1/messages` over HTTP: Anthropic's Messages API in front of the same chains, with
//! fallback to OpenAI-format providers, `x-api-key` or bearer auth, the full streaming event
//! sequence, tools, images, system and stop sequences, errors in Anthropic's shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use backstop_sim::{Fault, SimConfig};
use serde_json::{Value, json};
use support::{CLIENT_KEY, Spec, TestGateway, header};

/// Anthropic first, then OpenAI.
const CHAIN: &str = "anthropic_first";

async fn start() -> TestGateway {
    TestGateway::start_with(Spec {
        sim: SimConfig {
            record: true,
            ..SimConfig::default()
        },
        auth: true,
        extra_toml: format!(
            "\n[chains.{CHAIN}]\nproviders = [\"anthropic\", \"openai\"]\ntimeout = \"5s\"\n"
        ),
        ..Spec::default()
    })
    .await
}

/// POSTs `/v1/messages` as the Anthropic SDK does (`x-api-key`, `anthropic-version`).
async fn post(gw: &TestGateway, body: &Value) -> reqwest::Response {
    gw.client
        .post(gw.at("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `(answering provider, message)`: status 200, the body parsed.
async fn message(gw: &TestGateway, body: &Value) -> (String, Value) {
    let r = post(gw, body).await;
    let status = r.status();
    let provider = header(&r, "x-backstop-provider")
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    (provider, serde_json::from_str(&text).unwrap())
}

/// `(event name, data)` of every event of a streamed answer.
async fn events(gw: &TestGateway, body: &Value) -> (String, Vec<(String, Value)>) {
    let r = post(gw, body).await;
    assert_eq!(r.status(), 200);
    assert!(
        header(&r, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let provider = header(&r, "x-backstop-provider").unwrap().to_owned();
    let text = r.text().await.unwrap();
    let ev = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap_or_else(|| panic!("{e}"));
            (
                name.strip_prefix("event: ").unwrap().to_owned(),
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
            )
        })
        .collect();
    (provider, ev)
}

/// The message a stream assembles to, as the Anthropic SDK accumulates it.
fn assemble(ev: &[(String, Value)]) -> Value {
    let mut m = ev[0].1["message"].clone();
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_text: Vec<String> = Vec::new();
    for (name, d) in ev {
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(d["index"], blocks.len());
                blocks.push(d["content_block"].clone());
                json_text.push(String::new());
            }
            "content_block_delta" => {
                let i = d["index"].as_u64().unwrap() as usize;
                match d["delta"]["type"].as_str().unwrap() {
                    "text_delta" => {
                        let t = blocks[i]["text"].as_str().unwrap().to_owned()
                            + d["delta"]["text"].as_str().unwrap();
                        blocks[i]["text"] = json!(t);
                    }
                    "input_json_delta" => {
                        json_text[i].push_str(d["delta"]["partial_json"].as_str().unwrap())
                    }
                    other => panic!("delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = d["index"].as_u64().unwrap() as usize;
                if blocks[i]["type"] == "tool_use" {
                    blocks[i]["input"] = serde_json::from_str(&json_text[i]).unwrap();
                }
            }
            "message_delta" => {
                m["stop_reason"] = d["delta"]["stop_reason"].clone();
                m["usage"]["output_tokens"] = d["usage"]["output_tokens"].clone();
            }
            _ => {}
        }
    }
    m["content"] = Value::Array(blocks);
    m
}

fn ask(chain: &str, prompt: &str) -> Value {
    json!({"model": chain, "max_tokens": 200, "messages": [{"role": "user", "content": prompt}]})
}

#[tokio::test]
async fn a_message_is_answered_in_anthropics_shape_with_fallback_to_openai() {
    let gw = start().await;
    gw.sim("anthropic").set_random(Fault::Status(529), 1.0);
    let (provider, m) = message(&gw, &ask(CHAIN, "What is a deadlock?")).await;
    assert_eq!(provider, "openai");
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert!(m["id"].as_str().unwrap().starts_with("msg_"), "{m}");
    assert_eq!(m["model"], "openai-model");
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(m["stop_sequence"].is_null());
    assert_eq!(m["content"].as_array().unwrap().len(), 1);
    assert_eq!(m["content"][0]["type"], "text");
    assert!(
        m["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Simulated answer from openai to: What is a deadlock?"),
        "{m}"
    );
    assert!(m["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(m["usage"]["output_tokens"].as_u64().unwrap() > 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stream_is_the_full_event_sequence_and_matches_the_whole_answer() {
    let gw = start().await;
    let (_, whole) = message(&gw, &ask(CHAIN, "Explain CAP.")).await;
    let mut body = ask(CHAIN, "Explain CAP.");
    body["stream"] = json!(true);
    let (provider, ev) = events(&gw, &body).await;
    assert_eq!(provider, "anthropic");
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names[3..names.len() - 3]
            .iter()
            .all(|n| *n == "content_block_delta"),
        "{names:?}"
    );
    let m = assemble(&ev);
    assert_eq!(m["content"], whole["content"]);
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["output_tokens"], whole["usage"]["output_tokens"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn bearer_keys_work_and_bad_keys_get_anthropic_errors() {
    let gw = start().await;
    let r = gw
        .client
        .post(gw.at("/v1/messages"))
        .bearer_auth(CLIENT_KEY)
        .json(&ask("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = gw
        .client
        .post(gw.at("/v1/messages"))
        .header("x-api-key", "wrong")
        .json(&ask("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "authentication_error");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("API key"),
        "{e}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn errors_on_the_route_are_in_anthropics_shape() {
    let gw = start().await;
    let cases = [
        (
            ask("no-such-chain", "hi"),
            404,
            "not_found_error",
            "no-such-chain",
        ),
        (
            json!({"model": CHAIN, "messages": [{"role": "user", "content": "hi"}]}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"model": CHAIN, "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "document"}]}]}),
            400,
            "invalid_request_error",
            "messages[0].content[0].type",
        ),
    ];
    for (body, status, kind, says) in cases {
        let r = post(&gw, &body).await;
        assert_eq!(r.status(), status, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["error"]["type"], kind, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{e}"
        );
    }
    // A version not served and beta features are refused by name.
    for (name, value) in [
        ("anthropic-version", "2099-01-01"),
        ("anthropic-beta", "files-api-2025-04-14"),
    ] {
        let r = gw
            .client
            .post(gw.at("/v1/messages"))
            .header("x-api-key", CLIENT_KEY)
            .header(name, value)
            .json(&ask(CHAIN, "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"]["message"].as_str().unwrap().contains(name),
            "{e}"
        );
    }
    assert_eq!(gw.sim("anthropic").request_count(), 0);

    // Every provider down: Anthropic's overloaded shape, with the retry headers kept.
    gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
    gw.sim("openai").set_random(Fault::Status(503), 1.0);
    let r = post(&gw, &ask(CHAIN, "hi")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "x-backstop-attempts"), Some("2"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "overloaded_error", "{e}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stream_broken_after_it_started_ends_with_an_anthropic_error_event() {
    let gw = start().await;
    gw.sim("anthropic")
        .fail_next(1, Fault::Disconnect { after_chunks: 2 });
    let mut body = ask(CHAIN, "hi");
    body["stream"] = json!(true);
    let (_, ev) = events(&gw, &body).await;
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(last["type"], "error");
    assert!(
        last["error"]["type"].is_string() && last["error"]["message"].is_string(),
        "{last}"
    );
    assert!(!ev.iter().any(|(n, _)| n == "message_stop"));
    gw.shutdown().await;
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

#[tokio::test]
async fn tool_use_round_trip_falls_back_to_openai_streamed_and_not() {
    for stream in [false, true] {
        let gw = start().await;
        gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
        let first = json!({"model": CHAIN, "max_tokens": 200, "stream": stream, "tools": [weather_tool()],
            "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
        let m = if stream {
            assemble(&events(&gw, &first).await.1)
        } else {
            message(&gw, &first).await.1
        };
        assert_eq!(m["stop_reason"], "tool_use", "{m}");
        let call = m["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .unwrap()
            .clone();
        assert_eq!(call["name"], "get_weather");
        assert_eq!(call["input"], json!({"city": "sim"}));

        let second = json!({"model": CHAIN, "max_tokens": 200, "stream": stream, "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": m["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "snow, -3C"}]}
        ]});
        let m = if stream {
            assemble(&events(&gw, &second).await.1)
        } else {
            message(&gw, &second).await.1
        };
        assert_eq!(m["stop_reason"], "end_turn");
        assert!(
            m["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Simulated answer from openai after the tool returned: snow, -3C."),
            "{m}"
        );
        // OpenAI got the turn as tool_calls and a tool message.
        let sent = &gw.sim("openai").requests()[1].body;
        assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], call["id"]);
        assert_eq!(
            sent["messages"][2],
            json!({"role": "tool", "tool_call_id": call["id"], "content": "snow, -3C"})
        );
        assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn system_stop_sequences_and_images_reach_both_formats() {
    let gw = start().await;
    let body = json!({"model": CHAIN, "max_tokens": 100, "system": "Be brief.", "stop_sequences": ["END"],
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.invalid/cat.png"}},
            {"type": "text", "text": "What are these?"}]}]});
    let (provider, _) = message(&gw, &body).await;
    assert_eq!(provider, "anthropic");
    let sent = &gw.sim("anthropic").requests()[0].body;
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(sent["max_tokens"], 100);
    assert_eq!(
        sent["messages"][0]["content"],
        body["messages"][0]["content"]
    );

    gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
    let (provider, m) = message(&gw, &body).await;
    assert_eq!(provider, "openai");
    assert!(
        m["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("What are these?"),
        "{m}"
    );
    let sent = &gw.sim("openai").requests()[0].body;
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(
        sent["messages"][1]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
            {"type": "text", "text": "What are these?"}
        ])
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn anthropic_only_fields_fall_back_only_to_providers_that_take_them() {
    let gw = start().await;
    // `top_k` is Anthropic's: OpenAI is skipped for it; with Anthropic down that is a 503
    // (a provider that can serve it exists), whose message says why OpenAI was not tried.
    gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
    let mut body = ask(CHAIN, "hi");
    body["top_k"] = json!(5);
    let r = post(&gw, &body).await;
    let status = r.status();
    let e: Value = r.json().await.unwrap();
    assert_eq!(status, 503, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai: unsupported: top_k"),
        "{e}"
    );
    assert_eq!(gw.sim("openai").request_count(), 0);
    gw.sim("anthropic").clear_faults();
    let (provider, _) = message(&gw, &body).await;
    assert_eq!(provider, "anthropic");
    assert_eq!(
        gw.sim("anthropic").requests().last().unwrap().body["top_k"],
        5
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn hostile_bodies_get_anthropic_errors_naming_the_problem() {
    let gw = start().await;
    let raw = |body: Vec<u8>, content_type: &'static str| {
        gw.client
            .post(gw.at("/v1/messages"))
            .header("x-api-key", CLIENT_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let nested = format!(
        r#"{{"model":"default","max_tokens":5,"messages":[{{"role":"user","content":{}1{}}}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases: Vec<(Vec<u8>, &'static str, u16, &str)> = vec![
        (b"{\"model\":".to_vec(), "application/json", 400, "not valid JSON"),
        (nested.into_bytes(), "application/json", 400, "recursion limit"),
        (b"{}".to_vec(), "text/plain", 415, "Content-Type: application/json"),
        (br#"{"model":"default","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"file:///etc/passwd"}}]}]}"#.to_vec(), "application/json", 400, "https://"),
        (br#"{"model":"default","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#.to_vec(), "application/json", 400, "tool_use_id"),
        (br#"{"model":"default","max_tokens":5,"messages":[{"role":"user","content":7}]}"#.to_vec(), "application/json", 400, "messages[0].content: "),
    ];
    for (body, ct, status, says) in cases {
        let r = raw(body, ct).await.unwrap();
        assert_eq!(r.status(), status, "{says}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["type"], "error", "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{says}: {e}"
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn output_config_json_schema_is_answered_as_json_by_either_format() {
    let gw = start().await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false});
    let mut body = ask(CHAIN, "Pick a city.");
    body["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
    let (provider, m) = message(&gw, &body).await;
    assert_eq!(provider, "anthropic");
    assert_eq!(
        gw.sim("anthropic").requests()[0].body["output_config"],
        body["output_config"]
    );
    let first: Value = serde_json::from_str(m["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(first, json!({"city": "sim"}));

    gw.sim("anthropic").set_random(Fault::Status(503), 1.0);
    let (provider, m) = message(&gw, &body).await;
    assert_eq!(provider, "openai");
    let sent = &gw.sim("openai").requests()[0].body;
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["schema"], schema);
    let second: Value = serde_json::from_str(m["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(second, first);
    gw.shutdown().await;
}
