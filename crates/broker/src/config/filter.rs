//! Trigger filters: the CloudEvents Subscriptions API dialects `exact`, `prefix`, `suffix`,
//! `all`, `any` and `not`, their parsing, validation and matching.
//!
//! Owns what a filter means. It never sees HTTP or events directly: matching asks a closure
//! for attribute values, so any event representation can be filtered.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use awsdynamodbsource_cloudevents::valid_attribute_name;

use super::ConfigError;

/// One filter expression. Serialized externally tagged in lower case, e.g.
/// `{"exact": {"type": "x"}}` or `{"not": {"suffix": {"subject": "y"}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Every named attribute is present and equal to the value.
    Exact(BTreeMap<String, String>),
    /// Every named attribute is present and starts with the value.
    Prefix(BTreeMap<String, String>),
    /// Every named attribute is present and ends with the value.
    Suffix(BTreeMap<String, String>),
    /// Every nested filter matches.
    All(Vec<Filter>),
    /// At least one nested filter matches.
    Any(Vec<Filter>),
    /// The nested filter does not match.
    Not(Box<Filter>),
}

const DIALECTS: &str = "exact, prefix, suffix, all, any or not";

impl Filter {
    /// Whether an event matches. `attribute` answers an attribute's value as a string, or
    /// `None` when the event lacks it. Values are compared case-sensitively.
    pub fn matches(&self, attribute: &dyn Fn(&str) -> Option<String>) -> bool {
        let each = |map: &BTreeMap<String, String>, test: fn(&str, &str) -> bool| {
            map.iter()
                .all(|(name, want)| attribute(name).is_some_and(|have| test(&have, want)))
        };
        match self {
            Filter::Exact(map) => each(map, |have, want| have == want),
            Filter::Prefix(map) => each(map, |have, want| have.starts_with(want)),
            Filter::Suffix(map) => each(map, |have, want| have.ends_with(want)),
            Filter::All(filters) => filters.iter().all(|f| f.matches(attribute)),
            Filter::Any(filters) => filters.iter().any(|f| f.matches(attribute)),
            Filter::Not(filter) => !filter.matches(attribute),
        }
    }

