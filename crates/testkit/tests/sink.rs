//! RecordingSink over real HTTP on loopback.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use awsdynamodb_testkit::RecordingSink;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post_binary(
    client: &reqwest::Client,
    sink: &RecordingSink,
    id: &str,
) -> reqwest::Response {
    client
        .post(sink.url())
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header(
            "ce-source",
            "arn:aws:dynamodb:ddblocal:000000000000:table/t",
        )
        .header("ce-type", "com.amazon.dynamodb.stream.INSERT")
        .header("content-type", "application/json")
        .body(format!(r#"{{"id":"{id}"}}"#))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn records_binary_mode_events() {
    let sink = RecordingSink::start().await.unwrap();
    let resp = client()
        .post(sink.url())
        .header("ce-specversion", "1.0")
        .header("ce-id", "e-1")
        .header("ce-source", "src")
        .header("ce-type", "com.amazon.dynamodb.stream.MODIFY")
        .header("ce-subject", "pk%3Da")
        .header("ce-time", "2024-01-01T00:00:00Z")
        .header("ce-partitionkey", "caf%C3%A9%20au%20lait")
        .header("ce-sequence", "000000000000000000012")
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = sink
        .wait_for_count(1, Duration::from_secs(5))
        .await
        .unwrap();
    let e = &events[0];
    assert_eq!(e.id, "e-1");
    assert_eq!(e.source, "src");
    assert_eq!(e.ty, "com.amazon.dynamodb.stream.MODIFY");
    assert_eq!(e.specversion, "1.0");
    assert_eq!(e.subject.as_deref(), Some("pk=a"));
    assert_eq!(e.time.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));
    assert_eq!(
        e.extensions.get("partitionkey").map(String::as_str),
        Some("café au lait")
    );
    assert_eq!(
        e.extensions.get("sequence").map(String::as_str),
        Some("000000000000000000012")
    );
    assert_eq!(e.extensions.len(), 2);
    assert_eq!(e.data_json().unwrap(), serde_json::json!({"a": 1}));
    assert!(!e.structured);
    assert_eq!(sink.status_counts().get(&200), Some(&1));
}

#[tokio::test]
async fn records_structured_mode_events() {
    let sink = RecordingSink::start().await.unwrap();
    let http = client();
    for body in [
        serde_json::json!({
            "specversion": "1.0", "id": "s-1", "source": "src", "type": "t",
            "datacontenttype": "application/json", "data": {"k": [1, 2]}, "myext": "x", "num": 5
        }),
        serde_json::json!({
            "specversion": "1.0", "id": "s-2", "source": "src", "type": "t",
            "datacontenttype": "application/octet-stream", "data_base64": "AAH+/w=="
        }),
    ] {
        let resp = http
            .post(sink.url())
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let events = sink
        .wait_for_count(2, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.structured));
    assert_eq!(
        events[0].data_json().unwrap(),
        serde_json::json!({"k": [1, 2]})
    );
    assert_eq!(
        events[0].extensions.get("myext").map(String::as_str),
        Some("x")
    );
    assert_eq!(
        events[0].extensions.get("num").map(String::as_str),
        Some("5")
    );
    assert_eq!(&events[1].data[..], &[0u8, 1, 0xfe, 0xff]);
}

#[tokio::test]
async fn invalid_events_get_400_and_are_not_recorded() {
    let sink = RecordingSink::start().await.unwrap();
    let http = client();
    let missing_id = http
        .post(sink.url())
        .header("ce-specversion", "1.0")
        .header("ce-source", "s")
        .header("ce-type", "t")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(missing_id.status(), 400);
    let bad_json = http
        .post(sink.url())
        .header("content-type", "application/cloudevents+json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert!(sink.events().is_empty());
    assert!(sink.rejected().is_empty());
    assert_eq!(sink.count_status(400), 2);
    assert_eq!(sink.requests(), 2);
}

async fn accepted_ids_with_ratio(seed: u64) -> (BTreeSet<String>, usize) {
    let sink = RecordingSink::start().await.unwrap();
    sink.set_seed(seed);
    sink.reject_ratio(0.3, 503);
    let http = client();
    let mut rejected = 0;
    for i in 0..100 {
        let resp = post_binary(&http, &sink, &format!("id-{i}")).await;
        match resp.status().as_u16() {
            200 => {}
            503 => rejected += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(sink.rejected().len(), rejected);
    assert_eq!(sink.events().len(), 100 - rejected);
    assert_eq!(sink.count_status(503), rejected as u64);
    (sink.events().into_iter().map(|e| e.id).collect(), rejected)
}

#[tokio::test]
async fn a_redelivered_event_gets_a_fresh_decision() {
    let sink = RecordingSink::start().await.unwrap();
    sink.reject_ratio(0.5, 503);
    let http = client();
    let mut deliveries = 0;
    for i in 0..10 {
        let id = format!("same-{i}");
        let mut attempts = 0;
        loop {
            attempts += 1;
            deliveries += 1;
            assert!(
                attempts <= 30,
                "{id} rejected 30 times in a row at ratio 0.5"
            );
            if post_binary(&http, &sink, &id).await.status() == 200 {
                break;
            }
        }
    }
    let rejected = sink.rejected().len();
    assert!(rejected > 0, "no delivery was rejected");
    assert_eq!(rejected + 10, deliveries);
    assert_eq!(sink.events().len(), 10);
}

#[tokio::test]
async fn reject_ratio_is_deterministic_and_rejects_are_not_received() {
    let (a, rejected) = accepted_ids_with_ratio(1).await;
    let (b, _) = accepted_ids_with_ratio(1).await;
    let (c, _) = accepted_ids_with_ratio(2).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!((15..=45).contains(&rejected), "{rejected} of 100 rejected");
}

#[tokio::test]
async fn status_rules_retry_after_and_accept_statuses() {
    let sink = RecordingSink::start().await.unwrap();
    let http = client();
    sink.set_accept_statuses(&[200, 202, 204]);
    sink.status_for_ids(["bad".to_string()], 500);
    sink.status_for(|e| e.id.starts_with("slow"), 429);
    sink.set_retry_after(Some(Duration::from_secs(3)));
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for id in ["a", "b", "c", "d"] {
            let resp = post_binary(&http, &sink, id).await;
            assert!(resp.headers().get("retry-after").is_none());
            s.push(resp.status().as_u16());
        }
        s
    };
    assert_eq!(statuses, [200, 202, 204, 200]);
    let bad = post_binary(&http, &sink, "bad").await;
    assert_eq!(bad.status(), 500);
    assert_eq!(bad.headers().get("retry-after").unwrap(), "3");
    let slow = post_binary(&http, &sink, "slow-1").await;
    assert_eq!(slow.status(), 429);
    assert_eq!(
        sink.rejected()
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["bad", "slow-1"]
    );
    sink.accept_all();
    assert_eq!(post_binary(&http, &sink, "bad").await.status(), 202);
    assert_eq!(sink.events().len(), 5);
}

#[tokio::test]
async fn wait_for_times_out_with_an_error_and_wakes_on_receipt() {
    let sink = RecordingSink::start().await.unwrap();
    let err = sink
        .wait_for_count(1, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("0 events accepted"), "{err}");
    let posting = {
        let sink = sink.clone();
        tokio::spawn(async move {
            let http = client();
            for i in 0..5 {
                post_binary(&http, &sink, &format!("w{i}")).await;
            }
        })
    };
    let events = sink
        .wait_for(
            |events| events.iter().any(|e| e.id == "w4"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 5);
    posting.await.unwrap();
}

fn raw_request(id: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nhost: x\r\nce-specversion: 1.0\r\nce-id: {id}\r\nce-source: s\r\nce-type: t\r\ncontent-length: 2\r\n\r\n{{}}"
    )
}

/// Reads one HTTP response head from a keep-alive connection: its status.
fn read_status(stream: &mut std::net::TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed mid-response");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_refuses_connections_and_closes_open_ones_then_comes_back() {
    let sink = RecordingSink::start().await.unwrap();
    let addr = format!("127.0.0.1:{}", sink.port());
    // An open keep-alive connection that already carried one event.
    let mut conn = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(raw_request("k1").as_bytes()).unwrap();
            assert_eq!(read_status(&mut s), 200);
            s
        })
        .await
        .unwrap()
    };
    sink.set_down(true).await.unwrap();
    let (refused, closed) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            let refused = std::net::TcpStream::connect(&addr)
                .map_err(|e| e.kind())
                .err();
            // The server closed the connection: EOF or reset, not a hang.
            let mut byte = [0u8; 1];
            let closed = match conn.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            };
            (refused, closed)
        }
    })
    .await
    .unwrap();
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused));
    assert!(closed, "the keep-alive connection stayed open");
    let http = client();
    assert!(http.post(sink.url()).body("{}").send().await.is_err());

    sink.set_down(false).await.unwrap();
    assert_eq!(post_binary(&http, &sink, "after").await.status(), 200);
    let ids: Vec<String> = sink.events().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["k1", "after"]);
    // Down and up are idempotent.
    sink.set_down(false).await.unwrap();
    sink.set_down(true).await.unwrap();
    sink.set_down(true).await.unwrap();
    sink.set_down(false).await.unwrap();
    // A new client: going down closed the pooled connection of "after",
    // which a client may still pick before it sees the close.
    assert_eq!(post_binary(&client(), &sink, "again").await.status(), 200);
}

#[tokio::test]
async fn delay_answers_late() {
    let sink = RecordingSink::start().await.unwrap();
    sink.set_delay(Some(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    assert_eq!(post_binary(&client(), &sink, "d").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
