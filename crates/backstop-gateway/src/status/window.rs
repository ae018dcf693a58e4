//! Rates and percentiles over the last few seconds, from the cumulative counters: a sample of
//! every chain's and provider's counts is kept about once a second for a minute, and each
//! status read is compared with the newest sample at least [`WINDOW`] old.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::app::App;
use crate::metrics::{ATTEMPT_OUTCOMES, ERROR_KINDS, HistogramSnapshot, REQUEST_OUTCOMES};

/// How far back rates and percentiles look.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Samples older than this are dropped.
const KEEP: Duration = Duration::from_secs(60);
/// At most one sample per this interval is kept.
const EVERY: Duration = Duration::from_secs(1);

/// One provider's cumulative counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderCounts {
    /// In [`ATTEMPT_OUTCOMES`] order.
    pub attempts: [u64; ATTEMPT_OUTCOMES.len()],
    /// In [`ERROR_KINDS`] order.
    pub errors: [u64; ERROR_KINDS.len()],
    /// Attempt latency.
    pub latency: HistogramSnapshot,
}

/// Every chain's and provider's cumulative counts at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Requests by chain, in [`REQUEST_OUTCOMES`] order.
    pub chains: HashMap<String, [u64; REQUEST_OUTCOMES.len()]>,
    /// By provider.
    pub providers: HashMap<String, ProviderCounts>,
}

impl Sample {
    /// The counts of `app`'s chains and providers now.
    pub fn of(app: &App) -> Sample {
        let mut s = Sample::default();
        for (name, config) in &app.config.chains {
            let Some(chain) = app.chains.get(name) else {
                continue;
            };
            s.chains
                .insert(name.clone(), chain.metrics.request_counts());
            for member in &config.providers {
                if s.providers.contains_key(&member.name) {
                    continue;
                }
                if let Some(p) = chain.metrics.provider(&member.name) {
                    s.providers.insert(
                        member.name.clone(),
                        ProviderCounts {
                            attempts: p.attempt_counts(),
                            errors: p.error_counts(),
                            latency: p.latency(),
                        },
                    );
                }
            }
        }
        s
    }
}

/// What happened between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The time between them.
    pub elapsed: Duration,
    /// Requests by chain (counts in the window).
    pub chains: HashMap<String, [u64; REQUEST_OUTCOMES.len()]>,
    /// By provider (counts in the window).
    pub providers: HashMap<String, ProviderCounts>,
}

fn minus<const N: usize>(now: &[u64; N], then: Option<&[u64; N]>) -> [u64; N] {
    std::array::from_fn(|i| now[i].saturating_sub(then.map_or(0, |t| t[i])))
}

impl Delta {
    /// `now - then`; a name missing from `then` (new since) counts from zero, and a counter
    /// that went down (its series was dropped and created again) counts from zero too.
    pub fn between(then: &Sample, now: &Sample, elapsed: Duration) -> Delta {
        let chains = now
            .chains
            .iter()
            .map(|(k, v)| {
                let d = match then.chains.get(k) {
                    Some(t) if t.iter().zip(v).all(|(a, b)| a <= b) => minus(v, Some(t)),
                    _ => *v,
                };
                (k.clone(), d)
            })
            .collect();
        let providers = now
            .providers
            .iter()
            .map(|(k, v)| {
                let t = then
                    .providers
                    .get(k)
                    .filter(|t| t.attempts.iter().zip(&v.attempts).all(|(a, b)| a <= b));
                let d = ProviderCounts {
                    attempts: minus(&v.attempts, t.map(|t| &t.attempts)),
                    errors: minus(&v.errors, t.map(|t| &t.errors)),
                    latency: t.map_or_else(|| v.latency.clone(), |t| v.latency.since(&t.latency)),
                };
                (k.clone(), d)
            })
            .collect();
        Delta {
            elapsed,
            chains,
            providers,
        }
    }

    /// Per second over the window; 0 for an empty window.
    pub fn rate(&self, count: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        if secs > 0.0 { count as f64 / secs } else { 0.0 }
    }
}

/// The samples kept, oldest first.
#[derive(Debug)]
pub struct History(Mutex<VecDeque<(Instant, Sample)>>);

impl History {
    /// A history whose first sample is `start` (so the first read already has a baseline).
    pub fn new(start: Sample) -> History {
        History(Mutex::new(VecDeque::from([(Instant::now(), start)])))
    }

    /// Records `now` (at most once per [`EVERY`]) and returns what changed since the newest
    /// sample at least [`WINDOW`] old (or the oldest kept, early on).
    pub fn advance(&self, now: Sample) -> Delta {
        let at = Instant::now();
        let mut h = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while h.len() > 1 && h.front().is_some_and(|(t, _)| at.duration_since(*t) > KEEP) {
            h.pop_front();
        }
        let base = h
            .iter()
            .rev()
            .find(|(t, _)| at.duration_since(*t) >= WINDOW)
            .or_else(|| h.front());
        let delta = match base {
            Some((t, s)) => Delta::between(s, &now, at.duration_since(*t)),
            None => Delta::between(&Sample::default(), &now, Duration::ZERO),
        };
        if h.back().is_none_or(|(t, _)| at.duration_since(*t) >= EVERY) {
            h.push_back((at, now));
        }
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64, attempts: u64) -> Sample {
        let mut s = Sample::default();
        s.chains.insert("c".into(), [requests, 0, 0]);
        s.providers.insert(
            "p".into(),
            ProviderCounts {
                attempts: [attempts, 0, 0, 0],
                ..ProviderCounts::default()
            },
        );
        s
    }

    #[tokio::test(start_paused = true)]
    async fn rates_cover_the_last_window_not_the_whole_uptime() {
        let h = History::new(sample(0, 0));
        // 1000 requests in the first minute, then 5 per second for 20 s.
        tokio::time::advance(Duration::from_secs(60)).await;
        h.advance(sample(1000, 1000));
        let mut n = 1000;
        let mut last = None;
        for _ in 0..20 {
            tokio::time::advance(Duration::from_secs(1)).await;
            n += 5;
            last = Some(h.advance(sample(n, n)));
        }
        let d = last.unwrap();
        assert_eq!(d.elapsed, WINDOW);
        assert_eq!(d.chains["c"][0], 50);
        assert!((d.rate(d.chains["c"][0]) - 5.0).abs() < 1e-9);
        assert_eq!(d.providers["p"].attempts[0], 50);
    }

    #[tokio::test(start_paused = true)]
    async fn early_reads_compare_with_the_start_and_new_names_count_from_zero() {
        let h = History::new(Sample::default());
        tokio::time::advance(Duration::from_secs(2)).await;
        let d = h.advance(sample(4, 6));
        assert_eq!(d.elapsed, Duration::from_secs(2));
        assert_eq!(d.chains["c"][0], 4);
        assert_eq!(d.providers["p"].attempts[0], 6);
        // A series that restarted (dropped by a reload, added again) counts from zero.
        let d = Delta::between(&sample(10, 10), &sample(3, 3), Duration::from_secs(1));
        assert_eq!(d.chains["c"][0], 3);
        assert_eq!(d.providers["p"].attempts[0], 3);
    }
}
