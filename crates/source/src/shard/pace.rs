//! How long a shard reader waits before its next GetRecords call.
//!
//! Owns one shard's polling pace: at once while records come; every
//! `active_poll_interval` for `active_window` after records (a change to an
//! item being written now arrives fast), but only while the source's shards
//! polled that fast stay within [`FAST_POLLS_PER_SECOND`] in total; then
//! `POLL_INTERVAL`; and the pause doubles for every [`IDLE_STEP`] without
//! records, up to `IDLE_POLL_INTERVAL`. A reader's start begins a quiet
//! spell (`POLL_INTERVAL`, not fast polls). Every pause is jittered, so
//! that readers started together do not poll in step. It never calls AWS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::config::EngineConfig;

/// An idle shard's pause doubles for every this long without records.
pub const IDLE_STEP: Duration = Duration::from_secs(10);

/// Polls per second that the shards polled fast after records may make
/// together: beyond it, each one's fast pause grows.
pub const FAST_POLLS_PER_SECOND: f64 = 500.0;

/// Every pause is this share longer or shorter, at random.
const JITTER: f64 = 0.25;

/// The readers of a source polled fast right now; shared by all of them.
#[derive(Debug, Default)]
pub struct FastPollers(AtomicUsize);

/// One reader's pace.
pub(super) struct Pace {
    config: Arc<EngineConfig>,
    fast_pollers: Arc<FastPollers>,
    /// The last page with records, or the reader's start.
    last_records: Instant,
    /// Whether a page had records since the start.
    had_records: bool,
    /// Whether this reader counts among the fast pollers.
    fast: bool,
}

impl Pace {
    pub(super) fn new(config: Arc<EngineConfig>, fast_pollers: Arc<FastPollers>) -> Self {
        Pace {
            config,
            fast_pollers,
            last_records: Instant::now(),
            had_records: false,
            fast: false,
        }
    }

    /// Before the first call: a random part of `POLL_INTERVAL`, so that
    /// readers started together spread over it.
    pub(super) fn first_pause(&self) -> Duration {
        self.config.poll_interval.mul_f64(fastrand::f64())
    }

    /// The pause after a page.
    pub(super) fn after_page(&mut self, had_records: bool) -> Duration {
        let now = Instant::now();
        if had_records {
            self.last_records = now;
            self.had_records = true;
            self.set_fast(false);
            return Duration::ZERO;
        }
        let quiet = now - self.last_records;
        let config = self.config.clone();
        let pause = if self.had_records && quiet < config.active_window {
            self.set_fast(true);
            let fast_pollers = self.fast_pollers.0.load(Ordering::Relaxed) as f64;
            config
                .active_poll_interval
                .max(Duration::from_secs_f64(
                    fast_pollers / FAST_POLLS_PER_SECOND,
                ))
                .min(config.poll_interval)
        } else {
            self.set_fast(false);
            idle_pause(&config, quiet)
        };
        jittered(pause)
    }

    fn set_fast(&mut self, fast: bool) {
        if fast != self.fast {
            self.fast = fast;
            if fast {
                self.fast_pollers.0.fetch_add(1, Ordering::Relaxed);
            } else {
                self.fast_pollers.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Pace {
    fn drop(&mut self) {
        self.set_fast(false);
    }
}

/// `POLL_INTERVAL`, doubled for every whole `IDLE_STEP` of quiet, up to
/// `IDLE_POLL_INTERVAL` (never below `POLL_INTERVAL`).
fn idle_pause(config: &EngineConfig, quiet: Duration) -> Duration {
    let slowest = config.idle_poll_interval.max(config.poll_interval);
    let doublings = quiet.as_secs() / IDLE_STEP.as_secs();
    let mut pause = config.poll_interval;
    for _ in 0..doublings {
        if pause >= slowest {
            break;
        }
        pause *= 2;
    }
    pause.min(slowest)
}

fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(1.0 + JITTER * (2.0 * fastrand::f64() - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arn::TableArn;

    fn config() -> Arc<EngineConfig> {
        Arc::new(EngineConfig::new(
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
                .parse::<TableArn>()
                .unwrap(),
        ))
    }

    fn within_jitter(pause: Duration, expected: Duration) -> bool {
        pause >= expected.mul_f64(1.0 - JITTER) && pause <= expected.mul_f64(1.0 + JITTER)
    }

    /// The documented steps with the default settings: 250 ms for the
    /// first 10 s of quiet, then 500 ms, 1 s, and 2 s from 30 s on.
    #[test]
    fn an_idle_shard_slows_down_in_steps_to_the_slowest_pause() {
        let config = config();
        let at = |s: u64| idle_pause(&config, Duration::from_secs(s));
        assert_eq!(at(0), Duration::from_millis(250));
        assert_eq!(at(9), Duration::from_millis(250));
        assert_eq!(at(10), Duration::from_millis(500));
        assert_eq!(at(20), Duration::from_secs(1));
        assert_eq!(at(30), Duration::from_secs(2));
        assert_eq!(at(3600), Duration::from_secs(2));

        let mut slow = (*config).clone();
        slow.poll_interval = Duration::from_secs(3);
        assert_eq!(
            idle_pause(&slow, Duration::from_secs(3600)),
            Duration::from_secs(3),
            "a POLL_INTERVAL above the slowest pause is kept as it is"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_then_fast_polls_then_poll_interval_then_slower() {
        let config = config();
        let fast = Arc::new(FastPollers::default());
        let mut pace = Pace::new(config.clone(), fast.clone());
        assert!(pace.first_pause() < config.poll_interval);
        assert!(
            within_jitter(pace.after_page(false), config.poll_interval),
            "a new reader polls at POLL_INTERVAL, not fast"
        );
        assert_eq!(fast.0.load(Ordering::Relaxed), 0);
        assert_eq!(pace.after_page(true), Duration::ZERO);
        assert!(within_jitter(
            pace.after_page(false),
            config.active_poll_interval
        ));
        assert_eq!(fast.0.load(Ordering::Relaxed), 1);
        tokio::time::advance(config.active_window).await;
        assert!(within_jitter(pace.after_page(false), config.poll_interval));
        assert_eq!(fast.0.load(Ordering::Relaxed), 0);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(within_jitter(
            pace.after_page(false),
            config.idle_poll_interval
        ));
        assert_eq!(pace.after_page(true), Duration::ZERO);
    }

    /// However many shards had records lately, their fast polls stay within
    /// the total budget, and none is polled slower than `POLL_INTERVAL`.
    #[tokio::test(start_paused = true)]
    async fn fast_polls_are_bounded_in_total() {
        let config = config();
        let fast = Arc::new(FastPollers::default());
        let mut paces: Vec<Pace> = (0..100)
            .map(|_| Pace::new(config.clone(), fast.clone()))
            .collect();
        for pace in &mut paces {
            pace.after_page(true);
            pace.after_page(false);
        }
        let per_second: f64 = paces
            .iter_mut()
            .map(|p| 1.0 / p.after_page(false).as_secs_f64())
            .sum();
        assert!(
            per_second <= FAST_POLLS_PER_SECOND * (1.0 + JITTER) / (1.0 - JITTER),
            "{per_second} polls/s"
        );
        let many: Vec<Pace> = (0..1000)
            .map(|_| Pace::new(config.clone(), fast.clone()))
            .collect();
        for mut pace in many {
            pace.after_page(true);
            let pause = pace.after_page(false);
            assert!(pause <= config.poll_interval.mul_f64(1.0 + JITTER));
        }
        drop(paces);
        assert_eq!(
            fast.0.load(Ordering::Relaxed),
            0,
            "readers that end leave the count"
        );
    }
}
