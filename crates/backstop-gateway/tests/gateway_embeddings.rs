//! `POST /v1/embeddings` over HTTP: a chain of two embeddings providers (OpenAI and an
//! OpenAI-compatible server, both `backstop-sim`) falls back like a chat chain; floats and
//! base64; parameters forwarded; chat and embeddings chains refuse each other's requests;
//! the config refuses chains that mix roles or vector sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::HashMap;
use std::time::Duration;

use backstop_gateway::config::Config;
use backstop_sim::{Fault, SimConfig, embedding_vector};
use base64::Engine as _;
use reliability_support::{Gateway, client, start_sims};

const DIMS: usize = 8;

/// Providers `emb_a` (kind openai, sim 0) and `emb_b` (openai-compatible, sim 2) declare
/// 8 dimensions; `chat` (anthropic, sim 1) is a chat provider. Chains: `emb` = a then b,
/// `talk` = chat.
async fn gateway() -> Gateway {
    let sims = start_sims(&[
        SimConfig::default(),
        SimConfig::default(),
        SimConfig::default(),
    ])
    .await;
    let t = format!(
        "[server]\n\
         [providers.emb_a]\nkind = \"openai\"\nmodel = \"text-embedding-3-small\"\n\
         api_key_env = \"EMB_KEY\"\nbase_url = \"{a}\"\ndimensions = {DIMS}\nretries = 0\n\
         [providers.emb_b]\nkind = \"openai-compatible\"\nmodel = \"bge-small\"\n\
         base_url = \"{b}\"\ndimensions = {DIMS}\nretries = 0\n\
         [providers.chat]\nkind = \"anthropic\"\nmodel = \"claude\"\napi_key_env = \"EMB_KEY\"\n\
         base_url = \"{c}\"\n\
         [chains.emb]\nproviders = [\"emb_a\", \"emb_b\"]\ntimeout = \"5s\"\n\
         [chains.talk]\nproviders = [\"chat\"]\n",
        a = sims[0].openai_base_url(),
        b = sims[2].openai_base_url(),
        c = sims[1].base_url(),
    );
    let env: HashMap<String, String> = [("EMB_KEY".to_owned(), "sk-emb".to_owned())].into();
    Gateway::start(sims, &t, env, Duration::from_secs(5)).await
}

