//! The policy step: after a failed attempt, retry the same provider, move on, or stop. A pure
//! function of the error, the retry policy and the facts the chain gathered.

use std::time::Duration;

use crate::{ErrorKind, FallThrough, RetryDecision, RetryPolicy};

/// What the chain knows when an attempt has failed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts {
    /// Retries already made on this provider for this request.
    pub(super) retries_done: u32,
    /// Time left before the request deadline.
    pub(super) time_left: Option<Duration>,
    /// Whether the provider's breaker would admit a call now (it may have just opened).
    pub(super) admits: bool,
}

/// The next step after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Wait this long, then call the same provider again (if the retry budget allows).
    Retry(Duration),
    /// Try the next provider.
    Next,
    /// End the request with this error.
    Stop,
}

/// Decides what follows a failure of `kind`.
pub(super) fn after_failure(
    kind: ErrorKind,
    policy: &RetryPolicy,
    fall_through: FallThrough,
    facts: Facts,
) -> Step {
    // A breaker that refuses calls would refuse the retry too: do not sleep for nothing.
    let retry = if facts.admits {
        policy.decide(kind, facts.retries_done, facts.time_left)
    } else {
        RetryDecision::GiveUp
    };
    match retry {
        RetryDecision::RetryAfter(wait) => Step::Retry(wait),
        RetryDecision::GiveUp if kind.falls_through(fall_through) => Step::Next,
        RetryDecision::GiveUp => Step::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            retries_done: 0,
            time_left: None,
            admits: true,
        }
    }

    #[test]
    fn retryable_errors_retry_while_the_breaker_admits() {
        let p = RetryPolicy::default();
        let f = FallThrough::default();
        assert!(matches!(
            after_failure(ErrorKind::Server, &p, f, facts()),
            Step::Retry(_)
        ));
        let closed = Facts {
            admits: false,
            ..facts()
        };
        assert_eq!(after_failure(ErrorKind::Server, &p, f, closed), Step::Next);
    }

    #[test]
    fn timeouts_move_on_without_a_retry() {
        let p = RetryPolicy::default().max_retries(3);
        let step = after_failure(ErrorKind::Timeout, &p, FallThrough::default(), facts());
        assert_eq!(step, Step::Next);
    }

    #[test]
    fn content_filter_stops_unless_opted_in() {
        let p = RetryPolicy::default();
        let k = ErrorKind::ContentFiltered;
        assert_eq!(
            after_failure(k, &p, FallThrough::default(), facts()),
            Step::Stop
        );
        let opt_in = FallThrough {
            content_filtered: true,
            ..FallThrough::default()
        };
        assert_eq!(after_failure(k, &p, opt_in, facts()), Step::Next);
    }

    #[test]
    fn invalid_request_follows_its_setting_and_cancelled_always_stops() {
        let p = RetryPolicy::default();
        let k = ErrorKind::InvalidRequest;
        assert_eq!(
            after_failure(k, &p, FallThrough::default(), facts()),
            Step::Next
        );
        let stop = FallThrough {
            invalid_request: false,
            ..FallThrough::default()
        };
        assert_eq!(after_failure(k, &p, stop, facts()), Step::Stop);
        assert_eq!(
            after_failure(ErrorKind::Cancelled, &p, FallThrough::default(), facts()),
            Step::Stop
        );
    }

    #[test]
    fn a_rate_limit_hint_within_the_cap_is_waited_and_beyond_it_moves_on() {
        let p = RetryPolicy::default();
        let f = FallThrough::default();
        let short = ErrorKind::RateLimited {
            retry_after: Some(Duration::from_millis(500)),
        };
        assert_eq!(
            after_failure(short, &p, f, facts()),
            Step::Retry(Duration::from_millis(500))
        );
        let long = ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(after_failure(long, &p, f, facts()), Step::Next);
    }
}
