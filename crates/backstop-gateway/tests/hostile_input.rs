//! Hostile input: a table of malformed and abusive requests, sent as raw bytes over TCP so
//! nothing is cleaned up by a client library. Each must get the right 4xx (with an OpenAI-shaped
//! error where the gateway itself answers), and the gateway must keep serving normal requests
//! meanwhile (a background client runs throughout) and after each case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use backstop_sim::SimConfig;
use reliability_support::{
    Gateway, PROVIDERS, client, openai_error_bytes, provider_section, start_sims,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "client-key-hostile";
const ADMIN: &str = "admin-key-hostile";
const MAX_BODY: usize = 64 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_millis(500);
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// What to do after writing the bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Keep the connection open and read the response.
    Read,
    /// Close our write half (the body ends early), then read.
    CloseWrite,
}

/// What the case must produce.
#[derive(Clone, Debug)]
enum Expect {
    /// This status, with an OpenAI error body whose message contains the text (lower-case).
    Error(u16, &'static str),
    /// This status from the HTTP layer (hyper/axum), whatever the body.
    Status(u16),
    /// The connection is closed without a response (or with this status).
    ClosedOr(u16),
    /// A normal answer (the input is odd but valid).
    Answer,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    then: Then,
    expect: Expect,
}

fn request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn auth() -> (&'static str, String) {
    ("authorization", format!("Bearer {KEY}"))
}

fn json_type() -> (&'static str, String) {
    ("content-type", "application/json".into())
}

/// A valid chat POST with this content type.
fn typed(content_type: &str) -> Vec<u8> {
    let body = user("ok".into()).to_string();
    request(
        "POST",
        "/v1/chat/completions",
        &[
            auth(),
            ("content-type", content_type.into()),
            ("content-length", body.len().to_string()),
        ],
        body.as_bytes(),
    )
}

/// A chat POST with the client key, JSON content type and a correct content-length.
fn chat(body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/v1/chat/completions",
        &[
            auth(),
            ("content-type", "application/json".into()),
            ("content-length", body.len().to_string()),
        ],
        body,
    )
}

fn chat_json(v: serde_json::Value) -> Vec<u8> {
    chat(v.to_string().as_bytes())
}

fn user(content: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"model": "default", "messages": [{"role": "user", "content": content}]})
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = user("hello".into());
    v[field] = value;
    v
}

fn case(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        bytes,
        then: Then::Read,
        expect,
    }
}

