#![allow(missing_docs)]
//! What the chain costs on top of calling a provider directly.
//!
//! Each group measures the direct call and the chain call side by side, so the difference is
//! the chain's overhead: primary answers, primary fails and the secondary answers, primary's
//! breaker open; plus breaker admit+record and per-chunk streaming cost.

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

criterion_group!(benches, breaker, chain);
criterion_main!(benches);
