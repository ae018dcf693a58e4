//! Circuit breaker state machine: closed → open → half-open → closed/open, probe bounds,
//! stale permits, clones and observer events.

// Helpers outside #[test] fns assert too; panicking is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::testing::{ScriptedProvider, Step};
use backstop::{BreakerState, CircuitBreaker, ErrorKind, FallbackChain, Observer, StateChange};

const WINDOW: Duration = Duration::from_secs(10);
const RECOVERY: Duration = Duration::from_secs(30);

fn breaker(name: &str, threshold: u32, probes: u32) -> CircuitBreaker {
    CircuitBreaker::new(name)
        .failure_threshold(threshold)
        .window(WINDOW)
        .recovery_timeout(RECOVERY)
        .half_open_probes(probes)
}

/// Opens the breaker and waits out the recovery timeout so the next look sees HalfOpen.
async fn to_half_open(b: &CircuitBreaker) {
    b.trip();
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(RECOVERY).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[derive(Default)]
struct Recorder {
    changes: Mutex<Vec<(String, BreakerState, BreakerState)>>,
}

impl Recorder {
    fn take(&self) -> Vec<(BreakerState, BreakerState)> {
        let mut v = self.changes.lock().unwrap();
        v.drain(..).map(|(_, f, t)| (f, t)).collect()
    }
}

impl Observer for Recorder {
    fn on_breaker_change(&self, change: &StateChange<'_>) {
        self.changes
            .lock()
            .unwrap()
            .push((change.breaker.to_owned(), change.from, change.to));
    }
}

#[tokio::test(start_paused = true)]
async fn opens_after_threshold_failures_inside_the_window() {
    let b = breaker("p", 3, 1);
    b.record_failure();
    tokio::time::advance(Duration::from_secs(1)).await;
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().failures_in_window, 2);
    tokio::time::advance(Duration::from_secs(1)).await;
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
    let snap = b.snapshot();
    assert_eq!(snap.until_half_open, Some(RECOVERY));
}

#[tokio::test(start_paused = true)]
async fn failures_older_than_the_window_do_not_count() {
    let b = breaker("p", 3, 1);
    b.record_failure(); // t = 0
    tokio::time::advance(Duration::from_secs(5)).await;
    b.record_failure(); // t = 5
    tokio::time::advance(Duration::from_millis(5_500)).await; // t = 10.5: the first is out
    assert_eq!(b.snapshot().failures_in_window, 1);
    b.record_failure();
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "three failures recorded, but the t=0 one is outside the window"
    );
    assert_eq!(b.snapshot().failures_in_window, 2);
    b.record_failure();
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "t=5, t=10.5, t=10.5 are inside the window"
    );
}

