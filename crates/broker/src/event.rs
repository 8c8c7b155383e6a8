//! One CloudEvent as the broker holds it: its attributes as strings and its data as bytes,
//! plus the CloudEvents JSON format (structured mode) in and out.
//!
//! Owns what a valid event is (`specversion` 1.0, non-empty `id`, `source`, `type`, attribute
//! names of lower-case letters and digits). It never changes data bytes: what came in is what
//! goes out in binary mode.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::valid_attribute_name;

/// Why a request or a stored document is not a valid CloudEvent (one line, said to clients).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

fn invalid(message: impl Into<String>) -> EventError {
    EventError(message.into())
}

/// A CloudEvent: context attributes (including `datacontenttype` and extensions) and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEvent {
    attributes: BTreeMap<String, String>,
    data: Option<Bytes>,
}

impl CloudEvent {
    /// Builds and validates an event.
    pub fn new(
        attributes: BTreeMap<String, String>,
        data: Option<Bytes>,
    ) -> Result<CloudEvent, EventError> {
        let event = CloudEvent { attributes, data };
        event.validate()?;
        Ok(event)
    }

    /// An attribute's value.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    /// All attributes, by name.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }

    /// `id`.
    pub fn id(&self) -> &str {
        self.attribute("id").unwrap_or_default()
    }

    /// `datacontenttype`.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.attribute("datacontenttype")
    }

    /// The data bytes, if any.
    pub fn data(&self) -> Option<&Bytes> {
        self.data.as_ref()
    }

    /// A copy with an extension attribute set (replacing one of the same name).
    pub fn with_extension(&self, name: &str, value: impl Into<String>) -> CloudEvent {
        let mut copy = self.clone();
        copy.attributes.insert(name.to_string(), value.into());
        copy
    }

    fn validate(&self) -> Result<(), EventError> {
        match self.attribute("specversion") {
            Some("1.0") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "specversion {other:?} is not supported (only 1.0)"
                )));
            }
            None => return Err(invalid("missing specversion")),
        }
        for required in ["id", "source", "type"] {
            if self.attribute(required).is_none_or(str::is_empty) {
                return Err(invalid(format!("missing or empty {required}")));
            }
        }
        for name in self.attributes.keys() {
            if name == "data" {
                return Err(invalid("\"data\" is not an attribute name"));
            }
            if !valid_attribute_name(name) {
                return Err(invalid(format!(
                    "attribute name {name:?} must be lower-case letters and digits"
                )));
            }
        }
        if let Some(ct) = self.datacontenttype()
            && !ct.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(invalid("datacontenttype must be printable ASCII"));
        }
        Ok(())
    }

    /// Parses the CloudEvents JSON format. `data` is kept byte for byte when the content type
    /// is JSON; a string `data` of another content type becomes its text.
    pub fn from_structured_json(body: &[u8]) -> Result<CloudEvent, EventError> {
        let members: BTreeMap<String, &RawValue> = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("structured event is not a JSON object: {e}")))?;
        let mut attributes = BTreeMap::new();
        let mut data_raw = None;
        let mut data_base64 = None;
        for (name, raw) in members {
            match name.as_str() {
                "data" => data_raw = Some(raw),
                "data_base64" => data_base64 = Some(raw),
                _ => {
                    let value: Value = serde_json::from_str(raw.get())
                        .map_err(|e| invalid(format!("attribute {name:?}: {e}")))?;
                    let text = match value {
                        Value::Null => continue,
                        Value::String(s) => s,
                        Value::Bool(_) | Value::Number(_) => value.to_string(),
                        Value::Array(_) | Value::Object(_) => {
                            return Err(invalid(format!(
                                "attribute {name:?} must be a string, number or boolean"
                            )));
                        }
                    };
                    attributes.insert(name, text);
                }
            }
        }
        let data = match (data_raw, data_base64) {
            (Some(_), Some(_)) => {
                return Err(invalid("an event has data or data_base64, not both"));
            }
            (None, Some(raw)) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::String(encoded)) => {
                    Some(Bytes::from(BASE64.decode(encoded.trim()).map_err(|e| {
                        invalid(format!("data_base64 is not base64: {e}"))
                    })?))
                }
                Ok(Value::Null) => None,
                _ => return Err(invalid("data_base64 must be a string")),
            },
            (Some(raw), None) if raw.get() == "null" => None,
            (Some(raw), None) => {
                let json =
                    is_json_content_type(attributes.get("datacontenttype").map(String::as_str));
                match serde_json::from_str::<Value>(raw.get()) {
                    Ok(Value::String(text)) if !json => Some(Bytes::from(text)),
                    _ => Some(Bytes::copy_from_slice(raw.get().as_bytes())),
                }
            }
            (None, None) => None,
        };
        CloudEvent::new(attributes, data)
    }

    /// The CloudEvents JSON format on one line (for NDJSON): JSON data as `data` (re-encoded
    /// when it spans lines), other data as `data_base64`.
    pub fn to_structured_line(&self) -> String {
        serde_json::to_string(&Structured {
            event: self,
            single_line: true,
        })
        .unwrap_or_default()
    }

    /// The CloudEvents JSON format keeping data byte for byte: `data` only when the data is
    /// exactly a JSON text, else `data_base64`.
    pub fn to_structured_exact(&self) -> String {
        serde_json::to_string(&Structured {
            event: self,
            single_line: false,
        })
        .unwrap_or_default()
    }
}

/// `application/json`, `text/json`, any `+json` type, or absent (the JSON format's default).
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

struct Structured<'a> {
    event: &'a CloudEvent,
    single_line: bool,
}

