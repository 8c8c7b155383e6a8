//! A CloudEvents HTTP sink built like Python's `ThreadingHTTPServer` with
//! `protocol_version = "HTTP/1.1"`: a blocking listener with a small listen backlog, one accept
//! thread, one OS thread per connection.
//!
//! [`ThreadedSink`] owns its listener on 127.0.0.1 (backlog 5 by default, Python's
//! `request_queue_size`), the accept thread, which takes connections one at a time and spends
//! a set time on each before starting its thread (Python starts that thread under the GIL),
//! and the connection threads, which serve keep-alive requests in sequence, record each
//! CloudEvent as a [`ReceivedEvent`] and answer 200, after a set delay if asked. It counts
//! connections and requests ([`ThreadedSinkCounts`]); tests await conditions on events or
//! counts, and every change wakes the waiters, nothing polls.
//!
//! Its point is its accept queue. Linux keeps at most backlog + 1 established connections
//! waiting for `accept(2)` (the backlog is capped by `net.core.somaxconn`). While that queue is
//! full it drops new SYNs, and, with `net.ipv4.tcp_abort_on_overflow = 0` (the default), it
//! also drops the final ACK of a handshake whose SYN it did answer, and the data segments
//! behind it. The client then holds an established connection that the server does not have
//! yet: its request waits for TCP retransmissions (backing off from 200 ms on loopback) that
//! find the queue free. A client opening many connections at once meets exactly that.
//!
//! It must never drain the listener any other way than its one accept thread, one connection
//! at a time, at the configured pace, and never serve requests on tokio: the slow, serial
//! accept is the behaviour under test. It runs on Linux only (stopping wakes the accept
//! thread by shutting the listening socket down, which Linux answers with `EINVAL`).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::sync::watch;

use crate::sink::{MAX_BODY, ReceivedEvent, parse_event};

/// Python's `socketserver.TCPServer.request_queue_size`, the listen backlog of
/// `ThreadingHTTPServer`.
pub const PYTHON_LISTEN_BACKLOG: i32 = 5;

/// Python's `http.server` limits: the longest line and the most header lines in a request.
const MAX_LINE: usize = 65536;
const MAX_HEADERS: usize = 100;

/// How a [`ThreadedSink`] is built.
#[derive(Clone, Debug)]
pub struct ThreadedSinkOptions {
    /// The `listen(2)` backlog. Linux queues up to backlog + 1 established connections.
    pub backlog: i32,
    /// What the accept thread spends on each connection before starting its thread.
    pub accept_delay: Duration,
    /// How long each request waits for its answer (`None`: answered at once).
    pub request_delay: Option<Duration>,
}

impl Default for ThreadedSinkOptions {
    /// Python's backlog of 5, 1 ms per accept, immediate answers.
    fn default() -> Self {
        ThreadedSinkOptions {
            backlog: PYTHON_LISTEN_BACKLOG,
            accept_delay: Duration::from_millis(1),
            request_delay: None,
        }
    }
}

/// What the sink has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadedSinkCounts {
    /// Connections returned by `accept(2)`.
    pub connections_accepted: u64,
    /// Accepted connections not closed yet.
    pub connections_open: u64,
    /// Requests whose request line arrived.
    pub requests_received: u64,
    /// Requests whose answer was written.
    pub requests_answered: u64,
    /// Requests received and neither answered nor abandoned (the connection broke).
    pub requests_in_progress: u64,
}

#[derive(Default)]
struct Recorded {
    events: Vec<ReceivedEvent>,
    counts: ThreadedSinkCounts,
}

struct Delays {
    accept: Duration,
    request: Option<Duration>,
}

/// The open connections, so stopping can close them; `stopping` sits under the same lock so
/// no connection is registered after stopping closed the others.
#[derive(Default)]
struct Connections {
    stopping: bool,
    next_id: u64,
    open: HashMap<u64, TcpStream>,
}

/// What the accept and connection threads share with the handles.
struct Shared {
    recorded: Mutex<Recorded>,
    delays: Mutex<Delays>,
    connections: Mutex<Connections>,
    /// Bumped after every change to `recorded`.
    changes: watch::Sender<u64>,
}

