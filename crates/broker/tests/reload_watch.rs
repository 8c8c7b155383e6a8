//! Reloading the config (added, changed, removed triggers; invalid files) and watching the
//! event stream.

mod common;

use awsdynamodb_testkit::RecordingSink;
use common::{TestBroker, WAIT, config, ids, json, trigger};
use serde_json::Value;

#[tokio::test]
async fn reload_adds_a_trigger_that_sees_only_later_events_and_keeps_the_old_config_on_error()
-> anyhow::Result<()> {
    let a = RecordingSink::start().await?;
    let b = RecordingSink::start().await?;
    let broker = TestBroker::start(&config(&[trigger("a", &a.url(), None, None)])).await?;
    broker.send_ok("1", &[]).await?;

    let response = broker
        .reload(&config(&[
            trigger("a", &a.url(), None, None),
            trigger("b", &b.url(), None, None),
        ]))
        .await?;
    assert_eq!(response.status(), 200);
    let summary: Value = json(response).await?;
    assert_eq!(summary, serde_json::json!({"triggers": ["a", "b"]}));
    broker.send_ok("2", &[]).await?;

    let invalid = broker
        .reload("triggers:\n  c:\n    target: {url: 'not a url'}\n")
        .await?;
    assert_eq!(invalid.status(), 400);
    let text = invalid.text().await?;
    assert!(text.contains(r#"trigger "c": target.url"#), "{text}");
    broker.send_ok("3", &[]).await?;

    assert_eq!(ids(&a.wait_for_count(3, WAIT).await?), ["1", "2", "3"]);
    assert_eq!(
        ids(&b.wait_for_count(2, WAIT).await?),
        ["2", "3"],
        "b starts at the end"
    );
    broker.wait_idle().await?;
    let status = broker.status().await?;
    assert_eq!(status.triggers.keys().collect::<Vec<_>>(), ["a", "b"]);
    Ok(())
}

#[tokio::test]
async fn a_changed_trigger_keeps_its_cursor_and_a_removed_one_releases_its_entries()
-> anyhow::Result<()> {
    let down = RecordingSink::start().await?;
    down.set_down(true).await?;
    let replacement = RecordingSink::start().await?;
    let other = RecordingSink::start().await?;
    other.set_down(true).await?;
    let fast = "{backoffDelay: PT0.01S, backoffPolicy: linear}";
    let broker = TestBroker::start(&config(&[
        trigger("moving", &down.url(), None, Some(fast)),
        trigger("leaving", &other.url(), None, Some(fast)),
    ]))
    .await?;
    for id in ["1", "2", "3"] {
        broker.send_ok(id, &[]).await?;
    }
    let status = broker.status().await?;
    assert_eq!((status.held, status.triggers["moving"].pending), (3, 3));

    // Same name, new target: the held events go to the new target, in order.
    let response = broker
        .reload(&config(&[
            trigger("moving", &replacement.url(), None, Some(fast)),
            trigger("leaving", &other.url(), None, Some(fast)),
        ]))
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        ids(&replacement.wait_for_count(3, WAIT).await?),
        ["1", "2", "3"]
    );
    assert_eq!(broker.status().await?.triggers["moving"].delivered, 3);
    assert_eq!(broker.status().await?.held, 3, "`leaving` still holds them");

    // Removing the trigger whose target is down releases what only it held.
    let response = broker
        .reload(&config(&[trigger(
            "moving",
            &replacement.url(),
            None,
            Some(fast),
        )]))
        .await?;
    assert_eq!(response.status(), 200);
    broker.wait_idle().await?;
    let status = broker.status().await?;
    assert_eq!(status.held, 0);
    assert!(!status.triggers.contains_key("leaving"));

    // Removing every trigger: events are released at once.
    assert_eq!(broker.reload("triggers: {}\n").await?.status(), 200);
    broker.send_ok("4", &[]).await?;
    assert_eq!(broker.status().await?.held, 0);
    Ok(())
}

#[tokio::test]
async fn watch_streams_each_new_event_as_one_json_line() -> anyhow::Result<()> {
    let broker = TestBroker::start("").await?;
    broker.send_ok("before", &[]).await?;
    let mut watch = broker.client.get(broker.url("/-/watch")).send().await?;
    assert_eq!(watch.status(), 200);
    assert_eq!(
        watch.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/x-ndjson"[..])
    );
    broker.send_ok("json", &[("ce-subject", "pk,sk")]).await?;
    broker
        .send_ok("text", &[("content-type", "text/plain")])
        .await?;

    let mut buffer = Vec::new();
    let mut lines: Vec<Value> = Vec::new();
    while lines.len() < 2 {
        let chunk = tokio::time::timeout(WAIT, watch.chunk())
            .await
            .map_err(|_| anyhow::anyhow!("no watch line within {WAIT:?}"))??
            .ok_or_else(|| anyhow::anyhow!("watch stream ended"))?;
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            lines.push(serde_json::from_slice(&line)?);
        }
    }
    assert_eq!(
        lines[0]["id"], "json",
        "events from before the watch are not shown"
    );
    assert_eq!(lines[0]["subject"], "pk,sk");
    assert_eq!(lines[0]["specversion"], "1.0");
    assert_eq!(lines[0]["data"], serde_json::json!({"id": "json"}));
    assert_eq!(lines[1]["id"], "text");
    assert_eq!(lines[1]["datacontenttype"], "text/plain");
    assert_eq!(lines[1]["data_base64"], "eyJpZCI6ICJ0ZXh0In0=");
    assert!(lines[1].get("data").is_none());
    Ok(())
}

#[tokio::test]
async fn status_reports_the_documented_shape() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    let broker = TestBroker::start_with(&config(&[trigger("t", &sink.url(), None, None)]), |o| {
        o.capacity = 7
    })
    .await?;
    broker.send_ok("1", &[]).await?;
    sink.wait_for_count(1, WAIT).await?;
    broker.wait_idle().await?;
    let status: Value = json(broker.client.get(broker.url("/-/status")).send().await?).await?;
    assert_eq!(
        status,
        serde_json::json!({
            "accepting": true, "held": 0, "capacity": 7,
            "triggers": {"t": {"delivered": 1, "deadLettered": 0, "dropped": 0, "pending": 0, "lastError": null}}
        })
    );
    Ok(())
}
