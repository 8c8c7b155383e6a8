//! Dead letters: events a target refuses for good, or that exhaust their retries, go to the
//! dead-letter URL with Knative's error extensions.

mod common;

use awsdynamodb_testkit::RecordingSink;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use common::{TestBroker, WAIT, config, ids, trigger};

/// A real target on loopback that answers every POST 400 with a long explanatory body.
async fn refusing_target() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let body = format!("bad thing: {}", "x".repeat(2000));
    let app = axum::Router::new().route(
        "/",
        post(move || async move { (StatusCode::BAD_REQUEST, body) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::test]
async fn a_refused_event_is_dead_lettered_with_the_error_extensions() -> anyhow::Result<()> {
    let target = refusing_target().await?;
    let dead_letters = RecordingSink::start().await?;
    let options = format!(
        "{{deadLetterURL: '{}', backoffDelay: PT0.01S}}",
        dead_letters.url()
    );
    let broker = TestBroker::start(&config(&[trigger("t", &target, None, Some(&options))])).await?;
    broker
        .send_ok("refused", &[("ce-subject", "pk,sk")])
        .await?;

    let events = dead_letters.wait_for_count(1, WAIT).await?;
    let dead = &events[0];
    assert_eq!(dead.id, "refused");
    assert_eq!(dead.subject.as_deref(), Some("pk,sk"));
    assert_eq!(
        dead.data.as_ref(),
        br#"{"id": "refused"}"#,
        "data unchanged"
    );
    assert_eq!(dead.extensions.get("knativeerrordest"), Some(&target));
    assert_eq!(
        dead.extensions.get("knativeerrorcode").map(String::as_str),
        Some("400")
    );
    let error_data = base64::engine::general_purpose::STANDARD.decode(
        dead.extensions
            .get("knativeerrordata")
            .expect("knativeerrordata"),
    )?;
    assert_eq!(error_data.len(), 1024, "at most 1024 bytes of the answer");
    assert!(error_data.starts_with(b"bad thing: xxx"));

    broker.wait_idle().await?;
    let status = broker.status().await?;
    let t = &status.triggers["t"];
    assert_eq!(
        (t.delivered, t.dead_lettered, t.dropped, t.pending),
        (0, 1, 0, 0)
    );
    assert!(
        t.last_error
            .as_deref()
            .is_some_and(|e| e.contains("status 400")),
        "{t:?}"
    );
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_go_to_the_dead_letter_sink_in_order() -> anyhow::Result<()> {
    let target = RecordingSink::start().await?;
    target.status_for_ids(["fails".to_string()], 503);
    let dead_letters = RecordingSink::start().await?;
    // The dead-letter sink is down at first: the dead letter is retried until it gets through.
    dead_letters.set_down(true).await?;
    let options = format!(
        "{{retry: 2, backoffDelay: PT0.01S, backoffPolicy: exponential, deadLetterURL: '{}'}}",
        dead_letters.url()
    );
    let broker = TestBroker::start(&config(&[trigger(
        "t",
        &target.url(),
        None,
        Some(&options),
    )]))
    .await?;
    for id in ["first", "fails", "last"] {
        broker.send_ok(id, &[]).await?;
    }
    target.wait_for_count(1, WAIT).await?;
    target
        .wait_for(|_| target.count_status(503) == 3, WAIT)
        .await?;
    // "last" waits behind "fails" while its dead letter cannot be sent.
    assert_eq!(ids(&target.events()), ["first"]);
    dead_letters.set_down(false).await?;

    let dead = dead_letters.wait_for_count(1, WAIT).await?;
    assert_eq!(dead[0].id, "fails");
    assert_eq!(
        dead[0]
            .extensions
            .get("knativeerrorcode")
            .map(String::as_str),
        Some("503")
    );
    assert_eq!(
        dead[0].extensions.get("knativeerrordest"),
        Some(&target.url())
    );
    assert!(
        !dead[0].extensions.contains_key("knativeerrordata"),
        "the sink's answer had no body"
    );
    let events = target.wait_for_count(2, WAIT).await?;
    assert_eq!(ids(&events), ["first", "last"]);
    assert_eq!(
        target.count_status(503),
        3,
        "the first attempt and 2 retries"
    );

    broker.wait_idle().await?;
    let t = &broker.status().await?.triggers["t"];
    assert_eq!((t.delivered, t.dead_lettered, t.dropped), (2, 1, 0));
    Ok(())
}

#[tokio::test]
async fn transport_errors_are_dead_lettered_without_an_error_code() -> anyhow::Result<()> {
    let gone = RecordingSink::start().await?;
    gone.set_down(true).await?;
    let dead_letters = RecordingSink::start().await?;
    let options = format!(
        "{{retry: 1, backoffDelay: PT0.01S, deadLetterURL: '{}'}}",
        dead_letters.url()
    );
    let broker =
        TestBroker::start(&config(&[trigger("t", &gone.url(), None, Some(&options))])).await?;
    broker.send_ok("unreachable", &[]).await?;
    let dead = dead_letters.wait_for_count(1, WAIT).await?;
    assert_eq!(dead[0].id, "unreachable");
    assert_eq!(
        dead[0].extensions.get("knativeerrordest"),
        Some(&gone.url())
    );
    assert!(!dead[0].extensions.contains_key("knativeerrorcode"));
    Ok(())
}
