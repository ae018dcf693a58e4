//! A concurrency limit on one provider of a chain, with tower middleware.
//!
//! The primary takes at most 2 calls at once. With `LoadShed` in front of the limit, a call
//! over it is skipped at once (neutral for the breaker) and the backup answers; without it,
//! calls queue for the primary. On scripted in-memory providers, no keys, no network:
//!
//! ```sh
//! cargo run -p backstop --example tower_concurrency --features testing,tower
//! ```

use std::time::{Duration, Instant};

use backstop::testing::{ScriptedProvider, Step};
use backstop::tower::{ProviderService, ServiceProvider};
use backstop::{CircuitBreaker, FallbackChain};
use futures_util::future::join_all;
use tower::ServiceBuilder;

const CALL_TIME: Duration = Duration::from_millis(200);

fn primary() -> ScriptedProvider {
    ScriptedProvider::new("primary")
        .script([Step::delay(CALL_TIME, Step::reply("answer from primary"))])
}

/// Sends five requests at once and prints who answered each.
async fn five_at_once(chain: &FallbackChain) {
    let start = Instant::now();
    let answers = join_all((1..=5).map(|i| chain.generate(format!("question {i}")))).await;
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(r) => {
                let skipped: Vec<String> = r
                    .attempts
                    .iter()
                    .filter_map(|a| {
                        a.error
                            .as_ref()
                            .map(|e| format!("{}: {}", a.provider, e.kind))
                    })
                    .collect();
                println!(
                    "  request {}: {} answered{}",
                    i + 1,
                    r.provider_used,
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" (after {})", skipped.join(", "))
                    }
                );
            }
            Err(e) => println!("  request {}: failed: {e}", i + 1),
        }
    }
    println!("  all done in {} ms", start.elapsed().as_millis());
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("primary limited to 2 in flight, overflow shed to the backup:");
    let primary_a = primary();
    let shed = ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(2)
        .service(ProviderService::new(primary_a.clone()));
    let chain = FallbackChain::builder()
        .provider(
            ServiceProvider::new("primary", shed),
            CircuitBreaker::new("primary"),
        )
        .provider(
            ScriptedProvider::new("backup"),
            CircuitBreaker::new("backup"),
        )
        .build()?;
    five_at_once(&chain).await;
    println!(
        "  primary calls: {}, its breaker: {}",
        primary_a.calls(),
        chain
            .breakers()
            .next()
            .map(|b| b.state().as_str())
            .unwrap_or("?")
    );

    println!("primary limited to 2 in flight, the rest queue for it:");
    let primary_b = primary();
    let queued = ServiceBuilder::new()
        .concurrency_limit(2)
        .service(ProviderService::new(primary_b.clone()));
    let chain = FallbackChain::builder()
        .provider(
            ServiceProvider::new("primary", queued),
            CircuitBreaker::new("primary"),
        )
        .provider(
            ScriptedProvider::new("backup"),
            CircuitBreaker::new("backup"),
        )
        .build()?;
    five_at_once(&chain).await;
    println!(
        "  primary calls: {} (three waves of {} ms)",
        primary_b.calls(),
        CALL_TIME.as_millis()
    );
    Ok(())
}
