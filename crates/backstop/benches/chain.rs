#![allow(missing_docs)]
//! What the chain costs on top of calling a provider directly.
//!
//! Each group measures the direct call and the chain call side by side, so the difference is
//! the chain's overhead: primary answers, primary fails and the secondary answers, primary's
//! breaker open; plus breaker admit+record and per-chunk streaming cost. The `python baseline`
//! group is the chain the Python benchmark (crates/backstop-py/bench/overhead.py) calls, so
//! the difference between the two is what the binding adds.

use std::hint::black_box;
use std::time::Duration;

use backstop::{
    BoxFuture, ChatRequest, Chunk, ChunkStream, CircuitBreaker, Completion, ErrorKind,
    FallbackChain, Provider, ProviderError,
};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;

/// A provider that answers instantly from memory, so only the chain's own work is measured.
struct Instant {
    reply: Completion,
    chunks: usize,
}

/// A provider that fails instantly.
struct Failing;

impl Provider for Instant {
    fn name(&self) -> &str {
        "instant"
    }
    fn complete<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move { Ok(self.reply.clone()) })
    }
    fn stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        let n = self.chunks;
        Box::pin(async move {
            let s = futures_util::stream::iter((0..n).map(|_| Ok(Chunk::text("tok"))));
            Ok(Box::pin(s) as ChunkStream)
        })
    }
}

impl Provider for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn complete<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async { Err(ProviderError::new(ErrorKind::Server, "down")) })
    }
    fn stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        Box::pin(async { Err(ProviderError::new(ErrorKind::Server, "down")) })
    }
}

fn instant(chunks: usize) -> Instant {
    Instant {
        reply: Completion::new("the answer", "bench-model"),
        chunks,
    }
}

/// A breaker that never opens from failures (zero-length window), so failover paths stay steady.
fn never_opens(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(name)
        .failure_threshold(64)
        .window(Duration::ZERO)
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => unreachable_runtime(e),
    }
}

#[allow(clippy::panic)]
fn unreachable_runtime(e: std::io::Error) -> ! {
    panic!("tokio runtime: {e}")
}

fn build(b: backstop::FallbackChainBuilder<backstop::Priority>) -> FallbackChain {
    match b.build() {
        Ok(c) => c,
        #[allow(clippy::panic)]
        Err(e) => panic!("chain: {e}"),
    }
}

fn breaker(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker");
    let closed = CircuitBreaker::new("b");
    g.bench_function("admit+success (closed)", |b| {
        b.iter(|| {
            if let Ok(p) = black_box(&closed).try_acquire() {
                p.success();
            }
        })
    });
    let counting = never_opens("c");
    g.bench_function("admit+failure (closed)", |b| {
        b.iter(|| {
            if let Ok(p) = black_box(&counting).try_acquire() {
                p.failure();
            }
        })
    });
    let open = CircuitBreaker::new("o").recovery_timeout(Duration::from_secs(3600));
    open.trip();
    g.bench_function("reject (open)", |b| {
        b.iter(|| black_box(&open).try_acquire().is_err())
    });
    g.finish();
}

