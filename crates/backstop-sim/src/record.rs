//! The request log.

use serde::{Deserialize, Serialize};

use crate::Fault;

/// One request received on a provider route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Request path, e.g. `/v1/messages`.
    pub path: String,
    /// Every header as received, in order (names lower-case; values lossily UTF-8).
    pub headers: Vec<(String, String)>,
    /// The JSON body (`null` when it did not parse).
    pub body: serde_json::Value,
    /// Whether the request asked for `"stream": true`.
    pub stream: bool,
    /// The request's `model`, when present.
    pub model: Option<String>,
    /// The fault applied to this request, if any.
    pub fault: Option<Fault>,
    /// The id the simulator answered with (`x-request-id` on the OpenAI and Groq routes,
    /// `request-id` on Anthropic's), for tests of the round trip.
    pub request_id: String,
    /// The address the request came from: its port tells the client's connections apart.
    #[serde(default)]
    pub peer: Option<std::net::SocketAddr>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
