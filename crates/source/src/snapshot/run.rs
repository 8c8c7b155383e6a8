//! The scan of a snapshot, running: one task per segment not done yet,
//! each from where its progress stands, handing over its pages as read,
//! with the moments each read began and ended (for the join).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{SegmentProgress, SnapshotProgress, TableScanner};
use crate::snapshot::scan::Item;
use crate::stream::{AWS_RETRY, ApiError};

/// One page as read: a chunk for the join.
#[derive(Debug, Clone)]
pub struct ScannedPage {
    pub segment: u32,
    /// When the read began and ended, on this machine's clock (Unix ms).
    pub read_from_ms: i64,
    pub read_to_ms: i64,
    pub items: Vec<Item>,
    /// Where the segment stands once this page's rows are delivered.
    pub then: SegmentProgress,
}

/// Reads every segment that `progress` does not list as done, from where it
/// stands, in parallel, sending each page to `pages` in the segment's order.
/// The channel's capacity bounds what is read ahead of delivery. Transient
/// errors are retried; a final one (a denial, a missing table) ends the scan
/// and is returned. Ends early, without error, on `cancel` or when `pages`
/// is closed.
pub async fn scan_segments(
    scanner: TableScanner,
    progress: &SnapshotProgress,
    pages: mpsc::Sender<ScannedPage>,
    cancel: CancellationToken,
) -> Result<(), ApiError> {
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..scanner.total_segments() {
        let cursor = match progress.segment(segment) {
            Some(SegmentProgress::Done) => continue,
            Some(SegmentProgress::After(cursor)) => Some(cursor.clone()),
            None => None,
        };
        let (scanner, pages, cancel) = (scanner.clone(), pages.clone(), cancel.clone());
        tasks.spawn(async move {
            tokio::select! {
                result = scan_segment(&scanner, segment, cursor, &pages) => result,
                _ = cancel.cancelled() => Ok(()),
            }
        });
    }
    drop(pages);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(ApiError::Transient(format!("a scan task failed: {e}"))),
        }
    }
    Ok(())
}

async fn scan_segment(
    scanner: &TableScanner,
    segment: u32,
    mut cursor: Option<super::ScanCursor>,
    pages: &mpsc::Sender<ScannedPage>,
) -> Result<(), ApiError> {
    let mut pauses = AWS_RETRY.pauses();
    loop {
        let read_from_ms = crate::unix_ms_now();
        let page = match scanner.page(segment, cursor.as_ref()).await {
            Ok(page) => page,
            Err(e) if e.is_transient() => {
                tracing::warn!(segment, error = %e, "scan page failed; retrying");
                tokio::time::sleep(pauses.next_pause()).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        pauses = AWS_RETRY.pauses();
        let read_to_ms = crate::unix_ms_now();
        let then = match &page.next {
            Some(next) => SegmentProgress::After(next.clone()),
            None => SegmentProgress::Done,
        };
        let done = page.next.is_none();
        let scanned = ScannedPage {
            segment,
            read_from_ms,
            read_to_ms,
            items: page.items,
            then,
        };
        if pages.send(scanned).await.is_err() {
            return Ok(());
        }
        if done {
            return Ok(());
        }
        cursor = page.next;
    }
}
