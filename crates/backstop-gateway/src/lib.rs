//! The backstop gateway: an OpenAI-compatible HTTP server in front of fallback chains, plus
//! the demo. The binary is `backstop`; this library lets tests drive every piece.

pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
mod describe;
pub mod duration;
pub mod metrics;
pub mod serve;
pub mod server;
pub mod sims;
pub mod wire;

pub use describe::describe;