/// Stops the sink when the last handle goes; the threads never hold it.
struct Stopper {
    addr: SocketAddr,
    backlog: i32,
    /// A second descriptor of the listening socket, to shut it down from here.
    listener: TcpListener,
    accept_thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// The sink handle (cheap to clone). The sink stops when the last handle is dropped: the
/// listener closes (connections still in its queue are reset), open connections are shut
/// down and their threads end on their own.
#[derive(Clone)]
pub struct ThreadedSink {
    shared: Arc<Shared>,
    stopper: Arc<Stopper>,
}

impl std::fmt::Debug for ThreadedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedSink")
            .field("url", &self.url())
            .field("backlog", &self.stopper.backlog)
            .finish()
    }
}

impl ThreadedSink {
    /// Starts a sink on 127.0.0.1 (free port) with the default options.
    pub fn start() -> Result<ThreadedSink> {
        ThreadedSink::start_with(ThreadedSinkOptions::default())
    }

    /// Starts a sink on 127.0.0.1 (free port) with these options.
    pub fn start_with(options: ThreadedSinkOptions) -> Result<ThreadedSink> {
        let listener = listen(options.backlog).context("starting the threaded sink's listener")?;
        let addr = listener.local_addr()?;
        let (changes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            recorded: Mutex::new(Recorded::default()),
            delays: Mutex::new(Delays {
                accept: options.accept_delay,
                request: options.request_delay,
            }),
            connections: Mutex::new(Connections::default()),
            changes,
        });
        let for_stopping = listener.try_clone()?;
        let for_thread = shared.clone();
        let accept_thread = thread::Builder::new()
            .name(format!("threaded-sink-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, for_thread))
            .context("starting the threaded sink's accept thread")?;
        Ok(ThreadedSink {
            stopper: Arc::new(Stopper {
                addr,
                backlog: options.backlog,
                listener: for_stopping,
                accept_thread: Some(accept_thread),
                shared: shared.clone(),
            }),
            shared,
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.stopper.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.stopper.addr.port()
    }

    /// The listen backlog it was started with.
    pub fn backlog(&self) -> i32 {
        self.stopper.backlog
    }

    /// What the accept thread spends on each connection from now on.
    pub fn set_accept_delay(&self, delay: Duration) {
        self.shared.delays.lock().unwrap().accept = delay;
    }

    /// How long requests wait for their answer from now on (`None`: answered at once).
    pub fn set_request_delay(&self, delay: Option<Duration>) {
        self.shared.delays.lock().unwrap().request = delay;
    }

    /// The events received so far, in arrival order (recorded on arrival, before any request
    /// delay).
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.shared.recorded.lock().unwrap().events.clone()
    }

    /// The connection and request counters now.
    pub fn counts(&self) -> ThreadedSinkCounts {
        self.shared.recorded.lock().unwrap().counts
    }

    /// Waits until `condition` holds for the received events; returns them then. Errors after
    /// `timeout` with the counters.
    pub async fn wait_for(
        &self,
        condition: impl Fn(&[ReceivedEvent]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<ReceivedEvent>> {
        self.wait_until(
            || {
                let events = self.events();
                condition(&events).then_some(events)
            },
            timeout,
        )
        .await
    }

    /// Waits until at least `n` events were received.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedEvent>> {
        self.wait_for(|events| events.len() >= n, timeout).await
    }

    /// Waits until `condition` holds for the counters; returns them then. Errors after
    /// `timeout` with the counters.
    pub async fn wait_for_counts(
        &self,
        condition: impl Fn(&ThreadedSinkCounts) -> bool,
        timeout: Duration,
    ) -> Result<ThreadedSinkCounts> {
        self.wait_until(
            || {
                let counts = self.counts();
                condition(&counts).then_some(counts)
            },
            timeout,
        )
        .await
    }

    async fn wait_until<T>(&self, check: impl Fn() -> Option<T>, timeout: Duration) -> Result<T> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(found) = check() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                let recorded = self.shared.recorded.lock().unwrap();
                bail!(
                    "threaded sink {}: condition not met within {timeout:?} ({} events, {:?})",
                    self.url(),
                    recorded.events.len(),
                    recorded.counts
                );
            }
        }
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        {
            let mut connections = self.shared.connections.lock().unwrap();
            connections.stopping = true;
            for stream in connections.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // Wakes the accept thread out of accept(2) and resets what is still queued.
        let _ = SockRef::from(&self.listener).shutdown(Shutdown::Read);
        if let Some(accept_thread) = self.accept_thread.take() {
            let _ = accept_thread.join();
        }
    }
}

/// A blocking listener on 127.0.0.1 (free port) with this backlog; SO_REUSEADDR as Python's
/// `HTTPServer` sets it.
/// A listening socket that never accepts, with its accept queue already full
/// (backlog 0: one connection fills it): Linux drops every further SYN, so a
/// connect to [`FullListener::addr`] hangs until the client gives up, like
/// a sink whose accept queue a burst overran.
pub struct FullListener {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: TcpStream,
}

impl FullListener {
    pub fn start() -> Result<FullListener> {
        let listener = listen(0).context("a listener with backlog 0")?;
        let addr = listener.local_addr()?;
        let queued = TcpStream::connect(addr).context("filling the accept queue")?;
        Ok(FullListener {
            addr,
            _listener: listener,
            _queued: queued,
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

fn listen(backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Recorded)) {
        change(&mut self.recorded.lock().unwrap());
        self.changes.send_modify(|v| *v += 1);
    }

    /// Tracks an accepted connection; `None` once stopping.
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let id = {
            let mut connections = self.connections.lock().unwrap();
            if connections.stopping {
                return None;
            }
            let id = connections.next_id;
            connections.next_id += 1;
            // Without a second descriptor stopping could not close it; serve it anyway.
            if let Ok(clone) = stream.try_clone() {
                connections.open.insert(id, clone);
            }
            id
        };
        self.update(|r| {
            r.counts.connections_accepted += 1;
            r.counts.connections_open += 1;
        });
        Some(id)
    }

    fn unregister(&self, id: u64) {
        self.connections.lock().unwrap().open.remove(&id);
        self.update(|r| r.counts.connections_open -= 1);
    }

    fn stopping(&self) -> bool {
        self.connections.lock().unwrap().stopping
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) if shared.stopping() => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue;
            }
            Err(_) => {
                // E.g. too many open files: back off a little instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(id) = shared.register(&stream) else {
            return;
        };
        // Python's per-connection work before it returns to accept(2).
        let accept_delay = shared.delays.lock().unwrap().accept;
        if !accept_delay.is_zero() {
            thread::sleep(accept_delay);
        }
        let for_connection = shared.clone();
        let started = thread::Builder::new()
            .name(format!("threaded-sink-conn-{id}"))
            .spawn(move || {
                serve_connection(&stream, &for_connection);
                for_connection.unregister(id);
            });
        if started.is_err() {
            shared.unregister(id);
        }
    }
}