#[tokio::test(start_paused = true)]
async fn failure_exactly_window_old_is_outside() {
    let b = breaker("p", 2, 1);
    b.record_failure();
    tokio::time::advance(WINDOW).await;
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Closed);
    tokio::time::advance(Duration::from_millis(1)).await;
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn successes_in_closed_state_do_not_clear_the_window() {
    let b = breaker("p", 2, 1);
    b.record_failure();
    b.record_success();
    b.try_acquire().unwrap().success();
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn open_breaker_rejects_without_calling_the_provider() {
    let b = breaker("primary", 1, 1);
    let primary = ScriptedProvider::new("primary").script([Step::reply("primary")]);
    let backup = ScriptedProvider::new("backup");
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .provider(backup.clone(), CircuitBreaker::new("backup"))
        .build()
        .unwrap();
    b.record_failure();
    assert!(b.try_acquire().is_err());
    for _ in 0..5 {
        let r = chain.generate("hi").await.unwrap();
        assert_eq!(r.provider_used, "backup");
    }
    assert_eq!(primary.calls(), 0);
    assert_eq!(backup.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn open_turns_half_open_after_recovery_timeout() {
    let b = breaker("p", 1, 1);
    b.record_failure();
    tokio::time::advance(RECOVERY - Duration::from_millis(1)).await;
    assert_eq!(b.state(), BreakerState::Open);
    assert!(!b.admits());
    assert!(b.try_acquire().is_err());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.admits());
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_one_probe_among_100_permit_holders() {
    let b = breaker("p", 1, 1);
    to_half_open(&b).await;
    let mut tasks = Vec::new();
    let (release_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    for _ in 0..100 {
        let b = b.clone();
        let mut release = release_tx.subscribe();
        tasks.push(tokio::spawn(async move {
            let permit = b.try_acquire();
            let admitted = permit.is_ok();
            let _ = release.recv().await;
            drop(permit);
            admitted
        }));
    }
    tokio::task::yield_now().await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    release_tx.send(()).unwrap();
    let mut admitted = 0;
    for t in tasks {
        admitted += u32::from(t.await.unwrap());
    }
    assert_eq!(admitted, 1);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_configured_probes_among_100_concurrent_chain_calls() {
    for probes in [1u32, 3] {
        let b = breaker("primary", 1, probes);
        let primary = ScriptedProvider::new("primary").script([Step::hang()]);
        let backup = ScriptedProvider::new("backup");
        let chain = FallbackChain::builder()
            .provider(primary.clone(), b.clone())
            .provider(backup.clone(), CircuitBreaker::new("backup"))
            .build()
            .unwrap();
        to_half_open(&b).await;
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let chain = chain.clone();
                tokio::spawn(async move { chain.generate("hi").await })
            })
            .collect();
        // Let every task run until it either answers or hangs on the probe.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(primary.calls(), u64::from(probes), "probes = {probes}");
        assert_eq!(backup.calls(), 100 - u64::from(probes));
        assert!(!b.admits(), "every probe slot is taken");
        let mut finished = 0;
        for h in &handles {
            finished += u32::from(h.is_finished());
        }
        assert_eq!(finished, 100 - probes);
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admits(), "aborted probe calls freed their slots");
    }
}

#[tokio::test(start_paused = true)]
async fn probe_success_closes_with_an_empty_window() {
    let b = breaker("p", 2, 1);
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(RECOVERY).await;
    let probe = b.try_acquire().unwrap();
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().failures_in_window, 0);
    b.record_failure();
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "one new failure does not re-open with threshold 2"
    );
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn probe_failure_reopens_for_another_recovery_timeout() {
    let b = breaker("p", 3, 1);
    to_half_open(&b).await;
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.snapshot().until_half_open, Some(RECOVERY));
    tokio::time::advance(RECOVERY).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn dropped_or_neutral_probe_frees_its_slot() {
    let b = breaker("p", 1, 1);
    to_half_open(&b).await;
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "the only slot is taken");
    drop(probe);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire().expect("slot freed by drop");
    assert!(b.try_acquire().is_err());
    probe.neutral();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire().expect("slot freed by neutral verdict");
    probe.success();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_chain_call_frees_the_probe_slot() {
    let b = breaker("primary", 1, 1);
    let primary = ScriptedProvider::new("primary").script([Step::hang(), Step::reply("back")]);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), b.clone())
        .build()
        .unwrap();
    to_half_open(&b).await;
    let cancelled = tokio::time::timeout(Duration::from_secs(1), chain.generate("hi")).await;
    assert!(
        cancelled.is_err(),
        "the hanging call was cut off from outside"
    );
    assert_eq!(primary.calls(), 1);
    assert_eq!(b.state(), BreakerState::HalfOpen, "cancellation is neutral");
    let r = chain
        .generate("hi")
        .await
        .expect("the probe slot is free again");
    assert_eq!(r.text, "back");
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn trip_opens_and_reset_closes_and_forgets() {
    let b = breaker("p", 2, 1);
    b.record_failure();
    b.trip();
    assert_eq!(b.state(), BreakerState::Open);
    assert!(b.try_acquire().is_err());
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.try_acquire().is_ok());
    b.record_failure();
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "reset forgot the earlier failure"
    );
    // reset from half-open
    to_half_open(&b).await;
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn manual_verdicts_in_half_open_close_or_reopen() {
    let b = breaker("p", 5, 1);
    to_half_open(&b).await;
    b.record_success();
    assert_eq!(b.state(), BreakerState::Closed);
    to_half_open(&b).await;
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn clones_share_state() {
    let a = breaker("p", 2, 1);
    let c = a.clone();
    a.record_failure();
    c.record_failure();
    assert_eq!(a.state(), BreakerState::Open);
    assert_eq!(c.state(), BreakerState::Open);
    c.reset();
    assert_eq!(a.state(), BreakerState::Closed);
    let probe_holder = a.clone();
    to_half_open(&c).await;
    let _p = probe_holder.try_acquire().unwrap();
    assert!(c.try_acquire().is_err(), "the probe slot is shared");
}

#[tokio::test(start_paused = true)]
async fn observer_sees_each_transition_once() {
    let b = breaker("watched", 2, 1);
    let rec = Arc::new(Recorder::default());
    b.observe(rec.clone());
    b.record_failure();
    assert!(rec.take().is_empty());
    b.record_failure();
    assert_eq!(rec.take(), vec![(BreakerState::Closed, BreakerState::Open)]);
    b.record_failure(); // already open: no event
    b.trip(); // open → open: no event
    assert!(rec.take().is_empty());
    tokio::time::advance(RECOVERY).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.admits());
    assert_eq!(
        rec.take(),
        vec![(BreakerState::Open, BreakerState::HalfOpen)]
    );
    b.try_acquire().unwrap().success();
    assert_eq!(
        rec.take(),
        vec![(BreakerState::HalfOpen, BreakerState::Closed)]
    );
    b.reset(); // closed → closed: no event
    assert!(rec.take().is_empty());
    assert_eq!(rec.changes.lock().unwrap().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn observer_sees_both_transitions_when_a_verdict_lands_on_an_expired_open() {
    // Nobody looks at the breaker while its recovery timeout passes; the next verdict first
    // moves it Open → HalfOpen and then on. Observers must see both steps, so that their view
    // of the state matches `state()`.
    let b = breaker("watched", 1, 1);
    let rec = Arc::new(Recorder::default());
    b.observe(rec.clone());
    b.trip();
    tokio::time::advance(RECOVERY).await;
    b.record_failure();
    assert_eq!(
        rec.take(),
        vec![
            (BreakerState::Closed, BreakerState::Open),
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Open),
        ]
    );
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(RECOVERY).await;
    b.record_success();
    assert_eq!(
        rec.take(),
        vec![
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Closed),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn observer_events_carry_the_breaker_name() {
    let b = breaker("named-one", 1, 1);
    let rec = Arc::new(Recorder::default());
    b.observe(rec.clone());
    b.trip();
    let v = rec.changes.lock().unwrap().clone();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, "named-one");
}

#[tokio::test(start_paused = true)]
async fn stale_closed_permit_does_not_touch_the_new_state() {
    let b = breaker("p", 2, 1);
    let stale = b.try_acquire().unwrap();
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(RECOVERY).await;
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), BreakerState::Closed);
    stale.failure();
    assert_eq!(
        b.snapshot().failures_in_window,
        0,
        "a failure from before the transition is not counted"
    );
    b.record_failure();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_probe_permit_neither_closes_nor_frees_a_new_slot() {
    let b = breaker("p", 1, 1);
    to_half_open(&b).await;
    let stale = b.try_acquire().unwrap();
    b.trip();
    tokio::time::advance(RECOVERY).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let fresh = b.try_acquire().unwrap();
    stale.success();
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "an old probe's success does not close the new half-open"
    );
    assert!(
        b.try_acquire().is_err(),
        "an old probe's verdict does not free the new probe's slot"
    );
    fresh.failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn stale_closed_failure_after_reset_is_ignored() {
    let b = breaker("p", 1, 1);
    let stale = b.try_acquire().unwrap();
    b.reset();
    stale.failure();
    assert_eq!(b.state(), BreakerState::Closed);
}

/// What the chain does with a 429 on a permit: neutral for the breaker, a hold for the provider.
fn rate_limited(b: &CircuitBreaker, p: backstop::Permit, hint: Duration) {
    let kind = ErrorKind::RateLimited {
        retry_after: Some(hint),
    };
    p.record(kind.breaker_effect());
    b.hold().rate_limited(Some(hint));
}

#[tokio::test(start_paused = true)]
async fn rate_limit_never_opens_the_breaker_or_erases_its_count() {
    let b = breaker("p", 5, 1);
    b.record_failure();
    let p = b.try_acquire().unwrap();
    rate_limited(&b, p, Duration::from_secs(5));
    let snap = b.snapshot();
    assert_eq!(snap.state, BreakerState::Closed);
    assert_eq!(
        snap.failures_in_window, 1,
        "the earlier failure still counts"
    );
    assert_eq!(snap.hold_remaining, Some(Duration::from_secs(5)));
    tokio::time::advance(Duration::from_secs(5)).await;
    let snap = b.snapshot();
    assert_eq!(snap.hold_remaining, None);
    assert_eq!(
        snap.failures_in_window, 1,
        "the end of a hold erases nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_never_closes_a_half_open_breaker() {
    let b = breaker("p", 1, 1);
    let p = b.try_acquire().unwrap();
    p.failure(); // a 503 opens it
    tokio::time::advance(RECOVERY).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire().unwrap();
    assert!(probe.is_probe());
    rate_limited(&b, probe, Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "nothing succeeded, so the breaker is not closed"
    );
    // The 429 freed the probe slot, and the next probe's failure is not discarded as stale.
    let probe = b.try_acquire().unwrap();
    probe.failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_never_make_in_flight_verdicts_stale() {
    let b = breaker("p", 1, 1);
    let in_flight = b.try_acquire().unwrap();
    let other = b.try_acquire().unwrap();
    rate_limited(&b, other, Duration::from_secs(2));
    in_flight.failure();
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "the in-flight call's failure still counts after a 429"
    );
}

#[tokio::test(start_paused = true)]
async fn interleaved_rate_limits_do_not_keep_a_failing_provider_in_rotation() {
    use backstop::testing::{ScriptedProvider, Step as S};
    // Four 503s then one 429, repeating: before holds replaced cooldowns, each 429's cooldown
    // erased the window and the provider kept receiving 167 of 200 calls.
    let primary = ScriptedProvider::from_fn("primary", |n| {
        if n % 5 == 4 {
            S::fail(ErrorKind::RateLimited {
                retry_after: Some(Duration::from_millis(10)),
            })
        } else {
            S::fail(ErrorKind::Overloaded)
        }
    });
    let secondary = ScriptedProvider::new("secondary").script([S::reply("ok")]);
    let pb = breaker("primary", 5, 1);
    let chain = FallbackChain::builder()
        .provider(primary.clone(), pb.clone())
        .provider(secondary.clone(), breaker("secondary", 5, 1))
        .build()
        .unwrap();
    for _ in 0..200 {
        chain.generate("hi").await.unwrap();
        tokio::time::advance(Duration::from_millis(20)).await;
    }
    // 5 failures open it (the 429 in between is not one): 6 calls, then a probe per recovery.
    assert_eq!(pb.state(), BreakerState::Open);
    assert!(
        primary.calls() <= 7,
        "primary got {} calls",
        primary.calls()
    );
}

/// What a fleet layer needs from a change: its open period and whether it was applied from outside.
#[derive(Default)]
struct Origins {
    changes: Mutex<Vec<(BreakerState, Option<Duration>, bool)>>,
}

impl Observer for Origins {
    fn on_breaker_change(&self, change: &StateChange<'_>) {
        self.changes
            .lock()
            .unwrap()
            .push((change.to, change.open_for, change.applied));
    }
}

#[tokio::test(start_paused = true)]
async fn changes_say_their_open_period_and_whether_they_were_applied_from_outside() {
    let b = breaker("p", 2, 1).recovery_timeout(Duration::from_secs(7));
    let seen = Arc::new(Origins::default());
    b.observe(seen.clone());
    b.record_failure();
    b.record_failure();
    b.reset();
    b.open_for(Duration::from_secs(3));
    b.close();
    b.trip();
    b.close();
    b.close();
    let changes = seen.changes.lock().unwrap().clone();
    assert_eq!(
        changes,
        [
            (BreakerState::Open, Some(Duration::from_secs(7)), false),
            (BreakerState::Closed, None, true),
            (BreakerState::Open, Some(Duration::from_secs(3)), true),
            (BreakerState::Closed, None, true),
            (BreakerState::Open, Some(Duration::from_secs(7)), false),
            (BreakerState::Closed, None, true),
        ],
        "a closed breaker's close() changes nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn close_ends_an_opening_but_keeps_the_hold() {
    let b = breaker("p", 1, 1);
    b.hold().hold_for(Duration::from_secs(5));
    b.trip();
    b.close();
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(
        b.hold().is_held(),
        "a hold is shared on its own and outlives a close"
    );
}
