//! Instant arithmetic that cannot panic: a hostile or absurd duration saturates to a far future.

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: later than any deadline that matters, early enough to add to any instant.
const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);

/// `now + d`, or a far-future instant when that would overflow.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// An instant no timer will reach in practice.
pub(crate) fn far_future() -> Instant {
    after(Instant::now(), FAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(86_400 * 365));
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