fn chain(c: &mut Criterion) {
    let rt = runtime();
    let req = ChatRequest::user("What is idempotency in REST APIs?");
    let mut g = c.benchmark_group("generate");

    let direct = instant(1);
    g.bench_function("direct provider call", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(direct.complete(&req).await.is_ok()) })
    });

    let primary_answers = build(
        FallbackChain::builder()
            .provider(instant(1), never_opens("a"))
            .provider(instant(1), never_opens("b")),
    );
    g.bench_function("chain: primary answers", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(primary_answers.generate_request(&req).await.is_ok()) })
    });

    let failover = build(
        FallbackChain::builder()
            .provider(Failing, never_opens("a"))
            .provider(instant(1), never_opens("b")),
    );
    g.bench_function("chain: primary fails, secondary answers", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(failover.generate_request(&req).await.is_ok()) })
    });

    let tripped = CircuitBreaker::new("a").recovery_timeout(Duration::from_secs(3600));
    tripped.trip();
    let open = build(
        FallbackChain::builder()
            .provider(instant(1), tripped)
            .provider(instant(1), never_opens("b")),
    );
    g.bench_function("chain: primary breaker open", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(open.generate_request(&req).await.is_ok()) })
    });
    g.finish();

    const CHUNKS: usize = 100;
    let mut g = c.benchmark_group("stream (100 chunks)");
    let direct = instant(CHUNKS);
    g.bench_function("direct provider stream", |b| {
        b.to_async(&rt).iter(|| async {
            let mut n = 0;
            if let Ok(mut s) = direct.stream(&req).await {
                while let Some(Ok(_)) = s.next().await {
                    n += 1;
                }
            }
            black_box(n)
        })
    });
    let streaming = build(
        FallbackChain::builder()
            .provider(instant(CHUNKS), never_opens("a"))
            .idle_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60)),
    );
    g.bench_function("chain stream (idle timeout + deadline armed)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut n = 0;
            if let Ok(mut s) = streaming.stream_request(&req).await {
                while let Some(Ok(_)) = s.next().await {
                    n += 1;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

/// The same chain as crates/backstop-py/bench/overhead.py: two `ScriptedProvider`s behind
/// count breakers, the primary answering, the request marked `drop_counts_as_timeout` as the
/// Python binding marks it; on a current-thread runtime, and from outside a multi-thread
/// runtime with `block_on` (what the binding's blocking `generate()` does).
fn python_baseline(c: &mut Criterion) {
    use backstop::testing::ScriptedProvider;
    let chain = build(
        FallbackChain::builder()
            .provider(
                ScriptedProvider::new("primary"),
                CircuitBreaker::new("primary").failure_threshold(3),
            )
            .provider(
                ScriptedProvider::new("secondary"),
                CircuitBreaker::new("secondary").failure_threshold(3),
            ),
    );
    let req = ChatRequest::user("hi").drop_counts_as_timeout(true);
    let mut g = c.benchmark_group("python baseline");
    let rt = runtime();
    g.bench_function("chain (ScriptedProvider): current-thread runtime", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(chain.generate_request(&req).await.is_ok()) })
    });
    let multi = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => unreachable_runtime(e),
    };
    g.bench_function(
        "chain (ScriptedProvider): block_on a multi-thread runtime",
        |b| b.iter(|| black_box(multi.block_on(chain.generate_request(&req)).is_ok())),
    );

    // Over loopback HTTP: the simulator on its own runtime (its own threads, as the Python
    // benchmark's simulator is its own process), the chain's OpenAI provider pointed at it.
    let sim_rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => unreachable_runtime(e),
    };
    let sim = match sim_rt.block_on(backstop_sim::Simulator::start(backstop_sim::SimConfig {
        record: false,
        ..backstop_sim::SimConfig::default()
    })) {
        Ok(sim) => sim,
        Err(e) => unreachable_runtime(e),
    };
    let http = build(
        FallbackChain::builder()
            .provider(
                backstop::providers::OpenAiLlm::new("gpt-4o-mini")
                    .base_url(sim.openai_base_url())
                    .api_key("sk-bench"),
                CircuitBreaker::new("openai").failure_threshold(3),
            )
            .provider(
                ScriptedProvider::new("secondary"),
                CircuitBreaker::new("secondary").failure_threshold(3),
            ),
    );
    g.bench_function(
        "chain (OpenAI over loopback HTTP): multi-thread runtime",
        |b| {
            b.to_async(&multi)
                .iter(|| async { black_box(http.generate_request(&req).await.is_ok()) })
        },
    );
    g.finish();
    sim_rt.block_on(sim.shutdown());
}

criterion_group!(benches, breaker, chain, python_baseline);
criterion_main!(benches);
