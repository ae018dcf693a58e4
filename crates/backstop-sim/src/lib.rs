//! `backstop-sim`: a fast simulator of LLM provider APIs for tests, the demo and load
//! benchmarks.
//!
//! One server speaks three wire formats, streamed (`"stream": true`, SSE) or not:
//!
//! | route | format |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI chat completions |
//! | `POST /openai/v1/chat/completions` | Groq (OpenAI format plus `x_groq`) |
//! | `POST /v1/messages` | Anthropic Messages |
//!
//! Replies are deterministic: `"Simulated answer from <provider> to: <first 60 chars of
//! the last user message>."` followed by filler, split into `chunks` pieces; streamed
//! pieces concatenate to the non-streamed text. Usage: input tokens = words in the
//! prompt (≥ 1), output tokens = number of chunks. The request's `model` is echoed.
//!
//! Tools and structured output, in both formats: offered tools (OpenAI `tools[].function`,
//! Anthropic `tools[].input_schema`) get a call of every offered tool, in order (parallel
//! calls; only the first when `parallel_tool_calls: false` or `disable_parallel_tool_use`; the
//! named one for a named `tool_choice`), with arguments valid against its schema (strings `"sim"`, numbers their `minimum` or 1, enums
//! their first value), streamed as `delta.tool_calls` fragments or `input_json_delta`s, finish
//! `tool_calls` / `tool_use` — unless `tool_choice` is `none`, or the conversation ends with a
//! tool result, which gets `"Simulated answer from <provider> after the tool returned:
//! <result>."`. `response_format` (`json_object`, `json_schema`) or Anthropic's
//! `output_config.format` get JSON valid against the schema. Image parts are accepted (and
//! recorded). Faults apply to all of it.
//!
//! Faults ([`Fault`]) are queued with [`SimHandle::fail_next`] or drawn at random with
//! [`SimHandle::set_random`] (or [`SimHandle::set_random_for`] streamed or non-streamed requests
//! only); the same is available over HTTP under `/_sim/` (`"scope": "stream"`).
//!
//! Timing: `latency` before headers; streamed replies then wait `ttft` before the first
//! content chunk and `chunk_delay` between chunks; a non-streamed reply waits
//! `latency + ttft + (chunks - 1) * chunk_delay` before its headers.
//!
//! # Control API (same server, JSON)
//!
//! | request | effect |
//! |---|---|
//! | `POST /_sim/faults` `{"replace":false,"next":[{"count":3,"fault":{"status":503}}],"random":[{"rate":0.1,"fault":{"rate_limited":{"retry_after_secs":1}}},{"rate":0.1,"fault":{"disconnect":{"after_chunks":3}},"scope":"stream"}]}` | queue / add faults (all fields optional; `replace` clears first) |
//! | `DELETE /_sim/faults` | clear faults |
//! | `POST /_sim/timing` `{"latency_ms":0,"ttft_ms":50,"chunk_delay_ms":10,"chunks":8}` | change timing (absent fields unchanged) |
//! | `GET /_sim/stats` | `{"requests","faults_applied","queued_faults","next","random","timing","chunks","record","recorded"}` |
//! | `GET /_sim/requests` | the request log as a JSON array of [`RecordedRequest`] |
//! | `POST /_sim/reset` | clear faults, counters and log |
//!
//! Every control call answers with the stats object; invalid input gets
//! `400 {"error":"..."}` and changes nothing.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use backstop_sim::{Fault, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default()).await?;
//! sim.fail_next(2, Fault::Status(529));
//! // point an Anthropic client at sim.base_url(), an OpenAI one at sim.openai_base_url()
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod body;
mod config;
mod control;
mod embeddings;
mod fault;
mod handle;
mod record;
mod server;
mod state;
mod wire;

pub use config::SimConfig;
pub use embeddings::embedding_vector;
pub use fault::{Fault, Scope};
pub use handle::{SimHandle, Simulator};
pub use record::RecordedRequest;
pub use state::{DEFAULT_EMBEDDING_DIMENSIONS, MAX_RECORDED};
pub use wire::reply_text;