/// What to do with the connection after an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
}

struct Answer {
    status: u16,
    body: String,
    after: After,
}

impl Answer {
    fn new(status: u16, body: impl Into<String>, after: After) -> Answer {
        Answer {
            status,
            body: body.into(),
            after,
        }
    }
}

/// Serves requests in sequence until the client closes, asks to close, or errs.
fn serve_connection(stream: &TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    while let Ok(After::KeepAlive) = serve_request(&mut reader, &mut writer, shared) {}
}

fn serve_request(
    reader: &mut BufReader<&TcpStream>,
    writer: &mut &TcpStream,
    shared: &Shared,
) -> io::Result<After> {
    // Blank lines before a request line are tolerated (RFC 9112, 2.2).
    let request_line = loop {
        match read_line(reader) {
            Ok(None) => return Ok(After::Close),
            Ok(Some(line)) if line.is_empty() => continue,
            Ok(Some(line)) => break Ok(line),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => break Err(()),
            Err(e) => return Err(e),
        }
    };
    let received_at = Instant::now();
    shared.update(|r| {
        r.counts.requests_received += 1;
        r.counts.requests_in_progress += 1;
    });
    let answered = match request_line {
        Ok(line) => read_and_handle(reader, writer, &line, received_at, shared),
        Err(()) => Ok(Answer::new(414, "request line too long", After::Close)),
    }
    .and_then(|answer| {
        if let Some(delay) = shared.delays.lock().unwrap().request {
            thread::sleep(delay);
        }
        write_answer(writer, &answer)?;
        Ok(answer.after)
    });
    shared.update(|r| {
        r.counts.requests_in_progress -= 1;
        if answered.is_ok() {
            r.counts.requests_answered += 1;
        }
    });
    answered
}

