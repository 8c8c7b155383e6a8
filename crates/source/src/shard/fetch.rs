//! Getting the next page of a shard: iterators, GetRecords, and what to do
//! about each error (the table in `dynamodb-streams.md`), including the
//! report of records trimmed before they were read.

use std::sync::Arc;
use std::time::Duration;

use super::ReaderContext;
use crate::record::{Record, SequenceNumber};
use awsdynamodbsource_cloudevents::backoff::Pauses;

use crate::stream::{AWS_RETRY, ApiError, IteratorPosition};

/// A shard's read position, owned by whichever fetch is running.
#[derive(Debug)]
pub(super) struct Cursor {
    iterator: Option<String>,
    /// Where a new iterator must start: the shard's start position, then
    /// just after the last record handed to delivery (those are in memory and
    /// will be delivered; re-reading them would only duplicate them).
    pub(super) resume: IteratorPosition,
    /// Records trimmed before this reader got to them, from the moment the
    /// trim is seen until a page shows the first record still kept.
    lost: Option<Trimmed>,
}

impl Cursor {
    pub(super) fn new(start: IteratorPosition) -> Self {
        Cursor {
            iterator: None,
            resume: start,
            lost: None,
        }
    }
}

/// Records the stream trimmed before they were read: every one after
/// `read_up_to`, up to the first record read after the trim.
#[derive(Debug)]
struct Trimmed {
    /// Where the reader stood: its checkpoint, or the last record it handed
    /// to delivery.
    read_up_to: SequenceNumber,
    /// The service's message.
    detail: String,
}

pub(super) enum Fetched<R = Record> {
    /// Records (maybe none); `last` when the shard is closed and this was
    /// its final page; `called_ms`: when the call that got it was made
    /// (Unix ms; an empty page vouches for what was written before).
    Page {
        records: Vec<R>,
        last: bool,
        called_ms: i64,
    },
    /// The shard or its stream no longer exists.
    Vanished(String),
}

impl Fetched {
    /// The same page with each record turned into something else.
    pub(super) fn map<R>(self, f: impl FnMut(Record) -> R) -> Fetched<R> {
        match self {
            Fetched::Page {
                records,
                last,
                called_ms,
            } => Fetched::Page {
                records: records.into_iter().map(f).collect(),
                last,
                called_ms,
            },
            Fetched::Vanished(why) => Fetched::Vanished(why),
        }
    }
}

/// After this many failures in a row a reader reports itself unhealthy.
const FAILURES_BEFORE_UNHEALTHY: u32 = 3;

/// Waits `pause`, then returns the next page, retrying and renewing the
/// iterator as needed: it only returns a page or a vanished shard.
pub(super) async fn next_page(
    ctx: Arc<ReaderContext>,
    stream: Arc<str>,
    shard: Arc<str>,
    mut cursor: Cursor,
    pause: Duration,
) -> (Cursor, Fetched) {
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    let mut backoff = AWS_RETRY.pauses();
    let mut failures: u32 = 0;
    loop {
        let iterator = match cursor.iterator.take() {
            Some(it) => it,
            None => match ctx
                .api
                .get_shard_iterator(&stream, &shard, &cursor.resume)
                .await
            {
                Ok(it) => {
                    ctx.health.shard_reading(&shard, None);
                    failures = 0;
                    backoff = AWS_RETRY.pauses();
                    it
                }
                Err(e) => {
                    failures += 1;
                    if let Some(vanished) = handle(&ctx, &shard, &mut cursor, &e, failures, true) {
                        return (cursor, vanished);
                    }
                    tokio::time::sleep(pause_after(&e, &mut backoff)).await;
                    continue;
                }
            },
        };
        ctx.metrics.get_records_calls.inc();
        let called_ms = crate::unix_ms_now();
        match ctx.api.get_records(&iterator).await {
            Ok(page) => {
                if failures >= FAILURES_BEFORE_UNHEALTHY {
                    ctx.health.shard_reading(&shard, None);
                }
                let last = page.next_iterator.is_none();
                if let Some(lost) = cursor.lost.take() {
                    match first_sequence(&page.records) {
                        Some(first) => report_lost(&ctx, &shard, &lost, Some(&first)),
                        None if page.records.is_empty() || last => {
                            report_lost(&ctx, &shard, &lost, None)
                        }
                        // Only records without a sequence number (dropped
                        // as malformed): a later page names the first one.
                        None => cursor.lost = Some(lost),
                    }
                }
                cursor.iterator = page.next_iterator;
                return (
                    cursor,
                    Fetched::Page {
                        records: page.records,
                        last,
                        called_ms,
                    },
                );
            }
            Err(e) => {
                failures += 1;
                if e.is_transient() {
                    // The iterator is still good.
                    cursor.iterator = Some(iterator);
                }
                if let Some(vanished) = handle(&ctx, &shard, &mut cursor, &e, failures, false) {
                    return (cursor, vanished);
                }
                if !matches!(e, ApiError::ExpiredIterator | ApiError::TrimmedData(_)) {
                    tokio::time::sleep(pause_after(&e, &mut backoff)).await;
                }
            }
        }
    }
}

