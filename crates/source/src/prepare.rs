//! Record → filter → event: what one record read from a shard becomes, in
//! that order. A record created before the starting timestamp is skipped;
//! FILTER sees the record in the shape Lambda gives it, whatever
//! `DATA_FORMAT`; what passes becomes a CloudEvent.
//!
//! Owns that order and the skip-by-time rule; while a snapshot runs, a
//! record to be sent also carries its item's exact key, and a snapshot row
//! goes through the same FILTER and event builder. It never fetches records,
//! sends events or moves a checkpoint: a skipped or filtered record is still
//! done, and `shard` takes it from there.

use std::sync::Arc;

use crate::event::{EventBuilder, StreamEvent, aws};
use crate::filter::RecordFilter;
use crate::record::{ChangeRecord, ItemKey, Record, RecordError, SequenceNumber};
use crate::snapshot::{JoinKey, SnapshotGate, join_key};

/// Turns one shard's records into events.
#[derive(Clone)]
pub(crate) struct Preparer {
    events: EventBuilder,
    filter: Option<Arc<RecordFilter>>,
    /// Records created before this (Unix ms) are skipped: a start at a
    /// timestamp, or after LATEST when nothing was saved yet.
    skip_before_ms: Option<i64>,
    /// While a snapshot runs, records to be delivered carry their item's
    /// exact key for its join.
    snapshot: Option<Arc<SnapshotGate>>,
}

/// A record made ready: its place in the shard and, unless it is skipped or
/// filtered out, its event.
pub(crate) struct Prepared {
    pub sequence: SequenceNumber,
    pub item: ItemKey,
    pub created_ms: Option<i64>,
    /// `None` when the record is older than the starting timestamp, or
    /// FILTER does not pass it.
    pub event: Option<StreamEvent>,
    pub filtered: bool,
    /// With an event, while a snapshot runs.
    pub join_key: Option<JoinKey>,
}

impl Preparer {
    pub fn new(
        events: EventBuilder,
        filter: Option<Arc<RecordFilter>>,
        skip_before_ms: Option<i64>,
        snapshot: Option<Arc<SnapshotGate>>,
    ) -> Self {
        Preparer {
            events,
            filter,
            skip_before_ms,
            snapshot,
        }
    }

    pub fn prepare(&self, record: Record) -> Result<Prepared, RecordError> {
        let change = ChangeRecord::new(record)?;
        let created_ms = change.created().and_then(|t| t.to_millis().ok());
        let skipped = matches!((self.skip_before_ms, created_ms), (Some(before), Some(created)) if created < before);
        let filtered = !skipped && self.refused(&change.record);
        let event = (!skipped && !filtered).then(|| self.events.build(&change));
        let join_key = (event.is_some() && self.snapshot.as_ref().is_some_and(|g| g.is_active()))
            .then(|| change.record.dynamodb()?.keys().map(join_key))
            .flatten();
        Ok(Prepared {
            sequence: change.sequence,
            item: change.item,
            created_ms,
            event,
            filtered,
            join_key,
        })
    }

    /// A snapshot row (see `snapshot::row_record`) as its event, unless
    /// FILTER refuses it: rows match as their records, with eventName
    /// `SNAPSHOT`.
    pub fn prepare_row(&self, row: &Record) -> Option<StreamEvent> {
        (!self.refused(row)).then(|| self.events.build_row(row))
    }

    /// Whether FILTER refuses the record. Patterns match the record as
    /// Lambda gives it, whatever DATA_FORMAT.
    fn refused(&self, record: &Record) -> bool {
        self.filter.as_ref().is_some_and(|f| {
            let mut shape = Vec::with_capacity(512);
            aws::encode_aws(record, self.events.stream(), &mut shape);
            serde_json::from_slice(&shape).is_ok_and(|record| !f.matches(&record))
        })
    }
}
