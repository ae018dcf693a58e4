//! The README's parameter table, row by row, over HTTP: for each OpenAI chat parameter, what
//! an OpenAI, a Groq and an Anthropic provider receive (translated or passed through), or that
//! the provider is skipped and, when it is the chain's only one, a 400 names the parameter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use backstop_sim::SimConfig;
use serde_json::{Value, json};
use support::{Spec, TestGateway, expect_error, header};

/// What one provider makes of a parameter.
#[derive(Debug, Clone)]
enum Expect {
    /// Sent: the upstream body has `value` at this JSON pointer.
    Sent(&'static str, Value),
    /// Not sent: the upstream body has nothing at this JSON pointer.
    Absent(&'static str),
    /// Refused by name: the provider is skipped (the 400's `param`).
    Refused(&'static str),
}
use Expect::{Absent, Refused, Sent};

/// One table row: the request fields, then OpenAI, Groq and Anthropic.
struct Row {
    name: &'static str,
    fields: Value,
    openai: Expect,
    groq: Expect,
    anthropic: Expect,
}

fn row(name: &'static str, fields: Value, openai: Expect, groq: Expect, anthropic: Expect) -> Row {
    Row {
        name,
        fields,
        openai,
        groq,
        anthropic,
    }
}

/// The same expectation for both OpenAI-wire providers.
fn both(name: &'static str, fields: Value, openai_wire: Expect, anthropic: Expect) -> Row {
    row(name, fields, openai_wire.clone(), openai_wire, anthropic)
}

fn tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
}

fn user(content: Value) -> Value {
    json!({"messages": [{"role": "user", "content": content}]})
}

fn with_tools(mut extra: Value) -> Value {
    extra["tools"] = tool();
    extra
}

fn rows() -> Vec<Row> {
    let image = |url: &str| {
        user(
            json!([{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": url}}]),
        )
    };
    vec![
        both(
            "developer role",
            json!({"messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "hi"}]}),
            Sent("/messages/0", json!({"role": "system", "content": "rules"})),
            Sent("/system", json!("rules")),
        ),
        both(
            "system-only conversation",
            json!({"messages": [{"role": "system", "content": "say hi"}]}),
            Sent("/messages/0/content", json!("say hi")),
            Refused("system-only messages"),
        ),
        row(
            "messages[].name",
            json!({"messages": [{"role": "user", "name": "ann", "content": "hi"}]}),
            Sent("/messages/0/name", json!("ann")),
            Refused("messages[].name"),
            Refused("messages[].name"),
        ),
        both(
            "image_url https",
            image("https://example.invalid/a.png"),
            Sent(
                "/messages/0/content/1/image_url/url",
                json!("https://example.invalid/a.png"),
            ),
            Sent(
                "/messages/0/content/1/source",
                json!({"type": "url", "url": "https://example.invalid/a.png"}),
            ),
        ),
        both(
            "image_url data URL",
            image("data:image/jpeg;base64,/9j/4A=="),
            Sent(
                "/messages/0/content/1/image_url/url",
                json!("data:image/jpeg;base64,/9j/4A=="),
            ),
            Sent(
                "/messages/0/content/1/source",
                json!({"type": "base64", "media_type": "image/jpeg", "data": "/9j/4A=="}),
            ),
        ),
        both(
            "image_url.detail",
            user(
                json!([{"type": "image_url", "image_url": {"url": "https://example.invalid/a.png", "detail": "high"}}]),
            ),
            Sent("/messages/0/content/0/image_url/detail", json!("high")),
            Refused("image_url.detail"),
        ),
        both(
            "tools",
            with_tools(json!({})),
            Sent("/tools/0/function/name", json!("get_weather")),
            Sent(
                "/tools/0",
                json!({"name": "get_weather", "input_schema": {"type": "object"}}),
            ),
        ),
        both(
            "tool_choice auto",
            with_tools(json!({"tool_choice": "auto"})),
            Sent("/tool_choice", json!("auto")),
            Sent("/tool_choice", json!({"type": "auto"})),
        ),
        both(
            "no max_tokens",
            json!({}),
            Absent("/max_tokens"),
            Sent("/max_tokens", json!(1024)),
        ),
        both(
            "tool_choice required",
            with_tools(json!({"tool_choice": "required"})),
            Sent("/tool_choice", json!("required")),
            Sent("/tool_choice", json!({"type": "any"})),
        ),
        both(
            "tool_choice none",
            with_tools(json!({"tool_choice": "none"})),
            Sent("/tool_choice", json!("none")),
            Sent("/tool_choice", json!({"type": "none"})),
        ),
        both(
            "tool_choice function",
            with_tools(
                json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
            ),
            Sent("/tool_choice/function/name", json!("get_weather")),
            Sent(
                "/tool_choice",
                json!({"type": "tool", "name": "get_weather"}),
            ),
        ),
        both(
            "parallel_tool_calls",
            with_tools(json!({"parallel_tool_calls": false})),
            Sent("/parallel_tool_calls", json!(false)),
            Sent("/tool_choice/disable_parallel_tool_use", json!(true)),
        ),
        both(
            "assistant tool_calls and tool messages",
            with_tools(json!({"messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "snow"}]})),
            Sent(
                "/messages/2",
                json!({"role": "tool", "content": "snow", "tool_call_id": "c1"}),
            ),
            Sent(
                "/messages/2/content/0",
                json!({"type": "tool_result", "tool_use_id": "c1", "content": "snow"}),
            ),
        ),
        both(
            "response_format json_schema",
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "s", "strict": true, "schema": {"type": "object"}}}}),
            Sent("/response_format/json_schema/strict", json!(true)),
            Sent(
                "/output_config",
                json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}),
            ),
        ),
        both(
            "response_format json_object",
            json!({"response_format": {"type": "json_object"}}),
            Sent("/response_format", json!({"type": "json_object"})),
            Sent(
                "/tool_choice",
                json!({"type": "tool", "name": "json_output"}),
            ),
        ),
        both(
            "response_format json_object with tools",
            with_tools(json!({"response_format": {"type": "json_object"}})),
            Sent("/response_format", json!({"type": "json_object"})),
            Refused("response_format"),
        ),
        both(
            "temperature",
            json!({"temperature": 0.5}),
            Sent("/temperature", json!(0.5)),
            Sent("/temperature", json!(0.5)),
        ),
        both(
            "temperature above 1",
            json!({"temperature": 1.5}),
            Sent("/temperature", json!(1.5)),
            Refused("temperature"),
        ),
        both(
            "top_p",
            json!({"top_p": 0.5}),
            Sent("/top_p", json!(0.5)),
            Sent("/top_p", json!(0.5)),
        ),
        both(
            "max_tokens",
            json!({"max_tokens": 50}),
            Sent("/max_tokens", json!(50)),
            Sent("/max_tokens", json!(50)),
        ),
        both(
            "max_completion_tokens",
            json!({"max_completion_tokens": 60}),
            Sent("/max_tokens", json!(60)),
            Sent("/max_tokens", json!(60)),
        ),
        both(
            "stop",
            json!({"stop": ["END"]}),
            Sent("/stop", json!(["END"])),
            Sent("/stop_sequences", json!(["END"])),
        ),
        both(
            "seed",
            json!({"seed": 7}),
            Sent("/seed", json!(7)),
            Refused("seed"),
        ),
        both(
            "frequency_penalty",
            json!({"frequency_penalty": 0.5}),
            Sent("/frequency_penalty", json!(0.5)),
            Refused("frequency_penalty"),
        ),
        both(
            "presence_penalty",
            json!({"presence_penalty": 0.5}),
            Sent("/presence_penalty", json!(0.5)),
            Refused("presence_penalty"),
        ),
        row(
            "logit_bias",
            json!({"logit_bias": {"50256": -100}}),
            Sent("/logit_bias", json!({"50256": -100})),
            Refused("logit_bias"),
            Refused("logit_bias"),
        ),
        both(
            "logprobs",
            json!({"logprobs": true}),
            Refused("logprobs"),
            Refused("logprobs"),
        ),
        both(
            "top_logprobs",
            json!({"top_logprobs": 2}),
            Refused("top_logprobs"),
            Refused("top_logprobs"),
        ),
        both("n above 1", json!({"n": 2}), Refused("n"), Refused("n")),
        both(
            "user",
            json!({"user": "u-1"}),
            Sent("/user", json!("u-1")),
            Sent("/metadata", json!({"user_id": "u-1"})),
        ),
        both(
            "reasoning_effort",
            json!({"reasoning_effort": "low"}),
            Sent("/reasoning_effort", json!("low")),
            Refused("reasoning_effort"),
        ),
        both(
            "metadata",
            json!({"metadata": {"k": "v"}}),
            Sent("/metadata", json!({"k": "v"})),
            Refused("metadata"),
        ),
        both(
            "store",
            json!({"store": true}),
            Sent("/store", json!(true)),
            Refused("store"),
        ),
        both(
            "service_tier default",
            json!({"service_tier": "default"}),
            Sent("/service_tier", json!("default")),
            Sent("/service_tier", json!("standard_only")),
        ),
        both(
            "service_tier flex",
            json!({"service_tier": "flex"}),
            Sent("/service_tier", json!("flex")),
            Refused("service_tier"),
        ),
        both(
            "other fields (verbosity, prediction, ...)",
            json!({"verbosity": "low"}),
            Sent("/verbosity", json!("low")),
            Refused("verbosity"),
        ),
        both(
            "functions (deprecated)",
            json!({"functions": []}),
            Refused("functions"),
            Refused("functions"),
        ),
        both(
            "function_call (deprecated)",
            json!({"function_call": "auto"}),
            Refused("function_call"),
            Refused("function_call"),
        ),
        both(
            "audio",
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            Refused("audio"),
            Refused("audio"),
        ),
        both(
            "modalities with audio",
            json!({"modalities": ["text", "audio"]}),
            Refused("modalities"),
            Refused("modalities"),
        ),
        both(
            "other message, part or tool fields",
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]}),
            Refused("messages[0].content[0].cache_control"),
            Refused("messages[0].content[0].cache_control"),
        ),
        both(
            "echoed nulls and empty lists",
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "refusal": null, "annotations": [], "audio": null}, {"role": "user", "content": "more"}]}),
            Sent("/messages/1/content", json!("yo")),
            Sent("/messages/1/content", json!("yo")),
        ),
    ]
}

