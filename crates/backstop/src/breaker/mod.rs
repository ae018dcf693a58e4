//! Circuit breaker: stop calling a provider that keeps failing, probe it again after a while.
//!
//! Closed counts outcomes by its [`BreakerMode`]: the seed's count rule (`failure_threshold`
//! failures inside `window`, an exact O(1) ring of failure times) or the failure-rate rule
//! (failures / calls over `window` once `minimum_calls` were seen, plus a hard-outage run
//! rule; lock-free buckets). Open rejects without a call until its open period passes
//! (`recovery_timeout`, doubling after each failed probe up to `max_recovery_timeout`), then
//! HalfOpen admits up to `half_open_probes` concurrent calls: a probe success closes it with an
//! empty window, a probe failure re-opens it. A permit dropped without a verdict (a cancelled
//! call) or with a neutral one (a rate limit, a bad request) frees its probe slot and changes
//! nothing else. Rate limits never touch the breaker: they put the provider on its
//! [`RateLimitHold`], which lives beside the breaker and is shared with it.
//!
//! The closed path (admit, and a success verdict) takes no lock. Every transition bumps a
//! generation; a permit's verdict only applies to the generation it was issued in, and each
//! [`StateChange`] carries its generation so observers can drop one delivered late.

mod config;
mod permit;
mod rate;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::time::Instant;

pub use config::{BreakerConfig, BreakerMode};
pub use permit::Permit;
use rate::RateWindow;

use crate::hold::RateLimitHold;
use crate::observer::{Observer, StateChange};
use crate::time::after;

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
            BreakerState::Closed => CLOSED,
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

/// A point-in-time view of a breaker, for dashboards and admin endpoints.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// Current state.
    pub state: BreakerState,
    /// Failures currently inside the window (closed state).
    pub failures_in_window: u32,
    /// Calls currently inside the window (closed state, failure-rate mode; 0 in count mode).
    pub calls_in_window: u32,
    /// Time until an open breaker starts probing.
    pub until_half_open: Option<Duration>,
    /// Time left on the provider's rate-limit hold.
    pub hold_remaining: Option<Duration>,
    /// Consecutive failed probes (each doubles the next open period).
    pub reopens: u32,
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
    Open { until: Instant, since: Instant },
    HalfOpen { in_flight: u32 },
}

#[derive(Debug)]
struct Core {
    state: State,
    /// Bumped on every transition; a permit's verdict only applies to the generation it was issued in.
    generation: u64,
    /// Count mode: times of the most recent failures while closed, oldest first, at most `failure_threshold`.
    failures: VecDeque<Instant>,
    /// Consecutive failed probes since the breaker last closed.
    reopens: u32,
}

struct Inner {
    name: String,
    config: BreakerConfig,
    /// `(generation << 2) | state code`, mirrored from `core` so the closed path needs no lock.
    snapshot: AtomicU64,
    core: Mutex<Core>,
    rate: RateWindow,
    hold: RateLimitHold,
    observers: RwLock<Vec<Arc<dyn Observer>>>,
}

/// A circuit breaker, with the provider's rate-limit hold beside it. Cheap to clone; clones
/// share state, so keep a handle after giving one to a chain.
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

/// A verdict on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Neutral,
}

