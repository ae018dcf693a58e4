//! Breaker settings: which rule opens it, how long it stays open, how it probes.

use std::time::Duration;

use crate::hold::HoldConfig;

/// Which rule opens a closed breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BreakerMode {
    /// The seed's rule: `failure_threshold` failures inside `window` open it, whatever the
    /// traffic. Simple and predictable at low traffic; a busy provider reaches any fixed count
    /// at a small error rate, so prefer [`BreakerMode::Rate`] for busy services.
    Count {
        /// Failures inside the window that open the breaker (at least 1).
        failure_threshold: u32,
    },
    /// Scales with traffic: failures / calls at or above `failure_rate` over `window`, once the
    /// window holds `minimum_calls` calls, open it. A hard outage opens it sooner:
    /// `outage_failures` failures in a row with no success for `outage_time`.
    Rate {
        /// Failure share that opens the breaker, in (0, 1].
        failure_rate: f64,
        /// Calls the window must hold before its failure share counts.
        minimum_calls: u32,
        /// Consecutive failures of the hard-outage rule (0 turns the rule off).
        outage_failures: u32,
        /// How long without any success the hard-outage rule also needs.
        outage_time: Duration,
    },
}

impl BreakerMode {
    /// The default failure-rate rule: 50% over the window with at least 100 calls, or 10
    /// failures in a row with no success for 1 s.
    ///
    /// Why: under 30% independent failures a window of 100+ calls reaches 50% with probability
    /// about 1e-5, so the rate rule stays closed at any traffic; a provider failing every call
    /// opens within about 1 s when busy, or within 10 calls when quiet. At low traffic the run
    /// rule is statistical: 10 failures in a row happen with probability 0.3^10 ≈ 6e-6 per call
    /// under 30% failures (RELIABILITY.md has the measured rates per traffic level).
    pub const DEFAULT_RATE: BreakerMode = BreakerMode::Rate {
        failure_rate: 0.5,
        minimum_calls: 100,
        outage_failures: 10,
        outage_time: Duration::from_secs(1),
    };

    /// `"count"` or `"rate"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerMode::Count { .. } => "count",
            BreakerMode::Rate { .. } => "rate",
        }
    }
}

/// Breaker settings.
///
/// Defaults: failure-rate mode ([`BreakerMode::DEFAULT_RATE`]) over a 60 s window, 5 s
/// recovery doubling after each failed probe up to 20 s (so a provider that recovered is back
/// in rotation within about 20 s), one probe at a time, rate-limit holds per [`HoldConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// The rule that opens the breaker.
    pub mode: BreakerMode,
    /// How far back calls and failures count.
    pub window: Duration,
    /// How long the breaker stays open before its first probe.
    pub recovery_timeout: Duration,
    /// Longest open period after repeated failed probes (each doubles the last); never below
    /// `recovery_timeout`. Equal to it: no backoff.
    pub max_recovery_timeout: Duration,
    /// Concurrent probe calls admitted while half-open (at least 1).
    pub half_open_probes: u32,
    /// The provider's rate-limit hold.
    pub hold: HoldConfig,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            mode: BreakerMode::DEFAULT_RATE,
            window: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(5),
            max_recovery_timeout: Duration::from_secs(20),
            half_open_probes: 1,
            hold: HoldConfig::default(),
        }
    }
}

impl BreakerConfig {
    /// The seed's count rule with default timings.
    pub fn count(failure_threshold: u32) -> Self {
        Self {
            mode: BreakerMode::Count { failure_threshold },
            ..Self::default()
        }
    }

    /// The count rule's threshold; `None` in failure-rate mode.
    pub fn failure_threshold(&self) -> Option<u32> {
        match self.mode {
            BreakerMode::Count { failure_threshold } => Some(failure_threshold),
            BreakerMode::Rate { .. } => None,
        }
    }

    /// Values below their minimum raised to it, so every rule is well defined.
    pub(crate) fn normalized(mut self) -> Self {
        self.mode = match self.mode {
            BreakerMode::Count { failure_threshold } => BreakerMode::Count {
                failure_threshold: failure_threshold.max(1),
            },
            BreakerMode::Rate {
                failure_rate,
                minimum_calls,
                outage_failures,
                outage_time,
            } => BreakerMode::Rate {
                failure_rate: if failure_rate.is_finite() {
                    failure_rate.clamp(f64::MIN_POSITIVE, 1.0)
                } else {
                    1.0
                },
                minimum_calls: minimum_calls.max(1),
                outage_failures,
                outage_time,
            },
        };
        self.window = self.window.max(Duration::from_millis(1));
        self.half_open_probes = self.half_open_probes.max(1);
        self.max_recovery_timeout = self.max_recovery_timeout.max(self.recovery_timeout);
        self
    }

    /// How long the breaker stays open after `reopens` consecutive failed probes.
    pub(crate) fn open_period(&self, reopens: u32) -> Duration {
        self.recovery_timeout
            .saturating_mul(1u32.checked_shl(reopens.min(31)).unwrap_or(u32::MAX))
            .min(self.max_recovery_timeout)
    }
}