    /// Checks what the types cannot: non-empty attribute maps and lists, attribute names of
    /// lower-case letters and digits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_at("filter")
    }

    /// Parses one filter from YAML or JSON text (e.g. `{"exact":{"type":"x"}}`) and
    /// validates it.
    pub fn parse(text: &str) -> Result<Filter, ConfigError> {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| {
            ConfigError::Invalid(format!(
                "filter: not YAML or JSON: {}",
                one_line(&e.to_string())
            ))
        })?;
        let filter = Filter::from_value(&value, "filter")?;
        filter.validate()?;
        Ok(filter)
    }

    /// Validation with `path` (the filter object's place, e.g. `trigger "t": filters[0]`) in
    /// front of every message.
    pub(crate) fn validate_at(&self, path: &str) -> Result<(), ConfigError> {
        let here = format!("{path}.{}", self.dialect());
        let invalid = |problem: String| Err(ConfigError::Invalid(format!("{here}: {problem}")));
        match self {
            Filter::Exact(map) | Filter::Prefix(map) | Filter::Suffix(map) => {
                if map.is_empty() {
                    return invalid("needs at least one attribute".into());
                }
                for name in map.keys() {
                    if !valid_attribute_name(name) {
                        return invalid(format!(
                            "attribute name {name:?} must be lower-case letters and digits"
                        ));
                    }
                }
                Ok(())
            }
            Filter::All(filters) | Filter::Any(filters) => {
                if filters.is_empty() {
                    return invalid("needs at least one filter".into());
                }
                for (i, filter) in filters.iter().enumerate() {
                    filter.validate_at(&format!("{here}[{i}]"))?;
                }
                Ok(())
            }
            Filter::Not(filter) => filter.validate_at(&here),
        }
    }

    fn dialect(&self) -> &'static str {
        match self {
            Filter::Exact(_) => "exact",
            Filter::Prefix(_) => "prefix",
            Filter::Suffix(_) => "suffix",
            Filter::All(_) => "all",
            Filter::Any(_) => "any",
            Filter::Not(_) => "not",
        }
    }

    /// The structure of one filter object (`{dialect: body}`), with `path` in every message.
    /// Semantic checks are [`Filter::validate_at`]'s.
    pub(crate) fn from_value(value: &Value, path: &str) -> Result<Filter, ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid(format!("{path}: {problem}"));
        let Value::Object(object) = value else {
            return Err(invalid(format!(
                "a filter must be an object with one dialect ({DIALECTS}), not {}",
                describe(value)
            )));
        };
        let mut entries = object.iter();
        let (dialect, body) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            (None, _) => {
                return Err(invalid(format!(
                    "a filter object needs one dialect ({DIALECTS}), it has none"
                )));
            }
            (Some(_), Some(_)) => {
                let names: Vec<&str> = object.keys().map(String::as_str).collect();
                return Err(invalid(format!(
                    "a filter object has exactly one dialect, this one has {} ({}); use `all` to combine them",
                    names.len(),
                    names.join(", ")
                )));
            }
        };
        let here = format!("{path}.{dialect}");
        let invalid_here = |problem: String| ConfigError::Invalid(format!("{here}: {problem}"));
        let attributes = |body: &Value| -> Result<BTreeMap<String, String>, ConfigError> {
            let Value::Object(map) = body else {
                return Err(invalid_here(format!(
                    "must map attribute names to strings, not {}",
                    describe(body)
                )));
            };
            map.iter()
                .map(|(name, v)| match v {
                    Value::String(s) => Ok((name.clone(), s.clone())),
                    other => Err(invalid_here(format!(
                        "the value of {name:?} must be a string (quote it), not {}",
                        describe(other)
                    ))),
                })
                .collect()
        };
        let list = |body: &Value| -> Result<Vec<Filter>, ConfigError> {
            let Value::Array(items) = body else {
                return Err(invalid_here(format!(
                    "must be a list of filters, not {}",
                    describe(body)
                )));
            };
            items
                .iter()
                .enumerate()
                .map(|(i, item)| Filter::from_value(item, &format!("{here}[{i}]")))
                .collect()
        };
        Ok(match dialect.as_str() {
            "exact" => Filter::Exact(attributes(body)?),
            "prefix" => Filter::Prefix(attributes(body)?),
            "suffix" => Filter::Suffix(attributes(body)?),
            "all" => Filter::All(list(body)?),
            "any" => Filter::Any(list(body)?),
            "not" => Filter::Not(Box::new(Filter::from_value(body, &here)?)),
            other => {
                return Err(invalid(format!(
                    "dialect {other:?} is not supported (use {DIALECTS})"
                )));
            }
        })
    }
}

