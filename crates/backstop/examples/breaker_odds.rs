//! How often the default breaker opens on a provider that fails 30% of calls at random, and
//! how fast it opens on a hard outage, per traffic level: the figures in RELIABILITY.md.
//!
//! `cargo run --release -p backstop --example breaker_odds [days]` (virtual time; default 2 days
//! of traffic per rate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backstop::{BreakerState, CircuitBreaker, Observer, StateChange};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Default)]
struct Opens(AtomicU32);

impl Observer for Opens {
    fn on_breaker_change(&self, c: &StateChange<'_>) {
        if c.to == BreakerState::Open {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn call(b: &CircuitBreaker, fails: bool) {
    if let Ok(p) = b.try_acquire() {
        if fails { p.failure() } else { p.success() }
    }
}

async fn false_opens(rate: u32, secs: u64, seed: u64) -> u32 {
    let b = CircuitBreaker::new("p");
    let opens = Arc::new(Opens::default());
    b.observe(opens.clone());
    let mut rng = SmallRng::seed_from_u64(seed);
    let gap = Duration::from_secs(1) / rate;
    for _ in 0..u64::from(rate) * secs {
        call(&b, rng.random_bool(0.3));
        tokio::time::advance(gap).await;
    }
    opens.0.load(Ordering::Relaxed)
}

async fn outage(rate: u32) -> (Duration, u32) {
    let b = CircuitBreaker::new("p");
    let gap = Duration::from_secs(1) / rate;
    for _ in 0..u64::from(rate) * 60 {
        call(&b, false);
        tokio::time::advance(gap).await;
    }
    let onset = tokio::time::Instant::now();
    let mut n = 0;
    while b.state() == BreakerState::Closed {
        call(&b, true);
        n += 1;
        if b.state() == BreakerState::Closed {
            tokio::time::advance(gap).await;
        }
    }
    (onset.elapsed(), n)
}

fn main() {
    let days: f64 = std::env::args()
        .nth(1)
        .and_then(|d| d.parse().ok())
        .unwrap_or(2.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("runtime: {e}");
            std::process::exit(1)
        });
    println!(
        "| req/s | virtual time | opens under 30% random failures | per day | hard outage: opens after | failing calls |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    rt.block_on(async {
        for rate in [1u32, 3, 10, 30, 100, 300, 1000] {
            // Keep the work bounded at high rates: at least 2 hours of virtual traffic.
            let secs = ((days * 86_400.0) as u64)
                .min(200_000_000 / u64::from(rate))
                .max(7_200);
            let opens = false_opens(rate, secs, u64::from(rate)).await;
            let per_day = f64::from(opens) * 86_400.0 / secs as f64;
            let (after, calls) = outage(rate).await;
            println!(
                "| {rate} | {:.1} h | {opens} | {per_day:.2} | {:.0} ms | {calls} |",
                secs as f64 / 3600.0,
                after.as_secs_f64() * 1000.0
            );
        }
    });
}
