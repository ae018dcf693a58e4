//! The order in which a request tries the chain's providers.

use rand::Rng;

/// Priority order: the configured order.
pub(crate) fn priority(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// Weighted random order without replacement among providers that `admits`; the rest follow in
/// configured order as the fallback. Uses Efraimidis–Spirakis keys `u^(1/w)`: sorting by key
/// draws each next provider with probability proportional to its weight among those left.
pub(crate) fn weighted(
    weights: &[f64],
    admits: impl Fn(usize) -> bool,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(weights.len());
    let mut rest: Vec<usize> = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        if admits(i) {
            // `random::<f64>()` is in [0, 1); 1 - u is in (0, 1], so the key is never NaN.
            let u: f64 = 1.0 - rng.random::<f64>();
            keyed.push((u.powf(1.0 / w), i));
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
}
