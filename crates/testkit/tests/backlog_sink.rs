//! ThreadedSink: a Python-style threaded HTTP/1.1 sink with a listen backlog of 5, over real
//! TCP on loopback, and the accept-queue overflow it exists to reproduce.
//!
//! On this machine (Linux 6.18): `net.core.somaxconn = 4096` (so the backlog of 5 is not
//! capped), `net.ipv4.tcp_abort_on_overflow = 0` (an overflowing handshake ACK is dropped,
//! not answered with a reset), `net.ipv4.tcp_syncookies = 1`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use awsdynamodb_testkit::{PYTHON_LISTEN_BACKLOG, ThreadedSink, ThreadedSinkOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

/// The accept thread's time per connection in the connection tests: Python threads take the
/// GIL in turns of `sys.getswitchinterval()` = 5 ms, so with a few busy connection threads the
/// accepting thread waits a few turns before it starts the next thread.
const SLOW_ACCEPT: Duration = Duration::from_millis(20);
/// How long a fresh connection may take to connect (dropped SYNs are sent again every second).
const CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// How long after its connect a request on a fresh connection may wait for its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn addr(sink: &ThreadedSink) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], sink.port()))
}

/// A binary-mode CloudEvent POST with `ce-sequence`, as the adapter sends it.
fn post_request(sink: &ThreadedSink, n: usize, extra_header: &str) -> Vec<u8> {
    let body = format!(r#"{{"n":{n}}}"#);
    format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nce-specversion: 1.0\r\nce-id: e-{n}\r\n\
         ce-source: test\r\nce-type: com.amazon.dynamodb.stream.INSERT\r\n\
         ce-sequence: {n:021}\r\ncontent-type: application/json\r\n{extra_header}\
         content-length: {}\r\n\r\n{body}",
        addr(sink),
        body.len()
    )
    .into_bytes()
}

/// Reads one answer's head (the sink's answers to events have no body) or the end of the
/// stream; returns the bytes read.
async fn read_answer_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// What happened to one request sent on a fresh connection.
#[derive(Debug)]
struct FreshConnection {
    /// How long `connect` took; `None`: it did not succeed within [`CONNECT_WITHIN`].
    connect: Option<Duration>,
    /// How long after the connect the 200 came; `None`: not within [`ANSWER_WITHIN`].
    answer: Option<Duration>,
}

/// Connects (within [`CONNECT_WITHIN`]), sends event `n` and awaits its answer (within
/// [`ANSWER_WITHIN`] of the connect).
async fn post_on_fresh_connection(sink: &ThreadedSink, n: usize) -> FreshConnection {
    let started = Instant::now();
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(addr(sink))).await
    else {
        return FreshConnection {
            connect: None,
            answer: None,
        };
    };
    let connected = Instant::now();
    let answered = tokio::time::timeout(ANSWER_WITHIN, async {
        stream.write_all(&post_request(sink, n, "")).await?;
        read_answer_head(&mut stream).await
    })
    .await;
    let answered = matches!(answered, Ok(Ok(head)) if head.starts_with("HTTP/1.1 200 "));
    FreshConnection {
        connect: Some(connected - started),
        answer: answered.then(|| connected.elapsed()),
    }
}

/// Linux's count of segments dropped because a listener's accept queue was full (this network
/// namespace, all listeners).
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap();
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .map(|(_, value)| value.parse().unwrap())
        .unwrap()
}

/// Events from a plain HTTP client are recorded with their `ce-*` attributes (percent-decoded),
/// `ce-sequence` among the extensions, the body and the arrival time; the client's keep-alive
/// connection carries them all.
#[tokio::test]
async fn records_events_sent_over_one_keep_alive_connection() {
    let sink = ThreadedSink::start().unwrap();
    assert_eq!(sink.backlog(), PYTHON_LISTEN_BACKLOG);
    let client = client();
    let before = Instant::now();
    for n in 1..=3 {
        let resp = client
            .post(sink.url())
            .header("ce-specversion", "1.0")
            .header("ce-id", format!("e-{n}"))
            .header("ce-source", "src")
            .header("ce-type", "com.amazon.dynamodb.stream.MODIFY")
            .header("ce-subject", "pk%3Da")
            .header("ce-sequence", format!("{n:021}"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"n":{n}}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let events = sink.wait_for_count(3, WAIT).await.unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e-1", "e-2", "e-3"]);
    let e = &events[1];
    assert_eq!(e.source, "src");
    assert_eq!(e.ty, "com.amazon.dynamodb.stream.MODIFY");
    assert_eq!(e.specversion, "1.0");
    assert_eq!(e.subject.as_deref(), Some("pk=a"));
    assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));
    assert_eq!(
        e.extensions.get("sequence").map(String::as_str),
        Some("000000000000000000002")
    );
    assert_eq!(e.data_json().unwrap(), serde_json::json!({"n": 2}));
    assert!(!e.structured);
    assert!(e.received_at >= before && e.received_at <= events[2].received_at);
    let counts = sink
        .wait_for_counts(|c| c.requests_answered == 3, WAIT)
        .await
        .unwrap();
    assert_eq!(counts.connections_accepted, 1);
    assert_eq!(counts.connections_open, 1);
    assert_eq!(counts.requests_received, 3);
    assert_eq!(counts.requests_in_progress, 0);
}

