//! The breaker against a reference model: random sequences of permits, verdicts (rate limits
//! among them), manual records, trips, resets, forced probes and clock advances, in both modes.
//! The model keeps every call (an exact window: every failure time in count mode, every call in
//! its time bucket in failure-rate mode) and the rules of DESIGN.md's "Circuit breaker" and
//! "Rate-limit holds" paragraphs.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::{
    BreakerConfig, BreakerMode, BreakerState, CircuitBreaker, ErrorKind, Observer, Permit,
    StateChange,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Success,
    Failure,
    Neutral,
    /// A 429 with this hint (ms): neutral for the breaker, a hold for the provider.
    RateLimited(Option<u64>),
    Drop,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    ForceProbe,
    Verdict(usize, Verdict),
    RecordFailure,
    RecordSuccess,
    Trip,
    Reset,
    Advance(u64),
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        3 => Just(Verdict::Success),
        4 => Just(Verdict::Failure),
        1 => Just(Verdict::Neutral),
        2 => proptest::option::of(0u64..300).prop_map(Verdict::RateLimited),
        1 => Just(Verdict::Drop),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Acquire),
        1 => Just(Op::ForceProbe),
        7 => (any::<usize>(), verdict()).prop_map(|(i, v)| Op::Verdict(i, v)),
        3 => Just(Op::RecordFailure),
        1 => Just(Op::RecordSuccess),
        1 => Just(Op::Trip),
        1 => Just(Op::Reset),
        4 => (0u64..150).prop_map(Op::Advance),
    ]
}

