//! Ingest and ordered delivery, against real HTTP sinks on loopback.

mod common;

use std::time::Duration;

use awsdynamodb_testkit::RecordingSink;
use common::{TestBroker, WAIT, config, ids, numbered, trigger};

#[tokio::test]
async fn binary_and_structured_events_are_delivered_unchanged() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    let broker = TestBroker::start(&config(&[trigger("all", &sink.url(), None, None)])).await?;

    // Binary mode, with values the binding must percent-encode on the way out.
    let body = "{\n  \"Keys\": {\"pk\": {\"S\": \"a\"}}, \"n\": 1.50\n}";
    let response = broker
        .client
        .post(broker.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "bin-1")
        .header("ce-source", "arn:aws:dynamodb:eu-west-1:1:table/t")
        .header("ce-type", "com.amazon.dynamodb.stream_record")
        .header("ce-subject", "pk%20sk%22%25")
        .header("ce-time", "2024-01-02T03:04:05Z")
        .header("ce-myext", "%C3%A9t%C3%A9")
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);

    // Structured mode: JSON data kept byte for byte, text data as text, base64 data as bytes.
    let structured = [
        r#"{"specversion":"1.0","id":"st-1","source":"s","type":"t","datacontenttype":"application/json","num":7,"data":{"b": 2,"a" :1}}"#,
        r#"{"specversion":"1.0","id":"st-2","source":"s","type":"t","datacontenttype":"text/plain","data":"hello wörld"}"#,
        r#"{"specversion":"1.0","id":"st-3","source":"s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#,
        r#"{"specversion":"1.0","id":"st-4","source":"s","type":"t"}"#,
    ];
    for text in structured {
        let response = broker
            .client
            .post(broker.url("/"))
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .body(text)
            .send()
            .await?;
        assert_eq!(response.status(), 200, "{text}: {}", response.text().await?);
    }

    let events = sink.wait_for_count(5, WAIT).await?;
    assert_eq!(ids(&events), ["bin-1", "st-1", "st-2", "st-3", "st-4"]);
    assert!(
        events.iter().all(|e| !e.structured),
        "delivered in binary mode"
    );

    let bin = &events[0];
    assert_eq!(bin.specversion, "1.0");
    assert_eq!(bin.source, "arn:aws:dynamodb:eu-west-1:1:table/t");
    assert_eq!(bin.ty, "com.amazon.dynamodb.stream_record");
    assert_eq!(bin.subject.as_deref(), Some("pk sk\"%"));
    assert_eq!(bin.time.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert_eq!(
        bin.datacontenttype.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(bin.extensions.get("myext").map(String::as_str), Some("été"));
    assert_eq!(bin.extensions.len(), 1, "{:?}", bin.extensions);
    assert_eq!(bin.data.as_ref(), body.as_bytes());

    assert_eq!(events[1].data.as_ref(), br#"{"b": 2,"a" :1}"#);
    assert_eq!(
        events[1].extensions.get("num").map(String::as_str),
        Some("7")
    );
    assert_eq!(events[2].datacontenttype.as_deref(), Some("text/plain"));
    assert_eq!(events[2].data.as_ref(), "hello wörld".as_bytes());
    assert_eq!(events[3].data.as_ref(), &[0, 1, 2, 255]);
    assert_eq!(events[4].datacontenttype, None);
    assert!(events[4].data.is_empty());

    let status = broker.status().await?;
    assert_eq!(status.triggers["all"].delivered, 5);
    assert_eq!(status.triggers["all"].last_error, None);
    Ok(())
}

#[tokio::test]
async fn invalid_requests_get_clear_4xx_answers() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    let broker = TestBroker::start(&config(&[trigger("all", &sink.url(), None, None)])).await?;
    // (headers, body, expected status, text the answer must contain)
    type Case<'a> = (Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-source", "s"),
                ("ce-type", "t"),
            ],
            String::new(),
            400,
            "missing or empty id",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", ""),
                ("ce-source", "s"),
                ("ce-type", "t"),
            ],
            String::new(),
            400,
            "missing or empty id",
        ),
        (
            vec![("ce-specversion", "1.0"), ("ce-id", "x"), ("ce-type", "t")],
            String::new(),
            400,
            "missing or empty source",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "x"),
                ("ce-source", "s"),
            ],
            String::new(),
            400,
            "missing or empty type",
        ),
        (
            vec![
                ("ce-specversion", "0.3"),
                ("ce-id", "x"),
                ("ce-source", "s"),
                ("ce-type", "t"),
            ],
            String::new(),
            400,
            "specversion \"0.3\"",
        ),
        (
            vec![("content-type", "application/json")],
            "{}".into(),
            400,
            "no ce-specversion header",
        ),
        (
            vec![("content-type", "application/cloudevents-batch+json")],
            "[]".into(),
            400,
            "batched mode is not supported",
        ),
        (
            vec![("content-type", "application/cloudevents+json")],
            "{not json".into(),
            400,
            "not a JSON object",
        ),
        (
            vec![("content-type", "application/cloudevents+json")],
            r#"{"specversion":"1.0","id":"x","source":"s"}"#.into(),
            400,
            "missing or empty type",
        ),
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "big"),
                ("ce-source", "s"),
                ("ce-type", "t"),
            ],
            "x".repeat(8 * 1024 * 1024 + 1),
            413,
            "",
        ),
    ];
    for (headers, body, want_status, want_text) in cases {
        let mut request = broker.client.post(broker.url("/"));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        assert_eq!(status, want_status, "{headers:?}: {text}");
        assert!(
            text.contains(want_text),
            "{headers:?}: {text:?} lacks {want_text:?}"
        );
    }
    // Nothing invalid was stored or delivered; a valid event still is.
    broker.send_ok("good", &[]).await?;
    let events = sink.wait_for_count(1, WAIT).await?;
    assert_eq!(ids(&events), ["good"]);
    assert_eq!(
        broker
            .client
            .get(broker.url("/health"))
            .send()
            .await?
            .status(),
        200
    );
    Ok(())
}

