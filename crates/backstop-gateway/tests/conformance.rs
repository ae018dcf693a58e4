//! OpenAI conformance of what the gateway sends (issue 16, items 7-11), against canned
//! upstreams that answer with exact bytes: usage `null` when unknown and details carried
//! through, `usage: null` on every chunk when usage is asked for, refusals kept, finish
//! reasons always OpenAI's, `GET /v1/models/{id}`, and the same `model` streamed or not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;
mod upstream;

use std::sync::Arc;

use backstop_gateway::app::App;
use backstop_gateway::config::Config;
use backstop_gateway::serve::{ServeOptions, Signals, serve};
use serde_json::{Value, json};
use support::{expect_error, sse_data};
use upstream::{Reply, Upstream, chunk, completion};

/// A gateway with one chain `c` of one provider of `kind` in front of `up`.
struct Gw {
    url: String,
    client: reqwest::Client,
    _stop: tokio::sync::mpsc::Sender<()>,
    _up: Upstream,
}

async fn gateway(kind: &str, up: Upstream) -> Gw {
    let base = if kind == "anthropic" {
        up.base_url()
    } else {
        up.openai_base_url()
    };
    let text = format!(
        "[providers.p]\nkind = \"{kind}\"\nmodel = \"configured-model\"\napi_key_env = \"K\"\nbase_url = \"{base}\"\nretries = 0\n\
         [chains.c]\nproviders = [\"p\"]\n"
    );
    let config = Config::parse(&text, "t.toml").unwrap();
    let app = Arc::new(App::build_with_env(&config, &|_| Some("sk-test".into())).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, signals) = Signals::channel();
    let options = ServeOptions::new(&config.server, app.limits);
    tokio::spawn(serve(
        listener,
        backstop_gateway::reload::Live::fixed(app),
        options,
        signals,
    ));
    Gw {
        url: format!("http://{addr}"),
        client: support::client(),
        _stop: tx,
        _up: up,
    }
}

