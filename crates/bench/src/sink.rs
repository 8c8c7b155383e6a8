//! The benchmark's sink: a minimal HTTP/1.1 server on loopback that answers
//! `200` at once and counts, so that the sink costs the machine as little as
//! possible and the adapter is what is measured. Requests are parsed with
//! `httparse` (hyper's parser); bodies are read by `Content-Length`. In
//! latency mode it also reads each event's write time (attribute `t`, Unix
//! nanoseconds) and keeps write-to-receipt times.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Counts {
    pub received: AtomicU64,
    /// The count `wait_for` waits for: only reaching it wakes the waiter,
    /// so that the sink does not pay a wake-up per request.
    target: AtomicU64,
    /// The same for `wait_for_distinct`.
    distinct_target: AtomicU64,
    pub latency_mode: AtomicBool,
    pub latencies: Mutex<Vec<Duration>>,
    /// When on, the `ce-id` of every event is kept, and `distinct` counts
    /// the first arrivals (repeats are `received - distinct`).
    pub track_ids: AtomicBool,
    ids: Mutex<HashSet<String>>,
    pub distinct: AtomicU64,
    pub notify: Notify,
}

pub struct Sink {
    pub url: String,
    pub counts: Arc<Counts>,
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The write time carried by the event (`NewImage.t.N`), if any.
fn write_time(body: &[u8]) -> Option<u128> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["Dynamodb"]["NewImage"]["t"]["N"].as_str()?.parse().ok()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

/// Serves one keep-alive connection until the client closes it.
async fn serve(mut stream: TcpStream, counts: Arc<Counts>) -> Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        // The head: read until it parses completely.
        let (head_len, body_len, id) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(n) = request.parse(&buf)? {
                let header = |name: &str| {
                    request
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::trim)
                };
                let length = header("content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let id = if counts.track_ids.load(Ordering::Relaxed) {
                    header("ce-id").map(str::to_owned)
                } else {
                    None
                };
                break (n, length, id);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        while buf.len() < head_len + body_len {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        if counts.latency_mode.load(Ordering::Relaxed) {
            let received = now_nanos();
            if let Some(written) = write_time(&buf[head_len..head_len + body_len]) {
                let took = Duration::from_nanos(received.saturating_sub(written) as u64);
                counts
                    .latencies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(took);
            }
        }
        let first = id.is_some_and(|id| {
            counts
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id)
        });
        buf.drain(..head_len + body_len);
        stream.write_all(OK).await?;
        let received = counts.received.fetch_add(1, Ordering::SeqCst) + 1;
        let distinct = counts
            .distinct
            .fetch_add(u64::from(first), Ordering::SeqCst)
            + 1;
        let target = counts.target.load(Ordering::SeqCst);
        if received == target
            || (first && distinct == counts.distinct_target.load(Ordering::SeqCst))
        {
            counts.notify.notify_waiters();
        }
    }
}

impl Sink {
    /// Starts the sink on a thread of its own with a single-threaded
    /// runtime: the cheapest way to serve a few keep-alive connections.
    pub async fn start() -> Result<Sink> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    while let Ok((stream, _)) = listener.accept().await {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, shared.clone()));
                    }
                })
            })?;
        Ok(Sink { url, counts })
    }

    /// The write-to-receipt times taken so far, sorted; the sink starts a
    /// new list.
    pub fn take_latencies(&self) -> Vec<Duration> {
        let mut taken = std::mem::take(
            &mut *self
                .counts
                .latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        taken.sort();
        taken
    }

    pub fn received(&self) -> u64 {
        self.counts.received.load(Ordering::Relaxed)
    }

    /// Events that arrived more than once since ids were tracked.
    pub fn repeats(&self) -> u64 {
        self.received() - self.counts.distinct.load(Ordering::SeqCst)
    }

    /// Keeps every event's id from now on: call it before the first event
    /// arrives, or `repeats` counts those as repeats.
    pub fn track_ids(&self) {
        self.counts.track_ids.store(true, Ordering::SeqCst);
    }

    /// Waits until `n` distinct events (by id) have arrived, or `timeout`.
    pub async fn wait_for_distinct(&self, n: u64, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.counts.distinct_target.store(n, Ordering::SeqCst);
        loop {
            let notified = self.counts.notify.notified();
            let distinct = self.counts.distinct.load(Ordering::SeqCst);
            if distinct >= n {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                anyhow::bail!("only {distinct} of {n} distinct events arrived within {timeout:?}");
            }
        }
    }

    /// Waits until `n` events have arrived, or `timeout`.
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.counts.target.store(n, Ordering::SeqCst);
        loop {
            let notified = self.counts.notify.notified();
            if self.received() >= n {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                anyhow::bail!(
                    "only {} of {n} events arrived within {timeout:?}",
                    self.received()
                );
            }
        }
    }
}
