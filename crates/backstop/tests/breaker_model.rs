//! The breaker against a reference model: random sequences of permits, verdicts, manual
//! records, trips, resets and clock advances. The model keeps every failure timestamp (an
//! exact sliding window) and the rules of DESIGN.md's "Circuit breaker" paragraph.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backstop::{BreakerConfig, BreakerEffect, BreakerState, CircuitBreaker, Permit};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Success,
    Failure,
    Neutral,
    Cooldown(u64),
    Drop,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
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
        1 => (0u64..300).prop_map(Verdict::Cooldown),
        1 => Just(Verdict::Drop),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Acquire),
        6 => (any::<usize>(), verdict()).prop_map(|(i, v)| Op::Verdict(i, v)),
        3 => Just(Op::RecordFailure),
        1 => Just(Op::RecordSuccess),
        1 => Just(Op::Trip),
        1 => Just(Op::Reset),
        4 => (0u64..150).prop_map(Op::Advance),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (1u32..5, 10u64..200, 10u64..200, 1u32..4).prop_map(|(t, w, r, p)| BreakerConfig {
        failure_threshold: t,
        window: Duration::from_millis(w),
        recovery_timeout: Duration::from_millis(r),
        half_open_probes: p,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MState {
    Closed,
    /// `cooldown`: opened by a rate-limit hint; it closes (not half-opens) when it ends.
    Open {
        until: u64,
        cooldown: bool,
    },
    HalfOpen {
        in_flight: u32,
    },
}

/// The reference: times are milliseconds since the start of the case.
struct Model {
    threshold: u32,
    window: u64,
    recovery: u64,
    probes: u32,
    state: MState,
    generation: u64,
    failures: Vec<u64>,
    now: u64,
}

impl Model {
    fn new(c: &BreakerConfig) -> Self {
        Self {
            threshold: c.failure_threshold,
            window: c.window.as_millis() as u64,
            recovery: c.recovery_timeout.as_millis() as u64,
            probes: c.half_open_probes,
            state: MState::Closed,
            generation: 0,
            failures: Vec::new(),
            now: 0,
        }
    }

    fn go(&mut self, s: MState) {
        if s == MState::Closed {
            self.failures.clear();
        }
        self.state = s;
        self.generation += 1;
    }

    fn refresh(&mut self) {
        if let MState::Open { until, cooldown } = self.state
            && self.now >= until
        {
            self.go(if cooldown {
                MState::Closed
            } else {
                MState::HalfOpen { in_flight: 0 }
            });
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

    fn in_window(&self) -> u32 {
        match self.state {
            MState::Closed => self
                .failures
                .iter()
                .filter(|t| self.now - **t < self.window)
                .count() as u32,
            _ => 0,
        }
    }

    fn admits(&mut self) -> bool {
        self.refresh();
        match self.state {
            MState::Closed => true,
            MState::Open { .. } => false,
            MState::HalfOpen { in_flight } => in_flight < self.probes,
        }
    }

    /// `Some((generation, probe))` when admitted.
    fn acquire(&mut self) -> Option<(u64, bool)> {
        self.refresh();
        match &mut self.state {
            MState::Closed => Some((self.generation, false)),
            MState::Open { .. } => None,
            MState::HalfOpen { in_flight } if *in_flight < self.probes => {
                *in_flight += 1;
                Some((self.generation, true))
            }
            MState::HalfOpen { .. } => None,
        }
    }

    /// `permit` is `None` for manual records.
    fn apply(&mut self, permit: Option<(u64, bool)>, v: Verdict) {
        self.refresh();
        let current = permit.is_none_or(|(g, _)| g == self.generation);
        let probe = permit.is_some_and(|(_, p)| p);
        let manual = permit.is_none();
        if current
            && probe
            && let MState::HalfOpen { in_flight } = &mut self.state
        {
            *in_flight = in_flight.saturating_sub(1);
        }
        if let Verdict::Cooldown(d) = v {
            // Rate-limit cooldowns apply whatever the permit's generation; they only extend.
            match self.state {
                MState::Open { until, cooldown } => {
                    self.state = MState::Open {
                        until: until.max(self.now + d),
                        cooldown,
                    }
                }
                _ => self.go(MState::Open {
                    until: self.now + d,
                    cooldown: true,
                }),
            }
            return;
        }
        if !current {
            return;
        }
        match (self.state, v) {
            (MState::Closed, Verdict::Failure) => {
                self.failures.push(self.now);
                if self.in_window() >= self.threshold {
                    self.go(MState::Open {
                        until: self.now + self.recovery,
                        cooldown: false,
                    });
                }
            }
            (MState::HalfOpen { .. }, Verdict::Failure) if probe || manual => {
                self.go(MState::Open {
                    until: self.now + self.recovery,
                    cooldown: false,
                })
            }
            (MState::HalfOpen { .. }, Verdict::Success) if probe || manual => {
                self.go(MState::Closed)
            }
            _ => {}
        }
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
        let mut m = Model::new(&cfg);
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
                Op::Verdict(i, v) => {
                    if held.is_empty() {
                        continue;
                    }
                    let (p, meta) = held.remove(i % held.len());
                    match v {
                        Verdict::Success => p.success(),
                        Verdict::Failure => p.failure(),
                        Verdict::Neutral => p.neutral(),
                        Verdict::Cooldown(d) => {
                            p.record(BreakerEffect::Cooldown(Duration::from_millis(d)))
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
                    m.go(MState::Open {
                        until: m.now + m.recovery,
                        cooldown: false,
                    });
                }
                Op::Reset => {
                    b.reset();
                    m.go(MState::Closed);
                }
                Op::Advance(ms) => {
                    tokio::time::advance(Duration::from_millis(ms)).await;
                    m.now += ms;
                }
            }
            prop_assert_eq!(b.state(), m.public(), "state after step {}: {:?}", step, op);
            let snap = b.snapshot();
            prop_assert_eq!(
                snap.failures_in_window,
                m.in_window(),
                "failures in window after step {}: {:?}",
                step,
                op
            );
            let until = match m.state {
                MState::Open { until, .. } => Some(Duration::from_millis(until - m.now)),
                _ => None,
            };
            prop_assert_eq!(snap.until_half_open, until, "step {}: {:?}", step, op);
            prop_assert_eq!(
                b.admits(),
                m.admits(),
                "admits after step {}: {:?}",
                step,
                op
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_reference_model(
        cfg in config(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run_case(cfg, ops)?;
    }
}