async fn post(
    gw: &Gateway,
    path: &str,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let r = client(1)
        .post(gw.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let provider = r
        .headers()
        .get("x-backstop-provider")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, provider, r.json().await.unwrap())
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn embeddings_fall_back_to_the_next_provider() {
    let gw = gateway().await;
    gw.sims[0].fail_next(1, Fault::Status(503));
    let (status, provider, body) = post(
        &gw,
        "/v1/embeddings",
        serde_json::json!({"model": "emb", "input": ["alpha", "beta gamma"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(provider.as_deref(), Some("emb_b"));
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "bge-small");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, text) in ["alpha", "beta gamma"].iter().enumerate() {
        assert_eq!(data[i]["object"], "embedding");
        assert_eq!(data[i]["index"], i);
        assert_eq!(
            floats(&data[i]["embedding"]),
            embedding_vector("openai", text, DIMS)
        );
    }
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    // Both providers were asked, with their own upstream model names.
    assert_eq!(
        gw.sims[0].requests()[0].model.as_deref(),
        Some("text-embedding-3-small")
    );
    assert_eq!(gw.sims[2].requests()[0].model.as_deref(), Some("bge-small"));
    gw.stop().await;
}

#[tokio::test]
async fn base64_is_the_vectors_little_endian_f32_bytes() {
    let gw = gateway().await;
    let (status, provider, body) = post(
        &gw,
        "/v1/embeddings",
        serde_json::json!({"model": "emb", "input": "one text", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(
        (status, provider.as_deref()),
        (200, Some("emb_a")),
        "{body}"
    );
    let b64 = body["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, embedding_vector("openai", "one text", DIMS));
    // Upstream always gets floats: the gateway does the encoding.
    assert_eq!(gw.sims[0].requests()[0].body["encoding_format"], "float");
    gw.stop().await;
}

#[tokio::test]
async fn dimensions_and_user_are_forwarded() {
    let gw = gateway().await;
    let (status, _, body) = post(
        &gw,
        "/v1/embeddings",
        serde_json::json!({"model": "emb", "input": ["x"], "dimensions": 4, "user": "u-42"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(floats(&body["data"][0]["embedding"]).len(), 4);
    let sent = &gw.sims[0].requests()[0].body;
    assert_eq!(
        (sent["dimensions"].as_u64(), sent["user"].as_str()),
        (Some(4), Some("u-42"))
    );
    assert_eq!(sent["input"], serde_json::json!(["x"]));
    gw.stop().await;
}

#[tokio::test]
async fn chat_and_embeddings_chains_refuse_each_others_requests() {
    let gw = gateway().await;
    let (status, _, body) = post(
        &gw,
        "/v1/embeddings",
        serde_json::json!({"model": "talk", "input": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "model_not_embeddings");
    assert_eq!(body["error"]["param"], "model");
    let (status, _, body) = post(
        &gw,
        "/v1/chat/completions",
        serde_json::json!({"model": "emb", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("unsupported: chat"), "{message}");
    // Neither request reached a provider.
    assert_eq!(gw.sims.iter().map(|s| s.request_count()).sum::<u64>(), 0);
    let (status, _, body) = post(
        &gw,
        "/v1/embeddings",
        serde_json::json!({"model": "nope", "input": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn every_embeddings_provider_failing_is_a_well_formed_error() {
    let gw = gateway().await;
    gw.sims[0].fail_next(1, Fault::Status(500));
    gw.sims[2].fail_next(1, Fault::MalformedBody);
    let (status, provider, body) = post(
        &gw,
        "/v1/embeddings",
        serde_json::json!({"model": "emb", "input": "x"}),
    )
    .await;
    assert_eq!((status, provider), (502, None), "{body}");
    assert_eq!(body["error"]["code"], "all_providers_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("emb_a") && message.contains("emb_b"),
        "{message}"
    );
    gw.stop().await;
}

#[test]
fn the_config_refuses_chains_that_mix_roles_or_vector_sizes() {
    let base = "[providers.a]\nkind = \"openai\"\nmodel = \"e3\"\ndimensions = 1536\n\
                [providers.b]\nkind = \"openai-compatible\"\nmodel = \"bge\"\n\
                base_url = \"http://127.0.0.1:9/v1\"\ndimensions = 768\n\
                [providers.c]\nkind = \"openai\"\nmodel = \"gpt-4o\"\n";
    let cases = [
        (
            "[chains.x]\nproviders = [\"a\", \"b\"]\n",
            "chains.x.providers[1]",
            "\"b\" is an embeddings provider of 768 dimensions but \"a\" is an embeddings provider of 1536 dimensions",
        ),
        (
            "[chains.x]\nproviders = [\"c\", \"a\"]\n",
            "chains.x.providers[1]",
            "\"a\" is an embeddings provider of 1536 dimensions but \"c\" is a chat provider",
        ),
        (
            "[chains.x]\nproviders = [\"a\"]\nstream_resume = true\n",
            "chains.x.stream_resume",
            "no streams to resume",
        ),
    ];
    for (chains, path, says) in cases {
        let e = Config::parse(&format!("{base}{chains}"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(path) && e.contains(says),
            "{e}\nshould name {path} and say {says}"
        );
    }
    let e = Config::parse(
        "[providers.a]\nkind = \"anthropic\"\nmodel = \"m\"\ndimensions = 8\n[chains.x]\nproviders = [\"a\"]\n",
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("providers.a.dimensions") && e.contains("no embeddings API"),
        "{e}"
    );
    let ok = Config::parse(
        &format!("{base}[chains.x]\nproviders = [\"a\"]\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(ok.chains["x"].dimensions, Some(1536));
}
