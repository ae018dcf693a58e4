//! Tool calling and per-provider capabilities through the chain: a provider that cannot honour
//! a parameter is skipped with the reason (never called, neutral for its breaker); the request
//! fails naming the parameter only when no provider can serve it; tool requests fail over,
//! hedge and resume with their tools; a stream that committed a tool call is never resumed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::field_reassign_with_default
)]

use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    AttemptOutcome, BreakerConfig, ChatRequest, CircuitBreaker, ErrorKind, FallbackChain,
    FinishReason, Params, Provider, Tool, ToolCall, ToolCallAccumulator, ToolChoice, WhenAllOpen,
};
use futures_util::StreamExt;

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

fn weather() -> Tool {
    Tool::new(
        "get_weather",
        serde_json::json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
    )
    .description("The weather in a city")
}

fn tool_request() -> ChatRequest {
    ChatRequest::user("Weather in Paris?")
        .tool(weather())
        .tool_choice(ToolChoice::Auto)
}

fn with_seed() -> ChatRequest {
    let mut params = Params::default();
    params.seed = Some(7);
    params.logit_bias = Some(serde_json::Map::new());
    ChatRequest::user("hi").params(params)
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_cannot_honour_a_parameter_is_skipped_with_the_reason_and_never_called() {
    let anthropic = ScriptedProvider::new("anthropic").cannot(&["seed", "logit_bias"]);
    let openai = ScriptedProvider::new("openai");
    let ab = breaker("anthropic");
    let chain = FallbackChain::builder()
        .provider(anthropic.clone(), ab.clone())
        .provider(openai.clone(), breaker("openai"))
        .build()
        .unwrap();
    let r = chain.generate(with_seed()).await.unwrap();
    assert_eq!(r.provider_used, "openai");
    assert_eq!(anthropic.calls(), 0);
    let skip = &r.attempts[0];
    assert_eq!(
        (skip.provider.as_str(), skip.outcome),
        ("anthropic", AttemptOutcome::Skipped)
    );
    let e = skip.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.message, "unsupported: seed, logit_bias");
    assert_eq!(
        ab.snapshot().failures_in_window,
        0,
        "neutral for the breaker"
    );
    // A request without those parameters goes to the first provider as usual.
    assert_eq!(
        chain.generate("plain").await.unwrap().provider_used,
        "anthropic"
    );
}

#[tokio::test(start_paused = true)]
async fn when_no_provider_can_serve_the_request_the_failure_names_the_parameters() {
    let a = ScriptedProvider::new("a").cannot(&["seed"]);
    let b = ScriptedProvider::new("b").cannot(&["logit_bias"]);
    let chain = FallbackChain::builder()
        .provider(a.clone(), breaker("a"))
        .provider(b.clone(), breaker("b"))
        .when_all_open(WhenAllOpen::Probe)
        .build()
        .unwrap();
    let f = chain.generate(with_seed()).await.unwrap_err();
    assert_eq!(f.summary_kind(), ErrorKind::Unsupported);
    assert_eq!(f.unsupported_params(), ["seed", "logit_bias"]);
    assert_eq!(
        (a.calls(), b.calls()),
        (0, 0),
        "not even a last-resort probe"
    );
    assert!(!f.retried());
    // Streaming refuses the same way.
    let f = chain.stream(with_seed()).await.unwrap_err();
    assert_eq!(f.summary_kind(), ErrorKind::Unsupported);
}

#[tokio::test(start_paused = true)]
async fn a_nested_chain_serves_what_one_of_its_providers_serves() {
    let a = ScriptedProvider::new("a").cannot(&["seed", "logit_bias"]);
    let b = ScriptedProvider::new("b").cannot(&["logit_bias"]);
    let inner = FallbackChain::builder()
        .name("inner")
        .provider(a, breaker("a"))
        .provider(b, breaker("b"))
        .build()
        .unwrap();
    let mut only_seed = Params::default();
    only_seed.seed = Some(1);
    assert!(
        inner
            .check(&ChatRequest::user("x").params(only_seed))
            .is_ok()
    );
    let u = inner.check(&with_seed()).unwrap_err();
    assert_eq!(u.params, ["seed", "logit_bias"]);
    // The outer chain skips the nested one for it, and the backup answers.
    let backup = ScriptedProvider::new("backup");
    let outer = FallbackChain::builder()
        .provider(inner, breaker("inner"))
        .provider(backup, breaker("backup"))
        .build()
        .unwrap();
    let r = outer.generate(with_seed()).await.unwrap();
    assert_eq!(r.provider_used, "backup");
    assert_eq!(
        r.attempts[0].error.as_ref().unwrap().message,
        "unsupported: seed, logit_bias"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tool_request_falls_over_with_its_tools_and_the_answer_carries_the_call() {
    let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Overloaded)]);
    let backup = ScriptedProvider::new("backup").script([Step::tool_call(
        "call_1",
        "get_weather",
        "{\"city\":\"Paris\"}",
    )]);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker("primary"))
        .provider(backup.clone(), breaker("backup"))
        .build()
        .unwrap();
    let r = chain.generate(tool_request()).await.unwrap();
    assert_eq!(r.provider_used, "backup");
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        r.tool_calls,
        [ToolCall::new(
            "call_1",
            "get_weather",
            "{\"city\":\"Paris\"}"
        )]
    );
    for p in [&primary, &backup] {
        let seen = &p.requests()[0];
        assert_eq!(seen.tools, [weather()]);
        assert_eq!(seen.tool_choice, Some(ToolChoice::Auto));
    }
}

