//! One request of a chaos run and what it proved: an answer, a well-formed error, or a broken
//! invariant (hang, silent truncation, mixed answer, malformed body).

use std::time::Duration;

use tokio::time::Instant;

use super::{StreamEnd, check_answer, openai_error_bytes, parse_stream};

/// `e` and its sources, so a transport failure says which layer failed.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// How a request ended, when every invariant held.
#[derive(Debug)]
pub enum Outcome {
    /// A complete answer from one provider.
    Answer,
    /// A well-formed error (status or in-stream event).
    Error(String),
}

/// Sends request `i` to `chain` (streamed when `i` is even) and checks the response against
/// the simulators' deterministic replies of `chunks` pieces; `limit` bounds the whole exchange.
/// Returns (streamed, outcome key, outcome), or the broken invariant.
pub async fn one(
    client: reqwest::Client,
    url: String,
    i: usize,
    chain: &str,
    chunks: usize,
    limit: Duration,
) -> Result<(bool, String, Outcome), String> {
    one_as(client, url, i, i.is_multiple_of(2), chain, chunks, limit).await
}

/// Like [`one`], streamed or not as `stream` says.
pub async fn one_as(
    client: reqwest::Client,
    url: String,
    i: usize,
    stream: bool,
    chain: &str,
    chunks: usize,
    limit: Duration,
) -> Result<(bool, String, Outcome), String> {
    let prompt = format!("chaos-{i:05} tell me something");
    let body = serde_json::json!({
        "model": chain,
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    });
    let fut = async {
        let r = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("#{i}: transport error: {}", with_sources(&e)))?;
        let status = r.status().as_u16();
        let provider = r
            .headers()
            .get("x-backstop-provider")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = r.bytes().await.map_err(|e| {
            format!(
                "#{i}: body cut (stream={stream}, status {status}): {}",
                with_sources(&e)
            )
        })?;
        Ok::<_, String>((status, provider, ctype, bytes))
    };
    let started = Instant::now();
    let (status, provider, ctype, bytes) = match tokio::time::timeout(limit, fut).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(format!(
                "#{i}: hung request (stream={stream}): no complete response after {:?}",
                started.elapsed()
            ));
        }
    };
    if status != 200 {
        let e = openai_error_bytes(&bytes).map_err(|e| format!("#{i}: status {status}: {e}"))?;
        let code = e.code.unwrap_or_else(|| "-".into());
        return Ok((
            stream,
            format!("{status} {code}"),
            Outcome::Error(e.message),
        ));
    }
    let provider = provider.ok_or_else(|| format!("#{i}: 200 without x-backstop-provider"))?;
    if stream {
        if !ctype.starts_with("text/event-stream") {
            return Err(format!("#{i}: stream answered with content-type {ctype}"));
        }
        let s = parse_stream(&bytes).map_err(|e| format!("#{i}: {e}"))?;
        match s.end {
            StreamEnd::Done => {
                // Whole, and one provider's text: a resumed stream is the committing
                // provider's reply finished by another (the simulators continue exactly).
                check_answer(&s.text, &provider, &prompt, chunks, false)
                    .map_err(|e| format!("#{i}: {e}"))?;
                let key = if s.resume_comments.is_empty() {
                    "200 [DONE]".to_owned()
                } else {
                    format!("200 [DONE] resumed x{}", s.resume_comments.len())
                };
                Ok((true, key, Outcome::Answer))
            }
            StreamEnd::Error(code) => {
                check_answer(&s.text, &provider, &prompt, chunks, true)
                    .map_err(|e| format!("#{i}: {e}"))?;
                let code = code.unwrap_or_else(|| "-".into());
                Ok((
                    true,
                    format!("200 error event {code}"),
                    Outcome::Error(format!("after {:?}", s.text)),
                ))
            }
        }
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("#{i}: 200 body is not JSON: {e}"))?;
        if v["object"] != "chat.completion" {
            return Err(format!("#{i}: 200 body is not a chat.completion: {v}"));
        }
        let text = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| format!("#{i}: no content in {v}"))?;
        check_answer(text, &provider, &prompt, chunks, false).map_err(|e| format!("#{i}: {e}"))?;
        Ok((false, "200".into(), Outcome::Answer))
    }
}
