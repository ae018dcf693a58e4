//! Hedged requests: when the first provider has not answered (or, streaming, produced its first
//! token) by the hedge delay, the next provider starts beside it; the first to answer wins and
//! the other is cancelled, neutral for its breaker. A hedge budget keeps an overloaded provider
//! from doubling the load on the rest.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{self, Either};

use crate::Permit;
use crate::budget::Budget;

use super::attempt::Outcome;

/// When a chain starts a hedge.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HedgeAfter {
    /// After this long without an answer.
    Fixed(Duration),
    /// After the first provider's recent time to answer at this percentile (0–100), but never
    /// sooner than `min`. No hedge until 16 answers were seen (nothing to measure against).
    Percentile {
        /// The percentile of recent answer times, e.g. 95.
        percentile: f64,
        /// The shortest delay.
        min: Duration,
    },
}

/// Recent answer times of one provider (time to answer, or to first token when streaming).
#[derive(Debug, Default)]
pub(crate) struct Latencies(Mutex<VecDeque<Duration>>);

/// How many recent answers a percentile is taken over.
const WINDOW: usize = 64;
/// Answers needed before the percentile is trusted.
const WARM: usize = 16;

impl Latencies {
    pub(crate) fn record(&self, d: Duration) {
        let mut q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() == WINDOW {
            q.pop_front();
        }
        q.push_back(d);
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        let mut v: Vec<Duration> = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        if v.len() < WARM {
            return None;
        }
        v.sort_unstable();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((p.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64).round() as usize;
        v.get(i).copied()
    }
}

impl HedgeAfter {
    /// The delay for a request whose first provider has these recent latencies; `None`: no
    /// hedge (a percentile without enough answers yet).
    pub(crate) fn delay(&self, recent: &Latencies) -> Option<Duration> {
        match *self {
            HedgeAfter::Fixed(d) => Some(d),
            HedgeAfter::Percentile { percentile, min } => {
                recent.percentile(percentile).map(|d| d.max(min))
            }
        }
    }
}

/// A chain's hedging settings and budget.
pub(crate) struct Hedging {
    pub(crate) after: HedgeAfter,
    pub(crate) budget: Budget,
}

/// One attempt of a race, as it ended.
pub(super) enum Leg<T> {
    Answered(T, Permit),
    Failed(crate::ProviderError),
    NoTime,
    Cancelled,
}

/// What a race produced: each started attempt's entry, its end and its latency, in the order
/// they ended (a cancelled loser last).
pub(super) type Legs<T> = Vec<(usize, Leg<T>, Duration)>;

/// Runs `first` alone for `delay`; if it has not ended by then, starts `second()` (if it gives
/// an attempt) and takes whichever answers first. Returns `None` when the first attempt ended
/// before the delay: its outcome is then handled as an ordinary attempt by the caller.
pub(super) async fn race<T, A, B, S>(
    first: (usize, A),
    delay: Duration,
    second: S,
) -> Result<Legs<T>, (Outcome<T>, Duration)>
where
    A: Future<Output = (Outcome<T>, Duration)>,
    B: Future<Output = (Outcome<T>, Duration)>,
    S: FnOnce() -> Option<(usize, B)>,
{
    let (i, a) = first;
    let mut a = std::pin::pin!(a);
    let sleep = std::pin::pin!(tokio::time::sleep(delay));
    // `select` polls its first future first: an attempt that ends at the delay is not hedged.
    if let Either::Left((done, _)) = future::select(a.as_mut(), sleep).await {
        return Err(done);
    }
    let Some((j, b)) = second() else {
        return Err(a.await);
    };
    let mut b = std::pin::pin!(b);
    let leg = |o: Outcome<T>| match o {
        Outcome::Answered(v, p) => Leg::Answered(v, p),
        Outcome::Failed(e) => Leg::Failed(e),
        Outcome::DeadlinePassed => Leg::NoTime,
    };
    let started = tokio::time::Instant::now();
    let mut legs: Legs<T> = Vec::with_capacity(2);
    match future::select(a.as_mut(), b.as_mut()).await {
        Either::Left(((o, lat), _)) => {
            let answered = matches!(o, Outcome::Answered(..));
            legs.push((i, leg(o), lat));
            if answered {
                legs.push((j, Leg::Cancelled, started.elapsed()));
            } else {
                let (o, lat) = b.await;
                legs.push((j, leg(o), lat));
            }
        }
        Either::Right(((o, lat), _)) => {
            let answered = matches!(o, Outcome::Answered(..));
            legs.push((j, leg(o), lat));
            if answered {
                legs.push((i, Leg::Cancelled, delay + started.elapsed()));
            } else {
                let (o, lat) = a.await;
                legs.push((i, leg(o), lat));
            }
        }
    }
    Ok(legs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_need_warm_up_and_respect_the_floor() {
        let l = Latencies::default();
        let h = HedgeAfter::Percentile {
            percentile: 90.0,
            min: Duration::from_millis(50),
        };
        assert_eq!(h.delay(&l), None, "cold: no hedge");
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        // The last 64 answers are 37..=100 ms; their 90th percentile is 94 ms.
        assert_eq!(h.delay(&l), Some(Duration::from_millis(94)));
        let high_floor = HedgeAfter::Percentile {
            percentile: 10.0,
            min: Duration::from_millis(80),
        };
        assert_eq!(high_floor.delay(&l), Some(Duration::from_millis(80)));
    }
}
