//! The gateway's log output: one line per record, always. In text format every field value
//! has its control characters escaped (`\n` → `\\n`), so text from outside (an upstream's
//! error, a header, a model name) can never start a fake log line; JSON format escapes by
//! construction (one object per line).

use std::io::IsTerminal;

use backstop::providers::escape_controls;
use tracing_subscriber::Layer;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::format::{Writer, debug_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::telemetry::Telemetry;

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber writing to stderr; `RUST_LOG` overrides `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    init_with_writer(format, default_filter, std::io::stderr, None);
}

/// Like [`init`], writing through `writer` (tests capture the output this way), and sending
/// spans to `telemetry` when it is given. Log lines are events only: spans never decorate
/// them (they go to the trace exporter, if any).
pub fn init_with_writer<W>(
    format: LogFormat,
    default_filter: &str,
    writer: W,
    telemetry: Option<&Telemetry>,
) where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let events_only = filter.and(filter_fn(|meta| meta.is_event()));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let fmt = match format {
        LogFormat::Text => fmt
            .fmt_fields(escaping_fields())
            .with_filter(events_only)
            .boxed(),
        LogFormat::Json => fmt.json().with_filter(events_only).boxed(),
    };
    // `try_init`: a second call (tests) keeps the first subscriber. No trace layer at all
    // without telemetry: an absent (`None`) layer still enables every span, and the registry
    // would then allocate and track each request's spans for nobody.
    let registry = tracing_subscriber::registry().with(fmt);
    let _ = match telemetry {
        Some(t) => registry.with(t.layer()).try_init(),
        None => registry.try_init(),
    };
}

/// `name=value` fields (the message bare), every value with control characters escaped.
fn escaping_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let text = escape_controls(&format!("{value:?}"));
            if field.name() == "message" {
                w.write_str(&text)
            } else {
                write!(w, "{}={text}", field.name())
            }
        },
    )
    .delimited(" ")
}
