//! The chain's `tracing` spans, captured by a test layer: one `backstop.request` per request,
//! one `backstop.attempt` per attempt, each attempt a child of its request — hedged legs and
//! stream resumes (run from another task) included — with the GenAI and backstop fields.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{BreakerConfig, CircuitBreaker, ErrorKind, FallbackChain};
use futures_util::StreamExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as the layer saw it: name, parent, every field recorded (as text).
#[derive(Debug, Clone)]
struct Captured {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<String, String>,
    closed: bool,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> tracing_subscriber::Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.id().into_u64());
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some(s) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut s.fields));
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some(s) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            s.closed = true;
        }
    }
}

impl Capture {
    /// Installs the layer for this thread (the tests run on a current-thread runtime, so
    /// spawned tasks are seen too).
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn spans(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }

    /// The only request span, and the attempt spans in the order they started.
    fn request_and_attempts(&self) -> (Captured, Vec<Captured>) {
        let spans = self.spans();
        let requests: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "backstop.request")
            .cloned()
            .collect();
        assert_eq!(requests.len(), 1, "one request span: {spans:#?}");
        let attempts = spans
            .iter()
            .filter(|s| s.name == "backstop.attempt")
            .cloned()
            .collect();
        (requests[0].clone(), attempts)
    }
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::with_config(name, BreakerConfig::count(100))
}

/// (provider, role, outcome) of each attempt span.
fn summary(attempts: &[Captured]) -> Vec<(&str, &str, &str)> {
    attempts
        .iter()
        .map(|a| {
            (
                a.field("backstop.provider").unwrap(),
                a.field("backstop.attempt.role").unwrap(),
                a.field("backstop.outcome").unwrap_or("-"),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_failover_has_one_request_span_with_both_attempts_as_children() {
    let capture = Capture::default();
    let _guard = capture.install();
    let a = ScriptedProvider::new("a").script([Step::fail(ErrorKind::Server)]);
    let b = ScriptedProvider::new("b").script([Step::reply("from b")]);
    let chain = FallbackChain::builder()
        .name("assistant")
        .provider(a, breaker("a"))
        .provider(b, breaker("b"))
        .build()
        .unwrap();
    let r = chain
        .generate(backstop::ChatRequest::user("hi").request_id("req-7"))
        .await
        .unwrap();
    assert_eq!(r.provider_used, "b");

    let (request, attempts) = capture.request_and_attempts();
    assert_eq!(
        summary(&attempts),
        [("a", "primary", "failed"), ("b", "fallback", "success")]
    );
    for attempt in &attempts {
        assert_eq!(attempt.parent, Some(request.id), "{attempt:#?}");
        assert_eq!(attempt.field("gen_ai.operation.name"), Some("chat"));
        assert_eq!(attempt.field("otel.kind"), Some("client"));
        assert_eq!(attempt.field("backstop.breaker.state"), Some("closed"));
        assert!(attempt.closed, "every attempt span ended");
    }
    assert_eq!(attempts[0].field("error.type"), Some("server"));
    assert_eq!(attempts[0].field("otel.status_code"), Some("error"));
    assert_eq!(attempts[1].field("error.type"), None);
    assert_eq!(request.field("gen_ai.request.model"), Some("assistant"));
    assert_eq!(request.field("otel.name"), Some("chat assistant"));
    assert_eq!(request.field("backstop.request_id"), Some("req-7"));
    assert_eq!(request.field("backstop.provider_used"), Some("b"));
    assert_eq!(request.field("backstop.fell_back"), Some("true"));
    assert_eq!(request.field("backstop.attempts"), Some("2"));
    assert_eq!(request.field("error.type"), None);
}

#[tokio::test(start_paused = true)]
async fn a_hedged_attempt_is_a_child_of_the_request_span() {
    let capture = Capture::default();
    let _guard = capture.install();
    let slow = ScriptedProvider::new("slow")
        .script([Step::delay(Duration::from_secs(20), Step::reply("late"))]);
    let fast = ScriptedProvider::new("fast").script([Step::delay(
        Duration::from_millis(100),
        Step::reply("quick"),
    )]);
    let chain = FallbackChain::builder()
        .provider(slow, breaker("slow"))
        .provider(fast, breaker("fast"))
        .hedge_after(Duration::from_secs(2))
        .build()
        .unwrap();
    assert_eq!(chain.generate("hi").await.unwrap().provider_used, "fast");

    let (request, attempts) = capture.request_and_attempts();
    assert_eq!(
        summary(&attempts),
        [
            ("slow", "primary", "cancelled"),
            ("fast", "hedge", "success")
        ]
    );
    assert!(attempts.iter().all(|a| a.parent == Some(request.id)));
    assert_eq!(request.field("backstop.hedged"), Some("true"));
    assert_eq!(request.field("backstop.provider_used"), Some("fast"));
}

#[tokio::test(start_paused = true)]
async fn a_resume_read_on_another_task_is_a_child_of_the_request_span() {
    let capture = Capture::default();
    let _guard = capture.install();
    let a = ScriptedProvider::new("a")
        .script([Step::chunks_then_fail(["Hel", "lo "], ErrorKind::Connect)]);
    let b = ScriptedProvider::new("b").script([Step::chunks(["wor", "ld."])]);
    let chain = FallbackChain::builder()
        .provider(a, breaker("a"))
        .provider(b, breaker("b"))
        .stream_resume(true)
        .build()
        .unwrap();
    let stream = chain.stream("hi").await.unwrap();
    // The body is read elsewhere, as a server does: no span is current on that task.
    let text = tokio::spawn(async move {
        let mut stream = stream;
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk.unwrap().text);
        }
        text
    })
    .await
    .unwrap();
    assert_eq!(text, "Hello world.");

    let (request, attempts) = capture.request_and_attempts();
    assert_eq!(
        summary(&attempts),
        [
            ("a", "primary", "failed_mid_stream"),
            ("b", "resume", "success")
        ]
    );
    assert!(attempts.iter().all(|x| x.parent == Some(request.id)));
    assert_eq!(attempts[0].field("error.type"), Some("connect"));
    assert_eq!(request.field("backstop.stream"), Some("true"));
    assert_eq!(request.field("backstop.resumes"), Some("1"));
    assert_eq!(
        request.field("gen_ai.response.finish_reasons"),
        Some("stop")
    );
    assert!(
        request.closed && attempts.iter().all(|x| x.closed),
        "the spans end with the stream"
    );
}

#[tokio::test(start_paused = true)]
async fn a_provider_skipped_for_its_open_breaker_gets_a_skipped_span() {
    let capture = Capture::default();
    let _guard = capture.install();
    let open = breaker("a");
    open.trip();
    let chain = FallbackChain::builder()
        .provider(ScriptedProvider::new("a"), open)
        .provider(
            ScriptedProvider::new("b").script([Step::reply("ok")]),
            breaker("b"),
        )
        .build()
        .unwrap();
    chain.generate("hi").await.unwrap();
    let (request, attempts) = capture.request_and_attempts();
    assert_eq!(
        summary(&attempts),
        [("a", "primary", "skipped"), ("b", "fallback", "success")]
    );
    assert_eq!(attempts[0].field("backstop.breaker.state"), Some("open"));
    assert_eq!(attempts[0].field("error.type"), Some("circuit_open"));
    assert!(attempts.iter().all(|x| x.parent == Some(request.id)));
}
