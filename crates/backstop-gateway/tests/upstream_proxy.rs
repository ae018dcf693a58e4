//! The upstream client and HTTP proxies named by the environment. A cleartext (`http://`)
//! upstream is reached by hyper's client directly (the library's `providers/direct.rs`), which
//! knows nothing of proxies; so when `HTTP_PROXY` names one, reqwest sends instead, through the
//! proxy, as it always did. Real binary, loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod binary;
mod support;

use std::sync::{Arc, Mutex};

use backstop_sim::{SimConfig, Simulator};
use support::chat_body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A loopback HTTP proxy that answers every request itself with one chat completion and
/// keeps each request's line (`POST http://host:port/path HTTP/1.1` when sent to a proxy).
async fn answering_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = find(&buf, b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let l = l.to_ascii_lowercase();
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                seen.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_owned());
                let body = r#"{"id":"chatcmpl-proxy","object":"chat.completion","created":1,"model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":"via the proxy"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), lines)
}

fn config(base_url: &str) -> String {
    format!(
        "[providers.openai]\nkind = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"K\"\n\
         base_url = \"{base_url}\"\nretries = 0\n[chains.default]\nproviders = [\"openai\"]\n"
    )
}

#[tokio::test]
async fn an_http_proxy_in_the_environment_still_carries_cleartext_upstreams() {
    let (proxy, lines) = answering_proxy().await;
    // Nothing listens at the upstream's own address: only the proxy can answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let upstream = format!("http://{closed}/v1");
    let mut gw = binary::Gateway::start(
        &config(&upstream),
        binary::Launch {
            env: &[("K", "sk-test"), ("HTTP_PROXY", &proxy)],
            ..Default::default()
        },
    );
    let r = support::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_body("default", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "via the proxy");
    assert_eq!(
        lines.lock().unwrap().as_slice(),
        [format!("POST {upstream}/chat/completions HTTP/1.1")],
        "the request went to the proxy, in absolute form"
    );
    assert!(gw.stop().success());
}

#[tokio::test]
async fn without_a_proxy_the_upstream_gets_the_request_itself_with_the_same_headers() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (proxy, lines) = answering_proxy().await;
    let mut gw = binary::Gateway::start(
        &config(&sim.openai_base_url()),
        binary::Launch {
            // An HTTPS proxy does not apply to http:// upstreams.
            env: &[("K", "sk-test"), ("HTTPS_PROXY", &proxy)],
            ..Default::default()
        },
    );
    for _ in 0..2 {
        let r = support::client()
            .post(gw.url("/v1/chat/completions"))
            .header("x-request-id", "direct-1")
            .json(&chat_body("default", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    assert!(gw.stop().success());
    assert!(
        lines.lock().unwrap().is_empty(),
        "nothing went to the proxy"
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    let r = &requests[0];
    assert_eq!(r.path, "/v1/chat/completions");
    let authority = sim
        .openai_base_url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // What reqwest sent before: host, the JSON content type, the key, reqwest's `accept`, a
    // length rather than chunked encoding, and the request's id.
    assert_eq!(r.header("host"), Some(authority.as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(r.header("accept"), Some("*/*"));
    assert!(r.header("content-length").is_some());
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("x-request-id"), Some("direct-1"));
    assert_eq!(r.body["model"], "gpt-x");
}
