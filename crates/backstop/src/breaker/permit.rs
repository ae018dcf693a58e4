//! Permission for one call, and the verdict it carries back to the breaker.

use std::fmt;

use super::{CircuitBreaker, Verdict};
use crate::error::BreakerEffect;

/// Permission for one call. Give it a verdict when the call ends; dropping it unjudged is
/// neutral (a cancelled call), which frees a half-open probe slot — unless the permit was told
/// that being dropped means the call timed out ([`Permit::fail_on_drop`]).
#[must_use = "a permit should be given a verdict; dropping it is a neutral outcome"]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    probe: bool,
    done: bool,
    drop_verdict: Verdict,
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
    pub(super) fn new(breaker: CircuitBreaker, generation: u64, probe: bool) -> Self {
        Self {
            breaker,
            generation,
            probe,
            done: false,
            drop_verdict: Verdict::Neutral,
        }
    }

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
            BreakerEffect::Neutral => Verdict::Neutral,
        });
    }
    /// Whether dropping this permit without a verdict counts as a failure (a caller-side
    /// timeout that cancelled the call, as the tutorial's `asyncio.wait_for` promises) instead
    /// of being neutral.
    pub fn fail_on_drop(&mut self, yes: bool) {
        self.drop_verdict = if yes {
            Verdict::Failure
        } else {
            Verdict::Neutral
        };
    }

    fn finish(&mut self, verdict: Verdict) {
        if self.done {
            return;
        }
        self.done = true;
        match (self.probe, verdict) {
            (false, Verdict::Neutral) => {}
            // The hot path: a closed-state success takes no lock.
            (false, Verdict::Success) => {
                self.breaker.closed_success(self.generation);
                self.breaker.hold().succeeded();
            }
            _ => self
                .breaker
                .apply(Some((self.generation, self.probe)), verdict),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let verdict = self.drop_verdict;
        self.finish(verdict);
    }
}
