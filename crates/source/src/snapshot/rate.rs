//! A read rate in read capacity units per second, so that a snapshot does
//! not starve the table's own traffic.
//!
//! DynamoDB says what a page cost only after the page (`ConsumedCapacity`),
//! so the budget may go into debt by one page: a page starts when the budget
//! is above zero, and its cost is taken afterwards. Over time the rate
//! holds; a burst is at most one second's units plus one page.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct ReadRate {
    units_per_second: f64,
    budget: Mutex<Budget>,
}

#[derive(Debug)]
struct Budget {
    /// Units that may be spent now; negative after an expensive page.
    units: f64,
    refilled: Instant,
}

impl ReadRate {
    /// At most `units_per_second` on average (more than 0).
    pub fn new(units_per_second: f64) -> ReadRate {
        let units_per_second = units_per_second.max(f64::MIN_POSITIVE);
        ReadRate {
            units_per_second,
            budget: Mutex::new(Budget {
                units: units_per_second,
                refilled: Instant::now(),
            }),
        }
    }

    /// Waits until a page may start.
    pub async fn ready(&self) {
        loop {
            let wait = {
                let mut budget = self.budget.lock().expect("not poisoned");
                self.refill(&mut budget);
                if budget.units > 0.0 {
                    return;
                }
                // Until the debt is paid and a little more.
                Duration::from_secs_f64((-budget.units + 0.01) / self.units_per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// What a page cost.
    pub fn spent(&self, units: f64) {
        let mut budget = self.budget.lock().expect("not poisoned");
        self.refill(&mut budget);
        budget.units -= units.max(0.0);
    }

    fn refill(&self, budget: &mut Budget) {
        let now = Instant::now();
        let earned = now.duration_since(budget.refilled).as_secs_f64() * self.units_per_second;
        // At most one second's worth saved up.
        budget.units = (budget.units + earned).min(self.units_per_second);
        budget.refilled = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 pages of 10 units at 50 units a second take 100 × 10 / 50 s,
    /// less the one second saved up at the start, and no less.
    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_over_time() {
        let rate = ReadRate::new(50.0);
        let start = Instant::now();
        for _ in 0..100 {
            rate.ready().await;
            rate.spent(10.0);
        }
        let took = start.elapsed().as_secs_f64();
        let expected = 100.0 * 10.0 / 50.0 - 1.0;
        assert!(
            took >= expected - 0.5 && took <= expected + 1.0,
            "{took} s for {expected} s"
        );
    }

    /// A page dearer than a whole second's budget waits its debt off.
    #[tokio::test(start_paused = true)]
    async fn an_expensive_page_is_paid_for_before_the_next() {
        let rate = ReadRate::new(10.0);
        rate.ready().await;
        rate.spent(40.0);
        let start = Instant::now();
        rate.ready().await;
        let waited = start.elapsed().as_secs_f64();
        assert!((3.0..3.2).contains(&waited), "{waited}");
    }
}
