//! The backstop gateway: an OpenAI-compatible HTTP server in front of fallback chains, plus
//! the demo. The binary is `backstop`; this library lets tests drive every piece.

mod admin;
pub mod app;
pub mod auth;
pub mod browser_guard;
pub mod config;
pub mod demo;
mod describe;
pub mod duration;
mod embeddings;
pub mod front;
pub mod limits;
pub mod logs;
mod messages;
pub mod messages_request;
mod messages_response;
pub mod metrics;
mod openai_request;
pub mod reload;
pub mod request_id;
mod request_log;
mod role;
pub mod serve;
pub mod server;
pub mod sims;
mod sse;
pub mod state;
pub mod status;
pub mod telemetry;
pub mod traceparent;
pub mod wire;
mod workers;
pub mod write_timeout;

pub use describe::describe;
