//! Circuit breaker: stop calling a provider that keeps failing, probe it again after a while.
//!
//! Closed counts failures in a sliding `window`; `failure_threshold` of them inside the
//! window opens the breaker. Open rejects without a call until `recovery_timeout` passes,
//! then HalfOpen admits up to `half_open_probes` concurrent calls: a probe success closes
//! it with an empty window, a probe failure re-opens it. A permit dropped without a verdict
//! (cancelled call) is neutral and frees its probe slot. A rate-limit cooldown (429 with
//! Retry-After) opens the breaker for exactly that long and then closes it: a 429 says the
//! provider is busy with us, not that it is broken, so it needs no probe.
//!
//! The window is exact and O(1): it keeps only the last `failure_threshold` failure times;
//! the breaker opens when the oldest of those is younger than `window`. The closed path
//! (admit, and a success verdict) takes no lock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::BreakerEffect;
use crate::observer::{Observer, StateChange};

/// The three breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are rejected without reaching the provider.
    Open,
    /// A limited number of probe calls test whether the provider recovered.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
    fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Breaker settings. Defaults: 5 failures in 60 s open it, 30 s recovery, 1 probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures inside `window` that open the breaker (at least 1).
    pub failure_threshold: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long the breaker stays open before probing.
    pub recovery_timeout: Duration,
    /// Concurrent probe calls admitted while half-open (at least 1).
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// A point-in-time view of a breaker, for dashboards and admin endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// Current state.
    pub state: BreakerState,
    /// Failures currently inside the window (closed state).
    pub failures_in_window: u32,
    /// Time until an open breaker starts probing.
    pub until_half_open: Option<Duration>,
    /// Its settings.
    pub config: BreakerConfig,
}

/// The breaker refused a call: it is open, or half-open with every probe slot taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open")]
pub struct BreakerOpen;

#[derive(Debug)]
enum State {
    Closed,
    /// `cooldown`: opened by a rate-limit hint rather than by failures; it closes (not
    /// half-opens) when it ends, since a 429 says nothing about the provider's health.
    Open {
        until: Instant,
        cooldown: bool,
    },
    HalfOpen {
        in_flight: u32,
    },
}

#[derive(Debug)]
struct Core {
    state: State,
    /// Bumped on every transition; a permit's verdict only applies to the generation it was issued in.
    generation: u64,
    /// Times of the most recent failures while closed, oldest first, at most `failure_threshold`.
    failures: VecDeque<Instant>,
}

struct Inner {
    name: String,
    config: BreakerConfig,
    /// `(generation << 2) | state code`, mirrored from `core` so the closed path needs no lock.
    snapshot: AtomicU64,
    core: Mutex<Core>,
    observers: RwLock<Vec<Arc<dyn Observer>>>,
}

/// A circuit breaker. Cheap to clone; clones share state, so keep a handle after giving one
/// to a chain.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .field("config", &self.inner.config)
            .finish()
    }
}

const CLOSED: u64 = 0;

