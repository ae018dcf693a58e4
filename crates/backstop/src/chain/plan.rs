//! A request's plan: the order in which it tries the chain's providers, asked lazily.
//!
//! The base order is the configured one (priority) or a weighted draw without replacement
//! (weighted; providers whose breaker refuses calls go last). Each call to [`Plan::next`]
//! returns the first untried provider of that order that is not on a rate-limit hold, and only
//! when every untried one is held the first held one: holds push a provider back, never out,
//! and a hold that starts mid-request applies at once.

use rand::Rng;

use super::{Entry, Strategy};

pub(super) struct Plan {
    order: Vec<usize>,
    /// Per provider, whether it was handed out (`[..n]`), then whether it cannot serve this
    /// request (`[n..]`, `Provider::check`: never handed out); one allocation for both.
    flags: Vec<bool>,
    /// How many providers were handed out so far.
    handed: usize,
}

impl Plan {
    pub(super) fn new(entries: &[Entry], strategy: Strategy) -> Self {
        let order = match strategy {
            Strategy::Priority => (0..entries.len()).collect(),
            Strategy::Weighted => {
                let weights: Vec<f64> = entries.iter().map(|e| e.weight).collect();
                weighted(&weights, |i| entries[i].breaker.admits(), &mut rand::rng())
            }
        };
        Self {
            flags: vec![false; 2 * entries.len()],
            order,
            handed: 0,
        }
    }

    fn tried(&self, i: usize) -> bool {
        self.flags[i]
    }

    fn excluded(&self, i: usize) -> bool {
        self.flags[self.flags.len() / 2 + i]
    }

    /// Takes provider `i` out of this request's plan (it cannot serve the request); an answer
    /// from another one counts as a fallback.
    pub(super) fn exclude(&mut self, i: usize) {
        if !self.excluded(i) {
            let n = self.flags.len() / 2;
            self.flags[n + i] = true;
            self.flags[i] = true;
            self.handed += 1;
        }
    }

    /// The next provider to try, or `None` when every one was handed out.
    pub(super) fn next(&mut self, entries: &[Entry]) -> Option<usize> {
        let untried = || self.order.iter().copied().filter(|&i| !self.tried(i));
        let pick = untried()
            .find(|&i| !entries[i].breaker.hold().is_held())
            .or_else(|| untried().next())?;
        self.flags[pick] = true;
        self.handed += 1;
        Some(pick)
    }

    /// The next provider whose breaker admits a call, skipping (and handing out) none that
    /// does not: for a hedge, which only makes sense on a provider that can take it now.
    pub(super) fn next_admitted(&mut self, entries: &[Entry]) -> Option<usize> {
        let pick = self
            .order
            .iter()
            .copied()
            .filter(|&i| !self.tried(i) && entries[i].breaker.admits())
            .min_by_key(|&i| entries[i].breaker.hold().is_held())?;
        self.flags[pick] = true;
        self.handed += 1;
        Some(pick)
    }

    /// True when the provider handed out last is not the first one of the request.
    pub(super) fn fell_back(&self) -> bool {
        self.handed > 1
    }

    /// Providers never handed out, in order (excluded ones are not).
    pub(super) fn remaining(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().copied().filter(|&i| !self.tried(i))
    }

    /// Who may continue a stream `answering` started: the providers never tried first, then
    /// those that failed before the stream committed (a 5xx a minute ago is often fine now),
    /// then `answering` itself (a dropped connection is not a broken provider).
    pub(super) fn resume_order(&self, answering: usize) -> Vec<usize> {
        let tried = |t: bool| {
            self.order
                .iter()
                .copied()
                .filter(move |&i| self.tried(i) == t && !self.excluded(i) && i != answering)
        };
        tried(false).chain(tried(true)).chain([answering]).collect()
    }
}

/// Weighted random order without replacement among providers that `admits`; the rest follow in
/// configured order as the fallback. Efraimidis–Spirakis: sort by the key `ln(u) / w` (u
/// uniform in (0, 1]), largest first. Each next provider is drawn with probability proportional
/// to its weight among those left. The log form is exact for any finite positive weight, where
/// `u^(1/w)` underflows to 0 for small weights and rounds to 1 for huge ones.
pub(super) fn weighted(
    weights: &[f64],
    admits: impl Fn(usize) -> bool,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(weights.len());
    let mut rest: Vec<usize> = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        if admits(i) {
            // `random::<f64>()` is in [0, 1); 1 - u is in (0, 1], so ln is finite or 0.
            let u: f64 = 1.0 - rng.random::<f64>();
            keyed.push((u.ln() / w, i));
        } else {
            rest.push(i);
        }
    }
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, i)| i).chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn every_provider_appears_exactly_once() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..100 {
            let mut o = weighted(&[0.2, 5.0, 1.0, 0.01], |i| i != 2, &mut rng);
            assert_eq!(o[3], 2, "a provider that does not admit calls goes last");
            o.sort_unstable();
            assert_eq!(o, vec![0, 1, 2, 3]);
        }
    }

    #[test]
    fn second_choice_follows_the_remaining_weights() {
        // With weights 0.5/0.3/0.2, given the first pick is 0, the second is 1 with p = 0.3/0.5.
        let mut rng = SmallRng::seed_from_u64(2);
        let (mut first0, mut then1) = (0u32, 0u32);
        for _ in 0..20_000 {
            let o = weighted(&[0.5, 0.3, 0.2], |_| true, &mut rng);
            if o[0] == 0 {
                first0 += 1;
                if o[1] == 1 {
                    then1 += 1;
                }
            }
        }
        let p = f64::from(then1) / f64::from(first0);
        assert!((p - 0.6).abs() < 0.03, "p = {p}");
    }

    /// Share of first choices for provider 0 over `n` draws.
    fn first_share(weights: &[f64], n: u32) -> f64 {
        let mut rng = SmallRng::seed_from_u64(3);
        let hits = (0..n)
            .filter(|_| weighted(weights, |_| true, &mut rng)[0] == 0)
            .count();
        hits as f64 / f64::from(n)
    }

    #[test]
    fn shares_are_exact_at_extreme_weights() {
        // ±0.015 is about 4.7 standard deviations of a share estimated from 20,000 draws.
        for (weights, expected) in [
            (vec![1e-4, 1e-4], 0.5),
            (vec![0.001, 0.002], 1.0 / 3.0),
            (vec![1e18, 1e18], 0.5),
            (vec![1e-300, 3e-300], 0.25),
            (vec![f64::MAX, f64::MAX], 0.5),
        ] {
            let share = first_share(&weights, 20_000);
            assert!(
                (share - expected).abs() < 0.015,
                "weights {weights:?}: share {share}, expected {expected}"
            );
        }
    }
}
