//! The `tower` feature: a chain inside a tower stack, `poll_ready` while breakers are open,
//! and per-provider middleware through `ServiceProvider`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::tower::{PROBE_RECHECK, ProviderService, ServiceProvider, StreamingChain};
use backstop::{
    BoxFuture, ChatRequest, ChunkStream, CircuitBreaker, Completion, ErrorKind, FallbackChain,
    Provider, ProviderError,
};
use futures_util::future::join_all;
use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

const RECOVERY: Duration = Duration::from_secs(30);

/// Counts calls in flight (and the most ever at once) around a provider.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(self: &Arc<Self>) -> GaugeGuard {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        GaugeGuard(Arc::clone(self))
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Gauged<P> {
    inner: P,
    gauge: Arc<Gauge>,
}

impl<P: Provider> Provider for Gauged<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let _in_flight = self.gauge.enter();
            self.inner.complete(request).await
        })
    }
    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let _in_flight = self.gauge.enter();
            self.inner.stream(request).await
        })
    }
}

fn slow(name: &str) -> ScriptedProvider {
    ScriptedProvider::new(name).script([Step::delay(
        Duration::from_millis(100),
        Step::reply(format!("answer from {name}")),
    )])
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(name).recovery_timeout(RECOVERY)
}

#[tokio::test(start_paused = true)]
async fn a_chain_answers_inside_a_tower_stack_and_the_stack_timeout_applies() {
    let primary = ScriptedProvider::new("primary").script([
        Step::reply("first"),
        Step::delay(Duration::from_secs(10), Step::reply("too late")),
    ]);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), breaker("primary"))
        .attempt_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .map_request(|prompt: &'static str| ChatRequest::from(prompt))
        .map_response(|r: backstop::FallbackResult| format!("{}: {}", r.provider_used, r.text))
        .service(chain);

    let answer = stack.ready().await.unwrap().call("hi").await.unwrap();
    assert_eq!(answer, "primary: first");

    let err = stack.ready().await.unwrap().call("hi").await.unwrap_err();
    assert!(
        err.is::<tower::timeout::error::Elapsed>(),
        "the stack's timeout, not the chain's: {err}"
    );
    assert_eq!(primary.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_chain_error_comes_out_of_the_stack_as_all_providers_failed() {
    let primary = ScriptedProvider::new("primary").script([Step::fail(ErrorKind::Auth)]);
    let chain = FallbackChain::builder()
        .provider(primary, breaker("primary"))
        .build()
        .unwrap();
    let err = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .service(chain)
        .oneshot(ChatRequest::from("hi"))
        .await
        .unwrap_err();
    let all = err
        .downcast_ref::<backstop::AllProvidersFailed>()
        .expect("the chain's own error type");
    assert_eq!(all.errors[0].error.kind, ErrorKind::Auth);
}

#[tokio::test(start_paused = true)]
async fn poll_ready_is_pending_while_every_breaker_is_open_and_wakes_at_recovery() {
    let (a, b) = (ScriptedProvider::new("a"), ScriptedProvider::new("b"));
    let (breaker_a, breaker_b) = (breaker("a"), breaker("b").recovery_timeout(RECOVERY * 2));
    let chain = FallbackChain::builder()
        .provider(a.clone(), breaker_a.clone())
        .provider(b.clone(), breaker_b.clone())
        .build()
        .unwrap();
    let mut service = chain.clone();
    assert!(
        ServiceExt::<ChatRequest>::ready(&mut service)
            .now_or_never()
            .is_some(),
        "closed breakers: ready at once"
    );

    breaker_a.trip();
    breaker_b.trip();
    assert!(!chain.would_admit());
    assert_eq!(chain.next_recovery_in(), Some(RECOVERY));
    assert!(
        ServiceExt::<ChatRequest>::ready(&mut service)
            .now_or_never()
            .is_none(),
        "every breaker open: not ready"
    );

    // The wake-up arrives when the nearest breaker (a) turns half-open; without one this
    // would time out.
    let start = Instant::now();
    tokio::time::timeout(RECOVERY * 3, ServiceExt::<ChatRequest>::ready(&mut service))
        .await
        .expect("poll_ready woke up at recovery")
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= RECOVERY && waited < RECOVERY + Duration::from_millis(10),
        "{waited:?}"
    );
    let answer = service.call(ChatRequest::from("hi")).await.unwrap();
    assert_eq!(answer.provider_used, "a", "the half-open probe");
    assert_eq!((a.calls(), b.calls()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn poll_ready_rechecks_when_every_breaker_is_half_open_and_busy() {
    let a = ScriptedProvider::new("a").script([Step::delay(
        Duration::from_secs(1),
        Step::reply("probe answer"),
    )]);
    let breaker_a = breaker("a").half_open_probes(1);
    let chain = FallbackChain::builder()
        .provider(a.clone(), breaker_a.clone())
        .build()
        .unwrap();
    breaker_a.trip();
    tokio::time::sleep(RECOVERY).await;
    // The one probe slot is taken by a call that takes a second.
    let probe = tokio::spawn({
        let chain = chain.clone();
        async move { chain.generate("probe").await }
    });
    tokio::task::yield_now().await;
    assert!(!chain.would_admit());
    assert_eq!(
        chain.next_recovery_in(),
        None,
        "half-open: nothing counts down"
    );

    let mut service = chain.clone();
    let start = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        ServiceExt::<ChatRequest>::ready(&mut service),
    )
    .await
    .expect("poll_ready looked again after the probe ended")
    .unwrap();
    // Ready within one recheck period of the probe's end (the timeout polling it would be
    // much later).
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1) - Duration::from_millis(1)
            && waited <= Duration::from_secs(1) + PROBE_RECHECK + Duration::from_millis(1),
        "{waited:?}"
    );
    assert_eq!(probe.await.unwrap().unwrap().text, "probe answer");
}

#[tokio::test(start_paused = true)]
async fn load_shed_in_front_of_a_chain_fails_fast_while_every_breaker_is_open() {
    let a = ScriptedProvider::new("a");
    let breaker_a = breaker("a");
    let chain = FallbackChain::builder()
        .provider(a.clone(), breaker_a.clone())
        .build()
        .unwrap();
    let mut stack = ServiceBuilder::new().load_shed().service(chain);
    breaker_a.trip();
    let err = ServiceExt::<ChatRequest>::ready(&mut stack)
        .await
        .unwrap()
        .call(ChatRequest::from("hi"))
        .now_or_never()
        .expect("shed at once, no waiting")
        .unwrap_err();
    assert!(err.is::<tower::load_shed::error::Overloaded>(), "{err}");
    assert_eq!(a.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_on_one_provider_bounds_its_calls_in_flight() {
    let gauge = Arc::new(Gauge::default());
    let primary = Gauged {
        inner: slow("primary"),
        gauge: Arc::clone(&gauge),
    };
    let limited = ServiceBuilder::new()
        .concurrency_limit(2)
        .service(ProviderService::new(primary));
    let chain = FallbackChain::builder()
        .provider(ServiceProvider::new("primary", limited), breaker("primary"))
        .provider(ScriptedProvider::new("backup"), breaker("backup"))
        .attempt_timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let start = Instant::now();
    let answers = join_all((0..6).map(|_| chain.generate("hi"))).await;
    for answer in &answers {
        assert_eq!(answer.as_ref().unwrap().provider_used, "primary");
    }
    assert_eq!(gauge.max(), 2);
    // Six 100 ms calls, two at a time (virtual time).
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn without_the_limit_the_same_calls_all_overlap() {
    // The control for the test above: the gauge does see overlap when nothing bounds it.
    let gauge = Arc::new(Gauge::default());
    let primary = Gauged {
        inner: slow("primary"),
        gauge: Arc::clone(&gauge),
    };
    let chain = FallbackChain::builder()
        .provider(
            ServiceProvider::new("primary", ProviderService::new(primary)),
            breaker("primary"),
        )
        .build()
        .unwrap();
    join_all((0..6).map(|_| chain.generate("hi"))).await;
    assert_eq!(gauge.max(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_shed_provider_is_skipped_for_the_next_without_tripping_its_breaker() {
    let primary = slow("primary");
    let shed = ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(1)
        .service(ProviderService::new(primary.clone()));
    let primary_breaker = breaker("primary").failure_threshold(1);
    let chain = FallbackChain::builder()
        .provider(
            ServiceProvider::new("primary", shed),
            primary_breaker.clone(),
        )
        .provider(ScriptedProvider::new("backup"), breaker("backup"))
        .build()
        .unwrap();

    let answers = join_all((0..3).map(|_| chain.generate("hi"))).await;
    let used: Vec<&str> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().provider_used.as_str())
        .collect();
    assert_eq!(used, ["primary", "backup", "backup"]);
    assert_eq!(primary.calls(), 1, "shed calls never reach the provider");
    let shed_attempt = &answers[1].as_ref().unwrap().attempts[0];
    assert_eq!(
        shed_attempt.error.as_ref().unwrap().kind,
        ErrorKind::CircuitOpen
    );
    assert_eq!(primary_breaker.state(), backstop::BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_service_provider_streams_chunk_by_chunk() {
    let scripted = ScriptedProvider::new("p").script([Step::chunks(["Hel", "lo", " there"])]);
    let service = ServiceBuilder::new()
        .concurrency_limit(1)
        .service(ProviderService::new(scripted));
    let chain = FallbackChain::builder()
        .provider(ServiceProvider::streaming("p", service), breaker("p"))
        .build()
        .unwrap();
    let stream = chain.stream("hi").await.unwrap();
    let texts: Vec<String> = stream.map(|c| c.unwrap().text).collect().await;
    assert_eq!(texts.concat(), "Hello there");
    assert!(texts.len() >= 3, "delivered piece by piece: {texts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_complete_only_service_provider_streams_its_answer_as_one_chunk() {
    let scripted = ScriptedProvider::new("p").script([Step::chunks(["Hel", "lo", " there"])]);
    let provider = ServiceProvider::new("p", ProviderService::new(scripted));
    let chunks: Vec<_> = provider
        .stream(&ChatRequest::from("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(chunks.len(), 1);
    let chunk = chunks[0].as_ref().unwrap();
    assert_eq!(chunk.text, "Hello there");
    assert!(
        chunk.finish_reason.is_some(),
        "the one chunk ends the answer"
    );
}

#[tokio::test(start_paused = true)]
async fn service_errors_become_provider_errors_by_kind() {
    #[derive(Debug, thiserror::Error)]
    #[error("custom middleware broke")]
    struct Custom;

    let own = ServiceProvider::new(
        "own",
        tower::service_fn(|_: ChatRequest| async {
            Err::<Completion, ProviderError>(ProviderError::new(ErrorKind::Auth, "no key"))
        }),
    );
    let custom = ServiceProvider::new(
        "custom",
        tower::service_fn(|_: ChatRequest| async { Err::<Completion, Custom>(Custom) }),
    );
    let timed = ServiceProvider::new(
        "timed",
        ServiceBuilder::new()
            .timeout(Duration::from_millis(10))
            .service(ProviderService::new(
                ScriptedProvider::new("t").script([Step::hang()]),
            )),
    );
    let request = ChatRequest::from("hi");
    let e = own.complete(&request).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Auth, "no key"));
    let e = custom.complete(&request).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(
        e.message.contains("custom middleware broke"),
        "{}",
        e.message
    );
    let e = timed.complete(&request).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn a_chain_streams_as_a_service_of_stream_requests() {
    let chain = FallbackChain::builder()
        .provider(
            ScriptedProvider::new("p").script([Step::chunks(["a", "b"])]),
            breaker("p"),
        )
        .build()
        .unwrap();
    let stream = StreamingChain(chain)
        .oneshot(ChatRequest::from("hi"))
        .await
        .unwrap();
    assert_eq!(stream.provider_used(), "p");
    let text: String = stream.map(|c| c.unwrap().text).collect().await;
    assert_eq!(text, "ab");
}