impl Serialize for Structured<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in &event.attributes {
            map.serialize_entry(name, value)?;
        }
        if let Some(data) = &event.data {
            let exact_json = is_json_content_type(event.datacontenttype())
                .then(|| std::str::from_utf8(data).ok())
                .flatten()
                .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
                .filter(|raw| raw.get().len() == data.len());
            match exact_json {
                Some(raw) if !self.single_line || !raw.get().contains(['\n', '\r']) => {
                    map.serialize_entry("data", raw)?;
                }
                Some(raw) => {
                    let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                    map.serialize_entry("data", &value)?;
                }
                None => {
                    // JSON with surrounding whitespace still shows as JSON on a watch line.
                    let reparsed = (self.single_line
                        && is_json_content_type(event.datacontenttype()))
                    .then(|| serde_json::from_slice::<Value>(data).ok())
                    .flatten();
                    match reparsed {
                        Some(value) => map.serialize_entry("data", &value)?,
                        None => map.serialize_entry("data_base64", &BASE64.encode(data))?,
                    }
                }
            }
        }
        map.end()
    }
}

/// An event with only the required attributes, for tests of the stages
/// after ingest.
#[cfg(test)]
pub(crate) fn test_event(id: &str, data: Option<Bytes>) -> std::sync::Arc<CloudEvent> {
    let attrs = [
        ("specversion", "1.0"),
        ("id", id),
        ("source", "s"),
        ("type", "t"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    std::sync::Arc::new(CloudEvent::new(attrs, data).expect("a valid event"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> BTreeMap<String, String> {
        attrs(&[
            ("specversion", "1.0"),
            ("id", "1"),
            ("source", "s"),
            ("type", "t"),
        ])
    }

    #[test]
    fn required_attributes_are_checked() {
        assert!(CloudEvent::new(base(), None).is_ok());
        for (name, value, want) in [
            ("specversion", "0.3", "specversion \"0.3\" is not supported"),
            ("id", "", "missing or empty id"),
            ("source", "", "missing or empty source"),
            ("type", "", "missing or empty type"),
            ("Bad_Name", "x", "attribute name \"Bad_Name\""),
            ("datacontenttype", "text/plain\n", "printable ASCII"),
        ] {
            let mut a = base();
            a.insert(name.into(), value.into());
            let err = CloudEvent::new(a, None).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
        let mut a = base();
        a.remove("source");
        assert_eq!(
            CloudEvent::new(a, None).unwrap_err().0,
            "missing or empty source"
        );
    }

    #[test]
    fn structured_json_keeps_json_data_bytes() {
        let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","seq":7,"flag":true,"data":{"b": 1,  "a":[1.50]}}"#;
        let event = CloudEvent::from_structured_json(body).unwrap();
        assert_eq!(event.data().unwrap().as_ref(), br#"{"b": 1,  "a":[1.50]}"#);
        assert_eq!(event.attribute("seq"), Some("7"));
        assert_eq!(event.attribute("flag"), Some("true"));
        let line = event.to_structured_line();
        assert!(line.contains(r#""data":{"b": 1,  "a":[1.50]}"#), "{line}");
        assert_eq!(
            CloudEvent::from_structured_json(line.as_bytes()).unwrap(),
            event
        );
    }

    #[test]
    fn structured_json_text_and_base64_data() {
        let text = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"h\u00e9llo"}"#;
        let event = CloudEvent::from_structured_json(text).unwrap();
        assert_eq!(event.data().unwrap().as_ref(), "héllo".as_bytes());
        let line = event.to_structured_line();
        assert!(line.contains(r#""data_base64":"aMOpbGxv""#), "{line}");
        assert_eq!(
            CloudEvent::from_structured_json(line.as_bytes()).unwrap(),
            event
        );

        let b64 = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#;
        let event = CloudEvent::from_structured_json(b64).unwrap();
        assert_eq!(event.data().unwrap().as_ref(), &[0, 1, 2, 255]);

        let both = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":1,"data_base64":"AA=="}"#;
        assert!(
            CloudEvent::from_structured_json(both)
                .unwrap_err()
                .0
                .contains("not both")
        );
        let nested = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","ext":{"a":1}}"#;
        assert!(
            CloudEvent::from_structured_json(nested)
                .unwrap_err()
                .0
                .contains("\"ext\"")
        );
        assert!(CloudEvent::from_structured_json(b"[1]").is_err());
    }

    #[test]
    fn multi_line_json_data_is_one_line_on_watch_and_exact_in_state() {
        let mut a = base();
        a.insert("datacontenttype".into(), "application/json".into());
        let data = Bytes::from_static(b"{\n  \"k\": 1\n}\n");
        let event = CloudEvent::new(a, Some(data.clone())).unwrap();
        let line = event.to_structured_line();
        assert!(
            !line.contains('\n') && line.contains(r#""data":{"k":1}"#),
            "{line}"
        );
        let exact = event.to_structured_exact();
        assert!(exact.contains("data_base64"), "{exact}");
        let back = CloudEvent::from_structured_json(exact.as_bytes()).unwrap();
        assert_eq!(back.data(), Some(&data));
    }

    #[test]
    fn json_content_types() {
        for (ct, json) in [
            (None, true),
            (Some("application/json"), true),
            (Some("Application/JSON; charset=utf-8"), true),
            (Some("application/cloudevents+json"), true),
            (Some("text/plain"), false),
            (Some("application/octet-stream"), false),
        ] {
            assert_eq!(is_json_content_type(ct), json, "{ct:?}");
        }
    }
}