#[tokio::test]
async fn a_full_broker_answers_503_then_delivers_everything_in_order() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    sink.set_down(true).await?;
    let options = "{backoffDelay: PT0.02S, backoffPolicy: linear}";
    let broker = TestBroker::start_with(
        &config(&[trigger("t", &sink.url(), None, Some(options))]),
        |o| o.capacity = 5,
    )
    .await?;
    for id in numbered("e", 5) {
        broker.send_ok(&id, &[]).await?;
    }
    let refused = broker.send("e5", &[]).await?;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let status = broker.status().await?;
    assert_eq!(
        (status.held, status.capacity, status.accepting),
        (5, 5, true)
    );
    assert_eq!(status.triggers["t"].pending, 5);
    assert!(
        status.triggers["t"]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(&sink.url())),
        "{status:?}"
    );

    sink.set_down(false).await?;
    broker.wait_idle().await?;
    for id in numbered("e", 10).into_iter().skip(5) {
        broker.send_ok(&id, &[]).await?;
    }
    let events = sink.wait_for_count(10, WAIT).await?;
    assert_eq!(
        ids(&events),
        numbered("e", 10),
        "every event, in order, once"
    );
    broker.wait_idle().await?;
    let status = broker.status().await?;
    assert_eq!((status.held, status.triggers["t"].delivered), (0, 10));
    Ok(())
}

