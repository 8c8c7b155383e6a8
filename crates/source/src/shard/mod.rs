//! Shard reader: one task per shard, from its start position to its end.
//!
//! Owns the shard's read loop: fetch pages at the [`pace`] it sets (at once
//! while records come, slower and slower while they do not), have `prepare`
//! turn records into events, deliver
//! them through the in-flight [`window`], and move the checkpoint over the
//! done prefix (the ordered finalizer). While a snapshot runs, it also
//! shows each record to the snapshot's gate (which may hold it until a
//! chunk's rows are delivered) and reports how far the shard has passed. It
//! never decides which shards to read or in what order — that is `engine`'s
//! job with `stream`'s lineage.

mod fetch;
mod pace;
mod window;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use pace::FastPollers;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
pub use window::{Completed, DeliveryWindow, Pending};

use crate::checkpoint::{Checkpointer, ShardPosition};
use crate::engine::config::EngineConfig;
use crate::event::EventBuilder;
use crate::health::Health;
use crate::lease::LeaseDeadline;
use crate::metrics::{Metrics, ReasonLabel};
use crate::prepare::{Prepared, Preparer};
use crate::progress::ShardProgress;
use crate::record::{RecordError, SequenceNumber};
use crate::sink::{Delivery, GiveUp, Sink, deliver};
use crate::snapshot::{Admission, FirstUndone, ShardWatermark, SnapshotGate};
use crate::stream::{IteratorPosition, StreamsApi};
use fetch::{Cursor, Fetched, next_page};
use pace::Pace;

/// What every reader of a source shares.
pub struct ReaderContext {
    pub api: Arc<dyn StreamsApi>,
    pub sink: Arc<dyn Sink>,
    pub checkpoints: Checkpointer,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    /// The engine's configuration: deliveries at once, read-ahead, polling,
    /// retries, the filter and the dead-letter sink.
    pub config: Arc<EngineConfig>,
    /// The readers polled fast after records, counted for their total bound.
    pub fast_pollers: Arc<FastPollers>,
    /// With leases: no delivery starts past it.
    pub lease_deadline: Option<Arc<LeaseDeadline>>,
    /// With SNAPSHOT: where records meet the snapshot's rows.
    pub snapshot: Option<Arc<SnapshotGate>>,
}

/// Where a reader begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStart {
    pub position: IteratorPosition,
    /// Records created before this instant (Unix ms) are skipped (done, not
    /// sent): STARTING_POSITION as a timestamp.
    pub skip_before_ms: Option<i64>,
}

/// Why a reader returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    /// Closed, read to its end, every event done; its checkpoint says so.
    Finished,
    /// Asked to stop; its checkpoint covers what is done.
    Stopped,
    /// The shard or its stream is gone.
    Vanished(String),
}

pub struct ShardReader {
    ctx: Arc<ReaderContext>,
    stream: Arc<str>,
    shard: Arc<str>,
    start: ShardStart,
    events: EventBuilder,
}

/// The checkpoint's view of the shard's events: each with its record time
/// (Unix ms) and when it was read (ms on [`Progress`]'s clock), so that the
/// oldest one not done can be reported.
///
/// [`Progress`]: crate::progress::Progress
type OrderedFinalizer = crate::checkpoint::OrderedFinalizer<(Option<i64>, u64)>;

/// A page being fetched and turned into events, in a task of its own:
/// parsing and encoding a thousand records takes milliseconds, and
/// deliveries go on meanwhile on the reader's task. Dropping it (on stop)
/// aborts the fetch.
type Fetching = AbortOnDropHandle<(Cursor, Fetched<Result<Prepared, RecordError>>)>;

/// What the window runs for each event: its delivery.
type Deliver = Box<dyn FnMut(Pending) -> Pin<Box<dyn Future<Output = Completed> + Send>> + Send>;

/// While a snapshot runs: the records its gate holds (each with the
/// release whose rows it waits for), and how far this shard has passed.
#[derive(Default)]
struct SnapshotSide {
    held: VecDeque<(u64, Pending)>,
    watermark: ShardWatermark,
}

impl ShardReader {
    pub fn new(
        ctx: Arc<ReaderContext>,
        stream: &str,
        shard: &str,
        start: ShardStart,
        events: EventBuilder,
    ) -> Self {
        ShardReader {
            ctx,
            stream: Arc::from(stream),
            shard: Arc::from(shard),
            events: events.for_shard(shard),
            start,
        }
    }

    /// Reads until the shard ends or `stop` fires; then lets deliveries in
    /// flight finish, until `give_up` fires.
    pub async fn run(self, stop: CancellationToken, give_up: CancellationToken) -> ShardEnd {
        let ctx = self.ctx.clone();
        ctx.health.shard_started(&self.shard);
        ctx.metrics.shards_owned.inc();
        let progress = ctx.metrics.progress.add_shard(&self.stream, &self.shard);
        tracing::debug!(
            shard = %self.shard,
            start = %self.start.position,
            skip_before_ms = self.start.skip_before_ms,
            "reading shard"
        );
        let shard = self.shard.clone();
        let end = self.read(&progress, stop, give_up).await;
        ctx.metrics.progress.remove(&progress);
        ctx.metrics.shards_owned.dec();
        ctx.health.shard_stopped(&shard);
        end
    }

