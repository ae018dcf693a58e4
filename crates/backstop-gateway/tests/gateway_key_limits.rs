//! `server.key_limits` without Redis: the same limits per process (the fleet-wide ones are
//! in tests/fleet, which need a real Redis).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use support::{
    ADMIN_KEY, CLIENT_KEY, CLIENT_KEY_2, Spec, TestGateway, chat_body, config_text, header,
};

fn spec(limits: &str) -> Spec {
    Spec {
        auth: true,
        server_extra: format!("key_limits = {{ {limits} }}\n"),
        ..Spec::default()
    }
}

async fn ask_as(g: &TestGateway, key: &str, body: &serde_json::Value) -> reqwest::Response {
    g.client
        .post(g.at("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_over_its_requests_per_minute_gets_429_with_retry_after_in_openais_shape() {
    let g = TestGateway::start_with(spec("requests_per_minute = 3")).await;
    for _ in 0..3 {
        assert_eq!(
            ask_as(&g, CLIENT_KEY, &chat_body("default", "hi"))
                .await
                .status(),
            200
        );
    }
    let r = ask_as(&g, CLIENT_KEY, &chat_body("default", "hi")).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert_eq!(
        wait, 20,
        "one request of 3 per minute comes back after 20 s"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let e = support::assert_openai_error(&body);
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert_eq!(e["type"], "requests");
    assert_eq!(
        ask_as(&g, CLIENT_KEY_2, &chat_body("default", "hi"))
            .await
            .status(),
        200,
        "each key has its own limit"
    );
    let metrics = g.metrics().await;
    assert_eq!(support::metric(&metrics, "backstop_key_limited_total"), 1.0);
    assert_eq!(
        support::metric(&metrics, "backstop_state_backend_up"),
        0.0,
        "no [state]: no backend"
    );
}

#[tokio::test]
async fn the_anthropic_route_counts_against_the_same_key_limit() {
    let g = TestGateway::start_with(spec("requests_per_minute = 1")).await;
    assert_eq!(
        ask_as(&g, CLIENT_KEY, &chat_body("default", "hi"))
            .await
            .status(),
        200
    );
    let r = g
        .client
        .post(g.at("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .json(&serde_json::json!({
            "model": "default", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn tokens_reserved_from_max_tokens_come_back_when_the_usage_is_smaller() {
    const LIMIT: u64 = 1000;
    const RESERVE: u64 = 400;
    let g = TestGateway::start_with(spec(&format!("tokens_per_minute = {LIMIT}"))).await;
    let body = serde_json::json!({
        "model": "default", "max_tokens": RESERVE,
        "messages": [{"role": "user", "content": "a prompt of a few words"}],
    });
    let started = tokio::time::Instant::now();
    let mut used = Vec::new();
    for _ in 0..200 {
        let r = ask_as(&g, CLIENT_KEY, &body).await;
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        used.push(v["usage"]["total_tokens"].as_u64().unwrap());
    }
    assert!(used.len() > 2, "reservations were not reconciled: {used:?}");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let refill = (started.elapsed().as_secs_f64() * LIMIT as f64 / 60.0).ceil() as u64;
    let total: u64 = used.iter().sum();
    assert!(total > LIMIT - RESERVE, "refused with only {total} used");
    assert!(total - used.last().unwrap() <= LIMIT - RESERVE + refill);
}

#[tokio::test]
async fn a_whole_streams_reserved_tokens_come_back_too() {
    const LIMIT: u64 = 1000;
    const RESERVE: u64 = 400;
    let g = TestGateway::start_with(spec(&format!("tokens_per_minute = {LIMIT}"))).await;
    let body = serde_json::json!({
        "model": "default", "max_tokens": RESERVE, "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "a prompt of a few words"}],
    });
    let mut used = Vec::new();
    for _ in 0..200 {
        let r = ask_as(&g, CLIENT_KEY, &body).await;
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        // The usage chunk, the last before [DONE].
        let usage = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .find_map(|v| v["usage"]["total_tokens"].as_u64())
            .expect("a usage chunk");
        used.push(usage);
    }
    // Unsettled, 400 of 1,000 would admit two streams; settled with their usage, many more.
    assert!(
        used.len() > 2,
        "stream reservations were not reconciled: {used:?}"
    );
    let total: u64 = used.iter().sum();
    assert!(total > LIMIT - RESERVE, "refused with only {total} used");
}

#[tokio::test]
async fn a_reload_applies_new_key_limits() {
    let mut s = spec("requests_per_minute = 1");
    s.admin_only = false;
    let g = TestGateway::start_with(s.clone()).await;
    assert_eq!(
        ask_as(&g, CLIENT_KEY, &chat_body("default", "hi"))
            .await
            .status(),
        200
    );
    assert_eq!(
        ask_as(&g, CLIENT_KEY, &chat_body("default", "hi"))
            .await
            .status(),
        429
    );
    let wider = Spec {
        server_extra: "key_limits = { requests_per_minute = 100 }\n".to_owned(),
        ..s
    };
    std::fs::write(&g.config_path, config_text(&wider, &g.sims)).unwrap();
    let r = g
        .client
        .post(g.at("/v1/admin/reload"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(report["not_applied"], serde_json::json!([]), "{report}");
    assert_eq!(
        ask_as(&g, CLIENT_KEY, &chat_body("default", "hi"))
            .await
            .status(),
        200,
        "the bucket refills at the new rate, up to the new limit"
    );
}

#[tokio::test]
async fn embeddings_count_against_the_same_key_limit() {
    let mut sims = Vec::new();
    for _ in support::PROVIDERS {
        sims.push(
            backstop_sim::Simulator::start(backstop_sim::SimConfig::default())
                .await
                .unwrap(),
        );
    }
    let s = Spec {
        extra_toml: format!(
            "\n[providers.emb]\nkind = \"openai\"\nmodel = \"e\"\napi_key_env = \"TEST_OPENAI_KEY\"\n\
             base_url = \"{}\"\ndimensions = 8\n\n[chains.emb]\nproviders = [\"emb\"]\n",
            sims[0].openai_base_url()
        ),
        ..spec("requests_per_minute = 2")
    };
    let g = TestGateway::start_sharing(s, sims).await;
    let embed = || async {
        g.client
            .post(g.at("/v1/embeddings"))
            .bearer_auth(CLIENT_KEY)
            .json(&serde_json::json!({"model": "emb", "input": "hello"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        ask_as(&g, CLIENT_KEY, &chat_body("default", "hi"))
            .await
            .status(),
        200
    );
    assert_eq!(embed().await, 200);
    assert_eq!(
        embed().await,
        429,
        "the chat request and the embedding used the key's 2"
    );
}
