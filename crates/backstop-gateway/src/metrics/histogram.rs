//! A fixed-bucket histogram of atomics: observed on the request path without a lock, encoded
//! by `prometheus-client` for `/metrics`, and read bucket by bucket by the status page for its
//! percentiles (prometheus-client's own `Histogram` takes a mutex per observation and does not
//! expose its buckets).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds in seconds for latencies (attempts, time to first token).
pub const LATENCY_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds for tokens per answer.
pub const TOKEN_BOUNDS: &[f64] = &[
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
];

/// A histogram; clones share their counts.
#[derive(Debug, Clone)]
pub struct AtomicHistogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    bounds: &'static [f64],
    /// One count per bound, then the overflow (`+Inf`) bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    /// The sum in units of `1 / scale` (microseconds for latencies, tokens for tokens).
    sum: AtomicU64,
    scale: f64,
}

/// The counts of a histogram at one moment (or the difference of two moments).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds; `counts` has one more entry (the overflow bucket).
    pub bounds: &'static [f64],
    /// Per-bucket counts, not cumulative.
    pub counts: Vec<u64>,
    /// Sum of the observations, in the histogram's unit.
    pub sum: f64,
}

impl AtomicHistogram {
    /// Latencies in seconds, observed as durations.
    pub fn latency() -> Self {
        Self::new(LATENCY_BOUNDS, 1e6)
    }

    /// Token counts.
    pub fn tokens() -> Self {
        Self::new(TOKEN_BOUNDS, 1.0)
    }

    fn new(bounds: &'static [f64], scale: f64) -> Self {
        Self(Arc::new(Inner {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }))
    }

    /// Records a duration (latency histograms).
    pub fn observe_duration(&self, d: std::time::Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.record(d.as_secs_f64(), micros);
    }

    /// Records a count (token histograms).
    pub fn observe_count(&self, n: u64) {
        #[allow(clippy::cast_precision_loss)]
        self.record(n as f64, n);
    }

    fn record(&self, value: f64, scaled: u64) {
        let i = self
            .0
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.0.bounds.len());
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum.fetch_add(scaled, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        #[allow(clippy::cast_precision_loss)]
        let sum = self.0.sum.load(Ordering::Relaxed) as f64 / self.0.scale;
        HistogramSnapshot {
            bounds: self.0.bounds,
            counts: self
                .0
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum,
        }
    }
}

impl HistogramSnapshot {
    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was observed since `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .enumerate()
                .map(|(i, c)| c.saturating_sub(earlier.counts.get(i).copied().unwrap_or(0)))
                .collect(),
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    /// The `q` quantile (0..=1), interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does; `None` without observations. A quantile in the overflow
    /// bucket reads as the largest bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = self.bounds.get(i) else {
                    return self.bounds.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { self.bounds[i - 1] };
                #[allow(clippy::cast_precision_loss)]
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            below += n;
        }
        self.bounds.last().copied()
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let s = self.snapshot();
        let buckets: Vec<(f64, u64)> = s
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(s.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(s.sum, s.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = AtomicHistogram::latency();
        h.observe_duration(Duration::from_millis(5));
        h.observe_duration(Duration::from_millis(6));
        h.observe_duration(Duration::from_secs(600));
        let s = h.snapshot();
        assert_eq!(s.counts[0], 1, "5 ms is inside le=0.005");
        assert_eq!(s.counts[1], 1, "6 ms is inside le=0.01");
        assert_eq!(s.counts[LATENCY_BOUNDS.len()], 1, "overflow bucket");
        assert_eq!(s.count(), 3);
        assert!((s.sum - 600.011).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let h = AtomicHistogram::latency();
        // 100 observations between 0.1 s and 0.25 s, and one of 20 s.
        for _ in 0..100 {
            h.observe_duration(Duration::from_millis(200));
        }
        h.observe_duration(Duration::from_secs(20));
        let s = h.snapshot();
        let p50 = s.quantile(0.5).unwrap();
        assert!(p50 > 0.1 && p50 <= 0.25, "{p50}");
        let p99 = s.quantile(0.99).unwrap();
        assert!(p99 > 0.1 && p99 <= 0.25, "{p99}");
        let max = s.quantile(1.0).unwrap();
        assert!(max > 10.0 && max <= 30.0, "{max}");
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }

    #[test]
    fn a_window_is_the_difference_of_two_snapshots() {
        let h = AtomicHistogram::tokens();
        h.observe_count(10);
        let before = h.snapshot();
        h.observe_count(1000);
        h.observe_count(1000);
        let window = h.snapshot().since(&before);
        assert_eq!(window.count(), 2);
        assert_eq!(window.sum, 2000.0);
        let p50 = window.quantile(0.5).unwrap();
        assert!(p50 > 256.0 && p50 <= 1024.0, "{p50}");
    }
}
