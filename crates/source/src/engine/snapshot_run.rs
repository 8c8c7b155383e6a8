//! A snapshot, running beside the stream's readers: the scan's pages become
//! chunks at the gate; each chunk the stream has passed is released and its
//! rows delivered, one release at a time; a segment's progress is saved
//! once its chunk's rows are done; the gate is finished once every segment
//! is.
//!
//! Owns the order of rows and of progress. It never reads the stream (the
//! shard readers report to the gate) and never decides whether a snapshot
//! runs (the engine does, from the checkpoints).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sleep_or_shutdown;
use crate::arn::TableArn;
use crate::event::StreamEvent;
use crate::prepare::Preparer;
use crate::shard::ReaderContext;
use crate::sink::{Delivery, GiveUp, deliver};
use crate::snapshot::{
    Chunk, ChunkEnd, RowChunk, ScannedPage, SegmentProgress, SnapshotGate, SnapshotProgress,
    TableScanner, join_key, row_record, scan_segments,
};
use crate::stream::{AWS_RETRY, ApiError, KeySchema};

/// Chunks read and waiting for the stream, at most: enough pages to keep
/// the scan going while a chunk waits its few seconds, few enough that a
/// slow sink holds the scan back instead of filling memory.
const PENDING_CHUNKS: usize = 24;

pub(super) struct SnapshotRun {
    pub ctx: Arc<ReaderContext>,
    pub gate: Arc<SnapshotGate>,
    pub scanner: TableScanner,
    /// This stream's events, FILTER, no skipping.
    pub preparer: Preparer,
    pub table: TableArn,
    pub key_schema: KeySchema,
    /// Shards start at LATEST in this run: the scan waits until every
    /// reader holds its iterator.
    pub await_readers: bool,
}

/// How one pass of the scan ended.
enum ScanEnd {
    /// Every segment read and delivered.
    Done,
    /// Shutdown, or deliveries abandoned.
    Stopped,
    /// The scan failed; what was read is delivered, and it starts again
    /// from the progress.
    Failed,
}