impl<'de> Deserialize<'de> for Filter {
    /// Through a JSON value, so YAML and JSON give the same messages; the result is validated.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let filter = Filter::from_value(&value, "filter").map_err(serde::de::Error::custom)?;
        filter.validate().map_err(serde::de::Error::custom)?;
        Ok(filter)
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A YAML parser's error as one line: its first line (the rest is a source snippet).
pub(crate) fn one_line(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attrs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn filter(json: &str) -> Filter {
        Filter::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn dialects_match_and_do_not_match() {
        let ev = event(&[
            ("type", "com.amazon.dynamodb.stream_record"),
            ("source", "arn:aws:dynamodb:eu-west-1:1:table/orders"),
            ("subject", "pk,sk"),
            ("myext", "Value"),
        ]);
        let table = [
            (
                r#"{"exact":{"type":"com.amazon.dynamodb.stream_record"}}"#,
                true,
            ),
            (r#"{"exact":{"type":"com.amazon.dynamodb"}}"#, false),
            (r#"{"exact":{"myext":"value"}}"#, false), // case-sensitive
            (r#"{"exact":{"myext":"Value","subject":"pk,sk"}}"#, true),
            (r#"{"exact":{"myext":"Value","subject":"pk"}}"#, false), // every attribute
            (r#"{"exact":{"time":"x"}}"#, false),                     // missing attribute
            (r#"{"prefix":{"source":"arn:aws:"}}"#, true),
            (r#"{"prefix":{"source":"arn:aws-cn:"}}"#, false),
            (r#"{"prefix":{"dataschema":""}}"#, false), // missing, even with an empty prefix
            (r#"{"prefix":{"subject":""}}"#, true),
            (r#"{"suffix":{"source":"table/orders"}}"#, true),
            (r#"{"suffix":{"source":"table/order"}}"#, false),
            (r#"{"suffix":{"nothere":"x"}}"#, false),
            (
                r#"{"all":[{"exact":{"subject":"pk,sk"}},{"prefix":{"type":"com."}}]}"#,
                true,
            ),
            (
                r#"{"all":[{"exact":{"subject":"pk,sk"}},{"prefix":{"type":"org."}}]}"#,
                false,
            ),
            (
                r#"{"any":[{"exact":{"subject":"nope"}},{"prefix":{"type":"com."}}]}"#,
                true,
            ),
            (
                r#"{"any":[{"exact":{"subject":"nope"}},{"prefix":{"type":"org."}}]}"#,
                false,
            ),
            (r#"{"not":{"exact":{"subject":"pk,sk"}}}"#, false),
            (r#"{"not":{"exact":{"subject":"other"}}}"#, true),
            (r#"{"not":{"exact":{"missing":"x"}}}"#, true),
            (
                r#"{"all":[{"any":[{"prefix":{"source":"arn:aws"}},{"not":{"suffix":{"subject":"x"}}}]},{"not":{"any":[{"exact":{"type":"a"}}]}}]}"#,
                true,
            ),
            (
                r#"{"all":[{"any":[{"prefix":{"source":"x"}},{"not":{"suffix":{"subject":"sk"}}}]}]}"#,
                false,
            ),
        ];
        for (json, want) in table {
            assert_eq!(filter(json).matches(&ev), want, "{json}");
        }
    }

    #[test]
    fn yaml_and_json_give_the_same_filter() {
        let yaml = "any:\n- prefix: {source: \"arn:aws\"}\n- not: {suffix: {subject: x}}\n";
        let json =
            r#"{"any":[{"prefix":{"source":"arn:aws"}},{"not":{"suffix":{"subject":"x"}}}]}"#;
        assert_eq!(filter(yaml), filter(json));
        let via_yaml_serde: Filter = serde_saphyr::from_str(json).unwrap();
        assert_eq!(via_yaml_serde, filter(json));
        let via_serde: Filter = serde_json::from_str(json).unwrap();
        assert_eq!(via_serde, filter(json));
        assert_eq!(serde_json::to_string(&via_serde).unwrap(), json);
    }

    #[test]
    fn serde_refuses_invalid_filters_too() {
        let err = serde_json::from_str::<Filter>(r#"{"exact":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("filter.exact: needs at least one attribute"),
            "{err}"
        );
        let err = serde_saphyr::from_str::<Filter>("sql: x")
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"dialect "sql" is not supported"#), "{err}");
    }

    #[test]
    fn invalid_filters_are_named() {
        let cases = [
            (r#"{}"#, "filter: a filter object needs one dialect"),
            (
                r#"{"exact":{"type":"a"},"prefix":{"type":"b"}}"#,
                "filter: a filter object has exactly one dialect, this one has 2 (exact, prefix)",
            ),
            (
                r#"{"sql":"type = 'x'"}"#,
                r#"filter: dialect "sql" is not supported"#,
            ),
            (
                r#"{"exact":{}}"#,
                "filter.exact: needs at least one attribute",
            ),
            (
                r#"{"prefix":{}}"#,
                "filter.prefix: needs at least one attribute",
            ),
            (
                r#"{"suffix":{}}"#,
                "filter.suffix: needs at least one attribute",
            ),
            (
                r#"{"exact":{"Type":"x"}}"#,
                r#"filter.exact: attribute name "Type" must be lower-case letters and digits"#,
            ),
            (
                r#"{"any":[{"exact":{"type":"x"}},{"prefix":{"my_ext":"x"}}]}"#,
                r#"filter.any[1].prefix: attribute name "my_ext""#,
            ),
            (r#"{"all":[]}"#, "filter.all: needs at least one filter"),
            (
                r#"{"not":{"any":[]}}"#,
                "filter.not.any: needs at least one filter",
            ),
            (
                r#"{"exact":{"type":1}}"#,
                r#"filter.exact: the value of "type" must be a string"#,
            ),
            (
                r#"{"exact":["type"]}"#,
                "filter.exact: must map attribute names to strings",
            ),
            (
                r#"{"any":{"exact":{"type":"x"}}}"#,
                "filter.any: must be a list of filters",
            ),
            (r#""exact""#, "filter: a filter must be an object"),
            (
                r#"{"not":{"sql":"x"}}"#,
                r#"filter.not: dialect "sql" is not supported"#,
            ),
        ];
        for (json, want) in cases {
            let err = Filter::parse(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: got {err:?}, want {want:?}");
            assert!(!err.contains('\n'), "{err:?}");
        }
    }
}
