//! Many requests at once: nothing lost, every call accounted for, and the half-open probe
//! bound holds under real parallel contention.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{
    AttemptOutcome, BreakerState, CircuitBreaker, ErrorKind, FallbackChain, RetryPolicy,
};

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fails with a seeded-random kind `fail_pct`% of the time, with a small seeded delay.
fn faulty(name: &str, seed: u64, fail_pct: u64, delays: bool) -> ScriptedProvider {
    ScriptedProvider::from_fn(name, move |n| {
        let h = splitmix64(seed ^ n.wrapping_mul(0x1000_0000_01B3));
        let step = if h % 100 < fail_pct {
            match (h >> 8) % 4 {
                0 => Step::fail(ErrorKind::Server),
                1 => Step::fail(ErrorKind::Overloaded),
                2 => Step::fail(ErrorKind::Auth),
                _ => Step::fail(ErrorKind::InvalidRequest),
            }
        } else {
            Step::reply(format!("ok {n}"))
        };
        if delays {
            Step::delay(Duration::from_millis((h >> 16) % 50), step)
        } else {
            step
        }
    })
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(name)
        .failure_threshold(20)
        .window(Duration::from_secs(1))
        .recovery_timeout(Duration::from_millis(200))
        .half_open_probes(2)
}

async fn hammer(delays: bool) {
    let providers = [
        faulty("a", 1, 60, delays),
        faulty("b", 2, 40, delays),
        faulty("c", 3, 30, delays),
    ];
    let mut builder =
        FallbackChain::builder().retry_policy(RetryPolicy::default().max_retries(1).base_backoff(
            if delays {
                Duration::from_millis(5)
            } else {
                Duration::ZERO
            },
        ));
    for p in &providers {
        builder = builder.provider(p.clone(), breaker(backstop::Provider::name(p)));
    }
    let chain = builder.build().unwrap();
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let chain = chain.clone();
            tokio::spawn(async move { chain.generate(format!("request {i}")).await })
        })
        .collect();
    let (mut ok, mut failed, mut called, mut successes) = (0u64, 0u64, 0u64, 0u64);
    for h in handles {
        let attempts = match h.await.expect("no task panicked") {
            Ok(r) => {
                ok += 1;
                assert_eq!(r.attempts.last().unwrap().outcome, AttemptOutcome::Success);
                assert_eq!(r.attempts.last().unwrap().provider, r.provider_used);
                r.attempts
            }
            Err(e) => {
                failed += 1;
                assert!(!e.errors.is_empty());
                e.attempts
            }
        };
        called += attempts
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Skipped)
            .count() as u64;
        successes += attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Success)
            .count() as u64;
    }
    assert_eq!(ok + failed, 1000, "no request lost");
    let calls: u64 = providers.iter().map(|p| p.calls()).sum();
    assert_eq!(calls, called, "every provider call is a recorded attempt");
    assert_eq!(successes, ok, "one success per answered request");
    assert!(
        ok > 0 && failed > 0,
        "the faults exercised both paths: ok {ok}, failed {failed}"
    );
}

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_requests_on_virtual_time_lose_nothing_and_add_up() {
    hammer(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_parallel_requests_lose_nothing_and_add_up() {
    hammer(false).await;
}

#[test]
fn half_open_probe_bound_holds_under_parallel_contention() {
    let probes = 3;
    let b = CircuitBreaker::new("contended")
        .failure_threshold(1)
        .window(Duration::from_secs(60))
        .recovery_timeout(Duration::ZERO)
        .max_recovery_timeout(Duration::ZERO)
        .half_open_probes(probes);
    b.trip();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let held = Arc::new(AtomicU32::new(0));
    let max_seen = Arc::new(AtomicU32::new(0));
    let admitted = Arc::new(AtomicU32::new(0));
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (b, held, max_seen, admitted) =
                (b.clone(), held.clone(), max_seen.clone(), admitted.clone());
            s.spawn(move || {
                for _ in 0..5_000 {
                    if let Ok(p) = b.try_acquire() {
                        assert!(p.is_probe());
                        admitted.fetch_add(1, Ordering::Relaxed);
                        let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        held.fetch_sub(1, Ordering::SeqCst);
                        drop(p); // neutral: frees the slot, stays half-open
                    }
                }
            });
        }
    });
    assert!(
        max_seen.load(Ordering::SeqCst) <= probes,
        "max {}",
        max_seen.load(Ordering::SeqCst)
    );
    assert!(admitted.load(Ordering::Relaxed) > 0);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.admits(), "every slot was freed");
}

/// A gauge fed by breaker events that keeps the newest generation, as the gateway's would.
#[derive(Default)]
struct Gauge(std::sync::Mutex<(u64, Option<BreakerState>)>);

impl backstop::Observer for Gauge {
    fn on_breaker_change(&self, c: &backstop::StateChange<'_>) {
        let mut g = self.0.lock().unwrap();
        if c.generation > g.0 || g.1.is_none() {
            *g = (c.generation, Some(c.to));
        }
    }
}

#[test]
fn a_gauge_keeping_the_newest_generation_ends_on_the_true_state() {
    for round in 0..20 {
        let b = CircuitBreaker::new(format!("g{round}"))
            .failure_threshold(1)
            .recovery_timeout(Duration::ZERO)
            .max_recovery_timeout(Duration::ZERO);
        let gauge = Arc::new(Gauge::default());
        b.observe(gauge.clone());
        std::thread::scope(|s| {
            for t in 0..4 {
                let b = b.clone();
                s.spawn(move || {
                    for i in 0..2_000 {
                        match (t + i) % 4 {
                            0 => b.trip(),
                            1 => b.reset(),
                            2 => b.record_failure(),
                            _ => {
                                if let Ok(p) = b.try_acquire() {
                                    p.success();
                                }
                            }
                        }
                    }
                });
            }
        });
        let truth = b.state();
        let seen = gauge.0.lock().unwrap().1;
        assert_eq!(seen, Some(truth), "round {round}");
    }
}
