//! Inputs that never panic: the parts of the source that read what the
//! service or a user hands them — stream records, FILTER, the table ARN, the
//! checkpoint file — tried on generated inputs, ordinary and odd. Each
//! property states what must hold for every input, beyond not panicking.
//!
//! A failure prints the smallest input found. Keep it as a unit test next
//! to the fix: no regression files are written here.

use proptest::test_runner::Config;

mod arbitrary;
mod arn;
mod checkpoint;
mod events;
mod filter;
mod records;
#[path = "../support/mod.rs"]
mod support;

/// `cases` cases per property, and no regression files.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
