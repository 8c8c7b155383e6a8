//! The pauses between attempts: one schedule for every retry loop of the adapter (AWS calls,
//! deliveries, checkpoint saves) and the broker (deliveries), with settings per caller.
//!
//! Owns how a pause grows and its jitter. It never sleeps and never decides whether to try
//! again: the loops do.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How pauses grow from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Growth {
    /// first · 2^n
    #[default]
    Exponential,
    /// first · (n + 1)
    Linear,
}

/// A schedule of pauses, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    growth: Growth,
    jitter: bool,
}

impl Backoff {
    /// Doubling from `first`, with jitter (each pause between the step and twice it, never
    /// over `max`), so that many loops failing at once do not retry in step.
    pub const fn jittered(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            growth: Growth::Exponential,
            jitter: true,
        }
    }

    /// Exactly `first · 2^n` or `first · (n + 1)`, capped at `max`: the schedule a user
    /// chose (Knative's `backoffPolicy` and `backoffDelay`).
    pub const fn exact(first: Duration, max: Duration, growth: Growth) -> Backoff {
        Backoff {
            first,
            max,
            growth,
            jitter: false,
        }
    }

    /// The longest pause.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The pause before retry `n` (0-based), without jitter.
    pub fn pause(&self, n: u32) -> Duration {
        let factor = match self.growth {
            Growth::Exponential => 1u32.checked_shl(n),
            Growth::Linear => n.checked_add(1),
        };
        factor
            .and_then(|f| self.first.checked_mul(f))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The pauses of one run of failures, without end.
    pub fn pauses(&self) -> Pauses {
        let jittered = self.jitter.then(|| {
            ExponentialBuilder::default()
                .with_min_delay(self.first)
                // Jitter adds up to 100 %: halve the cap so pauses stay under it.
                .with_max_delay(self.max / 2)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build()
        });
        Pauses {
            backoff: *self,
            next: 0,
            jittered,
        }
    }
}

/// The pauses of one run of failures (see [`Backoff::pauses`]).
#[derive(Debug)]
pub struct Pauses {
    backoff: Backoff,
    next: u32,
    jittered: Option<ExponentialBackoff>,
}

impl Pauses {
    /// The next pause (there always is one).
    pub fn next_pause(&mut self) -> Duration {
        self.next().unwrap_or(self.backoff.max)
    }
}

impl Iterator for Pauses {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let pause = match &mut self.jittered {
            Some(jittered) => jittered.next().unwrap_or(self.backoff.max),
            None => self.backoff.pause(self.next),
        };
        self.next = self.next.saturating_add(1);
        Some(pause.min(self.backoff.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exact_schedules_grow_as_chosen_and_stop_at_the_cap() {
        let exp = Backoff::exact(200 * MS, 30_000 * MS, Growth::Exponential);
        let waits: Vec<Duration> = exp.pauses().take(4).collect();
        assert_eq!(waits, [200 * MS, 400 * MS, 800 * MS, 1600 * MS]);
        assert_eq!(exp.pause(40), 30_000 * MS, "no overflow past 2^31");
        let lin = Backoff::exact(200 * MS, 30_000 * MS, Growth::Linear);
        let waits: Vec<Duration> = lin.pauses().take(4).collect();
        assert_eq!(waits, [200 * MS, 400 * MS, 600 * MS, 800 * MS]);
        assert_eq!(lin.pause(u32::MAX), 30_000 * MS);
    }

    #[test]
    fn jittered_pauses_start_at_the_first_and_stay_under_the_cap() {
        let backoff = Backoff::jittered(100 * MS, 10_000 * MS);
        let pauses: Vec<Duration> = backoff.pauses().take(30).collect();
        assert!(pauses[0] >= 100 * MS && pauses[0] < 200 * MS, "{pauses:?}");
        assert!(pauses.iter().all(|p| *p <= 10_000 * MS), "{pauses:?}");
        assert!(pauses[29] >= 5_000 * MS, "{pauses:?}");
    }
}
