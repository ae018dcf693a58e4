//! Shared helpers for the simulator's integration tests.
#![allow(dead_code)]

use backstop_sim::{SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

pub const PROMPT: &str = "Hello there, how are you today?";

pub async fn sim() -> SimHandle {
    Simulator::start(SimConfig::default()).await.unwrap()
}

thread_local! {
    // One client per test thread (= per test runtime): building one is slow.
    static CLIENT: reqwest::Client = reqwest::Client::builder().no_proxy().build().unwrap();
}

pub fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    OpenAi,
    Groq,
    Anthropic,
}

pub const ROUTES: [Route; 3] = [Route::OpenAi, Route::Groq, Route::Anthropic];

impl Route {
    pub fn url(self, sim: &SimHandle) -> String {
        match self {
            Route::OpenAi => format!("{}/chat/completions", sim.openai_base_url()),
            Route::Groq => format!("{}/openai/v1/chat/completions", sim.base_url()),
            Route::Anthropic => format!("{}/v1/messages", sim.base_url()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Route::OpenAi => "openai",
            Route::Groq => "groq",
            Route::Anthropic => "anthropic",
        }
    }

    pub fn body(self, stream: bool) -> Value {
        match self {
            Route::Anthropic => json!({
                "model": "claude-test",
                "max_tokens": 100,
                "system": "You are terse.",
                "messages": [{"role": "user", "content": PROMPT}],
                "stream": stream,
            }),
            Route::OpenAi | Route::Groq => json!({
                "model": "gpt-test",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": PROMPT}
                ],
                "stream": stream,
            }),
        }
    }
}

pub async fn post(url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap()
}

pub async fn call(sim: &SimHandle, route: Route, stream: bool) -> reqwest::Response {
    post(&route.url(sim), &route.body(stream)).await
}

pub async fn json_of(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// One SSE event: optional `event:` name and the `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

pub fn parse_sse(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            Sse { event, data }
        })
        .collect()
}

/// Text carried by content events of either format.
pub fn content_text(events: &[Sse]) -> (String, usize) {
    let mut text = String::new();
    let mut n = 0;
    for e in events {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        if v["type"] == "content_block_delta" {
            text.push_str(v["delta"]["text"].as_str().unwrap());
            n += 1;
        } else if let Some(c) = v["choices"][0]["delta"]["content"].as_str()
            && !c.is_empty()
        {
            text.push_str(c);
            n += 1;
        }
    }
    (text, n)
}

/// Reads a body until it ends or fails; returns the bytes so far and whether it failed.
pub async fn read_all(mut resp: reqwest::Response) -> (String, bool) {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            Ok(None) => return (String::from_utf8(buf).unwrap(), false),
            Err(_) => return (String::from_utf8(buf).unwrap(), true),
        }
    }
}

/// The non-streamed reply text of either format.
pub fn full_text(route: Route, v: &Value) -> String {
    match route {
        Route::Anthropic => v["content"][0]["text"].as_str().unwrap().to_owned(),
        _ => v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}
