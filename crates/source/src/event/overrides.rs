//! `K_CE_OVERRIDES`: Knative's `{"extensions": {"name": "value"}}`, added to
//! every event.

use std::collections::BTreeMap;

use awsdynamodbsource_vars as vars;

/// Extensions to add to every event, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CeOverrides {
    extensions: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    #[error(
        "{var} is not valid JSON of the form {{\"extensions\": {{\"name\": \"value\"}}}}: {0}",
        var = vars::K_CE_OVERRIDES
    )]
    Json(#[from] serde_json::Error),
    #[error(
        "{var}: extension name {0:?} is invalid (CloudEvents names are lower-case letters and digits)",
        var = vars::K_CE_OVERRIDES
    )]
    Name(String),
    #[error(
        "{var}: extension {0:?} is a core CloudEvents attribute and cannot be overridden",
        var = vars::K_CE_OVERRIDES
    )]
    Reserved(String),
}

#[derive(serde::Deserialize)]
struct Wire {
    #[serde(default)]
    extensions: BTreeMap<String, String>,
}

const RESERVED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

impl CeOverrides {
    /// Parses the variable's value; empty means none.
    pub fn parse(s: &str) -> Result<Self, OverridesError> {
        if s.trim().is_empty() {
            return Ok(CeOverrides::default());
        }
        let wire: Wire = serde_json::from_str(s)?;
        for name in wire.extensions.keys() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(OverridesError::Name(name.clone()));
            }
            if RESERVED.contains(&name.as_str()) {
                return Err(OverridesError::Reserved(name.clone()));
            }
        }
        Ok(CeOverrides {
            extensions: wire.extensions,
        })
    }

    pub fn extensions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_knative_overrides() {
        let o = CeOverrides::parse(r#"{"extensions":{"b":"2","a":"1"}}"#).unwrap();
        assert_eq!(
            o.extensions().collect::<Vec<_>>(),
            vec![("a", "1"), ("b", "2")]
        );
        assert_eq!(CeOverrides::parse("").unwrap(), CeOverrides::default());
        assert_eq!(CeOverrides::parse("{}").unwrap(), CeOverrides::default());
    }

    #[test]
    fn rejects_what_is_not_overrides() {
        for bad in [
            "{",
            "[1]",
            r#"{"extensions":{"a":1}}"#,
            r#"{"extensions":{"Bad-Name":"x"}}"#,
            r#"{"extensions":{"id":"x"}}"#,
        ] {
            let err = CeOverrides::parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("K_CE_OVERRIDES"), "{err}");
        }
    }
}
