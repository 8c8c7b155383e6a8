//! The table's existing items, for `SNAPSHOT=initial` (being built: the
//! scan and the join's rule are here; the engine does not run them yet).
//!
//! Owns reading the table: parallel scan segments, page by page, each page
//! ending at a cursor that can be saved and resumed from, within a read
//! rate. It never delivers an item and never reads the stream: joining the
//! scan's items with the stream's changes so that no item's state steps
//! back in time is decided by [`SnapshotJoin`] and done by the engine.

mod join;
mod progress;
mod rate;
mod row;
mod run;
mod scan;

pub use join::{Chunk, SnapshotJoin};
pub use progress::{SegmentProgress, SnapshotProgress};
pub use rate::ReadRate;
pub use row::{SNAPSHOT_OPERATION, row_record};
pub use run::{ScannedPage, scan_segments};
pub use scan::{KeyValue, ScanCursor, ScanPage, SnapshotCheckError, TableFacts, TableScanner};
