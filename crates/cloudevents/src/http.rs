//! The CloudEvents HTTP protocol binding: an event as binary-mode headers, an
//! event read from a request in either mode, and `Retry-After`.
//!
//! Owns header names, the percent-encoding of header values (the binding's
//! section 3.1.3.2) and mode detection. It never does I/O and never alters
//! data bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

use crate::event::{CloudEvent, EventError, invalid};

/// The `Content-Type` of structured mode.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// What the binding percent-encodes in header values: space, `"`, `%`, and
/// everything outside printable ASCII (0x21–0x7E; `percent_encoding` always
/// encodes non-ASCII bytes).
const HEADER_VALUE_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// An attribute value percent-encoded for a `ce-` header (borrowed when
/// nothing needs encoding, as for most values).
pub fn encode_header_value(value: &str) -> Cow<'_, str> {
    utf8_percent_encode(value, HEADER_VALUE_ESCAPES).into()
}

/// An attribute value as a `ce-` header value.
pub fn header_value(value: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    match encode_header_value(value) {
        Cow::Borrowed(plain) => HeaderValue::from_str(plain),
        Cow::Owned(encoded) => HeaderValue::try_from(encoded),
    }
}

/// Decodes a `ce-` header value: percent-decoding, then UTF-8.
pub fn decode_header_value(raw: &[u8]) -> Result<String, EventError> {
    percent_decode(raw)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| invalid("a ce- header value is not UTF-8 once percent-decoded"))
}

/// The headers of the attributes every event has, made once.
static SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
static ID: HeaderName = HeaderName::from_static("ce-id");
static SOURCE: HeaderName = HeaderName::from_static("ce-source");
static TYPE: HeaderName = HeaderName::from_static("ce-type");
static SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
static TIME: HeaderName = HeaderName::from_static("ce-time");
static JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Adds an event's binary-mode headers to `headers`: one `ce-` header per
/// attribute (percent-encoded) and `Content-Type` from `datacontenttype`.
/// The body to send is the event's data.
pub fn write_binary_headers(event: &CloudEvent, headers: &mut HeaderMap) {
    if let Some(ct) = event.datacontenttype.as_deref() {
        let value = if ct == "application/json" {
            Ok(JSON.clone())
        } else {
            HeaderValue::from_str(ct)
        };
        // A valid event's content type is printable ASCII.
        if let Ok(value) = value {
            headers.insert(CONTENT_TYPE, value);
        }
    }
    for (name, value) in event.attributes() {
        let name = match name {
            "specversion" => SPECVERSION.clone(),
            "id" => ID.clone(),
            "source" => SOURCE.clone(),
            "type" => TYPE.clone(),
            "subject" => SUBJECT.clone(),
            "time" => TIME.clone(),
            other => match HeaderName::try_from(format!("ce-{other}")) {
                Ok(name) => name,
                // Unreachable for valid names; skipping beats a panic.
                Err(_) => continue,
            },
        };
        if let Ok(value) = header_value(value) {
            headers.insert(name, value);
        }
    }
}

/// An event's binary-mode headers.
pub fn binary_headers(event: &CloudEvent) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(8 + event.extensions.len());
    write_binary_headers(event, &mut headers);
    headers
}

/// Reads the event of a request. Structured mode when the content type is
/// `application/cloudevents+json`, batched mode refused, binary mode
/// otherwise.
pub fn event_from_request(headers: &HeaderMap, body: Bytes) -> Result<CloudEvent, EventError> {
    let content_type = match headers.get(CONTENT_TYPE) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| invalid("Content-Type is not ASCII"))?
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
        Some("application/cloudevents-batch+json") => Err(invalid(
            "batched mode is not supported: send one event per request",
        )),
        Some("application/cloudevents+json") => CloudEvent::from_structured_json(&body),
        Some(m) if m.starts_with("application/cloudevents") => Err(invalid(format!(
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
    if !headers.contains_key(&SPECVERSION) {
        return Err(invalid(
            "not a CloudEvent: no ce-specversion header (binary mode) and Content-Type is not application/cloudevents+json",
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
            return Err(invalid(format!("header {name} is repeated")));
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
    CloudEvent::from_attributes(attributes, data)
}

/// A `Retry-After` header: whole seconds, or an HTTP date (a date in the
/// past is no wait).
pub fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let s = value.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP date: `Sun, 06 Nov 1994 08:49:37 GMT`.
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(s, format).ok()?.assume_utc();
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
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
            assert_eq!(
                decode_header_value(encoded.as_bytes()).unwrap(),
                value,
                "{encoded}"
            );
            assert_eq!(header_value(value).unwrap(), &*encoded);
        }
        assert_eq!(encode_header_value("a b\"c%d"), "a%20b%22c%25d");
        assert_eq!(encode_header_value("é"), "%C3%A9");
        assert_eq!(
            encode_header_value("arn:aws:dynamodb:x"),
            Cow::Borrowed("arn:aws:dynamodb:x")
        );
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
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
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
        assert_eq!(event_from_request(&structured, body).unwrap().id, "1");

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

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(retry_after(&header(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&header("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&header("soon")), None);
    }
}
