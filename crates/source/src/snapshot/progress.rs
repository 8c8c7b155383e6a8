//! How far a snapshot has come, as the checkpoints keep it: where each
//! segment of its parallel scan goes on after the rows already delivered.

use std::collections::BTreeMap;

use super::ScanCursor;

/// How far the table's snapshot has come: where each segment of its
/// parallel scan goes on after the rows already delivered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotProgress {
    /// When it began (Unix ms): its rows' ids name it, and the stream is
    /// read from this less the join's margin.
    pub started_ms: i64,
    pub total_segments: u32,
    /// Segments not listed have not delivered a row yet.
    #[serde(default)]
    pub segments: BTreeMap<u32, SegmentProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentProgress {
    /// Every row up to this scan cursor is delivered.
    After(ScanCursor),
    /// Read and delivered to its end.
    Done,
}

impl SnapshotProgress {
    pub fn new(started_ms: i64, total_segments: u32) -> Self {
        SnapshotProgress {
            started_ms,
            total_segments: total_segments.max(1),
            segments: BTreeMap::new(),
        }
    }

    /// Where `segment` stands; `None`: at its start.
    pub fn segment(&self, segment: u32) -> Option<&SegmentProgress> {
        self.segments.get(&segment)
    }

    /// Every segment delivered to its end.
    pub fn done(&self) -> bool {
        self.segments_done() == self.total_segments as usize
    }

    /// Segments read and delivered to their end.
    pub fn segments_done(&self) -> usize {
        (0..self.total_segments)
            .filter(|s| matches!(self.segments.get(s), Some(SegmentProgress::Done)))
            .count()
    }
}
