//! A canned upstream for tests that need exact bytes from a provider: a loopback HTTP server
//! whose every answer comes from a closure over the request (headers and body), so a test can
//! echo the request's headers back, return a refusal, omit usage, or inject a fake log line.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// One request as the upstream saw it.
pub struct Seen {
    /// Request headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when it was not JSON).
    pub body: serde_json::Value,
}

impl Seen {
    /// True when the request asked for a stream.
    pub fn stream(&self) -> bool {
        self.body["stream"] == true
    }

    /// Every header as `name: value` lines, as a debugging proxy would echo them.
    pub fn header_lines(&self) -> String {
        self.headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect()
    }
}

/// What the upstream answers.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// The whole body (an SSE stream is sent in one piece).
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: body.into().into_bytes(),
        }
    }

    /// A 200 SSE stream of these `data:` payloads.
    pub fn sse<S: AsRef<str>>(events: impl IntoIterator<Item = S>) -> Self {
        let mut body = String::new();
        for e in events {
            body.push_str("data: ");
            body.push_str(e.as_ref());
            body.push_str("\n\n");
        }
        Self {
            status: 200,
            content_type: "text/event-stream",
            body: body.into_bytes(),
        }
    }
}

/// A running canned upstream.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Serves every POST (any path) with `answer`.
    pub async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Upstream {
        let answer = Arc::new(answer);
        let app = axum::Router::new().fallback(move |req: Request| {
            let answer = answer.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let seen = Seen {
                    headers: parts.headers,
                    body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                };
                let reply = answer(&seen);
                let mut r = Response::new(Body::from(reply.body));
                *r.status_mut() = StatusCode::from_u16(reply.status).unwrap();
                r.headers_mut()
                    .insert("content-type", reply.content_type.parse().unwrap());
                r
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { addr, task }
    }

    /// The base URL for an `openai` / `openai-compatible` provider.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL for an `anthropic` provider.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An OpenAI chat completion body.
pub fn completion(
    model: Option<&str>,
    message: serde_json::Value,
    finish: &str,
    usage: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": "chatcmpl-canned",
        "object": "chat.completion",
        "created": 1,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    });
    if let Some(m) = model {
        v["model"] = m.into();
    }
    if let Some(u) = usage {
        v["usage"] = u;
    }
    v
}

/// An OpenAI chunk with this delta and finish reason.
pub fn chunk(model: Option<&str>, delta: serde_json::Value, finish: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "id": "chatcmpl-canned",
        "object": "chat.completion.chunk",
        "created": 1,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    if let Some(m) = model {
        v["model"] = m.into();
    }
    v.to_string()
}
