//! The CloudEvents JSON format (structured mode), in and out.
//!
//! Owns how data travels inside the JSON: JSON data inline and byte for
//! byte, other data as `data_base64` (or as text when a string came in).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{CloudEvent, EventError, invalid, is_json_content_type};

impl CloudEvent {
    /// Parses the CloudEvents JSON format. `data` is kept byte for byte when
    /// the content type is JSON; a string `data` of another content type
    /// becomes its text.
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
        let json = is_json_content_type(attributes.get("datacontenttype").map(String::as_str));
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
            (Some(raw), None) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::String(text)) if !json => Some(Bytes::from(text)),
                _ => Some(Bytes::copy_from_slice(raw.get().as_bytes())),
            },
            (None, None) => None,
        };
        CloudEvent::from_attributes(attributes, data)
    }

    /// The CloudEvents JSON format, keeping data byte for byte: `data` only
    /// when the data is exactly a JSON text, else `data_base64`.
    pub fn to_structured_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Structured {
            event: self,
            single_line: false,
        })
        .unwrap_or_default()
    }

    /// The CloudEvents JSON format on one line (for JSON lines): JSON data as
    /// `data` (re-encoded when it spans lines), other data as `data_base64`.
    pub fn to_structured_line(&self) -> String {
        serde_json::to_string(&Structured {
            event: self,
            single_line: true,
        })
        .unwrap_or_default()
    }
}

struct Structured<'a> {
    event: &'a CloudEvent,
    single_line: bool,
}

impl Serialize for Structured<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in event.attributes() {
            map.serialize_entry(name, value)?;
        }
        if let Some(ct) = &event.datacontenttype {
            map.serialize_entry("datacontenttype", &**ct)?;
        }
        let Some(data) = &event.data else {
            return map.end();
        };
        let json = is_json_content_type(event.datacontenttype.as_deref());
        let exact_json = json
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
                // JSON with surrounding whitespace still shows as JSON on a line.
                let reparsed = (self.single_line && json)
                    .then(|| serde_json::from_slice::<Value>(data).ok())
                    .flatten();
                match reparsed {
                    Some(value) => map.serialize_entry("data", &value)?,
                    None => map.serialize_entry("data_base64", &BASE64.encode(data))?,
                }
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        [
            ("specversion", "1.0"),
            ("id", "1"),
            ("source", "s"),
            ("type", "t"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn structured_json_keeps_json_data_bytes() {
        let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","seq":7,"flag":true,"data":{"b": 1,  "a":[1.50]}}"#;
        let event = CloudEvent::from_structured_json(body).unwrap();
        assert_eq!(
            event.data.as_deref(),
            Some(&br#"{"b": 1,  "a":[1.50]}"#[..])
        );
        assert_eq!(event.attribute("seq"), Some("7"));
        assert_eq!(event.attribute("flag"), Some("true"));
        let line = event.to_structured_line();
        assert!(line.contains(r#""data":{"b": 1,  "a":[1.50]}"#), "{line}");
        assert_eq!(
            CloudEvent::from_structured_json(line.as_bytes()).unwrap(),
            event
        );
        assert_eq!(
            CloudEvent::from_structured_json(&event.to_structured_json()).unwrap(),
            event
        );
    }

    #[test]
    fn structured_json_text_and_base64_data() {
        let text = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"h\u00e9llo"}"#;
        let event = CloudEvent::from_structured_json(text).unwrap();
        assert_eq!(event.data.as_deref(), Some("héllo".as_bytes()));
        let line = event.to_structured_line();
        assert!(line.contains(r#""data_base64":"aMOpbGxv""#), "{line}");
        assert_eq!(
            CloudEvent::from_structured_json(line.as_bytes()).unwrap(),
            event
        );

        let b64 = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#;
        let event = CloudEvent::from_structured_json(b64).unwrap();
        assert_eq!(event.data.as_deref(), Some(&[0u8, 1, 2, 255][..]));

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
    fn multi_line_json_data_is_one_line_on_a_line_and_exact_in_json() {
        let mut a = base();
        a.insert("datacontenttype".into(), "application/json".into());
        let data = Bytes::from_static(b"{\n  \"k\": 1\n}\n");
        let event = CloudEvent::from_attributes(a, Some(data.clone())).unwrap();
        let line = event.to_structured_line();
        assert!(
            !line.contains('\n') && line.contains(r#""data":{"k":1}"#),
            "{line}"
        );
        let exact = event.to_structured_json();
        assert!(String::from_utf8_lossy(&exact).contains("data_base64"));
        let back = CloudEvent::from_structured_json(&exact).unwrap();
        assert_eq!(back.data, Some(data));
    }
}