impl CircuitBreaker {
    /// A closed breaker with default settings. Configure it with the setters before cloning:
    /// each setter starts a fresh breaker.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_config(name, BreakerConfig::default())
    }

    /// A closed breaker with these settings (thresholds below 1 are raised to 1).
    pub fn with_config(name: impl Into<String>, mut config: BreakerConfig) -> Self {
        config.failure_threshold = config.failure_threshold.max(1);
        config.half_open_probes = config.half_open_probes.max(1);
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                config,
                snapshot: AtomicU64::new(CLOSED),
                core: Mutex::new(Core {
                    state: State::Closed,
                    generation: 0,
                    failures: VecDeque::with_capacity(config.failure_threshold.min(16) as usize),
                }),
                observers: RwLock::new(Vec::new()),
            }),
        }
    }

    fn reconfigure(self, f: impl FnOnce(&mut BreakerConfig)) -> Self {
        let mut config = self.inner.config;
        f(&mut config);
        let observers = read_lock(&self.inner.observers).clone();
        let fresh = Self::with_config(self.inner.name.clone(), config);
        *write_lock(&fresh.inner.observers) = observers;
        fresh
    }

    /// Failures inside the window that open the breaker.
    pub fn failure_threshold(self, n: u32) -> Self {
        self.reconfigure(|c| c.failure_threshold = n)
    }
    /// How far back failures count.
    pub fn window(self, d: Duration) -> Self {
        self.reconfigure(|c| c.window = d)
    }
    /// How long the breaker stays open before probing.
    pub fn recovery_timeout(self, d: Duration) -> Self {
        self.reconfigure(|c| c.recovery_timeout = d)
    }
    /// Concurrent probes admitted while half-open.
    pub fn half_open_probes(self, n: u32) -> Self {
        self.reconfigure(|c| c.half_open_probes = n)
    }

    /// Registers an observer for state changes.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        write_lock(&self.inner.observers).push(observer);
    }

    /// The breaker's name; a chain reports it as `provider_used`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// The current state (an open breaker whose recovery timeout has passed reads as half-open).
    pub fn state(&self) -> BreakerState {
        if self.inner.snapshot.load(Ordering::Acquire) & 0b11 == CLOSED {
            return BreakerState::Closed;
        }
        let (state, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, Instant::now());
            (core.public_state(), change)
        };
        self.notify(change);
        state
    }

    /// Whether a call made now would be admitted (used to draw weighted orders).
    pub fn admits(&self) -> bool {
        if self.inner.snapshot.load(Ordering::Acquire) & 0b11 == CLOSED {
            return true;
        }
        let (admits, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, Instant::now());
            let admits = match core.state {
                State::Closed => true,
                State::Open { .. } => false,
                State::HalfOpen { in_flight } => in_flight < self.inner.config.half_open_probes,
            };
            (admits, change)
        };
        self.notify(change);
        admits
    }

    /// A view of state, failures in the window and time to half-open.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let (snapshot, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, now);
            let window = self.inner.config.window;
            let failures_in_window = match core.state {
                State::Closed => core
                    .failures
                    .iter()
                    .filter(|t| now.duration_since(**t) < window)
                    .count() as u32,
                _ => 0,
            };
            let until_half_open = match core.state {
                State::Open { until, .. } => Some(until.saturating_duration_since(now)),
                _ => None,
            };
            let snapshot = BreakerSnapshot {
                name: self.inner.name.clone(),
                state: core.public_state(),
                failures_in_window,
                until_half_open,
                config: self.inner.config,
            };
            (snapshot, change)
        };
        self.notify(change);
        snapshot
    }

    /// Asks to make a call. `Err` means skip this provider without calling it.
    /// Give the permit a verdict when the call ends; dropping it is a neutral verdict.
    pub fn try_acquire(&self) -> Result<Permit, BreakerOpen> {
        let snap = self.inner.snapshot.load(Ordering::Acquire);
        if snap & 0b11 == CLOSED {
            return Ok(Permit {
                breaker: self.clone(),
                generation: snap >> 2,
                probe: false,
                done: false,
            });
        }
        let (result, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, Instant::now());
            let result = match core.state {
                State::Closed => Ok(false),
                State::Open { .. } => Err(BreakerOpen),
                State::HalfOpen { ref mut in_flight } => {
                    if *in_flight < self.inner.config.half_open_probes {
                        *in_flight += 1;
                        Ok(true)
                    } else {
                        Err(BreakerOpen)
                    }
                }
            };
            let generation = core.generation;
            (
                result.map(|probe| Permit {
                    breaker: self.clone(),
                    generation,
                    probe,
                    done: false,
                }),
                change,
            )
        };
        self.notify(change);
        result
    }

    /// Records a failure as if a call had failed (closed: counts; half-open: re-opens).
    pub fn record_failure(&self) {
        self.apply(None, Verdict::Failure);
    }

    /// Records a success as if a call had succeeded (half-open: closes).
    pub fn record_success(&self) {
        self.apply(None, Verdict::Success);
    }

    /// Opens the breaker now, for `recovery_timeout`.
    pub fn trip(&self) {
        let change = {
            let mut core = self.lock();
            let until = Instant::now() + self.inner.config.recovery_timeout;
            self.transition(
                &mut core,
                State::Open {
                    until,
                    cooldown: false,
                },
            )
        };
        self.notify(change);
    }

    /// Closes the breaker and forgets past failures.
    pub fn reset(&self) {
        let change = {
            let mut core = self.lock();
            core.failures.clear();
            self.transition(&mut core, State::Closed)
        };
        self.notify(change);
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A poisoned lock only means a panic elsewhere mid-update; the state is still usable.
        self.inner.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a verdict. `permit` is `(generation, probe)` for verdicts from permits, `None` for manual ones.
    fn apply(&self, permit: Option<(u64, bool)>, verdict: Verdict) {
        let now = Instant::now();
        let (refreshed, change) = {
            let mut core = self.lock();
            // Open → HalfOpen (if due) and the verdict's own transition are two events.
            let refreshed = self.refresh(&mut core, now);
            let mut change = None;
            let current = permit.is_none_or(|(g, _)| g == core.generation);
            let probe = permit.is_some_and(|(_, p)| p);
            if let (true, true, State::HalfOpen { in_flight }) = (current, probe, &mut core.state) {
                *in_flight = in_flight.saturating_sub(1);
            }
            let next = match (&core.state, verdict) {
                // A cooldown is the provider telling us to back off: it applies whatever the generation.
                // Extending an open breaker keeps its kind: failures still end in a probe.
                (State::Open { until, cooldown }, Verdict::Cooldown(d)) => {
                    let (until, cooldown) = ((*until).max(now + d), *cooldown);
                    core.state = State::Open { until, cooldown };
                    None
                }
                (_, Verdict::Cooldown(d)) => Some(State::Open {
                    until: now + d,
                    cooldown: true,
                }),
                _ if !current => None,
                (State::Closed, Verdict::Failure) => {
                    let cfg = &self.inner.config;
                    if core.failures.len() >= cfg.failure_threshold as usize {
                        core.failures.pop_front();
                    }
                    core.failures.push_back(now);
                    let full = core.failures.len() >= cfg.failure_threshold as usize;
                    let oldest_in_window = core
                        .failures
                        .front()
                        .is_some_and(|t| now.duration_since(*t) < cfg.window);
                    (full && oldest_in_window).then_some(State::Open {
                        until: now + cfg.recovery_timeout,
                        cooldown: false,
                    })
                }
                (State::HalfOpen { .. }, Verdict::Failure) if probe || permit.is_none() => {
                    Some(State::Open {
                        until: now + self.inner.config.recovery_timeout,
                        cooldown: false,
                    })
                }
                (State::HalfOpen { .. }, Verdict::Success) if probe || permit.is_none() => {
                    Some(State::Closed)
                }
                _ => None,
            };
            if let Some(next) = next {
                if matches!(next, State::Closed) {
                    core.failures.clear();
                }
                change = self.transition(&mut core, next);
            }
            (refreshed, change)
        };
        self.notify(refreshed);
        self.notify(change);
    }

    /// Open → HalfOpen once the recovery timeout has passed; a rate-limit cooldown → Closed
    /// (with an empty window) once it has run out.
    fn refresh(&self, core: &mut Core, now: Instant) -> Option<Transition> {
        match core.state {
            State::Open {
                until,
                cooldown: false,
            } if now >= until => self.transition(core, State::HalfOpen { in_flight: 0 }),
            State::Open {
                until,
                cooldown: true,
            } if now >= until => {
                core.failures.clear();
                self.transition(core, State::Closed)
            }
            _ => None,
        }
    }

    fn transition(&self, core: &mut Core, next: State) -> Option<Transition> {
        let from = core.public_state();
        core.state = next;
        core.generation = core.generation.wrapping_add(1) & (u64::MAX >> 2);
        let to = core.public_state();
        let code = if to == BreakerState::Closed {
            CLOSED
        } else {
            to.code()
        };
        self.inner
            .snapshot
            .store((core.generation << 2) | code, Ordering::Release);
        (from != to).then_some(Transition { from, to })
    }

    fn notify(&self, change: Option<Transition>) {
        let Some(Transition { from, to }) = change else {
            return;
        };
        tracing::info!(breaker = %self.inner.name, from = from.as_str(), to = to.as_str(), "circuit breaker state changed");
        let change = StateChange {
            breaker: &self.inner.name,
            from,
            to,
        };
        for o in read_lock(&self.inner.observers).iter() {
            o.on_breaker_change(&change);
        }
    }
}

