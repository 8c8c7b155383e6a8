//! The table's existing items, for `SNAPSHOT=initial`.
//!
//! Owns reading the table (parallel scan segments, page by page, each page
//! ending at a cursor that can be saved and resumed from, within a read
//! rate), the rule that joins the scan's items with the stream's changes so
//! that no item's state steps back in time ([`SnapshotJoin`]), and the gate
//! where the shard readers meet it ([`SnapshotGate`]). It never delivers an
//! item and never reads the stream: the engine's snapshot run and the shard
//! readers do.

mod gate;
mod join;
mod progress;
mod rate;
mod row;
mod run;
mod scan;

pub use gate::{Admission, ChunkEnd, FirstUndone, RowChunk, ShardWatermark, SnapshotGate};
pub use join::Chunk;
pub use progress::{SegmentProgress, SnapshotProgress};
pub use rate::ReadRate;
pub use row::{JoinKey, join_key, row_record};
pub use run::{ScannedPage, scan_segments};
pub use scan::{ScanCursor, SnapshotCheckError, TableFacts, TableScanner};