    async fn read(
        self,
        progress: &Arc<ShardProgress>,
        stop: CancellationToken,
        give_up: CancellationToken,
    ) -> ShardEnd {
        let ctx = self.ctx.clone();
        let preparer = Preparer::new(
            self.events.clone(),
            ctx.config.filter.clone(),
            self.start.skip_before_ms,
            ctx.snapshot.clone(),
        );
        let mut snapshot = SnapshotSide::default();
        if self.start.position == IteratorPosition::TrimHorizon
            && self.start.skip_before_ms.is_some()
        {
            snapshot.watermark = ShardWatermark::walking_history();
        }
        let mut opened = ctx.snapshot.as_ref().map(|g| g.opened());
        let mut finalizer = OrderedFinalizer::default();
        let mut window = self.delivery_window(give_up);
        let mut cursor = Some(Cursor::new(self.start.position.clone()));
        let mut fetching: Option<Fetching> = None;
        let mut pace = Pace::new(ctx.config.clone(), ctx.fast_pollers.clone());
        let mut pause = pace.first_pause();
        let mut end: Option<ShardEnd> = None;
        loop {
            if end.is_none()
                && fetching.is_none()
                && window.outstanding() < ctx.config.read_ahead
                && snapshot.held.is_empty()
                && let Some(c) = cursor.take()
            {
                fetching = Some(self.fetch(c, pause, preparer.clone()));
            }
            // A shard read to its end still delivers what the gate holds,
            // unless asked to stop: the rows it waits for may never come.
            let holding = !snapshot.held.is_empty() && !stop.is_cancelled();
            let waiting = holding && end == Some(ShardEnd::Finished);
            if end.is_some() && window.in_flight() == 0 && !waiting {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled(), if end.is_none() || waiting => {
                    if end.is_none() {
                        end = Some(ShardEnd::Stopped);
                    }
                    fetching = None;
                }
                Some(done) = window.next_completed(), if window.in_flight() > 0 => {
                    match done.delivery {
                        Delivery::Delivered
                        | Delivery::DeadLettered(_)
                        | Delivery::Dropped(..) => finalizer.done(done.ticket),
                        Delivery::Abandoned => {}
                    }
                    self.checkpoint(progress, &mut finalizer, &window, &mut snapshot);
                }
                Ok(()) = async { opened.as_mut().expect("guarded").changed().await }, if opened.is_some() && !snapshot.held.is_empty() => {
                    let opened = *opened.as_ref().expect("guarded").borrow();
                    while snapshot.held.front().is_some_and(|(after, _)| *after <= opened) {
                        let (_, pending) = snapshot.held.pop_front().expect("checked");
                        window.push(pending);
                    }
                }
                joined = async { fetching.as_mut().expect("guarded").await }, if fetching.is_some() => {
                    fetching = None;
                    let (mut c, fetched) = match joined {
                        Ok(page) => page,
                        // A panic stays one; otherwise the runtime is
                        // shutting down.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(_) => {
                            end = Some(ShardEnd::Stopped);
                            continue;
                        }
                    };
                    match fetched {
                        Fetched::Page { records, last, called_ms } => {
                            pause = pace.after_page(!records.is_empty());
                            if ctx.snapshot.as_ref().is_some_and(|g| g.is_active()) {
                                // Chunks wait for an empty page: no idling.
                                pause = pause.min(ctx.config.poll_interval);
                            }
                            if records.is_empty() {
                                let read = finalizer.covered() + finalizer.len() as u64;
                                snapshot.watermark.empty_page(read, called_ms);
                            }
                            if let Some(seq) = self.accept(progress, records, &mut finalizer, &mut window, &mut snapshot) {
                                c.resume = IteratorPosition::AfterSequence(seq);
                            }
                            self.checkpoint(progress, &mut finalizer, &window, &mut snapshot);
                            if last {
                                end = Some(ShardEnd::Finished);
                            }
                            cursor = Some(c);
                        }
                        Fetched::Vanished(why) => end = Some(ShardEnd::Vanished(why)),
                    }
                }
            }
        }
        self.finish(end, &finalizer)
    }

    /// The window of deliveries in flight: each event delivered (with
    /// retries and dead letters) on its own future.
    fn delivery_window(&self, give_up: CancellationToken) -> DeliveryWindow<Deliver> {
        let ctx = self.ctx.clone();
        let give_up = GiveUp {
            token: give_up,
            deadline: ctx.lease_deadline.clone(),
        };
        let deliver_one: Deliver = Box::new(move |p: Pending| {
            let ctx = ctx.clone();
            let give_up = give_up.clone();
            Box::pin(async move {
                let delivery = deliver(
                    &*ctx.sink,
                    ctx.config.dead_letter.as_ref(),
                    &p.event,
                    &ctx.config.retry,
                    &ctx.metrics,
                    &give_up,
                )
                .await;
                Completed {
                    ticket: p.ticket,
                    item: p.item,
                    delivery,
                }
            })
        });
        DeliveryWindow::new(self.ctx.config.max_in_flight, deliver_one)
    }

    /// Fetches the next page after `pause` and prepares its records, on a
    /// task of its own.
    fn fetch(&self, cursor: Cursor, pause: Duration, preparer: Preparer) -> Fetching {
        let page = next_page(
            self.ctx.clone(),
            self.stream.clone(),
            self.shard.clone(),
            cursor,
            pause,
        );
        AbortOnDropHandle::new(tokio::spawn(async move {
            let (c, fetched) = page.await;
            (c, fetched.map(|r| preparer.prepare(r)))
        }))
    }

    /// How the shard ended; a shard read and delivered to its end is saved
    /// as finished.
    fn finish(&self, end: Option<ShardEnd>, finalizer: &OrderedFinalizer) -> ShardEnd {
        match end {
            Some(ShardEnd::Finished) if finalizer.is_empty() => {
                self.ctx
                    .checkpoints
                    .set(&self.stream, &self.shard, ShardPosition::Finished);
                tracing::debug!(shard = %self.shard, "shard read and delivered to its end");
                ShardEnd::Finished
            }
            Some(ShardEnd::Vanished(why)) => ShardEnd::Vanished(why),
            _ => ShardEnd::Stopped,
        }
    }

    /// Moves the checkpoint over the done prefix, and reports what waits
    /// (and, while a snapshot runs, how far the shard has passed).
    fn checkpoint(
        &self,
        progress: &Arc<ShardProgress>,
        finalizer: &mut OrderedFinalizer,
        window: &DeliveryWindow<Deliver>,
        snapshot: &mut SnapshotSide,
    ) {
        let covered_before = finalizer.covered();
        if let Some(seq) = finalizer.advance() {
            let events = finalizer.covered() - covered_before;
            self.ctx.checkpoints.advance(progress, seq, events);
        }
        if let Some(gate) = self.ctx.snapshot.as_ref().filter(|g| g.is_active()) {
            let first_undone = finalizer.oldest().map(|(created_ms, _)| FirstUndone {
                created_ms: *created_ms,
            });
            if let Some(passed) =
                snapshot
                    .watermark
                    .advance(finalizer.covered(), first_undone, gate.margin_ms())
            {
                gate.passed(&self.shard, passed);
            }
        }
        let waiting = window.outstanding();
        progress.set_waiting(
            waiting,
            finalizer.oldest().copied(),
            finalizer.len().saturating_sub(waiting),
        );
    }

    /// Hands a page's records to delivery in order; returns the last
    /// sequence number read.
    fn accept(
        &self,
        progress: &ShardProgress,
        records: Vec<Result<Prepared, RecordError>>,
        finalizer: &mut OrderedFinalizer,
        window: &mut DeliveryWindow<Deliver>,
        snapshot: &mut SnapshotSide,
    ) -> Option<SequenceNumber> {
        let metrics = &self.ctx.metrics;
        if records.is_empty() {
            progress.set_behind(None);
            self.ctx.health.caught_up(&self.shard);
            return None;
        }
        metrics.records_read.inc_by(records.len() as u64);
        let read_at = metrics.progress.now();
        let mut last = None;
        let mut newest_ms = None;
        for record in records {
            let prepared = match record {
                Ok(prepared) => prepared,
                Err(e) => {
                    metrics
                        .events_dropped
                        .get_or_create(&ReasonLabel {
                            reason: "malformed".into(),
                        })
                        .inc();
                    tracing::error!(shard = %self.shard, error = %e, "skipping a malformed record");
                    continue;
                }
            };
            newest_ms = prepared.created_ms.or(newest_ms);
            if prepared.filtered {
                metrics.events_filtered.inc();
            }
            let ticket = finalizer.push(prepared.sequence.clone(), (prepared.created_ms, read_at));
            last = Some(prepared.sequence);
            snapshot.watermark.record(prepared.created_ms);
            let Some(event) = prepared.event else {
                finalizer.done(ticket);
                continue;
            };
            let pending = Pending {
                ticket,
                item: prepared.item,
                event,
            };
            let admission = match &self.ctx.snapshot {
                Some(gate) => gate.admit(
                    prepared.join_key,
                    prepared.created_ms,
                    snapshot.held.back().map(|(after, _)| *after),
                ),
                None => Admission::Now,
            };
            match admission {
                Admission::Now => window.push(pending),
                Admission::After(release) => snapshot.held.push_back((release, pending)),
            }
        }
        progress.set_behind(newest_ms);
        last
    }
}