fn pause_after(e: &ApiError, backoff: &mut Pauses) -> Duration {
    let pause = backoff.next_pause();
    match e {
        // Nothing will change soon: do not hammer the endpoint.
        ApiError::AccessDenied(_) | ApiError::Credentials(_) | ApiError::Rejected(_) => {
            pause.max(Duration::from_secs(5))
        }
        _ => pause,
    }
}

/// Acts on an error; returns `Some` when the shard is gone.
fn handle(
    ctx: &ReaderContext,
    shard: &str,
    cursor: &mut Cursor,
    e: &ApiError,
    failures: u32,
    getting_iterator: bool,
) -> Option<Fetched> {
    match e {
        ApiError::ExpiredIterator => {
            tracing::info!(
                shard,
                "shard iterator expired; getting a new one after the last record read"
            );
            cursor.iterator = None;
        }
        ApiError::TrimmedData(detail) => {
            cursor.iterator = None;
            match std::mem::replace(&mut cursor.resume, IteratorPosition::TrimHorizon) {
                IteratorPosition::AfterSequence(read_up_to) => {
                    // Counted and shown at once; the log line waits for the
                    // next page, the first that can say where the loss ends.
                    ctx.metrics.trimmed_data.inc();
                    ctx.health.data_lost(
                        shard,
                        format!(
                            "records after {read_up_to} were trimmed from the stream unread ({detail}); reading on from the oldest record still kept"
                        ),
                    );
                    cursor.lost = Some(Trimmed {
                        read_up_to,
                        detail: detail.clone(),
                    });
                }
                // Trimmed again while looking for the first record kept: the
                // loss is counted already and reported with that record.
                _ if cursor.lost.is_some() => {
                    tracing::info!(shard, error = %detail, "the trim horizon moved on; reading from TRIM_HORIZON again");
                }
                // Nothing of this shard was read yet, so no position of ours
                // fell out of the window: the iterator's own start moved
                // (DynamoDB Local does this to iterators taken on an empty
                // shard).
                _ => {
                    tracing::warn!(shard, error = %detail, "iterator behind the trim horizon before any record was read; reading from TRIM_HORIZON");
                }
            }
        }
        ApiError::NotFound(detail) => {
            tracing::warn!(shard, error = %detail, "shard or stream not found");
            return Some(Fetched::Vanished(detail.clone()));
        }
        ApiError::Throttled(_) | ApiError::Transient(_) => {
            if failures == 1 || failures.is_multiple_of(10) {
                tracing::warn!(shard, failures, error = %e, "reading the shard failed; retrying");
            }
            if getting_iterator || failures >= FAILURES_BEFORE_UNHEALTHY {
                ctx.health.shard_reading(shard, Some(e.to_string()));
            }
        }
        ApiError::AccessDenied(_) | ApiError::Credentials(_) | ApiError::Rejected(_) => {
            tracing::error!(shard, failures, error = %e, "reading the shard failed; retrying");
            ctx.health.shard_reading(shard, Some(e.to_string()));
        }
    }
    None
}

/// The sequence number of the first record that has one.
fn first_sequence(records: &[Record]) -> Option<SequenceNumber> {
    records.iter().find_map(|r| {
        r.dynamodb()
            .and_then(|d| d.sequence_number())
            .and_then(SequenceNumber::parse)
    })
}

/// Logs `RECORDS LOST` with the lost range and shows the same on `/health`
/// (until the reader catches up). `first_kept` is the first record read after
/// the trim; `None` when the shard holds no record after it.
fn report_lost(
    ctx: &ReaderContext,
    shard: &str,
    lost: &Trimmed,
    first_kept: Option<&SequenceNumber>,
) {
    let read_up_to = &lost.read_up_to;
    let (what, then) = match first_kept {
        Some(first) => (
            format!(
                "the records after {read_up_to} and before {first} were trimmed from the stream unread"
            ),
            format!("reading goes on from {first}"),
        ),
        None => (
            format!("the records after {read_up_to} were trimmed from the stream unread"),
            "the shard holds no record after the trim".to_owned(),
        ),
    };
    tracing::error!(
        shard,
        read_up_to = read_up_to.as_str(),
        first_read_after_trim = first_kept.map(SequenceNumber::as_str),
        error = %lost.detail,
        "RECORDS LOST: {what}; {then}"
    );
    ctx.health.data_lost(shard, what);
}
