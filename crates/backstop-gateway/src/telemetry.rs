//! Trace export: when `[telemetry] otlp_endpoint` is set, the library's request and attempt
//! spans and the gateway's HTTP span go to an OpenTelemetry collector over OTLP
//! HTTP/protobuf, batched on the runtime and flushed on shutdown. The standard `OTEL_*`
//! variables apply (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, ...); the configured endpoint wins
//! over `OTEL_EXPORTER_OTLP_*ENDPOINT`. Unset: no exporter, no OpenTelemetry layer at all.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetryConfig;
use crate::traceparent::TraceParent;

/// The exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp_endpoint {endpoint:?}: {message}")]
pub struct TelemetryError {
    endpoint: String,
    message: String,
}

/// A running trace exporter.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    url: String,
}

impl Telemetry {
    /// Starts the exporter when the config names an endpoint (`Ok(None)` when not). Must run
    /// inside the tokio runtime (the batch processor is a task on it).
    pub fn start(config: &TelemetryConfig) -> Result<Option<Self>, TelemetryError> {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(None);
        };
        let url = traces_url(endpoint);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .build()
            .map_err(|e| TelemetryError {
                endpoint: endpoint.clone(),
                message: e.to_string(),
            })?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("backstop");
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource.build())
            .build();
        // Provider calls name their attempt span as the parent (`traceparent` upstream).
        backstop::trace_context::set_traceparent_source(current_traceparent);
        Ok(Some(Self { provider, url }))
    }

    /// The traces URL spans are sent to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The layer turning backstop's spans into OpenTelemetry spans (other crates' spans and
    /// events stay out).
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let only_ours = Targets::new()
            .with_target("backstop", tracing::Level::INFO)
            .with_target("backstop_gateway", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("backstop"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_filter(only_ours)
    }

    /// Exports what is still buffered and stops the exporter (graceful shutdown). The flush
    /// blocks, so it runs off the runtime's workers (the export itself is a task on them).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "trace export did not flush on shutdown"),
            Err(e) => tracing::warn!(error = %e, "trace export flush did not run"),
        }
    }
}

/// The gateway's span for one request to `route` (an OpenTelemetry SERVER span): the caller's
/// trace continued when it sent a valid `traceparent`, which is also returned.
pub fn http_span(
    headers: &HeaderMap,
    request_id: &str,
    route: &'static str,
) -> (tracing::Span, Option<TraceParent>) {
    let span = tracing::info_span!(
        "backstop.http",
        otel.name = %PostName(route),
        otel.kind = "server",
        http.request.method = "POST",
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        backstop.request_id = request_id,
    );
    let caller = TraceParent::from_headers(headers);
    if let Some(c) = &caller
        && !span.is_disabled()
    {
        continue_trace(&span, c);
    }
    (span, caller)
}

/// `POST {route}`, the HTTP span's name.
struct PostName(&'static str);

impl std::fmt::Display for PostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "POST {}", self.0)
    }
}

/// Records the answer's status on the HTTP span and names the span in a `traceparent` on
/// the answer (when traces are exported), so a caller can find the trace.
pub fn finish_http_span(span: &tracing::Span, response: &mut Response) {
    if span.is_disabled() {
        return;
    }
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    if let Some(t) = traceparent_of(span)
        && let Ok(v) = HeaderValue::from_str(&t.to_string())
    {
        response.headers_mut().insert(crate::traceparent::HEADER, v);
    }
}

/// The configured endpoint as the traces URL: a bare collector address (no path) gets the
/// standard `/v1/traces`, as `OTEL_EXPORTER_OTLP_ENDPOINT` does; a path is used as given.
fn traces_url(endpoint: &str) -> String {
    let after_scheme = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    match after_scheme.find('/') {
        None => format!("{endpoint}/v1/traces"),
        Some(i) if after_scheme[i..] == *"/" => format!("{}v1/traces", endpoint),
        Some(_) => endpoint.to_owned(),
    }
}

/// The current span's W3C context, when it is a sampled-or-not real OpenTelemetry span.
fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current()).map(|t| t.to_string())
}

/// `span`'s OpenTelemetry context as a `traceparent`, if it has one.
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
        parent_id: u64::from_be_bytes(sc.span_id().to_bytes()),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Makes `span` continue the caller's trace (a no-op without the OpenTelemetry layer).
pub fn continue_trace(span: &tracing::Span, caller: &TraceParent) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let remote = SpanContext::new(
        TraceId::from_bytes(caller.trace_id.to_be_bytes()),
        SpanId::from_bytes(caller.parent_id.to_be_bytes()),
        TraceFlags::new(caller.flags),
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_bare_collector_address_gets_the_traces_path() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/custom/traces"),
            "https://otel.example/custom/traces"
        );
    }
}
