//! For tests: this crate's integration tests (`tests/`), which check stages
//! one by one against real inputs, and the adapter's end-to-end test, which
//! compares what arrives with this crate's encoders. The internals they
//! need, in one place. Not an API: other crates' code uses the root's
//! re-exports only.

/// What every lease store must do.
pub use crate::lease::contract as lease_contract;
pub use crate::*;

pub use crate::event::aws::encode_aws;
pub use crate::event::data::encode_record;
pub use crate::event::json::format_time;
pub use crate::event::plain::encode_plain;
pub use crate::event::{CloudEvent, EVENT_TYPE, EventBuilder, StreamEvent};
pub use crate::record::{ChangeRecord, ItemKey, SequenceNumber};
pub use crate::snapshot::{ScanCursor, row_record, scan_segments};
pub use crate::stream::aws::MAX_CALLS_IN_FLIGHT;
pub use crate::stream::{
    ApiError, IteratorPosition, KeySchema, RecordsPage, ShardInfo, StreamDescription, StreamStatus,
    StreamSummary, StreamsApi,
};
pub use crate::stream::{DescribePacer, describe_all, records_page};