#[tokio::test(start_paused = true)]
async fn a_streamed_tool_call_commits_and_assembles_whole() {
    let p = ScriptedProvider::new("p").script([Step::ToolCalls(vec![
        ToolCall::new("a", "get_weather", "{\"city\":\"Paris\"}"),
        ToolCall::new("b", "get_weather", "{\"city\":\"Oslo\"}"),
    ])]);
    let chain = FallbackChain::builder()
        .provider(p, breaker("p"))
        .build()
        .unwrap();
    let mut s = chain.stream(tool_request()).await.unwrap();
    let mut acc = ToolCallAccumulator::default();
    let mut finish = None;
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        c.tool_calls.iter().for_each(|d| acc.push(d));
        finish = c.finish_reason.or(finish);
    }
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        acc.calls(),
        [
            ToolCall::new("a", "get_weather", "{\"city\":\"Paris\"}"),
            ToolCall::new("b", "get_weather", "{\"city\":\"Oslo\"}")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_committed_a_tool_call_is_not_resumed() {
    let primary = ScriptedProvider::new("primary").script([Step::ToolCallThenFail(
        ToolCall::new("a", "get_weather", "{\"city\":\"Paris\"}"),
        ErrorKind::Connect,
    )]);
    let backup = ScriptedProvider::new("backup");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker("primary"))
        .provider(backup.clone(), breaker("backup"))
        .stream_resume(true)
        .build()
        .unwrap();
    let mut s = chain.stream(tool_request()).await.unwrap();
    let mut fragments = 0;
    let mut text = String::new();
    let mut error = None;
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => {
                fragments += c.tool_calls.len();
                text.push_str(&c.text);
            }
            Err(e) => {
                error = Some(e.kind);
                assert!(s.next().await.is_none(), "nothing after the terminal error");
            }
        }
    }
    assert_eq!(text, "Let me check. ");
    assert_eq!(fragments, 2, "the opening and half the arguments");
    assert_eq!(
        error,
        Some(ErrorKind::Connect),
        "the terminal error, as without resume"
    );
    assert_eq!(backup.calls(), 0, "no continuation of a tool call");
    assert_eq!(s.resumes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_text_stream_continues_with_the_original_tools_and_parameters() {
    let primary = ScriptedProvider::new("primary").script([Step::chunks_then_fail(
        ["The weather ", "in Paris "],
        ErrorKind::Connect,
    )]);
    let backup = ScriptedProvider::new("backup").script([Step::reply("was mild.")]);
    let chain = FallbackChain::builder()
        .provider(primary, breaker("primary"))
        .provider(backup.clone(), breaker("backup"))
        .stream_resume(true)
        .build()
        .unwrap();
    let mut params = Params::default();
    params.seed = Some(42);
    let request = tool_request().params(params);
    let mut s = chain.stream(request.clone()).await.unwrap();
    let mut text = String::new();
    while let Some(c) = s.next().await {
        text.push_str(&c.unwrap().text);
    }
    assert_eq!(text, "The weather in Paris was mild.");
    let continuation = &backup.requests()[0];
    assert_eq!(continuation.tools, request.tools);
    assert_eq!(continuation.tool_choice, request.tool_choice);
    assert_eq!(continuation.params.seed, Some(42));
}

#[tokio::test(start_paused = true)]
async fn a_hedged_tool_request_sends_its_tools_to_both_legs() {
    let slow = ScriptedProvider::new("slow")
        .script([Step::delay(Duration::from_secs(20), Step::reply("late"))]);
    let fast = ScriptedProvider::new("fast").script([Step::tool_call(
        "c",
        "get_weather",
        "{\"city\":\"Rome\"}",
    )]);
    let chain = FallbackChain::builder()
        .provider(slow.clone(), breaker("slow"))
        .provider(fast.clone(), breaker("fast"))
        .hedge_after(Duration::from_secs(2))
        .build()
        .unwrap();
    let r = chain.generate(tool_request()).await.unwrap();
    assert_eq!(r.provider_used, "fast");
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(slow.requests()[0].tools, [weather()]);
    assert_eq!(fast.requests()[0].tools, [weather()]);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_never_a_provider_that_cannot_serve_the_request() {
    let slow = ScriptedProvider::new("slow").script([Step::delay(
        Duration::from_secs(3),
        Step::reply("late but right"),
    )]);
    let unable = ScriptedProvider::new("unable").cannot(&["tools"]);
    let chain = FallbackChain::builder()
        .provider(slow.clone(), breaker("slow"))
        .provider(unable.clone(), breaker("unable"))
        .hedge_after(Duration::from_secs(1))
        .build()
        .unwrap();
    let r = chain.generate(tool_request()).await.unwrap();
    assert_eq!(r.provider_used, "slow");
    assert_eq!(unable.calls(), 0);
}