impl SnapshotRun {
    /// Runs the snapshot from `progress` until it is done or `stop` fires;
    /// deliveries under way go on until `give_up`.
    pub(super) async fn run(
        self,
        mut progress: SnapshotProgress,
        stop: CancellationToken,
        give_up: CancellationToken,
    ) {
        let give_up = GiveUp {
            token: give_up,
            deadline: None,
        };
        self.report(&progress);
        // Every reader holds its iterator before the scan reads anything:
        // a write before a reader's start is then in the scan.
        while self.await_readers && !self.gate.all_reported() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.gate.progressed() => {}
            }
        }
        let mut pauses = AWS_RETRY.pauses();
        loop {
            match self.scan_once(&mut progress, &stop, &give_up).await {
                ScanEnd::Done => break,
                ScanEnd::Stopped => return,
                ScanEnd::Failed => {
                    if !sleep_or_shutdown(pauses.next_pause(), &stop).await {
                        return;
                    }
                }
            }
        }
        // The last chunk's progress is saved: it must be on disk before the
        // gate lets records go unnoted.
        if !self.ctx.checkpoints.flush_durably(&stop).await {
            return;
        }
        self.gate.finish();
        self.ctx.health.set_snapshot(None);
        self.ctx.health.set_snapshot_problem(None);
        tracing::info!(
            rows = self.ctx.metrics.snapshot_rows_sent.get(),
            superseded = self.ctx.metrics.snapshot_rows_superseded.get(),
            "snapshot done: every item of the table was sent; changes follow"
        );
    }

    /// Reads every segment not done from where it stands, releasing
    /// chunks as the stream passes them.
    async fn scan_once(
        &self,
        progress: &mut SnapshotProgress,
        stop: &CancellationToken,
        give_up: &GiveUp,
    ) -> ScanEnd {
        let (sender, mut pages) = mpsc::channel(1);
        // Polled below; dropped, it ends the segments' reads.
        let from = progress.clone();
        let scan = scan_segments(self.scanner.clone(), &from, sender, stop.child_token());
        tokio::pin!(scan);
        let mut scan_ended: Option<Result<(), ApiError>> = None;
        let mut pages_open = true;
        // Where each segment's next read begins at the earliest: records
        // older than the earliest (less the margin) are of no use to a chunk.
        let started = crate::unix_ms_now();
        let mut next_read: BTreeMap<u32, i64> = (0..progress.total_segments)
            .filter(|s| progress.segment(*s) != Some(&SegmentProgress::Done))
            .map(|s| (s, started))
            .collect();
        loop {
            while !stop.is_cancelled()
                && let Some((chunk, superseded)) = self.gate.release()
            {
                if !self.deliver(chunk, superseded, progress, give_up).await {
                    return ScanEnd::Stopped;
                }
                self.gate.delivered();
            }
            if !pages_open && self.gate.pending_chunks() == 0 {
                match &scan_ended {
                    Some(Ok(())) if progress.done() => return ScanEnd::Done,
                    Some(_) => return ScanEnd::Failed,
                    // The channel closed first: the scan's result is next.
                    None => {}
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return ScanEnd::Stopped,
                // Pages wait in the scan while enough chunks wait here: a
                // slow sink does not fill memory with the table.
                ended = &mut scan, if scan_ended.is_none() => {
                    if let Err(e) = &ended {
                        tracing::warn!(table = self.table.table(), error = %e, "the snapshot's scan failed; it starts again from its progress");
                        self.ctx.health.set_snapshot_problem(Some(format!("the snapshot's scan of table {} failed and starts again: {e}", self.table.table())));
                    }
                    scan_ended = Some(ended);
                }
                page = pages.recv(), if pages_open && self.gate.pending_chunks() < PENDING_CHUNKS => match page {
                    Some(page) => {
                        self.ctx.health.set_snapshot_problem(None);
                        if page.then == SegmentProgress::Done {
                            next_read.remove(&page.segment);
                        } else {
                            next_read.insert(page.segment, page.read_to_ms);
                        }
                        self.gate.add_chunk(self.chunk(page, progress.started_ms));
                        let floor = next_read.values().min().copied().unwrap_or(i64::MAX);
                        self.gate.forget_before(floor);
                    }
                    None => pages_open = false,
                },
                _ = self.gate.progressed() => {}
            }
        }
    }

    /// A page's items as rows for the join.
    fn chunk(&self, page: ScannedPage, started_ms: i64) -> RowChunk {
        let rows = page
            .items
            .iter()
            .map(|item| {
                let record = row_record(
                    &self.table,
                    started_ms,
                    &self.key_schema,
                    item,
                    page.read_from_ms,
                );
                let key = record
                    .dynamodb()
                    .and_then(|r| r.keys())
                    .map(join_key)
                    .unwrap_or_default();
                (key, record)
            })
            .collect();
        Chunk {
            read_from_ms: page.read_from_ms,
            read_to_ms: page.read_to_ms,
            rows,
            then: ChunkEnd {
                segment: page.segment,
                then: page.then,
            },
        }
    }

    /// Delivers a released chunk's rows (they are of different items: any
    /// order), then saves its segment's progress. False when deliveries
    /// were abandoned (shutdown): the progress stays where it was.
    async fn deliver(
        &self,
        chunk: RowChunk,
        superseded: usize,
        progress: &mut SnapshotProgress,
        give_up: &GiveUp,
    ) -> bool {
        let ctx = &self.ctx;
        let events: Vec<_> = chunk
            .rows
            .iter()
            .filter_map(|(_, row)| self.preparer.prepare_row(row))
            .collect();
        let filtered = chunk.rows.len() - events.len();
        ctx.metrics.events_filtered.inc_by(filtered as u64);
        let rows = events.len() as u64;
        let start = |event: StreamEvent| {
            let (ctx, give_up) = (ctx.clone(), give_up.clone());
            async move {
                deliver(
                    &*ctx.sink,
                    ctx.config.dead_letter.as_ref(),
                    &event,
                    &ctx.config.retry,
                    &ctx.metrics,
                    &give_up,
                )
                .await
            }
        };
        let mut waiting = events.into_iter();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < ctx.config.max_in_flight {
                let Some(event) = waiting.next() else { break };
                in_flight.push(start(event));
            }
            match in_flight.next().await {
                Some(Delivery::Abandoned) => return false,
                Some(_) => {}
                None => break,
            }
        }
        ctx.metrics.snapshot_rows_sent.inc_by(rows);
        ctx.metrics
            .snapshot_rows_superseded
            .inc_by(superseded as u64);
        ctx.metrics
            .snapshot_items_read
            .inc_by((chunk.rows.len() + superseded) as u64);
        let ChunkEnd { segment, then } = chunk.then;
        progress.segments.insert(segment, then);
        ctx.checkpoints
            .update(|c| c.snapshot = Some(progress.clone()));
        self.report(progress);
        true
    }

    /// How far the snapshot is, for `/health`.
    fn report(&self, progress: &SnapshotProgress) {
        let metrics = &self.ctx.metrics;
        let done = progress.segments_done();
        metrics
            .snapshot_segments
            .set(progress.total_segments as i64);
        metrics.snapshot_segments_done.set(done as i64);
        let estimated = metrics.snapshot_items_estimated.get();
        let read = metrics.snapshot_items_read.get();
        // The estimate is hours old: a table that grew since may pass it.
        let of = match estimated {
            0 => String::new(),
            n => format!(
                " of about {n} ({}%)",
                (read * 100 / n.max(1) as u64).min(99)
            ),
        };
        self.ctx.health.set_snapshot(Some(format!(
            "snapshot running: {read} items done{of}, {done} of {} segments",
            progress.total_segments
        )));
    }
}