impl Gw {
    async fn chat(&self, stream: bool, include_usage: bool) -> reqwest::Response {
        let mut body = json!({"model": "c", "messages": [{"role": "user", "content": "hi"}], "stream": stream});
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        self.client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, stream: bool) -> Value {
        let r = self.chat(stream, false).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The parsed chunk events of a streamed answer (without `[DONE]`), asserting it ended
    /// with `[DONE]`.
    async fn events(&self, include_usage: bool) -> Vec<Value> {
        let r = self.chat(true, include_usage).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-accel-buffering"], "no");
        let body = r.text().await.unwrap();
        let events = sse_data(&body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
        events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }
}

fn stream_of(model: Option<&'static str>, usage: Option<Value>, finish: &'static str) -> Reply {
    let mut events = vec![
        chunk(model, json!({"role": "assistant", "content": ""}), None),
        chunk(model, json!({"content": "Hello"}), None),
        chunk(model, json!({}), Some(finish)),
    ];
    if let Some(u) = usage {
        let mut v: Value = serde_json::from_str(&chunk(model, json!({}), None)).unwrap();
        v["choices"] = json!([]);
        v["usage"] = u;
        events.push(v.to_string());
    }
    events.push("[DONE]".into());
    Reply::sse(events)
}

#[tokio::test]
async fn unknown_usage_is_null_never_zeros_and_every_chunk_carries_usage_null() {
    // The upstream reports no usage at all, streamed or not.
    let up = Upstream::start(|req| {
        if req.stream() {
            stream_of(Some("m-1"), None, "stop")
        } else {
            Reply::json(
                200,
                completion(
                    Some("m-1"),
                    json!({"role": "assistant", "content": "Hello"}),
                    "stop",
                    None,
                ),
            )
        }
    })
    .await;
    let gw = gateway("openai", up).await;
    let v = gw.json(false).await;
    assert!(v.get("usage").is_some_and(Value::is_null), "{v}");
    let events = gw.events(true).await;
    let last = events.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(
        last.get("usage").is_some_and(Value::is_null),
        "no invented zeros: {last}"
    );
    for e in &events[..events.len() - 1] {
        assert!(e.get("usage").is_some_and(Value::is_null), "{e}");
    }
}

#[tokio::test]
async fn cached_and_reasoning_token_details_are_carried_through() {
    let usage = json!({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 12}});
    let u = usage.clone();
    let up = Upstream::start(move |req| {
        if req.stream() {
            stream_of(Some("m-1"), Some(u.clone()), "stop")
        } else {
            Reply::json(
                200,
                completion(
                    Some("m-1"),
                    json!({"role": "assistant", "content": "Hello"}),
                    "stop",
                    Some(u.clone()),
                ),
            )
        }
    })
    .await;
    let gw = gateway("openai", up).await;
    let v = gw.json(false).await;
    assert_eq!(v["usage"], usage, "{v}");
    let events = gw.events(true).await;
    assert_eq!(events.last().unwrap()["usage"], usage);
}

#[tokio::test]
async fn anthropic_cache_tokens_map_onto_openai_usage() {
    let up = Upstream::start(|req| {
        let usage = json!({"input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000, "output_tokens": 7});
        if req.stream() {
            let events = [
                json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "usage": {"input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000, "output_tokens": 1}}}),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
                json!({"type": "message_delta", "delta": {"stop_reason": "pause_turn"}, "usage": {"output_tokens": 7}}),
                json!({"type": "message_stop"}),
            ];
            Reply::sse(events.iter().map(Value::to_string))
        } else {
            Reply::json(200, json!({"id": "m", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": "Hi"}], "stop_reason": "pause_turn", "usage": usage}))
        }
    })
    .await;
    let gw = gateway("anthropic", up).await;
    let expected = json!({"prompt_tokens": 3210, "completion_tokens": 7, "total_tokens": 3217,
        "prompt_tokens_details": {"cached_tokens": 3000}});
    let v = gw.json(false).await;
    assert_eq!(v["usage"], expected);
    // pause_turn is Anthropic's: the client gets an OpenAI value (the answer is unfinished).
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let events = gw.events(true).await;
    assert_eq!(events.last().unwrap()["usage"], expected);
    let finish: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"][0].get("finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("length")]);
}

#[tokio::test]
async fn provider_specific_finish_reasons_are_sent_as_openai_values() {
    // vLLM-style `abort`, and a reason nobody knows.
    for (raw, sent) in [
        ("abort", "length"),
        ("eos_token_or_whatever", "stop"),
        ("tool_calls", "tool_calls"),
    ] {
        let up = Upstream::start(move |req| {
            if req.stream() {
                stream_of(Some("m"), None, raw)
            } else {
                Reply::json(
                    200,
                    completion(
                        Some("m"),
                        json!({"role": "assistant", "content": "x"}),
                        raw,
                        None,
                    ),
                )
            }
        })
        .await;
        let gw = gateway("openai-compatible", up).await;
        assert_eq!(
            gw.json(false).await["choices"][0]["finish_reason"],
            sent,
            "{raw}"
        );
        let events = gw.events(false).await;
        let reasons: Vec<&str> = events
            .iter()
            .filter_map(|e| e["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(reasons, [sent], "{raw}");
    }
}

#[tokio::test]
async fn a_streamed_refusal_is_kept_not_turned_into_empty_content() {
    let up = Upstream::start(|_| {
        Reply::sse([
            chunk(
                Some("m"),
                json!({"role": "assistant", "content": null, "refusal": ""}),
                None,
            ),
            chunk(Some("m"), json!({"refusal": "I can't help "}), None),
            chunk(Some("m"), json!({"refusal": "with that."}), None),
            chunk(Some("m"), json!({}), Some("stop")),
            "[DONE]".to_owned(),
        ])
    })
    .await;
    let gw = gateway("openai", up).await;
    let events = gw.events(false).await;
    let refusal: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["refusal"].as_str())
        .collect();
    assert_eq!(refusal, "I can't help with that.");
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "", "only the role event's empty content");
}

#[tokio::test]
async fn a_non_streamed_refusal_is_kept() {
    let up = Upstream::start(|_| {
        Reply::json(
            200,
            completion(
                Some("m"),
                json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
                "stop",
                None,
            ),
        )
    })
    .await;
    let gw = gateway("openai", up).await;
    let v = gw.json(false).await;
    let message = &v["choices"][0]["message"];
    assert_eq!(message["refusal"], "I can't help with that.", "{v}");
    assert!(message["content"].is_null(), "{v}");
}

#[tokio::test]
async fn model_is_the_same_streamed_or_not_when_the_upstream_omits_it() {
    let up = Upstream::start(|req| {
        if req.stream() {
            stream_of(None, None, "stop")
        } else {
            Reply::json(
                200,
                completion(
                    None,
                    json!({"role": "assistant", "content": "Hello"}),
                    "stop",
                    None,
                ),
            )
        }
    })
    .await;
    let gw = gateway("openai", up).await;
    assert_eq!(gw.json(false).await["model"], "configured-model");
    for e in gw.events(false).await {
        assert_eq!(e["model"], "configured-model", "{e}");
    }
}

#[tokio::test]
async fn models_retrieve_serves_one_chain() {
    let up = Upstream::start(|_| Reply::text(500, "unused")).await;
    let gw = gateway("openai", up).await;
    let r = gw
        .client
        .get(format!("{}/v1/models/c", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"id": "c", "object": "model", "created": 0, "owned_by": "backstop"})
    );
    let r = gw
        .client
        .get(format!("{}/v1/models/nope", gw.url))
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 404).await;
    assert_eq!(e["code"], "model_not_found");
}
