//! The benchmark's sink: a minimal HTTP/1.1 server on loopback that answers
//! `200` at once and counts, so that the sink costs the machine as little as
//! possible and the adapter is what is measured. Requests are parsed with
//! `httparse` (hyper's parser); bodies are read by `Content-Length`. In
//! latency mode it also reads each event's write time (attribute `t`, Unix
//! nanoseconds) and keeps write-to-receipt times.

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
    pub latency_mode: AtomicBool,
    pub latencies: Mutex<Vec<Duration>>,
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
        let (head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(n) = request.parse(&buf)? {
                let length = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .unwrap_or(0);
                break (n, length);
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
        buf.drain(..head_len + body_len);
        stream.write_all(OK).await?;
        if counts.received.fetch_add(1, Ordering::SeqCst) + 1
            == counts.target.load(Ordering::SeqCst)
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