fn mode() -> impl Strategy<Value = BreakerMode> {
    prop_oneof![
        (1u32..5).prop_map(|t| BreakerMode::Count {
            failure_threshold: t
        }),
        (1u32..=10, 1u32..6, 0u32..4, 0u64..100).prop_map(|(r, m, k, t)| BreakerMode::Rate {
            failure_rate: f64::from(r) / 10.0,
            minimum_calls: m,
            outage_failures: k,
            outage_time: Duration::from_millis(t),
        }),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    // Windows are whole multiples of 10 ms so the model's 10 buckets align with the breaker's.
    (mode(), 1u64..20, 10u64..200, 0u32..3, 1u32..4).prop_map(|(mode, w, r, backoff, p)| {
        let mut c = BreakerConfig::default();
        c.mode = mode;
        c.window = Duration::from_millis(w * 10);
        c.recovery_timeout = Duration::from_millis(r);
        c.max_recovery_timeout = Duration::from_millis(r << backoff);
        c.half_open_probes = p;
        c
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MState {
    Closed,
    Open { until: u64 },
    HalfOpen { in_flight: u32 },
}

/// The reference: times are milliseconds since the start of the case.
struct Model {
    cfg: BreakerConfig,
    state: MState,
    generation: u64,
    /// Every call since the window was last cleared: (time, failed).
    calls: Vec<(u64, bool)>,
    /// Failures in a row, and when the last success (or clear) was.
    run: u32,
    last_success: u64,
    reopens: u32,
    hold_until: u64,
    hold_streak: u32,
    now: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Model {
    fn new(cfg: BreakerConfig) -> Self {
        Self {
            cfg,
            state: MState::Closed,
            generation: 0,
            calls: Vec::new(),
            run: 0,
            last_success: 0,
            reopens: 0,
            hold_until: 0,
            hold_streak: 0,
            now: 0,
        }
    }

    fn go(&mut self, s: MState) {
        if s == MState::Closed {
            self.clear();
            self.reopens = 0;
        }
        self.state = s;
        self.generation += 1;
    }

    fn clear(&mut self) {
        self.calls.clear();
        self.run = 0;
        self.last_success = self.now;
    }

    fn period(&self, reopens: u32) -> u64 {
        let r = ms(self.cfg.recovery_timeout);
        let max = ms(self.cfg.max_recovery_timeout).max(r);
        r.saturating_mul(1 << reopens.min(31)).min(max)
    }

    fn refresh(&mut self) {
        if let MState::Open { until } = self.state
            && self.now >= until
        {
            self.go(MState::HalfOpen { in_flight: 0 });
        }
    }

    fn public(&mut self) -> BreakerState {
        self.refresh();
        match self.state {
            MState::Closed => BreakerState::Closed,
            MState::Open { .. } => BreakerState::Open,
            MState::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// (calls, failures) that count now.
    fn in_window(&self) -> (u32, u32) {
        if self.state != MState::Closed {
            return (0, 0);
        }
        let window = ms(self.cfg.window);
        match self.cfg.mode {
            BreakerMode::Count { .. } => {
                let f = self
                    .calls
                    .iter()
                    .filter(|(t, failed)| *failed && self.now - *t < window)
                    .count() as u32;
                (0, f)
            }
            _ => {
                let bucket = window / 10;
                let current = self.now / bucket;
                let inside: Vec<_> = self
                    .calls
                    .iter()
                    .filter(|(t, _)| current - t / bucket < 10)
                    .collect();
                let failures = inside.iter().filter(|(_, f)| *f).count() as u32;
                (inside.len() as u32, failures)
            }
        }
    }

    fn admits(&mut self) -> bool {
        self.refresh();
        match self.state {
            MState::Closed => true,
            MState::Open { .. } => false,
            MState::HalfOpen { in_flight } => in_flight < self.cfg.half_open_probes,
        }
    }

    /// `Some((generation, probe))` when admitted.
    fn acquire(&mut self) -> Option<(u64, bool)> {
        self.refresh();
        let probes = self.cfg.half_open_probes;
        match &mut self.state {
            MState::Closed => Some((self.generation, false)),
            MState::Open { .. } => None,
            MState::HalfOpen { in_flight } if *in_flight < probes => {
                *in_flight += 1;
                Some((self.generation, true))
            }
            MState::HalfOpen { .. } => None,
        }
    }

    fn force_probe(&mut self) -> (u64, bool) {
        self.refresh();
        match &mut self.state {
            MState::Closed => (self.generation, false),
            MState::Open { .. } => (self.generation, true),
            MState::HalfOpen { in_flight } => {
                *in_flight += 1;
                (self.generation, true)
            }
        }
    }

    fn trip(&mut self) {
        let until = self.now + ms(self.cfg.recovery_timeout);
        match self.state {
            MState::Open { until: u } if u >= until => {}
            MState::Open { .. } => self.state = MState::Open { until },
            _ => self.go(MState::Open { until }),
        }
    }

    fn closed_failure_trips(&mut self) -> bool {
        self.calls.push((self.now, true));
        match self.cfg.mode {
            BreakerMode::Count { failure_threshold } => self.in_window().1 >= failure_threshold,
            BreakerMode::Rate {
                failure_rate,
                minimum_calls,
                outage_failures,
                outage_time,
            } => {
                self.run += 1;
                let (calls, failures) = self.in_window();
                let rate = calls >= minimum_calls
                    && f64::from(failures) >= failure_rate * f64::from(calls);
                let outage = outage_failures > 0
                    && self.run >= outage_failures
                    && self.now - self.last_success >= ms(outage_time);
                rate || outage
            }
            _ => unreachable!(),
        }
    }

    fn closed_success(&mut self) {
        if matches!(self.cfg.mode, BreakerMode::Rate { .. }) {
            self.calls.push((self.now, false));
            self.run = 0;
            self.last_success = self.now;
        }
    }

    /// `permit` is `None` for manual records.
    fn apply(&mut self, permit: Option<(u64, bool)>, v: Verdict) {
        self.refresh();
        if let Verdict::RateLimited(hint) = v {
            let length = match hint {
                Some(h) => h,
                None => 1000u64.saturating_mul(1 << self.hold_streak.min(31)),
            }
            .min(60_000);
            self.hold_streak += 1;
            self.hold_until = self.hold_until.max(self.now + length);
        }
        if matches!(v, Verdict::Success) {
            self.hold_streak = 0;
        }
        let current = permit.is_none_or(|(g, _)| g == self.generation);
        let probe = permit.is_some_and(|(_, p)| p);
        let manual = permit.is_none();
        if current
            && probe
            && let MState::HalfOpen { in_flight } = &mut self.state
        {
            *in_flight = in_flight.saturating_sub(1);
        }
        if !current {
            return;
        }
        let decides = probe || (manual && matches!(self.state, MState::HalfOpen { .. }));
        match (self.state, v) {
            (MState::Closed, Verdict::Failure) if self.closed_failure_trips() => {
                let until = self.now + self.period(0);
                self.go(MState::Open { until });
            }
            (MState::Closed, Verdict::Success) => self.closed_success(),
            (MState::HalfOpen { .. } | MState::Open { .. }, Verdict::Failure) if decides => {
                self.reopens += 1;
                let until = self.now + self.period(self.reopens);
                self.go(MState::Open { until });
            }
            (MState::HalfOpen { .. } | MState::Open { .. }, Verdict::Success) if decides => {
                self.go(MState::Closed)
            }
            _ => {}
        }
    }
}

/// Records every transition the breaker reports.
#[derive(Default)]
struct Log(Mutex<Vec<(BreakerState, BreakerState, u64)>>);

impl Observer for Log {
    fn on_breaker_change(&self, c: &StateChange<'_>) {
        self.0.lock().unwrap().push((c.from, c.to, c.generation));
    }
}

fn run_case(cfg: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    rt.block_on(async move {
        let b = CircuitBreaker::with_config("model", cfg);
        let log = Arc::new(Log::default());
        b.observe(log.clone());
        let mut m = Model::new(cfg);
        let mut held: Vec<(Permit, Option<(u64, bool)>)> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op.clone() {
                Op::Acquire => {
                    let real = b.try_acquire();
                    let want = m.acquire();
                    prop_assert_eq!(real.is_ok(), want.is_some(), "step {} {:?}", step, op);
                    if let Ok(p) = real {
                        prop_assert_eq!(p.is_probe(), want.is_some_and(|w| w.1), "step {}", step);
                        held.push((p, want));
                    }
                }
                Op::ForceProbe => {
                    let p = b.force_probe();
                    let want = m.force_probe();
                    prop_assert_eq!(p.is_probe(), want.1, "step {}", step);
                    held.push((p, Some(want)));
                }
                Op::Verdict(i, v) => {
                    if held.is_empty() {
                        continue;
                    }
                    let (p, meta) = held.remove(i % held.len());
                    match v {
                        Verdict::Success => p.success(),
                        Verdict::Failure => p.failure(),
                        Verdict::Neutral => p.neutral(),
                        Verdict::RateLimited(hint) => {
                            let hint = hint.map(Duration::from_millis);
                            let kind = ErrorKind::RateLimited { retry_after: hint };
                            p.record(kind.breaker_effect());
                            b.hold().rate_limited(hint);
                        }
                        Verdict::Drop => drop(p),
                    }
                    let v = if let Verdict::Drop = v {
                        Verdict::Neutral
                    } else {
                        v
                    };
                    m.apply(meta, v);
                }
                Op::RecordFailure => {
                    b.record_failure();
                    m.apply(None, Verdict::Failure);
                }
                Op::RecordSuccess => {
                    b.record_success();
                    m.apply(None, Verdict::Success);
                }
                Op::Trip => {
                    b.trip();
                    m.trip();
                }
                Op::Reset => {
                    b.reset();
                    m.go(MState::Closed);
                    m.hold_until = 0;
                    m.hold_streak = 0;
                }
                Op::Advance(ms) => {
                    tokio::time::advance(Duration::from_millis(ms)).await;
                    m.now += ms;
                }
            }
            prop_assert_eq!(b.state(), m.public(), "state after step {}: {:?}", step, op);
            let snap = b.snapshot();
            let (calls, failures) = m.in_window();
            prop_assert_eq!(
                (snap.calls_in_window, snap.failures_in_window),
                (calls, failures),
                "calls and failures in window after step {}: {:?}",
                step,
                op
            );
            let until = match m.state {
                MState::Open { until } => Some(Duration::from_millis(until - m.now)),
                _ => None,
            };
            prop_assert_eq!(snap.until_half_open, until, "step {}: {:?}", step, op);
            prop_assert_eq!(snap.reopens, m.reopens, "reopens after step {}", step);
            let hold = (m.hold_until > m.now).then(|| Duration::from_millis(m.hold_until - m.now));
            prop_assert_eq!(
                snap.hold_remaining,
                hold,
                "hold after step {}: {:?}",
                step,
                op
            );
            prop_assert_eq!(
                b.admits(),
                m.admits(),
                "admits after step {}: {:?}",
                step,
                op
            );
        }
        // Every transition was reported once, in generation order, and the last one is the state.
        let state = b.state();
        let log = log.0.lock().unwrap();
        for pair in log.windows(2) {
            prop_assert!(pair[0].2 < pair[1].2, "generations grow: {:?}", pair);
            prop_assert_eq!(pair[0].1, pair[1].0, "transitions chain: {:?}", pair);
        }
        if let Some(last) = log.last() {
            prop_assert_eq!(last.1, state);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_reference_model(
        cfg in config(),
        ops in proptest::collection::vec(op(), 1..100),
    ) {
        run_case(cfg, ops)?;
    }
}
