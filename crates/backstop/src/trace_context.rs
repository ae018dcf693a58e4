//! W3C trace context for provider calls. The library emits `tracing` spans and knows nothing
//! of OpenTelemetry; an application that exports them (the gateway does, over OTLP) installs a
//! [`TraceparentSource`] that renders the current span's context, and every HTTP provider call
//! then carries a `traceparent` naming its attempt span. Without one, the request's own
//! `traceparent` field (the caller's, see [`ChatRequest`](crate::ChatRequest)) is passed on.

use std::sync::OnceLock;

/// Renders the `traceparent` header value for the current span, or `None` when there is none.
pub type TraceparentSource = fn() -> Option<String>;

static SOURCE: OnceLock<TraceparentSource> = OnceLock::new();

/// Installs the process-wide source (once: a later call is refused and returns `false`).
pub fn set_traceparent_source(source: TraceparentSource) -> bool {
    SOURCE.set(source).is_ok()
}

/// The value to send upstream: the installed source's, else `fallback` (the caller's).
#[cfg(feature = "http")]
#[allow(dead_code)] // called by the HTTP providers, which the `http` feature alone leaves out
pub(crate) fn outgoing(fallback: Option<&str>) -> Option<String> {
    SOURCE
        .get()
        .and_then(|source| source())
        .or_else(|| fallback.map(str::to_owned))
}
