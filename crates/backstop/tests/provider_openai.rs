//! `OpenAiLlm` and `OpenAiCompatible` against `backstop-sim` over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[macro_use]
mod provider_support;

provider_suite!(Wire::OpenAi);

mod compatible {
    //! The same suite for `OpenAiCompatible`.
    use super::provider_support;
    provider_suite!(provider_support::Wire::Compatible);
}

use backstop::providers::{OpenAiCompatible, OpenAiLlm};
use backstop::{ChatRequest, LlmConfig, Message, Provider};

#[tokio::test]
async fn content_filter_code_is_content_filtered() {
    let e = complete_err(Fault::ContentFilter).await;
    assert_eq!((e.kind, e.status), (ErrorKind::ContentFiltered, Some(400)));
}

#[tokio::test]
async fn request_body_and_headers_follow_the_mapping() {
    let sim = sim().await;
    let p = OpenAiLlm::new("gpt-4o-mini")
        .base_url(format!("{}/", sim.openai_base_url()))
        .api_key(KEY)
        .config(LlmConfig::new(0.3, 99).top_p(0.5));
    let request = ChatRequest::new(vec![Message::system("be terse"), Message::user("hi")])
        .config(LlmConfig::default().temperature(0.7).stop("END"));
    p.complete(&request).await.expect("complete");
    collect(p.stream(&request).await.expect("stream")).await;
    let recorded = sim.requests();
    let plain = &recorded[0];
    assert_eq!(plain.path, "/v1/chat/completions");
    assert_eq!(
        plain.header("authorization"),
        Some("Bearer sk-test-loopback-key")
    );
    assert_eq!(plain.header("content-type"), Some("application/json"));
    let b = &plain.body;
    assert_eq!(b["model"], "gpt-4o-mini");
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(b["messages"][0]["content"], "be terse");
    assert_eq!(b["messages"][1]["role"], "user");
    assert!((b["temperature"].as_f64().unwrap() - 0.7).abs() < 1e-6);
    assert_eq!(b["max_tokens"], 99);
    assert!((b["top_p"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert_eq!(b["stop"], serde_json::json!(["END"]));
    assert!(b.get("stream").is_none());
    let streamed = &recorded[1].body;
    assert_eq!(streamed["stream"], true);
    assert_eq!(streamed["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn compatible_without_key_sends_no_authorization() {
    let sim = sim().await;
    let p = OpenAiCompatible::new(sim.openai_base_url(), "llama3").name("ollama");
    assert_eq!(Provider::name(&p), "ollama");
    p.complete(&ChatRequest::user("hi"))
        .await
        .expect("no key needed");
    assert_eq!(sim.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn compatible_with_missing_key_env_fails_auth_without_a_call() {
    let sim = sim().await;
    let p = OpenAiCompatible::new(sim.openai_base_url(), "m")
        .api_key_env("BACKSTOP_TEST_DEFINITELY_UNSET_KEY");
    let e = p.complete(&ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.message, "BACKSTOP_TEST_DEFINITELY_UNSET_KEY is not set");
    assert_eq!(sim.request_count(), 0);
}

/// Environment variables are read at construction. `set_var` is unsafe (and forbidden
/// here), so the check runs in a child process with the variables set.
#[tokio::test]
async fn environment_key_and_base_url_are_used() {
    let sim = sim().await;
    let exe = std::env::current_exe().expect("test binary");
    let (openai, anthropic) = (sim.openai_base_url(), sim.base_url());
    // Blocking wait off the runtime thread, which keeps serving the simulator.
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["--exact", "env_child", "--test-threads=1"])
            .env("BACKSTOP_ENV_CHILD", "1")
            .env("OPENAI_API_KEY", "sk-from-env-openai")
            .env("OPENAI_BASE_URL", format!("{openai}/"))
            .env("ANTHROPIC_API_KEY", "sk-from-env-anthropic")
            .env("ANTHROPIC_BASE_URL", &anthropic)
            .env("GROQ_API_KEY", "gsk-from-env-groq")
            .env("GROQ_BASE_URL", &anthropic)
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await
    .expect("join")
    .expect("child runs");
    assert!(status.success());
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 4);
    assert_eq!(
        recorded[0].header("authorization"),
        Some("Bearer sk-from-env-openai")
    );
    assert_eq!(
        recorded[1].header("x-api-key"),
        Some("sk-from-env-anthropic")
    );
    assert_eq!(
        recorded[2].header("authorization"),
        Some("Bearer gsk-from-env-groq")
    );
    // An explicit key wins over the environment.
    assert_eq!(recorded[3].header("authorization"), Some("Bearer explicit"));
}

#[tokio::test]
async fn env_child() {
    if std::env::var("BACKSTOP_ENV_CHILD").is_err() {
        return; // only meaningful when spawned by the test above
    }
    use backstop::providers::{AnthropicLlm, GroqLlm};
    let r = ChatRequest::user("hi");
    OpenAiLlm::new("gpt-4o-mini")
        .complete(&r)
        .await
        .expect("openai from env");
    AnthropicLlm::new("claude")
        .complete(&r)
        .await
        .expect("anthropic from env");
    GroqLlm::new("llama")
        .complete(&r)
        .await
        .expect("groq from env");
    OpenAiLlm::new("gpt-4o-mini")
        .api_key("explicit")
        .complete(&r)
        .await
        .expect("explicit key");
}
