//! Checkpoints: how far each shard has been delivered, kept where a restart
//! finds it.
//!
//! Owns the positions and their storage. A position only ever covers events
//! that are done — acknowledged by the sink, dropped by rule, or skipped —
//! which the [`OrderedFinalizer`] works out from acknowledgements that come
//! back in any order. It never decides what to read; `engine` and `shard`
//! ask it where to start.

mod file;
mod finalizer;
mod memory;
mod writer;

use std::collections::BTreeMap;

use async_trait::async_trait;
pub use file::FileStore;
pub use finalizer::{OrderedFinalizer, Ticket};
pub use memory::MemoryStore;
pub use writer::Checkpointer;

use crate::record::SequenceNumber;
pub use crate::snapshot::{SegmentProgress, SnapshotProgress};

/// Every position of a source, keyed by stream ARN, then shard id; and
/// how far the table's snapshot has come, while one runs or once one ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoints {
    #[serde(default)]
    pub streams: BTreeMap<String, StreamCheckpoint>,
    /// Absent from files written before snapshots existed, and from every
    /// source that never took one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotProgress>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamCheckpoint {
    /// Disabled, and every shard read to its end: never read again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
    #[serde(default)]
    pub shards: BTreeMap<String, ShardPosition>,
}

/// Where a shard resumes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardPosition {
    /// Every record up to and including this sequence number is done.
    After(SequenceNumber),
    /// Nothing done yet: read from the shard's start, skipping records
    /// created before this instant (Unix milliseconds).
    Since(i64),
    /// Read and delivered to its end.
    Finished,
}

impl Checkpoints {
    pub fn shard(&self, stream: &str, shard: &str) -> Option<&ShardPosition> {
        self.streams.get(stream)?.shards.get(shard)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store {location}: {message}")]
    Io { location: String, message: String },
    #[error("checkpoint file {location} is unreadable ({message}); move it away to start over")]
    Corrupt { location: String, message: String },
    #[error(
        "checkpoint store {location} is in use by another adapter; two adapters on one source would send every change twice"
    )]
    Locked { location: String },
}

impl CheckpointError {
    /// `location` holds text that is no checkpoints. serde's message quotes
    /// parts of that text as they are (``unknown variant `a<LF>b` ``), so its
    /// line breaks and other control characters are escaped: the error stays
    /// one line, as the adapter's fatal log line must be.
    pub fn corrupt(location: String, error: &serde_json::Error) -> Self {
        let mut message = String::new();
        for c in error.to_string().chars() {
            if c.is_control() {
                message.extend(c.escape_default());
            } else {
                message.push(c);
            }
        }
        CheckpointError::Corrupt { location, message }
    }
}

/// Where checkpoints live. Implementations save the whole map atomically: a
/// crash during `save` leaves the previous or the new map, never a mix.
#[async_trait]
pub trait CheckpointStore: Send + Sync + 'static {
    async fn load(&self) -> Result<Checkpoints, CheckpointError>;
    async fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError>;
    /// Where, for logs (`file:/path`, `memory:`).
    fn location(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_format_is_small_and_stable() {
        let mut cps = Checkpoints::default();
        let stream = cps.streams.entry("arn:s".into()).or_default();
        stream.shards.insert(
            "a".into(),
            ShardPosition::After(SequenceNumber::parse("0001").unwrap()),
        );
        stream
            .shards
            .insert("b".into(), ShardPosition::Since(1_700_000_000_000));
        stream.shards.insert("c".into(), ShardPosition::Finished);
        let json = serde_json::to_string(&cps).unwrap();
        assert_eq!(
            json,
            r#"{"streams":{"arn:s":{"shards":{"a":{"after":"0001"},"b":{"since":1700000000000},"c":"finished"}}}}"#
        );
        assert_eq!(serde_json::from_str::<Checkpoints>(&json).unwrap(), cps);
        assert!(
            serde_json::from_str::<Checkpoints>(
                r#"{"streams":{"s":{"shards":{"a":{"after":"x"}}}}}"#
            )
            .is_err()
        );
    }

    /// A snapshot's progress sits beside the streams; a file without it (an
    /// older one) reads as no snapshot.
    #[test]
    fn snapshot_progress_is_kept_beside_the_positions() {
        use crate::snapshot::ScanCursor;
        let mut cps = Checkpoints::default();
        let mut progress = SnapshotProgress::new(1_700_000_000_000, 3);
        let cursor: ScanCursor = serde_json::from_str(r#"{"pk":{"S":"a"}}"#).unwrap();
        progress.segments.insert(0, SegmentProgress::Done);
        progress
            .segments
            .insert(2, SegmentProgress::After(cursor.clone()));
        cps.snapshot = Some(progress.clone());
        let json = serde_json::to_string(&cps).unwrap();
        assert_eq!(
            json,
            r#"{"streams":{},"snapshot":{"started_ms":1700000000000,"total_segments":3,"segments":{"0":"done","2":{"after":{"pk":{"S":"a"}}}}}}"#
        );
        assert_eq!(serde_json::from_str::<Checkpoints>(&json).unwrap(), cps);
        assert_eq!(progress.segment(0), Some(&SegmentProgress::Done));
        assert_eq!(progress.segment(1), None);
        assert_eq!(progress.segment(2), Some(&SegmentProgress::After(cursor)));
        assert!(!progress.done());
        let old: Checkpoints = serde_json::from_str(r#"{"streams":{}}"#).unwrap();
        assert_eq!(old.snapshot, None);
    }

    #[test]
    fn a_corrupt_store_is_reported_on_one_line() {
        // Found by the property tests: serde repeats an unknown variant as
        // written, line break and all.
        let text = r#"{"streams":{"s":{"shards":{"a":{"1\n2\u0007":1}}}}}"#;
        let e = serde_json::from_str::<Checkpoints>(text).unwrap_err();
        assert!(e.to_string().contains('\n'), "serde's message: {e}");
        let shown = CheckpointError::corrupt("file:/x".into(), &e).to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains(r"unknown variant `1\n2\u{7}`"), "{shown}");
        assert!(
            shown.starts_with("checkpoint file file:/x is unreadable"),
            "{shown}"
        );
    }
}
