use super::*;
use crate::event::StreamEvent;
use awsdynamodbsource_cloudevents::http::header_value;
use http_body_util::BodyExt;

#[test]
fn header_values_are_percent_encoded_as_the_binding_says() {
    assert_eq!(
        header_value("arn:aws:dynamodb:x").unwrap(),
        "arn:aws:dynamodb:x"
    );
    assert_eq!(header_value("a b\"c%d").unwrap(), "a%20b%22c%25d");
    assert_eq!(header_value("é").unwrap(), "%C3%A9");
}

#[test]
fn sink_urls_are_checked_and_passwords_never_shown() {
    assert!(parse_sink_url("http://127.0.0.1:8080/x").is_ok());
    assert!(parse_sink_url("https://broker.example/").is_ok());
    for bad in [
        "",
        "not a url",
        "ftp://host/",
        "http://",
        "/relative/path",
        "unix:/tmp/sock",
    ] {
        let err = parse_sink_url(bad).expect_err(bad).to_string();
        assert!(err.starts_with("K_SINK"), "{err}");
    }
    let err = parse_sink_url("ftp://user:hunter2@host/")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    let err = parse_sink_url("http://user:hunter2@[::1/")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

/// A request's future is allocated for every event: the common path
/// (a kept-alive connection) stays under 1 KiB, past which glibc's
/// malloc takes a slower path; connecting is boxed apart.
#[tokio::test]
async fn the_per_request_future_stays_under_a_kibibyte() {
    let sink = HttpSink::new(
        parse_sink_url("http://127.0.0.1:9/").unwrap(),
        SinkLimits::default(),
    )
    .unwrap();
    let event = StreamEvent::with_id("e");
    let request = sink.send(&event);
    let size = std::mem::size_of_val(&*request);
    assert!(size < 1024, "{size} bytes per request");
}

#[tokio::test]
async fn requests_carry_the_binding_headers_in_origin_form() {
    let url = parse_sink_url("http://u%40x:p%3Aw@127.0.0.1:9/broker/ns?x=1").unwrap();
    let sink = HttpSink::new(url, SinkLimits::default()).unwrap();
    let mut event = StreamEvent::with_id("e1");
    event.subject = Some("pk,sk".into());
    event
        .extensions
        .push(("dynamodboperation".into(), "INSERT".into()));
    let req = sink.request(&event);
    assert_eq!(req.uri(), "/broker/ns?x=1");
    let h = req.headers();
    assert_eq!(h["host"], "127.0.0.1:9");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["ce-id"], "e1");
    assert_eq!(h["ce-specversion"], "1.0");
    assert_eq!(h["ce-type"], "com.amazon.dynamodb.stream_record");
    assert_eq!(h["ce-subject"], "pk,sk");
    assert_eq!(h["ce-dynamodboperation"], "INSERT");
    let basic = base64::engine::general_purpose::STANDARD.encode("u@x:p:w");
    assert_eq!(h["authorization"], format!("Basic {basic}").as_str());
}

#[tokio::test]
async fn structured_mode_sends_the_whole_event_as_json() {
    let url = parse_sink_url("http://127.0.0.1:9/").unwrap();
    let sink = HttpSink::new(url, SinkLimits::default())
        .unwrap()
        .with_mode(ContentMode::Structured);
    let mut event = StreamEvent::with_id("e1");
    event.dataschema = Some("https://x/s.json".into());
    event.extensions.push(("sequence".into(), "0001".into()));
    event.data = Some(Bytes::from_static(
        b"{\"n\":12345678901234567890123456789012345678}",
    ));
    let req = sink.request(&event);
    let h = req.headers();
    assert_eq!(
        h["content-type"],
        "application/cloudevents+json; charset=UTF-8"
    );
    assert!(!h.keys().any(|k| k.as_str().starts_with("ce-")), "{h:?}");
    let body = req.into_body();
    let bytes = futures_util::FutureExt::now_or_never(body.collect())
        .unwrap()
        .unwrap()
        .to_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(json["id"], "e1");
    assert_eq!(json["dataschema"], "https://x/s.json");
    assert_eq!(json["sequence"], "0001");
    assert_eq!(json["datacontenttype"], "application/json");
    // The data is inline and byte for byte (no number rounding).
    assert!(
        text.ends_with("\"data\":{\"n\":12345678901234567890123456789012345678}}"),
        "{text}"
    );
    assert_eq!(sink.destination(), "http://127.0.0.1:9/");
}

#[test]
fn retry_after_as_seconds_or_date() {
    assert_eq!(
        retry_after(&HeaderValue::from_static("7")),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        retry_after(&HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT")),
        Some(Duration::ZERO),
        "a date in the past means now"
    );
    assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
}