impl Core {
    fn public_state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Transition {
    from: BreakerState,
    to: BreakerState,
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Success,
    Failure,
    Cooldown(Duration),
    Neutral,
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Permission for one call. Give it a verdict when the call ends; dropping it unjudged is
/// neutral (a cancelled call), which frees a half-open probe slot.
#[must_use = "a permit should be given a verdict; dropping it is a neutral outcome"]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    probe: bool,
    done: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("probe", &self.probe)
            .finish()
    }
}

impl Permit {
    /// True when this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
    /// The call succeeded.
    pub fn success(mut self) {
        self.finish(Verdict::Success);
    }
    /// The call failed in a way that counts against the provider.
    pub fn failure(mut self) {
        self.finish(Verdict::Failure);
    }
    /// The call ended in a way that says nothing about the provider's health.
    pub fn neutral(mut self) {
        self.finish(Verdict::Neutral);
    }
    /// Applies what an error kind does to the breaker (see [`crate::ErrorKind::breaker_effect`]).
    pub fn record(mut self, effect: BreakerEffect) {
        self.finish(match effect {
            BreakerEffect::Failure => Verdict::Failure,
            BreakerEffect::Cooldown(d) => Verdict::Cooldown(d),
            BreakerEffect::Neutral => Verdict::Neutral,
        });
    }

    fn finish(&mut self, verdict: Verdict) {
        if self.done {
            return;
        }
        self.done = true;
        // Fast path: a success or neutral outcome from a closed-state call changes nothing.
        if !self.probe && matches!(verdict, Verdict::Success | Verdict::Neutral) {
            return;
        }
        self.breaker
            .apply(Some((self.generation, self.probe)), verdict);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.finish(Verdict::Neutral);
    }
}