/// `Connection: close` is honoured: the answer says so and the sink closes the connection.
#[tokio::test]
async fn closes_the_connection_when_asked() {
    let sink = ThreadedSink::start().unwrap();
    let mut stream = TcpStream::connect(addr(&sink)).await.unwrap();
    stream
        .write_all(&post_request(&sink, 1, "Connection: close\r\n"))
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    let counts = sink
        .wait_for_counts(|c| c.connections_open == 0, WAIT)
        .await
        .unwrap();
    assert_eq!(
        (counts.connections_accepted, counts.requests_answered),
        (1, 1)
    );
}

/// A request delay holds the answer back; meanwhile the event is recorded and the request
/// counts as in progress.
#[tokio::test]
async fn a_request_delay_holds_the_answer_while_the_request_is_in_progress() {
    let sink = ThreadedSink::start().unwrap();
    sink.set_request_delay(Some(Duration::from_millis(300)));
    let mut stream = TcpStream::connect(addr(&sink)).await.unwrap();
    let sent = Instant::now();
    stream.write_all(&post_request(&sink, 1, "")).await.unwrap();
    sink.wait_for_count(1, WAIT).await.unwrap();
    let counts = sink.counts();
    assert_eq!(counts.requests_in_progress, 1);
    assert_eq!(counts.requests_answered, 0);
    let head = read_answer_head(&mut stream).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(sent.elapsed() >= Duration::from_millis(300));
    sink.wait_for_counts(
        |c| c.requests_in_progress == 0 && c.requests_answered == 1,
        WAIT,
    )
    .await
    .unwrap();
}

/// Dropping the sink closes its port and its open keep-alive connections.
#[tokio::test]
async fn dropping_the_sink_closes_the_port_and_its_connections() {
    let sink = ThreadedSink::start().unwrap();
    let sink_addr = addr(&sink);
    let mut stream = TcpStream::connect(sink_addr).await.unwrap();
    stream.write_all(&post_request(&sink, 1, "")).await.unwrap();
    read_answer_head(&mut stream).await.unwrap();
    drop(sink);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    let refused = TcpStream::connect(sink_addr).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// The accept queue overflows: of 64 connections opened at once to a sink whose accept thread
/// spends 20 ms per connection, all connect, yet more requests than the accept queue can hold
/// are still unanswered 2 s after their connect succeeded.
///
/// Why, on Linux: the listener queues at most backlog + 1 = 6 established connections for
/// `accept(2)`. The burst fills that queue at once and Linux drops the SYNs behind it; those
/// clients send their SYN again after 1 s (`tcp_syn_linear_timeouts`: again every second for
/// the first four tries), all at the same moment. The listener answers every one of them
/// (with SYN cookies beyond the backlog), so every client's connect succeeds; but only the
/// first handshake ACKs fit in the queue, and with `tcp_abort_on_overflow = 0` Linux drops
/// the others' ACK and the request data behind it without telling the client. Each such
/// client holds a connection the server does not have and waits for its request's
/// retransmissions (after 200 ms, then 400, 800, 1600... on loopback), which again arrive
/// together, so each round lets about a queue's worth in. Linux counts each drop in
/// `ListenOverflows`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_opened_at_once_overflow_the_accept_queue_and_requests_hang() {
    let sink = ThreadedSink::start_with(ThreadedSinkOptions {
        accept_delay: SLOW_ACCEPT,
        ..ThreadedSinkOptions::default()
    })
    .unwrap();
    let overflows_before = listen_overflows();
    let burst: Vec<_> = (0..64)
        .map(|n| {
            let sink = sink.clone();
            tokio::spawn(async move { post_on_fresh_connection(&sink, n).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in burst {
        outcomes.push(task.await.unwrap());
    }
    let overflows = listen_overflows() - overflows_before;

    let connected = outcomes.iter().filter(|o| o.connect.is_some()).count();
    let hung = outcomes
        .iter()
        .filter(|o| o.connect.is_some() && o.answer.is_none())
        .count();
    println!(
        "{connected} of 64 connected, {hung} unanswered 2 s after connecting, \
         {overflows} listen overflows, {:?}",
        sink.counts()
    );
    assert_eq!(connected, 64, "{outcomes:?}");
    let accept_queue = sink.backlog() as usize + 1;
    assert!(hung > accept_queue, "{hung} hung: {outcomes:?}");
    assert!(overflows >= hung as u64, "{overflows} overflows");
}

/// The same 64 connections opened one at a time, each after the previous one's first answer,
/// to the same slow accept thread: the queue never overflows and all are answered promptly.
#[tokio::test]
async fn connections_opened_one_at_a_time_are_all_answered_promptly() {
    let sink = ThreadedSink::start_with(ThreadedSinkOptions {
        accept_delay: SLOW_ACCEPT,
        ..ThreadedSinkOptions::default()
    })
    .unwrap();
    let mut open = Vec::new();
    for n in 0..64 {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr(&sink)).await.unwrap();
        stream.write_all(&post_request(&sink, n, "")).await.unwrap();
        let head = tokio::time::timeout(WAIT, read_answer_head(&mut stream))
            .await
            .unwrap()
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        // A dropped SYN costs 1 s and dropped request data 200 ms: none happened.
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "connection {n}: {:?}",
            started.elapsed()
        );
        // Kept open, as a client's connection pool would.
        open.push(stream);
    }
    let events = sink.wait_for_count(64, WAIT).await.unwrap();
    let sequences: Vec<String> = events
        .iter()
        .map(|e| e.extensions["sequence"].clone())
        .collect();
    let sent: Vec<String> = (0..64).map(|n| format!("{n:021}")).collect();
    assert_eq!(sequences, sent);
    let counts = sink.counts();
    assert_eq!(counts.connections_accepted, 64);
    assert_eq!(counts.connections_open, 64);
}