/// Reads the rest of the request after its request line and decides the answer. Io errors
/// mean the connection broke.
fn read_and_handle(
    reader: &mut BufReader<&TcpStream>,
    writer: &mut &TcpStream,
    request_line: &[u8],
    received_at: Instant,
    shared: &Shared,
) -> io::Result<Answer> {
    let request_line = String::from_utf8_lossy(request_line);
    let [method, _target, version] = request_line.split_whitespace().collect::<Vec<_>>()[..] else {
        return Ok(Answer::new(400, "bad request line", After::Close));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Ok(Answer::new(505, "HTTP/1.0 or HTTP/1.1 only", After::Close)),
    };
    let mut headers = HeaderMap::new();
    loop {
        let line = match read_line(reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(Answer::new(431, "header line too long", After::Close));
            }
            Err(e) => return Err(e),
        };
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Ok(Answer::new(431, "too many headers", After::Close));
        }
        let Some((name, value)) = parse_header(&line) else {
            return Ok(Answer::new(400, "bad header line", After::Close));
        };
        headers.append(name, value);
    }
    // Python's rule: HTTP/1.1 keeps the connection unless asked to close, HTTP/1.0 closes
    // unless asked to keep it.
    let connection = headers
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let after = if connection.contains("close") || (!http11 && !connection.contains("keep-alive")) {
        After::Close
    } else {
        After::KeepAlive
    };
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        // Python's http.server does not decode chunked bodies either.
        return Ok(Answer::new(501, "Content-Length bodies only", After::Close));
    }
    let length = match headers.get(http::header::CONTENT_LENGTH) {
        None => 0,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            Some(length) if length <= MAX_BODY => length,
            Some(_) => return Ok(Answer::new(413, "body too large", After::Close)),
            None => return Ok(Answer::new(400, "bad Content-Length", After::Close)),
        },
    };
    let expects_continue = headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if http11 && expects_continue {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = Vec::with_capacity(length);
    reader.take(length as u64).read_to_end(&mut body)?;
    if body.len() < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if method != "POST" {
        return Ok(Answer::new(
            501,
            format!("unsupported method {method}"),
            after,
        ));
    }
    match parse_event(&headers, Bytes::from(body), received_at) {
        Ok(event) => {
            shared.update(|r| r.events.push(event));
            Ok(Answer::new(200, "", after))
        }
        Err(e) => Ok(Answer::new(400, format!("not a CloudEvent: {e:#}"), after)),
    }
}

/// One line without its line ending; `None` at end of stream before any byte; an
/// `InvalidData` error for a line longer than [`MAX_LINE`].
fn read_line(reader: &mut BufReader<&TcpStream>) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > MAX_LINE {
            return Err(io::ErrorKind::InvalidData.into());
        }
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

fn parse_header(line: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = HeaderName::from_bytes(line[..colon].trim_ascii()).ok()?;
    let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
    Some((name, value))
}

/// Writes the answer in one go, so Nagle's algorithm never holds part of it back.
fn write_answer(writer: &mut &TcpStream, answer: &Answer) -> io::Result<()> {
    let reason = StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nServer: ThreadedSink\r\nContent-Length: {}\r\n",
        answer.status,
        answer.body.len()
    );
    if !answer.body.is_empty() {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    if answer.after == After::Close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&answer.body);
    writer.write_all(out.as_bytes())?;
    writer.flush()
}
