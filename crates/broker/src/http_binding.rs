//! The CloudEvents HTTP protocol binding: reading an event from a request (binary or
//! structured mode) and writing one as binary-mode headers.
//!
//! Owns header names, percent-encoding of header values and mode detection. It never does
//! I/O and never alters data bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

use crate::event::{CloudEvent, EventError};

/// What the binding percent-encodes in header values: space, `"`, `%`, and everything outside
/// printable ASCII (0x21–0x7E). `percent_encoding` always encodes non-ASCII bytes.
const HEADER_VALUE_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Percent-encodes an attribute value for a `ce-` header.
pub fn encode_header_value(value: &str) -> String {
    utf8_percent_encode(value, HEADER_VALUE_ESCAPES).to_string()
}

/// Decodes a `ce-` header value: percent-decoding, then UTF-8.
pub fn decode_header_value(raw: &[u8]) -> Result<String, EventError> {
    percent_decode(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| EventError("a ce- header value is not UTF-8 once percent-decoded".into()))
}

/// Reads the event of an ingest request. Structured mode when the content type is
/// `application/cloudevents+json`, batched mode refused, binary mode otherwise.
pub fn event_from_request(headers: &HeaderMap, body: Bytes) -> Result<CloudEvent, EventError> {
    let content_type = match headers.get(CONTENT_TYPE) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| EventError("Content-Type is not ASCII".into()))?
                .to_string(),
        ),
        None => None,
    };
    let media = content_type.as_deref().map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match media.as_deref() {
        Some("application/cloudevents-batch+json") => Err(EventError(
            "batched mode is not supported: send one event per request".into(),
        )),
        Some("application/cloudevents+json") => CloudEvent::from_structured_json(&body),
        Some(m) if m.starts_with("application/cloudevents") => Err(EventError(format!(
            "event format {m:?} is not supported (use application/cloudevents+json or binary mode)"
        ))),
        _ => binary_event(headers, content_type, body),
    }
}

fn binary_event(
    headers: &HeaderMap,
    content_type: Option<String>,
    body: Bytes,
) -> Result<CloudEvent, EventError> {
    if !headers.contains_key("ce-specversion") {
        return Err(EventError(
            "not a CloudEvent: no ce-specversion header (binary mode) and Content-Type is not application/cloudevents+json".into(),
        ));
    }
    let mut attributes = BTreeMap::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        // The binding maps datacontenttype to Content-Type only.
        if attribute == "datacontenttype" {
            continue;
        }
        if attributes.contains_key(attribute) {
            return Err(EventError(format!("header {name} is repeated")));
        }
        attributes.insert(
            attribute.to_string(),
            decode_header_value(value.as_bytes())?,
        );
    }
    if let Some(ct) = content_type {
        attributes.insert("datacontenttype".into(), ct);
    }
    let data = (!body.is_empty()).then_some(body);
    CloudEvent::new(attributes, data)
}

/// The binary-mode headers of an event: one `ce-` header per attribute (percent-encoded) and
/// `Content-Type` from `datacontenttype`. The body to send is [`CloudEvent::data`].
pub fn binary_headers(event: &CloudEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in event.attributes() {
        if name == "datacontenttype" {
            // Checked to be printable ASCII when the event was built.
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(CONTENT_TYPE, v);
            }
            continue;
        }
        let (Ok(header), Ok(value)) = (
            HeaderName::try_from(format!("ce-{name}")),
            HeaderValue::try_from(encode_header_value(value)),
        ) else {
            // Unreachable for validated names; skipping beats a panic.
            continue;
        };
        headers.insert(header, value);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip() {
        for value in [
            "plain",
            "with space",
            "quote\"d",
            "100%",
            "tab\there",
            "newline\nhere",
            "ünïcödé → ✓",
            "~!#$&'()*+,/:;<=>?@[\\]^_`{|}",
            "",
        ] {
            let encoded = encode_header_value(value);
            assert!(
                encoded
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"'),
                "{encoded:?}"
            );
            assert!(!encoded.contains(' '));
            assert_eq!(
                decode_header_value(encoded.as_bytes()).unwrap(),
                value,
                "{encoded}"
            );
        }
        assert_eq!(encode_header_value("a b\"c%d"), "a%20b%22c%25d");
        assert_eq!(encode_header_value("é"), "%C3%A9");
        assert_eq!(encode_header_value("~:/"), "~:/");
        assert!(decode_header_value(b"%FF").is_err());
    }

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn binary_mode_reads_and_writes_the_same_headers() {
        let headers = request(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "abc"),
            ("ce-source", "arn:aws:dynamodb:x"),
            ("ce-type", "t"),
            ("ce-subject", "a%20b%25"),
            ("ce-myext", "%C3%A9"),
            ("content-type", "application/json"),
            ("x-other", "ignored"),
        ]);
        let event = event_from_request(&headers, Bytes::from_static(b"{\"k\":1}")).unwrap();
        assert_eq!(event.attribute("subject"), Some("a b%"));
        assert_eq!(event.attribute("myext"), Some("é"));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        assert_eq!(event.attribute("x-other"), None);
        let out = binary_headers(&event);
        for name in [
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-subject",
            "ce-myext",
            "content-type",
        ] {
            assert_eq!(out.get(name), headers.get(name), "{name}");
        }
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn modes_and_invalid_requests() {
        let structured = request(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )]);
        let body = Bytes::from_static(br#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#);
        assert_eq!(event_from_request(&structured, body).unwrap().id(), "1");

        let batch = request(&[("content-type", "application/cloudevents-batch+json")]);
        let err = event_from_request(&batch, Bytes::from_static(b"[]")).unwrap_err();
        assert!(err.0.contains("batched mode is not supported"), "{err}");

        let plain = request(&[("content-type", "application/json")]);
        let err = event_from_request(&plain, Bytes::from_static(b"{}")).unwrap_err();
        assert!(err.0.contains("no ce-specversion header"), "{err}");

        let no_id = request(&[
            ("ce-specversion", "1.0"),
            ("ce-source", "s"),
            ("ce-type", "t"),
        ]);
        assert_eq!(
            event_from_request(&no_id, Bytes::new()).unwrap_err().0,
            "missing or empty id"
        );

        let old = request(&[
            ("ce-specversion", "0.3"),
            ("ce-id", "1"),
            ("ce-source", "s"),
            ("ce-type", "t"),
        ]);
        assert!(
            event_from_request(&old, Bytes::new())
                .unwrap_err()
                .0
                .contains("0.3")
        );
    }
}