fn cases() -> Vec<Case> {
    use Expect::{Answer, ClosedOr, Error, Status};
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let mut v = vec![
        // Bad JSON.
        case("not JSON", chat(b"hello there"), Error(400, "not valid json")),
        case("truncated JSON", chat(br#"{"model":"default","messages":[{"role":"us"#), Error(400, "not valid json")),
        case("trailing garbage", chat(br#"{"model":"default","messages":[{"role":"user","content":"x"}]} xyz"#), Error(400, "trailing")),
        case("byte-order mark", chat(b"\xef\xbb\xbf{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), Error(400, "not valid json")),
        case("empty body", chat(b""), Error(400, "not valid json")),
        case("JSON null", chat(b"null"), Error(400, "invalid type")),
        case("JSON array", chat(b"[1,2,3]"), Error(400, "invalid type")),
        case("JSON string", chat(br#""model""#), Error(400, "invalid type")),
        case("duplicate key", chat(br#"{"model":"default","model":"x","messages":[{"role":"user","content":"x"}]}"#), Error(400, "duplicate field")),
        // Invalid text.
        case("invalid UTF-8 in a string", chat(b"{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"), Error(400, "unicode")),
        case("lone surrogate escape", chat(br#"{"model":"default","messages":[{"role":"user","content":"\ud800"}]}"#), Error(400, "escape")),
        case("UTF-16 body", chat(&"{\"model\":\"default\"}".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()), Error(400, "not valid json")),
        // Deep nesting: refused at the first array that is not a part, not a stack overflow.
        case("10,000 nested arrays as content", chat(format!(r#"{{"model":"default","messages":[{{"role":"user","content":{}}}]}}"#, nested(10_000)).as_bytes()), Error(400, "invalid type: sequence")),
        // Unknown fields are read (they are passed through to OpenAI-wire providers), so deep
        // nesting there is refused like anywhere else.
        case("10,000 nested arrays in an unknown field", chat(format!(r#"{{"extra":{},"model":"default","messages":[]}}"#, nested(10_000)).as_bytes()), Error(400, "recursion limit")),
        case("32,000 nested arrays in an unknown field", chat(format!(r#"{{"extra":{},"model":"default","messages":[]}}"#, nested(32_000)).as_bytes()), Error(400, "recursion limit")),
        case("10,000 nested objects in tools", chat(format!(r#"{{"model":"default","messages":[{{"role":"user","content":"x"}}],"tools":{}1{}}}"#, r#"{"a":"#.repeat(10_000), "}".repeat(10_000)).as_bytes()), Error(400, "invalid type")),
        // Messages.
        case("missing messages", chat_json(serde_json::json!({"model": "default"})), Error(400, "missing field `messages`")),
        case("empty messages", chat_json(serde_json::json!({"model": "default", "messages": []})), Error(400, "at least one message")),
        case("messages is a string", chat_json(serde_json::json!({"model": "default", "messages": "hi"})), Error(400, "invalid type")),
        case("message without role", chat_json(serde_json::json!({"model": "default", "messages": [{"content": "hi"}]})), Error(400, "missing field `role`")),
        case("unknown role", chat_json(serde_json::json!({"model": "default", "messages": [{"role": "wizard", "content": "hi"}]})), Error(400, "unknown role")),
        case("content is a number", chat_json(user(42.into())), Error(400, "content")),
        case("user content null", chat_json(user(serde_json::Value::Null)), Error(400, "no content")),
        case("no user message", chat_json(serde_json::json!({"model": "default", "messages": [{"role": "system", "content": "be nice"}]})), Answer),
        case("image part", chat_json(user(serde_json::json!([{"type": "image_url", "image_url": {"url": "http://x"}}]))), Answer),
        case("image part with a file URL", chat_json(user(serde_json::json!([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]))), Error(400, "image url must be https://")),
        case("text part without text", chat_json(user(serde_json::json!([{"type": "text"}]))), Error(400, "without `text`")),
        // Model.
        case("missing model", chat_json(serde_json::json!({"messages": [{"role": "user", "content": "x"}]})), Error(400, "missing field `model`")),
        case("empty model", chat_json(serde_json::json!({"model": " ", "messages": [{"role": "user", "content": "x"}]})), Error(400, "must name a chain")),
        case("model is a number", chat_json(serde_json::json!({"model": 7, "messages": [{"role": "user", "content": "x"}]})), Error(400, "invalid type")),
        case("unknown model", chat_json(serde_json::json!({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})), Error(404, "does not exist")),
        // Numbers.
        case("negative max_tokens", chat_json(with("max_tokens", (-1).into())), Error(400, "max_tokens")),
        case("zero max_tokens", chat_json(with("max_tokens", 0.into())), Error(400, "max_tokens")),
        case("absurd max_tokens", chat_json(with("max_tokens", 1_000_000_000_000i64.into())), Error(400, "max_tokens")),
        case("max_tokens beyond i64", chat(br#"{"model":"default","messages":[{"role":"user","content":"x"}],"max_tokens":99999999999999999999999}"#), Error(400, "max_tokens")),
        case("fractional max_tokens", chat_json(with("max_tokens", 1.5.into())), Error(400, "max_tokens")),
        case("max_tokens as string", chat_json(with("max_tokens", "10".into())), Error(400, "max_tokens")),
        case("negative max_completion_tokens", chat_json(with("max_completion_tokens", (-5).into())), Error(400, "max_completion_tokens")),
        case("temperature 5", chat_json(with("temperature", 5.into())), Error(400, "temperature")),
        case("temperature as string", chat_json(with("temperature", "hot".into())), Error(400, "temperature")),
        case("top_p negative", chat_json(with("top_p", (-1).into())), Error(400, "top_p")),
        case("n = 0", chat_json(with("n", 0.into())), Error(400, "`n` must be at least 1")),
        case("n = 5", chat_json(with("n", 5.into())), Error(400, "no provider of this chain supports n")),
        case("five stop sequences", chat_json(with("stop", serde_json::json!(["a", "b", "c", "d", "e"]))), Error(400, "at most 4")),
        case("empty stop sequence", chat_json(with("stop", serde_json::json!([""]))), Error(400, "must not be empty")),
        case("stream is a string", chat_json(with("stream", "yes".into())), Error(400, "stream")),
        case("tool without function", chat_json(with("tools", serde_json::json!([{"type": "function"}]))), Error(400, "needs `function`")),
        // Size.
        case("huge string over the body limit", chat_json(user("x".repeat(MAX_BODY * 2).into())), Error(413, "larger than")),
        case("chunked body over the limit", request("POST", "/v1/chat/completions", &[auth(), ("content-type", "application/json".into()), ("transfer-encoding", "chunked".into())], &chunked(&user("y".repeat(MAX_BODY * 2).into()).to_string().into_bytes())), Error(413, "larger than")),
        case("large but allowed string", chat_json(user("z".repeat(MAX_BODY - 200).into())), Answer),
        case("2,000 messages", chat_json(serde_json::json!({"model": "default", "messages": vec![serde_json::json!({"role": "user", "content": "hi"}); 2_000]})), Answer),
        // Headers.
        case("no Authorization", request("POST", "/v1/chat/completions", &[("content-length", "2".into())], b"{}"), Error(401, "api key")),
        case("wrong key", request("POST", "/v1/chat/completions", &[("authorization", "Bearer nope".into()), ("content-length", "2".into())], b"{}"), Error(401, "api key")),
        case("Basic scheme", request("POST", "/v1/chat/completions", &[("authorization", format!("Basic {KEY}")), ("content-length", "2".into())], b"{}"), Error(401, "api key")),
        case("duplicate Authorization (wrong first)", request("POST", "/v1/chat/completions", &[("authorization", "Bearer nope".into()), auth(), ("content-length", "2".into())], b"{}"), Error(401, "api key")),
        case("duplicate Authorization (right first)", request("POST", "/v1/chat/completions", &[auth(), ("authorization", "Bearer nope".into()), ("content-length", "2".into())], b"{}"), Error(401, "api key")),
        case("admin endpoint with client key", request("POST", "/v1/breakers/openai/trip", &[auth(), ("content-length", "0".into())], b""), Error(403, "admin key")),
        case("form-encoded body", request("POST", "/v1/chat/completions", &[auth(), ("content-type", "application/x-www-form-urlencoded".into()), ("content-length", "13".into())], b"model=default"), Error(415, "must be json")),
        // A browser's "simple" cross-site POST: text/plain with a JSON body never reaches a chain.
        case("text/plain content type, JSON body", typed("text/plain"), Error(415, "content-type: application/json")),
        case("no content type, JSON body", request("POST", "/v1/chat/completions", &[auth(), ("content-length", user("ok".into()).to_string().len().to_string())], user("ok".into()).to_string().as_bytes()), Error(415, "must be json")),
        case("application/jsonl content type", typed("application/jsonl"), Error(415, "must be json")),
        case("application/json; charset=utf-8 (accepted)", typed("application/json; charset=utf-8"), Answer),
        case("APPLICATION/JSON (accepted)", typed("APPLICATION/JSON"), Answer),
        case("cross-origin request", request("POST", "/v1/chat/completions", &[auth(), ("origin", "https://evil.example".into()), ("content-type", "application/json".into()), ("content-length", user("ok".into()).to_string().len().to_string())], user("ok".into()).to_string().as_bytes()), Error(403, "origin")),
        case("cross-origin preflight", request("OPTIONS", "/v1/chat/completions", &[("origin", "https://evil.example".into()), ("access-control-request-method", "POST".into())], b""), Error(403, "origin")),
        case("two Host headers", b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n".to_vec(), Error(400, "more than one host")),
        case("no Host header (HTTP/1.1)", b"GET /v1/models HTTP/1.1\r\nconnection: close\r\n\r\n".to_vec(), Error(400, "no host header")),
        case("malformed Host header", b"GET /v1/models HTTP/1.1\r\nhost: a b@c\r\nconnection: close\r\n\r\n".to_vec(), Error(400, "not a valid host")),
        case("POST without a body", request("POST", "/v1/chat/completions", &[auth(), json_type()], b""), Error(400, "not valid json")),
        case("huge header (1 MiB)", request("POST", "/v1/chat/completions", &[auth(), ("x-junk", "j".repeat(1 << 20)), ("content-length", "2".into())], b"{}"), ClosedOr(431)),
        case("200 headers", request("POST", "/v1/chat/completions", &(0..200).map(|i| ("x-many", i.to_string())).collect::<Vec<_>>(), b""), ClosedOr(431)),
        case("invalid chunk size", request("POST", "/v1/chat/completions", &[auth(), json_type(), ("transfer-encoding", "chunked".into())], b"zz\r\nhello\r\n0\r\n\r\n"), Error(400, "could not read request body")),
        case("content-length and chunked", request("POST", "/v1/chat/completions", &[auth(), json_type(), ("content-length", "5".into()), ("transfer-encoding", "chunked".into())], b"0\r\n\r\n"), Status(400)),
        case("two content-lengths", request("POST", "/v1/chat/completions", &[auth(), ("content-length", "2".into()), ("content-length", "7".into())], b"{}"), Status(400)),
        case("garbage request line", b"HELLO\r\n\r\n".to_vec(), ClosedOr(400)),
        // Method and path.
        case("GET chat completions", request("GET", "/v1/chat/completions", &[auth()], b""), Error(405, "method")),
        case("DELETE models", request("DELETE", "/v1/models", &[auth()], b""), Error(405, "method")),
        case("unknown path", request("GET", "/v2/everything", &[auth()], b""), Error(404, "no such endpoint")),
        case("dot-dot path", request("GET", "/v1/../v1/models", &[auth()], b""), Error(404, "no such endpoint")),
    ];
    v.push(Case {
        name: "content-length lie (body ends early)",
        bytes: request(
            "POST",
            "/v1/chat/completions",
            &[auth(), json_type(), ("content-length", "1000".into())],
            br#"{"model":"default""#,
        ),
        then: Then::CloseWrite,
        expect: Expect::Error(400, "could not read request body"),
    });
    v
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(4096) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A raw response: status (None when the connection closed without one), body.
struct Raw {
    status: Option<u16>,
    body: Vec<u8>,
}

async fn read_response(stream: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no response and no close within 10 s");
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Raw {
            status: None,
            body: buf,
        };
    };
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Raw { status, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = i + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

async fn send(addr: std::net::SocketAddr, bytes: &[u8], then: Then) -> Raw {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before taking everything (413, 431): ignore write errors.
    let _ = s.write_all(bytes).await;
    if then == Then::CloseWrite {
        let _ = s.shutdown().await;
    }
    read_response(&mut s).await
}

fn check(case: &Case, raw: &Raw) -> Result<String, String> {
    let shown = || String::from_utf8_lossy(&raw.body[..raw.body.len().min(300)]).into_owned();
    match &case.expect {
        Expect::Error(status, text) => {
            if raw.status != Some(*status) {
                return Err(format!(
                    "status {:?}, expected {status}: {}",
                    raw.status,
                    shown()
                ));
            }
            let e = openai_error_bytes(&raw.body)?;
            let said = format!("{} {}", e.message, e.param.as_deref().unwrap_or("")).to_lowercase();
            if !said.contains(text) {
                return Err(format!(
                    "message {:?} (param {:?}) does not mention {text:?}",
                    e.message, e.param
                ));
            }
            if e.message.len() > 2_000 {
                return Err(format!("message is {} bytes long", e.message.len()));
            }
            Ok(format!(
                "{status} {}",
                e.message.lines().next().unwrap_or("")
            ))
        }
        Expect::Status(status) => {
            if raw.status == Some(*status) {
                Ok(format!("{status} (HTTP layer)"))
            } else {
                Err(format!("status {:?}, expected {status}", raw.status))
            }
        }
        Expect::ClosedOr(status) => match raw.status {
            None => Ok("connection closed".into()),
            Some(s) if s == *status => Ok(format!("{s} (HTTP layer)")),
            Some(s) => Err(format!(
                "status {s}, expected {status} or a close: {}",
                shown()
            )),
        },
        Expect::Answer => {
            if raw.status != Some(200) {
                return Err(format!(
                    "status {:?}, expected 200: {}",
                    raw.status,
                    shown()
                ));
            }
            let v: serde_json::Value =
                serde_json::from_slice(&raw.body).map_err(|e| e.to_string())?;
            v["choices"][0]["message"]["content"]
                .as_str()
                .ok_or("no content")?;
            Ok("200 answered".into())
        }
    }
}

async fn normal(client: &reqwest::Client, url: &str, n: usize) -> Result<(), String> {
    let r = client
        .post(url)
        .bearer_auth(KEY)
        .json(&user(format!("normal request {n}").into()))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if status == 200 && text.contains("Simulated answer from openai") {
        Ok(())
    } else {
        Err(format!("{status}: {text}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_4xx_and_the_server_keeps_serving() {
    let sims = start_sims(&vec![
        SimConfig {
            record: false,
            ..SimConfig::default()
        };
        3
    ])
    .await;
    let mut text = format!(
        "[server]\nclient_keys_env = \"REL_CLIENT_KEYS\"\nadmin_key_env = \"REL_ADMIN_KEY\"\n\
         max_body_bytes = {MAX_BODY}\nbody_timeout = \"{}ms\"\n",
        BODY_TIMEOUT.as_millis()
    );
    for (name, sim) in PROVIDERS.iter().zip(&sims) {
        text.push_str(&provider_section(name, sim, "timeout = \"5s\""));
    }
    text.push_str("\n[chains.default]\nproviders = [\"openai\", \"anthropic\", \"groq\"]\n");
    let mut env: HashMap<String, String> = PROVIDERS
        .iter()
        .map(|p| {
            (
                format!("REL_{}_KEY", p.to_uppercase()),
                "sk-hostile".to_owned(),
            )
        })
        .collect();
    env.insert("REL_CLIENT_KEYS".into(), KEY.into());
    env.insert("REL_ADMIN_KEY".into(), ADMIN.into());
    let gw = Gateway::start(sims, &text, env, HEADER_TIMEOUT).await;
    let url = gw.url("/v1/chat/completions");
    let client = client(8);

    // Normal traffic throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let background = {
        let (stop, served, client, url) =
            (stop.clone(), served.clone(), client.clone(), url.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                n += 1;
                match normal(&client, &url, n).await {
                    Ok(()) => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(e),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        })
    };

    let cases = cases();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let raw = send(gw.addr, &c.bytes, c.then).await;
        match check(c, &raw) {
            Ok(summary) => println!("hostile {i:2} {:45} -> {summary}", c.name),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
        if let Err(e) = normal(&client, &url, 1_000_000 + i).await {
            failures.push(format!("normal request after {:?} failed: {e}", c.name));
        }
    }

    // Slow body: headers and part of the body, then nothing: 408 after body_timeout.
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&request(
        "POST",
        "/v1/chat/completions",
        &[auth(), json_type(), ("content-length", "100".into())],
        br#"{"model":"#,
    ))
    .await
    .unwrap();
    let raw = read_response(&mut s).await;
    let waited = started.elapsed();
    let slow = Case {
        name: "slow body",
        bytes: Vec::new(),
        then: Then::Read,
        expect: Expect::Error(408, "timed out reading the request body"),
    };
    match check(&slow, &raw) {
        Ok(summary) => println!(
            "hostile {:2} {:45} -> {summary} after {waited:?}",
            cases.len(),
            slow.name
        ),
        Err(e) => failures.push(format!("slow body: {e}")),
    }
    if waited < BODY_TIMEOUT || waited > BODY_TIMEOUT + Duration::from_secs(3) {
        failures.push(format!("slow body answered after {waited:?}"));
    }

    // Slow headers (slowloris): the connection is dropped after the header timeout.
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let raw = read_response(&mut s).await;
    let waited = started.elapsed();
    println!(
        "hostile {:2} {:45} -> {:?} after {waited:?}",
        cases.len() + 1,
        "slow headers",
        raw.status
            .map_or("connection closed".to_owned(), |s| s.to_string())
    );
    if waited > HEADER_TIMEOUT + Duration::from_secs(3) || raw.status.is_some_and(|s| s != 408) {
        failures.push(format!("slow headers: {:?} after {waited:?}", raw.status));
    }

    stop.store(true, Ordering::Relaxed);
    let background_failures = background.await.unwrap();
    let served = served.load(Ordering::Relaxed);
    println!(
        "hostile: {} inputs tried; {served} normal requests served alongside, {} failed",
        cases.len() + 2,
        background_failures.len()
    );
    assert!(cases.len() + 2 >= 40);
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        background_failures.is_empty(),
        "background: {background_failures:?}"
    );
    assert!(served > 0);
    gw.stop().await;
}