impl CircuitBreaker {
    /// A closed breaker with default settings ([`BreakerConfig::default`]: failure-rate mode).
    /// Configure it with the setters before cloning: each setter starts a fresh breaker.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_config(name, BreakerConfig::default())
    }

    /// A closed breaker with these settings (values below their minimum are raised to it).
    pub fn with_config(name: impl Into<String>, config: BreakerConfig) -> Self {
        let config = config.normalized();
        let capacity = match config.mode {
            BreakerMode::Count { failure_threshold } => failure_threshold.min(16) as usize,
            BreakerMode::Rate { .. } => 0,
        };
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                config,
                snapshot: AtomicU64::new(CLOSED),
                core: Mutex::new(Core {
                    state: State::Closed,
                    generation: 0,
                    failures: VecDeque::with_capacity(capacity),
                    reopens: 0,
                }),
                rate: RateWindow::new(config.window),
                hold: RateLimitHold::new(config.hold),
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

    /// Count mode: this many failures inside the window open the breaker (the seed's rule).
    #[must_use = "setters return a new breaker"]
    pub fn failure_threshold(self, n: u32) -> Self {
        self.reconfigure(|c| {
            c.mode = BreakerMode::Count {
                failure_threshold: n,
            }
        })
    }
    /// Failure-rate mode: this share of failures over the window, once it holds
    /// `minimum_calls` calls, opens the breaker (the hard-outage rule keeps its settings).
    #[must_use = "setters return a new breaker"]
    pub fn failure_rate(self, rate: f64, minimum_calls: u32) -> Self {
        self.reconfigure(|c| {
            let (outage_failures, outage_time) = match c.mode {
                BreakerMode::Rate {
                    outage_failures,
                    outage_time,
                    ..
                } => (outage_failures, outage_time),
                BreakerMode::Count { .. } => match BreakerMode::DEFAULT_RATE {
                    BreakerMode::Rate {
                        outage_failures,
                        outage_time,
                        ..
                    } => (outage_failures, outage_time),
                    BreakerMode::Count { .. } => (0, Duration::ZERO),
                },
            };
            c.mode = BreakerMode::Rate {
                failure_rate: rate,
                minimum_calls,
                outage_failures,
                outage_time,
            };
        })
    }
    /// How far back failures (and calls) count.
    #[must_use = "setters return a new breaker"]
    pub fn window(self, d: Duration) -> Self {
        self.reconfigure(|c| c.window = d)
    }
    /// How long the breaker stays open, every time (the seed's rule: no backoff). Set
    /// [`max_recovery_timeout`](Self::max_recovery_timeout) after this to let open periods
    /// double after each failed probe.
    #[must_use = "setters return a new breaker"]
    pub fn recovery_timeout(self, d: Duration) -> Self {
        self.reconfigure(|c| {
            c.recovery_timeout = d;
            c.max_recovery_timeout = d;
        })
    }
    /// Longest open period after repeated failed probes: each failed probe doubles the next
    /// open period, from `recovery_timeout` up to this.
    #[must_use = "setters return a new breaker"]
    pub fn max_recovery_timeout(self, d: Duration) -> Self {
        self.reconfigure(|c| c.max_recovery_timeout = d)
    }
    /// Concurrent probes admitted while half-open.
    #[must_use = "setters return a new breaker"]
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

    /// The provider's rate-limit hold (shared by every clone of this breaker).
    pub fn hold(&self) -> &RateLimitHold {
        &self.inner.hold
    }

    /// The current state (an open breaker whose open period has passed reads as half-open).
    pub fn state(&self) -> BreakerState {
        if self.inner.snapshot.load(Ordering::Acquire) & 0b11 == CLOSED {
            return BreakerState::Closed;
        }
        self.with_refreshed(|_, core| core.public_state())
    }

    /// Whether a call made now would be admitted (used to draw weighted orders).
    pub fn admits(&self) -> bool {
        if self.inner.snapshot.load(Ordering::Acquire) & 0b11 == CLOSED {
            return true;
        }
        let probes = self.inner.config.half_open_probes;
        self.with_refreshed(|_, core| match core.state {
            State::Closed => true,
            State::Open { .. } => false,
            State::HalfOpen { in_flight } => in_flight < probes,
        })
    }

    /// How long the breaker has been open, `None` unless it is open now.
    pub fn open_since(&self) -> Option<Duration> {
        if self.inner.snapshot.load(Ordering::Acquire) & 0b11 == CLOSED {
            return None;
        }
        self.with_refreshed(|now, core| match core.state {
            State::Open { since, .. } => Some(now.saturating_duration_since(since)),
            _ => None,
        })
    }

    /// Time until the breaker admits a call again: zero when it does now.
    pub fn time_to_admit(&self) -> Duration {
        if self.admits() {
            return Duration::ZERO;
        }
        self.with_refreshed(|now, core| match core.state {
            State::Open { until, .. } => until.saturating_duration_since(now),
            // Half-open with every probe slot taken: the probes' outcome decides.
            _ => Duration::ZERO,
        })
    }

    /// A view of state, calls and failures in the window and time to half-open.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let (state, failures_in_window, calls_in_window, until_half_open, reopens) = self
            .with_refreshed(|now, core| {
                let (failures, calls) = match (&core.state, self.inner.config.mode) {
                    (State::Closed, BreakerMode::Count { .. }) => {
                        let window = self.inner.config.window;
                        let n = core
                            .failures
                            .iter()
                            .filter(|t| now.duration_since(**t) < window)
                            .count();
                        (n as u64, 0)
                    }
                    (State::Closed, BreakerMode::Rate { .. }) => {
                        let t = self.inner.rate.tally(now);
                        (t.failures, t.calls)
                    }
                    _ => (0, 0),
                };
                let until = match core.state {
                    State::Open { until, .. } => Some(until.saturating_duration_since(now)),
                    _ => None,
                };
                (core.public_state(), failures, calls, until, core.reopens)
            });
        BreakerSnapshot {
            name: self.inner.name.clone(),
            state,
            failures_in_window: u32::try_from(failures_in_window).unwrap_or(u32::MAX),
            calls_in_window: u32::try_from(calls_in_window).unwrap_or(u32::MAX),
            until_half_open,
            hold_remaining: self.inner.hold.remaining(),
            reopens,
            config: self.inner.config,
        }
    }

    /// Runs `f` on the core after applying a due Open → HalfOpen transition.
    fn with_refreshed<T>(&self, f: impl FnOnce(Instant, &Core) -> T) -> T {
        let now = Instant::now();
        let (value, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, now);
            (f(now, &core), change)
        };
        self.notify(change);
        value
    }

    /// Asks to make a call. `Err` means skip this provider without calling it.
    /// Give the permit a verdict when the call ends; dropping it is a neutral verdict.
    pub fn try_acquire(&self) -> Result<Permit, BreakerOpen> {
        let snap = self.inner.snapshot.load(Ordering::Acquire);
        if snap & 0b11 == CLOSED {
            return Ok(Permit::new(self.clone(), snap >> 2, false));
        }
        let probes = self.inner.config.half_open_probes;
        let (result, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, Instant::now());
            let generation = core.generation;
            let result = match core.state {
                State::Closed => Ok(false),
                State::Open { .. } => Err(BreakerOpen),
                State::HalfOpen { ref mut in_flight } if *in_flight < probes => {
                    *in_flight += 1;
                    Ok(true)
                }
                State::HalfOpen { .. } => Err(BreakerOpen),
            };
            (
                result.map(|probe| Permit::new(self.clone(), generation, probe)),
                change,
            )
        };
        self.notify(change);
        result
    }

    /// A probe permit even though the breaker is open (the chain's `when_all_open = probe`
    /// last resort). Its success closes the breaker; its failure re-opens it, backed off.
    pub fn force_probe(&self) -> Permit {
        let (permit, change) = {
            let mut core = self.lock();
            let change = self.refresh(&mut core, Instant::now());
            let probe = match core.state {
                State::Closed => false,
                State::Open { .. } => true,
                State::HalfOpen { ref mut in_flight } => {
                    *in_flight += 1;
                    true
                }
            };
            (Permit::new(self.clone(), core.generation, probe), change)
        };
        self.notify(change);
        permit
    }

    /// Records a failure as if a call had failed (closed: counts; half-open: re-opens).
    pub fn record_failure(&self) {
        self.apply(None, Verdict::Failure);
    }

    /// Records a success as if a call had succeeded (closed, rate mode: counts a call;
    /// half-open: closes).
    pub fn record_success(&self) {
        self.apply(None, Verdict::Success);
    }

    /// Opens the breaker now, for `recovery_timeout`, as if its own calls had tripped it
    /// (its [`StateChange`] is not `applied`: a fleet layer shares it).
    pub fn trip(&self) {
        self.open(self.inner.config.recovery_timeout, false);
    }

    /// Opens the breaker now for `period` (an opening learned elsewhere, or an operator's).
    /// An open breaker that would stay open longer is left as it is.
    pub fn open_for(&self, period: Duration) {
        self.open(period, true);
    }

    /// Closes the breaker (an end of an opening learned elsewhere: another replica's probe
    /// succeeded). Unlike [`reset`](Self::reset) the rate-limit hold is kept.
    pub fn close(&self) {
        let change = {
            let mut core = self.lock();
            if matches!(core.state, State::Closed) {
                None
            } else {
                self.clear_window(&mut core, Instant::now());
                core.reopens = 0;
                self.transition(&mut core, State::Closed)
            }
        };
        self.notify(change.map(Transition::applied));
    }

    fn open(&self, period: Duration, applied: bool) {
        let change = {
            let mut core = self.lock();
            let now = Instant::now();
            let until = after(now, period);
            match core.state {
                State::Open { until: current, .. } if current >= until => None,
                State::Open { since, .. } => {
                    core.state = State::Open { until, since };
                    None
                }
                _ => self.transition(&mut core, State::Open { until, since: now }),
            }
        };
        self.notify(change.map(|c| if applied { c.applied() } else { c }));
    }

    /// Closes the breaker, forgets past failures and ends any rate-limit hold.
    pub fn reset(&self) {
        let change = {
            let mut core = self.lock();
            self.clear_window(&mut core, Instant::now());
            core.reopens = 0;
            self.transition(&mut core, State::Closed)
        };
        self.inner.hold.clear();
        self.notify(change.map(Transition::applied));
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A poisoned lock only means a panic elsewhere mid-update; the state is still usable.
        self.inner.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn clear_window(&self, core: &mut Core, now: Instant) {
        core.failures.clear();
        if matches!(self.inner.config.mode, BreakerMode::Rate { .. }) {
            self.inner.rate.clear(now);
        }
    }

    /// The lock-free success of a closed-state call issued in `generation`.
    pub(crate) fn closed_success(&self, generation: u64) {
        if matches!(self.inner.config.mode, BreakerMode::Rate { .. }) {
            let snap = self.inner.snapshot.load(Ordering::Acquire);
            if snap & 0b11 == CLOSED && snap >> 2 == generation {
                self.inner.rate.success(Instant::now());
            }
        }
    }

    /// Applies a verdict. `permit` is `(generation, probe)` for verdicts from permits, `None` for manual ones.
    pub(crate) fn apply(&self, permit: Option<(u64, bool)>, verdict: Verdict) {
        let now = Instant::now();
        let (refreshed, change) = {
            let mut core = self.lock();
            // Open → HalfOpen (if due) and the verdict's own transition are two events.
            let refreshed = self.refresh(&mut core, now);
            let current = permit.is_none_or(|(g, _)| g == core.generation);
            let probe = permit.is_some_and(|(_, p)| p);
            if let (true, true, State::HalfOpen { in_flight }) = (current, probe, &mut core.state) {
                *in_flight = in_flight.saturating_sub(1);
            }
            let manual = permit.is_none();
            let next = match (&core.state, verdict) {
                _ if !current => None,
                (_, Verdict::Neutral) => None,
                (State::Closed, Verdict::Failure) => self.closed_failure(&mut core, now),
                (State::Closed, Verdict::Success) => {
                    if matches!(self.inner.config.mode, BreakerMode::Rate { .. }) {
                        self.inner.rate.success(now);
                    }
                    None
                }
                // A probe (or a forced probe while open) decides; other verdicts are stale.
                (State::HalfOpen { .. } | State::Open { .. }, Verdict::Failure)
                    if probe || (manual && matches!(core.state, State::HalfOpen { .. })) =>
                {
                    core.reopens = core.reopens.saturating_add(1);
                    let period = self.inner.config.open_period(core.reopens);
                    Some(State::Open {
                        until: after(now, period),
                        since: now,
                    })
                }
                (State::HalfOpen { .. } | State::Open { .. }, Verdict::Success)
                    if probe || (manual && matches!(core.state, State::HalfOpen { .. })) =>
                {
                    Some(State::Closed)
                }
                _ => None,
            };
            let change = next.and_then(|next| {
                if matches!(next, State::Closed) {
                    self.clear_window(&mut core, now);
                    core.reopens = 0;
                }
                self.transition(&mut core, next)
            });
            (refreshed, change)
        };
        if verdict == Verdict::Success {
            self.inner.hold.succeeded();
        }
        self.notify(refreshed);
        self.notify(change);
    }

    /// A failure while closed: counts it under the mode's rule; `Some(open)` when it trips.
    fn closed_failure(&self, core: &mut Core, now: Instant) -> Option<State> {
        let cfg = &self.inner.config;
        let trips = match cfg.mode {
            BreakerMode::Count { failure_threshold } => {
                let threshold = failure_threshold as usize;
                if core.failures.len() >= threshold {
                    core.failures.pop_front();
                }
                core.failures.push_back(now);
                core.failures.len() >= threshold
                    && core
                        .failures
                        .front()
                        .is_some_and(|t| now.duration_since(*t) < cfg.window)
            }
            BreakerMode::Rate {
                failure_rate,
                minimum_calls,
                outage_failures,
                outage_time,
            } => {
                let t = self.inner.rate.failure(now);
                #[allow(clippy::cast_precision_loss)]
                let rate_rule = t.calls >= u64::from(minimum_calls)
                    && t.failures as f64 >= failure_rate * t.calls as f64;
                let outage_rule = outage_failures > 0
                    && t.run >= outage_failures
                    && t.since_success >= outage_time;
                rate_rule || outage_rule
            }
        };
        trips.then(|| State::Open {
            until: after(now, cfg.open_period(0)),
            since: now,
        })
    }

    /// Open → HalfOpen once the open period has passed.
    fn refresh(&self, core: &mut Core, now: Instant) -> Option<Transition> {
        match core.state {
            State::Open { until, .. } if now >= until => {
                self.transition(core, State::HalfOpen { in_flight: 0 })
            }
            _ => None,
        }
    }

    fn transition(&self, core: &mut Core, next: State) -> Option<Transition> {
        let from = core.public_state();
        core.state = next;
        core.generation = core.generation.wrapping_add(1) & (u64::MAX >> 2);
        let to = core.public_state();
        self.inner
            .snapshot
            .store((core.generation << 2) | to.code(), Ordering::Release);
        let open_for = match core.state {
            State::Open { until, since } => Some(until.saturating_duration_since(since)),
            _ => None,
        };
        (from != to).then_some(Transition {
            from,
            to,
            generation: core.generation,
            open_for,
            applied: false,
        })
    }

    fn notify(&self, change: Option<Transition>) {
        let Some(Transition {
            from,
            to,
            generation,
            open_for,
            applied,
        }) = change
        else {
            return;
        };
        tracing::info!(breaker = %self.inner.name, from = from.as_str(), to = to.as_str(), "circuit breaker state changed");
        let change = StateChange {
            breaker: &self.inner.name,
            from,
            to,
            generation,
            open_for,
            applied,
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
    generation: u64,
    open_for: Option<Duration>,
    applied: bool,
}

impl Transition {
    fn applied(self) -> Self {
        Self {
            applied: true,
            ..self
        }
    }
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