#[tokio::test]
async fn each_trigger_keeps_order_under_random_target_failures() -> anyhow::Result<()> {
    let flaky_a = RecordingSink::start().await?;
    flaky_a.reject_ratio(0.3, 503);
    let flaky_b = RecordingSink::start().await?;
    flaky_b.set_seed(42);
    flaky_b.reject_ratio(0.3, 429);
    let fast = "{backoffDelay: PT0.002S, backoffPolicy: linear}";
    let broker = TestBroker::start(&config(&[
        trigger("a", &flaky_a.url(), None, Some(fast)),
        trigger("b", &flaky_b.url(), None, Some(fast)),
    ]))
    .await?;
    let sent = numbered("ev-", 60);
    for id in &sent {
        broker.send_ok(id, &[]).await?;
    }
    for sink in [&flaky_a, &flaky_b] {
        let events = sink.wait_for_count(sent.len(), WAIT).await?;
        assert_eq!(ids(&events), sent, "in order and exactly once");
        assert!(
            !sink.rejected().is_empty(),
            "the sink did reject some deliveries"
        );
    }
    broker.wait_idle().await?;
    assert_eq!(broker.status().await?.held, 0);
    Ok(())
}

#[tokio::test]
async fn triggers_with_different_filters_each_get_exactly_their_events() -> anyhow::Result<()> {
    let inserts = RecordingSink::start().await?;
    let orders = RecordingSink::start().await?;
    let everything = RecordingSink::start().await?;
    let broker = TestBroker::start(&config(&[
        trigger(
            "inserts",
            &inserts.url(),
            Some("[{exact: {type: insert}}]"),
            None,
        ),
        trigger(
            "orders",
            &orders.url(),
            Some("[{prefix: {subject: 'orders/'}}, {not: {suffix: {subject: '/draft'}}}]"),
            None,
        ),
        trigger("everything", &everything.url(), None, None),
    ]))
    .await?;
    let sent = [
        ("1", "insert", "orders/1"),
        ("2", "modify", "orders/1"),
        ("3", "insert", "users/7"),
        ("4", "remove", "orders/2/draft"),
        ("5", "insert", "orders/2/draft"),
        ("6", "modify", "orders/3"),
    ];
    for (id, ty, subject) in sent {
        broker
            .send_ok(id, &[("ce-type", ty), ("ce-subject", subject)])
            .await?;
    }
    everything.wait_for_count(6, WAIT).await?;
    broker.wait_idle().await?;
    assert_eq!(ids(&inserts.events()), ["1", "3", "5"]);
    assert_eq!(ids(&orders.events()), ["1", "2", "6"]);
    assert_eq!(ids(&everything.events()), ["1", "2", "3", "4", "5", "6"]);
    let status = broker.status().await?;
    assert_eq!(status.triggers["inserts"].delivered, 3);
    assert_eq!(status.triggers["orders"].delivered, 3);
    assert_eq!(status.held, 0);
    Ok(())
}

#[tokio::test]
async fn a_non_retryable_status_without_dead_letter_drops_and_moves_on() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    sink.status_for_ids(["bad".to_string()], 400);
    let broker = TestBroker::start(&config(&[trigger(
        "t",
        &sink.url(),
        None,
        Some("{backoffDelay: PT0.01S}"),
    )]))
    .await?;
    for id in ["before", "bad", "after"] {
        broker.send_ok(id, &[]).await?;
    }
    let events = sink.wait_for_count(2, WAIT).await?;
    assert_eq!(ids(&events), ["before", "after"]);
    broker.wait_idle().await?;
    assert_eq!(sink.count_status(400), 1, "400 is not retried");
    let status = broker.status().await?;
    assert_eq!(status.triggers["t"].dropped, 1);
    assert_eq!(status.triggers["t"].delivered, 2);
    Ok(())
}

#[tokio::test]
async fn retry_after_is_honoured() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    sink.set_retry_after(Some(Duration::from_secs(1)));
    sink.status_for_ids(["slow".to_string()], 503);
    let broker = TestBroker::start(&config(&[trigger(
        "t",
        &sink.url(),
        None,
        Some("{retry: 1, backoffDelay: PT0.01S}"),
    )]))
    .await?;
    broker.send_ok("slow", &[]).await?;
    broker.wait_idle().await?;
    let rejected = sink.rejected();
    assert_eq!(rejected.len(), 2, "first attempt and one retry");
    let gap = rejected[1].received_at - rejected[0].received_at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?}, not the 1 s Retry-After"
    );
    assert_eq!(broker.status().await?.triggers["t"].dropped, 1);
    Ok(())
}
