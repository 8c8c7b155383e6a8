//! Getting the next page of a shard: iterators, GetRecords, and what to do
//! about each error (the table in `dynamodb-streams.md`).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::ReaderContext;
use crate::record::Record;
use crate::stream::{ApiError, IteratorPosition};

/// A shard's read position, owned by whichever fetch is running.
#[derive(Debug)]
pub(super) struct Cursor {
    iterator: Option<String>,
    /// Where a new iterator must start: the shard's start position, then
    /// just after the last record handed to delivery (those are in memory and
    /// will be delivered; re-reading them would only duplicate them).
    pub(super) resume: IteratorPosition,
}

impl Cursor {
    pub(super) fn new(start: IteratorPosition) -> Self {
        Cursor {
            iterator: None,
            resume: start,
        }
    }
}

pub(super) enum Fetched<R = Record> {
    /// Records (maybe none); `last` when the shard is closed and this was
    /// its final page.
    Page { records: Vec<R>, last: bool },
    /// The shard or its stream no longer exists.
    Vanished(String),
}

impl Fetched {
    /// The same page with each record turned into something else.
    pub(super) fn map<R>(self, f: impl FnMut(Record) -> R) -> Fetched<R> {
        match self {
            Fetched::Page { records, last } => Fetched::Page {
                records: records.into_iter().map(f).collect(),
                last,
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
    let new_backoff = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut backoff = new_backoff();
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
                    backoff = new_backoff();
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
        match ctx.api.get_records(&iterator).await {
            Ok(page) => {
                if failures >= FAILURES_BEFORE_UNHEALTHY {
                    ctx.health.shard_reading(&shard, None);
                }
                let last = page.next_iterator.is_none();
                cursor.iterator = page.next_iterator;
                return (
                    cursor,
                    Fetched::Page {
                        records: page.records,
                        last,
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

fn pause_after(e: &ApiError, backoff: &mut impl Iterator<Item = Duration>) -> Duration {
    let pause = backoff.next().unwrap_or(Duration::from_secs(10));
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
        ApiError::TrimmedData(detail)
            if !matches!(cursor.resume, IteratorPosition::AfterSequence(_)) =>
        {
            // Nothing of this shard was read yet, so no position of ours
            // fell out of the window: the iterator's own start moved (DynamoDB
            // Local does this to iterators taken on an empty shard).
            tracing::warn!(shard, error = %detail, "iterator behind the trim horizon before any record was read; reading from TRIM_HORIZON");
            cursor.iterator = None;
            cursor.resume = IteratorPosition::TrimHorizon;
        }
        ApiError::TrimmedData(detail) => {
            ctx.metrics.trimmed_data.inc();
            let what =
                format!("{detail}; reading on from the oldest record still kept (TRIM_HORIZON)");
            tracing::error!(shard, resume = ?cursor.resume, "RECORDS LOST: the stream trimmed records this source had not read yet: {what}");
            ctx.health.data_lost(shard, what);
            cursor.iterator = None;
            cursor.resume = IteratorPosition::TrimHorizon;
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
