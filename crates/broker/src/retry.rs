//! When a failed delivery is retried and how long to wait first.
//!
//! Owns a trigger's backoff schedule (exponential or linear, capped at 30 s) and how
//! `Retry-After` lengthens it. Which failures are retried is Knative's rule, in
//! `awsdynamodbsource_cloudevents::knative`. It never sleeps or sends anything itself.

use std::time::Duration;

use awsdynamodbsource_cloudevents::backoff::{Backoff, Growth};

use crate::config::{BackoffPolicy, DeliveryOptions};

/// No wait between retries is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A trigger's retry settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt; `None`: until delivered.
    pub retries: Option<u32>,
    pub delay: Duration,
    pub policy: BackoffPolicy,
}

impl RetryPolicy {
    pub fn from_options(options: Option<&DeliveryOptions>) -> RetryPolicy {
        let options = options.cloned().unwrap_or_default();
        RetryPolicy {
            retries: options.retry,
            delay: options.backoff_delay(),
            policy: options.backoff_policy.unwrap_or_default(),
        }
    }

    /// Whether retry number `done + 1` is allowed.
    pub fn may_retry(&self, done: u32) -> bool {
        self.retries.is_none_or(|max| done < max)
    }

    /// The wait before retry `n` (0-based): delay·2^n or delay·(n+1), at least what the
    /// target asked for with `Retry-After`, at most [`MAX_BACKOFF`].
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let growth = match self.policy {
            BackoffPolicy::Exponential => Growth::Exponential,
            BackoffPolicy::Linear => Growth::Linear,
        };
        let backoff = Backoff::exact(self.delay, MAX_BACKOFF, growth).pause(n);
        backoff.max(retry_after.unwrap_or_default().min(MAX_BACKOFF))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(policy: BackoffPolicy, delay_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries: Some(3),
            delay: Duration::from_millis(delay_ms),
            policy,
        }
    }

    #[test]
    fn exponential_and_linear_schedules_are_capped() {
        let exp = policy(BackoffPolicy::Exponential, 200);
        let waits: Vec<u64> = (0..4)
            .map(|n| exp.wait(n, None).as_millis() as u64)
            .collect();
        assert_eq!(waits, [200, 400, 800, 1600]);
        assert_eq!(exp.wait(20, None), MAX_BACKOFF);
        assert_eq!(exp.wait(40, None), MAX_BACKOFF, "no overflow past 2^31");
        let lin = policy(BackoffPolicy::Linear, 200);
        let waits: Vec<u64> = (0..4)
            .map(|n| lin.wait(n, None).as_millis() as u64)
            .collect();
        assert_eq!(waits, [200, 400, 600, 800]);
        assert_eq!(lin.wait(u32::MAX, None), MAX_BACKOFF);
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let exp = policy(BackoffPolicy::Exponential, 200);
        assert_eq!(
            exp.wait(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(exp.wait(0, Some(Duration::from_secs(3600))), MAX_BACKOFF);
        assert_eq!(
            exp.wait(3, Some(Duration::from_secs(1))),
            Duration::from_millis(1600)
        );
    }

    #[test]
    fn retry_counts_and_statuses() {
        let three = policy(BackoffPolicy::Linear, 1);
        assert!(three.may_retry(2) && !three.may_retry(3));
        let forever = RetryPolicy {
            retries: None,
            ..three
        };
        assert!(forever.may_retry(u32::MAX));
        let zero = RetryPolicy {
            retries: Some(0),
            ..three
        };
        assert!(!zero.may_retry(0));
        let defaults = RetryPolicy::from_options(None);
        assert_eq!(
            defaults,
            RetryPolicy {
                retries: None,
                delay: Duration::from_millis(200),
                policy: BackoffPolicy::Exponential
            }
        );
    }
}
