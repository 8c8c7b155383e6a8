//! How the engine runs: every setting with its documented default, and
//! `STARTING_POSITION`.
//!
//! Owns the settings' types and defaults. It never reads the environment
//! (the adapter does) and never acts on a setting.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use awsdynamodbsource_vars as vars;
use time::format_description::well_known::Rfc3339;

use crate::arn::TableArn;
use crate::event::{CeOverrides, EventOptions};
use crate::filter::RecordFilter;
use crate::sink::{DeadLetter, RetryPolicy};

/// `STARTING_POSITION`: where shards that exist at the first start, and
/// have no checkpoint, begin. Shards and streams that appear later are
/// always read from their beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingPosition {
    Latest,
    TrimHorizon,
    /// From the oldest record, skipping records created before this time.
    At(time::OffsetDateTime),
}

#[derive(Debug, thiserror::Error)]
#[error("{var} {0:?} is not {rule}", var = vars::STARTING_POSITION, rule = vars::STARTING_POSITION_RULE)]
pub struct StartingPositionError(String);

impl fmt::Display for StartingPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartingPosition::Latest => f.write_str("LATEST"),
            StartingPosition::TrimHorizon => f.write_str("TRIM_HORIZON"),
            StartingPosition::At(at) => match at.format(&Rfc3339) {
                Ok(text) => f.write_str(&text),
                Err(_) => write!(f, "{at}"),
            },
        }
    }
}

impl FromStr for StartingPosition {
    type Err = StartingPositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("LATEST") {
            return Ok(StartingPosition::Latest);
        }
        if t.eq_ignore_ascii_case("TRIM_HORIZON") {
            return Ok(StartingPosition::TrimHorizon);
        }
        time::OffsetDateTime::parse(t, &Rfc3339)
            .map(StartingPosition::At)
            .map_err(|_| StartingPositionError(s.to_owned()))
    }
}

/// How the engine runs; [`EngineConfig::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub table: TableArn,
    pub starting_position: StartingPosition,
    pub overrides: CeOverrides,
    /// Deliveries at once per shard.
    pub max_in_flight: usize,
    /// Undone events per shard below which the next page is fetched.
    pub read_ahead: usize,
    /// Pause after an empty page once the shard is idle (see `shard::pace`
    /// for the steps).
    pub poll_interval: Duration,
    /// The longest pause of a shard idle for long (when above
    /// `poll_interval`).
    pub idle_poll_interval: Duration,
    /// Pause after an empty page while the shard is active (had records in
    /// the last `active_window`): changes arriving now are sent within it.
    /// `Engine::new` caps it at `poll_interval`.
    pub active_poll_interval: Duration,
    pub active_window: Duration,
    /// How often to look for a stream while the table has none (or after
    /// one vanished), and how soon a reader that stopped early is restarted.
    pub discovery_interval: Duration,
    /// How often the whole shard list is read again. New shards are found
    /// at once from the shards that end (their children); this refresh
    /// catches anything else, such as a disabled stream.
    pub shard_list_interval: Duration,
    /// How often changed checkpoints are saved...
    pub checkpoint_interval: Duration,
    /// ...or sooner, once this many events are done and unsaved.
    pub checkpoint_after_events: u64,
    /// On shutdown, how long deliveries in flight may take to finish.
    pub shutdown_timeout: Duration,
    pub retry: RetryPolicy,
    /// The data format, subject, extensions and dataschema of events.
    pub events: EventOptions,
    /// Only records that match are sent (FILTER); the others are done.
    pub filter: Option<Arc<RecordFilter>>,
    /// Where events go that the sink refuses for good, that exhaust
    /// `retry.max_attempts` or outgrow `retry.max_record_age`.
    pub dead_letter: Option<DeadLetter>,
}

impl EngineConfig {
    pub fn new(table: TableArn) -> Self {
        EngineConfig {
            table,
            starting_position: StartingPosition::Latest,
            overrides: CeOverrides::default(),
            max_in_flight: 64,
            read_ahead: 1000,
            poll_interval: Duration::from_millis(250),
            idle_poll_interval: Duration::from_secs(2),
            active_poll_interval: Duration::from_millis(50),
            active_window: Duration::from_secs(5),
            discovery_interval: Duration::from_secs(5),
            shard_list_interval: Duration::from_secs(60),
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_after_events: 5000,
            shutdown_timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            events: EventOptions::default(),
            filter: None,
            dead_letter: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_positions() {
        assert_eq!(
            "LATEST".parse::<StartingPosition>().unwrap(),
            StartingPosition::Latest
        );
        assert_eq!(
            "TRIM_HORIZON".parse::<StartingPosition>().unwrap(),
            StartingPosition::TrimHorizon
        );
        assert!(matches!(
            "2024-01-01T00:00:00Z".parse::<StartingPosition>().unwrap(),
            StartingPosition::At(_)
        ));
        assert!(matches!(
            "2024-01-01T01:00:00+01:00"
                .parse::<StartingPosition>()
                .unwrap(),
            StartingPosition::At(_)
        ));
        for bad in ["", "EARLIEST", "2024-01-01", "yesterday"] {
            let err = bad.parse::<StartingPosition>().unwrap_err().to_string();
            assert!(err.starts_with("STARTING_POSITION"), "{err}");
        }
    }
}
