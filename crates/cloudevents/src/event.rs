//! One CloudEvent (specversion 1.0): its context attributes and its data.
//!
//! Owns what a valid event is: `id`, `source` and `type` present and not
//! empty, attribute names of lower-case letters and digits, a printable
//! `datacontenttype`. It never changes data bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

/// Why a request or a stored document is not a valid CloudEvent (one line,
/// fit to answer a client with).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

pub(crate) fn invalid(message: impl Into<String>) -> EventError {
    EventError(message.into())
}

/// A CloudEvent. `specversion` is always 1.0. Fields shared between many
/// events (a source, a type) are `Arc`s, so that building one is cheap.
///
/// Built directly, an event is trusted; [`CloudEvent::from_attributes`]
/// checks what came from outside.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloudEvent {
    pub id: String,
    pub source: Arc<str>,
    /// The `type` attribute.
    pub event_type: Arc<str>,
    pub datacontenttype: Option<Arc<str>>,
    pub dataschema: Option<Arc<str>>,
    pub subject: Option<String>,
    /// RFC 3339.
    pub time: Option<String>,
    /// Extension attributes, each name once, in the order they are sent.
    pub extensions: Vec<(Arc<str>, Arc<str>)>,
    pub data: Option<Bytes>,
}

impl CloudEvent {
    /// An event from attributes by name (extensions included, `specversion`
    /// required), checked.
    pub fn from_attributes(
        mut attributes: BTreeMap<String, String>,
        data: Option<Bytes>,
    ) -> Result<CloudEvent, EventError> {
        match attributes.remove("specversion").as_deref() {
            Some("1.0") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "specversion {other:?} is not supported (only 1.0)"
                )));
            }
            None => return Err(invalid("missing specversion")),
        }
        let mut required = |name: &str| match attributes.remove(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(invalid(format!("missing or empty {name}"))),
        };
        let id = required("id")?;
        let source = required("source")?;
        let event_type = required("type")?;
        for name in attributes.keys() {
            if name == "data" {
                return Err(invalid("\"data\" is not an attribute name"));
            }
            if !valid_attribute_name(name) {
                return Err(invalid(format!(
                    "attribute name {name:?} must be lower-case letters and digits"
                )));
            }
        }
        let datacontenttype = attributes.remove("datacontenttype");
        if let Some(ct) = &datacontenttype
            && !ct.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(invalid("datacontenttype must be printable ASCII"));
        }
        Ok(CloudEvent {
            id,
            source: source.into(),
            event_type: event_type.into(),
            datacontenttype: datacontenttype.map(Arc::from),
            dataschema: attributes.remove("dataschema").map(Arc::from),
            subject: attributes.remove("subject"),
            time: attributes.remove("time"),
            extensions: attributes
                .into_iter()
                .map(|(k, v)| (Arc::from(k), Arc::from(v)))
                .collect(),
            data,
        })
    }

    /// An attribute's value by name, extensions included.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        match name {
            "specversion" => Some("1.0"),
            "id" => Some(&self.id),
            "source" => Some(&self.source),
            "type" => Some(&self.event_type),
            "datacontenttype" => self.datacontenttype.as_deref(),
            "dataschema" => self.dataschema.as_deref(),
            "subject" => self.subject.as_deref(),
            "time" => self.time.as_deref(),
            _ => self
                .extensions
                .iter()
                .find(|(k, _)| &**k == name)
                .map(|(_, v)| &**v),
        }
    }

    /// Every attribute but `datacontenttype` (which binary mode sends as
    /// `Content-Type`), as sent: required ones first, extensions last.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            Some(("specversion", "1.0")),
            Some(("id", self.id.as_str())),
            Some(("source", &*self.source)),
            Some(("type", &*self.event_type)),
            self.subject.as_deref().map(|s| ("subject", s)),
            self.time.as_deref().map(|t| ("time", t)),
            self.dataschema.as_deref().map(|d| ("dataschema", d)),
        ]
        .into_iter()
        .flatten()
        .chain(self.extensions.iter().map(|(k, v)| (&**k, &**v)))
    }

    /// Sets an extension, replacing one of the same name where it stands.
    pub fn set_extension(&mut self, name: &str, value: impl Into<Arc<str>>) {
        let value = value.into();
        match self.extensions.iter_mut().find(|(k, _)| &**k == name) {
            Some((_, v)) => *v = value,
            None => self.extensions.push((Arc::from(name), value)),
        }
    }

    /// A copy with an extension set.
    pub fn with_extension(&self, name: &str, value: impl Into<Arc<str>>) -> CloudEvent {
        let mut copy = self.clone();
        copy.set_extension(name, value);
        copy
    }
}

/// CloudEvents attribute names: lower-case ASCII letters and digits.
pub fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `application/json`, `text/json`, any `+json` type, or absent (the JSON
/// format's default).
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
        assert!(CloudEvent::from_attributes(base(), None).is_ok());
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
            let err = CloudEvent::from_attributes(a, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
        let mut a = base();
        a.remove("source");
        assert_eq!(
            CloudEvent::from_attributes(a, None).unwrap_err().0,
            "missing or empty source"
        );
    }

    #[test]
    fn attributes_by_name_and_extensions_replaced_in_place() {
        let mut a = base();
        a.insert("subject".into(), "k".into());
        a.insert("zeta".into(), "1".into());
        a.insert("alpha".into(), "2".into());
        let event = CloudEvent::from_attributes(a, None).unwrap();
        assert_eq!(event.attribute("type"), Some("t"));
        assert_eq!(event.attribute("subject"), Some("k"));
        assert_eq!(event.attribute("zeta"), Some("1"));
        assert_eq!(event.attribute("datacontenttype"), None);
        let changed = event
            .with_extension("alpha", "3")
            .with_extension("beta", "4");
        let names: Vec<(&str, &str)> = changed.attributes().skip(5).collect();
        assert_eq!(names, [("alpha", "3"), ("zeta", "1"), ("beta", "4")]);
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