fn chains() -> String {
    ["openai", "groq", "anthropic"]
        .iter()
        .map(|p| format!("\n[chains.only_{p}]\nproviders = [\"{p}\"]\ntimeout = \"5s\"\n"))
        .chain(std::iter::once(
            "\n[chains.anthropic_first]\nproviders = [\"anthropic\", \"openai\"]\ntimeout = \"5s\"\n".to_owned(),
        ))
        .collect()
}

async fn start() -> TestGateway {
    TestGateway::start_with(Spec {
        sim: SimConfig {
            record: true,
            ..SimConfig::default()
        },
        extra_toml: chains(),
        ..Spec::default()
    })
    .await
}

fn request(chain: &str, fields: &Value) -> Value {
    let mut body = json!({"model": chain, "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn every_parameter_table_row_is_translated_passed_through_or_refused_by_name() {
    let gw = start().await;
    for r in rows() {
        for (provider, expect) in [
            ("openai", &r.openai),
            ("groq", &r.groq),
            ("anthropic", &r.anthropic),
        ] {
            let sim = gw.sim(provider);
            let before = sim.request_count();
            let resp = gw
                .chat(&request(&format!("only_{provider}"), &r.fields))
                .await;
            let at = format!("{} on {provider}", r.name);
            if let Refused(param) = expect {
                let e = expect_error(resp, 400).await;
                assert_eq!(e["param"], *param, "{at}: {e}");
                assert!(e["message"].as_str().unwrap().contains(param), "{at}: {e}");
                assert_eq!(sim.request_count(), before, "{at}: no upstream call");
                continue;
            }
            let status = resp.status();
            let text = resp.text().await.unwrap();
            assert_eq!(status, 200, "{at}: {text}");
            let sent = sim.requests().last().unwrap().body.clone();
            let (pointer, want) = match expect {
                Sent(pointer, value) => (pointer, Some(value)),
                Absent(pointer) => (pointer, None),
                Refused(_) => unreachable!(),
            };
            assert_eq!(sent.pointer(pointer), want, "{at}: upstream body {sent}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_provider_that_cannot_serve_a_parameter_is_skipped_for_the_next() {
    let gw = start().await;
    let r = gw
        .chat(&request("anthropic_first", &json!({"seed": 7})))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-backstop-provider"), Some("openai"));
    assert_eq!(
        gw.sim("anthropic").request_count(),
        0,
        "skipped without a call"
    );
    assert_eq!(gw.sim("openai").requests()[0].body["seed"], 7);
    // A skip is neutral: the breaker stays closed.
    assert_eq!(gw.breaker("anthropic").await["state"], "closed");

    let e = expect_error(
        gw.chat(&request(
            "only_anthropic",
            &json!({"seed": 7, "logit_bias": {"1": 1}}),
        ))
        .await,
        400,
    )
    .await;
    assert_eq!(e["code"], "unsupported_parameter");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("no provider of this chain supports seed, logit_bias"),
        "{e}"
    );
    gw.shutdown().await;
}
