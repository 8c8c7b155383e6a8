//! The broker's configuration file (`broker.conf`, YAML): triggers, their filters, targets and
//! delivery options, with validation whose messages name the trigger and the field.
//!
//! tmctl writes this file with these same types, so they are public and serialize tidily
//! (empty and absent fields are left out). This module never touches the network or running
//! triggers; it only reads, checks and writes configuration.

mod duration;
mod filter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use duration::parse_iso8601_duration;
pub use filter::Filter;
pub(crate) use filter::one_line;

/// The default `backoffDelay`.
pub const DEFAULT_BACKOFF_DELAY: Duration = Duration::from_millis(200);

/// A configuration problem, as one line of text.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("config file {}: {message}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The text is not a valid configuration (the message names trigger and field).
    #[error("{0}")]
    Invalid(String),
}

/// The whole file: triggers by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Triggers by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, Trigger>,
}

/// Which events go where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Every filter must match; none means every event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Where matching events are POSTed.
    pub target: Target,
}

/// A trigger's destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// Absolute http(s) URL.
    pub url: String,
    /// Retries, backoff and dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_options: Option<DeliveryOptions>,
}

/// How failed deliveries are retried and where they go when retries run out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryOptions {
    /// Retries after the first attempt; absent: retry until delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    /// ISO 8601 duration (default `PT0.2S`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_delay: Option<String>,
    /// Default exponential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_policy: Option<BackoffPolicy>,
    /// Where events go when delivery fails for good.
    #[serde(
        rename = "deadLetterURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dead_letter_url: Option<String>,
}

/// How the delay between retries grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffPolicy {
    /// delay · 2^n
    #[default]
    Exponential,
    /// delay · (n + 1)
    Linear,
}

impl BrokerConfig {
    /// Parses and validates YAML (JSON is YAML too). An empty document is an empty config.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let document: Value = serde_saphyr::from_str(text).map_err(|e| {
            ConfigError::Invalid(format!("not valid YAML: {}", one_line(&e.to_string())))
        })?;
        let config = BrokerConfig::from_value(document)?;
        config.validate()?;
        Ok(config)
    }

    /// The YAML text of this config.
    pub fn to_yaml(&self) -> String {
        // Serializing plain maps, strings and numbers cannot fail.
        serde_saphyr::to_string(self).unwrap_or_default()
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        BrokerConfig::from_yaml(&text).map_err(|e| ConfigError::InFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks names, filters, URLs and durations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, trigger) in &self.triggers {
            let at = |field: &str, problem: String| {
                ConfigError::Invalid(format!("trigger {name:?}: {field}: {problem}"))
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(ConfigError::Invalid(format!(
                    "trigger {name:?}: a trigger name is letters, digits, '-', '_' and '.'"
                )));
            }
            for (i, filter) in trigger.filters.iter().enumerate() {
                filter.validate_at(&format!("trigger {name:?}: filters[{i}]"))?;
            }
            check_url(&trigger.target.url).map_err(|p| at("target.url", p))?;
            if let Some(options) = &trigger.target.delivery_options {
                if let Some(delay) = &options.backoff_delay {
                    parse_iso8601_duration(delay)
                        .map_err(|e| at("target.deliveryOptions.backoffDelay", e.to_string()))?;
                }
                if let Some(url) = &options.dead_letter_url {
                    check_url(url).map_err(|p| at("target.deliveryOptions.deadLetterURL", p))?;
                }
            }
        }
        Ok(())
    }

    /// The structure, from a parsed document, with trigger names in messages.
    fn from_value(document: Value) -> Result<Self, ConfigError> {
        let mut top = match document {
            Value::Null => return Ok(BrokerConfig::default()),
            Value::Object(map) => map,
            _ => {
                return Err(ConfigError::Invalid(
                    "the config must be a mapping with `triggers`".into(),
                ));
            }
        };
        let triggers = top.remove("triggers");
        if let Some(unknown) = top.keys().next() {
            return Err(ConfigError::Invalid(format!(
                "unknown top-level field {unknown:?} (expected `triggers`)"
            )));
        }
        let triggers = match triggers {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(ConfigError::Invalid(
                    "`triggers` must map trigger names to triggers".into(),
                ));
            }
        };
        let mut config = BrokerConfig::default();
        for (name, body) in triggers {
            let at = |problem: String| ConfigError::Invalid(format!("trigger {name:?}: {problem}"));
            let Value::Object(mut fields) = body else {
                return Err(at(
                    "must be a mapping with `target` and optional `filters`".into()
                ));
            };
            let filters = match fields.remove("filters") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        Filter::from_value(item, &format!("trigger {name:?}: filters[{i}]"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(at("filters: must be a list of filters".into())),
            };
            let target = fields
                .remove("target")
                .ok_or_else(|| at("target: missing".into()))?;
            if let Some(unknown) = fields.keys().next() {
                return Err(at(format!(
                    "unknown field {unknown:?} (expected `filters` and `target`)"
                )));
            }
            let target: Target =
                serde_json::from_value(target).map_err(|e| at(format!("target: {e}")))?;
            config.triggers.insert(name, Trigger { filters, target });
        }
        Ok(config)
    }
}

impl DeliveryOptions {
    /// The backoff delay, `PT0.2S` when absent (or, defensively, invalid).
    pub(crate) fn backoff_delay(&self) -> Duration {
        self.backoff_delay
            .as_deref()
            .and_then(|d| parse_iso8601_duration(d).ok())
            .unwrap_or(DEFAULT_BACKOFF_DELAY)
    }
}

/// An absolute http or https URL with a host.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} is not an absolute http(s) URL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
triggers:
  my-trigger:
    filters:
    - exact: {type: com.amazon.dynamodb.stream_record}
    - any: [{prefix: {source: "arn:aws"}}, {not: {suffix: {subject: "x"}}}]
    target:
      url: http://127.0.0.1:9000/
      deliveryOptions:
        retry: 5
        backoffDelay: PT0.2S
        backoffPolicy: linear
        deadLetterURL: http://127.0.0.1:9001/
  plain:
    target:
      url: https://example.com/events
"#;

    #[test]
    fn parses_the_documented_example() {
        let config = BrokerConfig::from_yaml(EXAMPLE).unwrap();
        let trigger = &config.triggers["my-trigger"];
        assert_eq!(trigger.filters.len(), 2);
        assert_eq!(
            trigger.filters[0],
            Filter::Exact([("type".into(), "com.amazon.dynamodb.stream_record".into())].into())
        );
        let options = trigger.target.delivery_options.as_ref().unwrap();
        assert_eq!(options.retry, Some(5));
        assert_eq!(options.backoff_policy, Some(BackoffPolicy::Linear));
        assert_eq!(options.backoff_delay(), Duration::from_millis(200));
        assert_eq!(
            options.dead_letter_url.as_deref(),
            Some("http://127.0.0.1:9001/")
        );
        let plain = &config.triggers["plain"];
        assert!(plain.filters.is_empty());
        assert_eq!(plain.target.delivery_options, None);
    }

    #[test]
    fn yaml_round_trips_tidily() {
        let mut config = BrokerConfig::from_yaml(EXAMPLE).unwrap();
        // Values that look like other YAML types must stay strings.
        config.triggers.get_mut("plain").unwrap().filters = vec![Filter::Exact(
            [
                ("a".into(), "1.0".into()),
                ("b".into(), "true".into()),
                ("c".into(), "null".into()),
                ("d".into(), "".into()),
                ("e".into(), "x: y # z".into()),
            ]
            .into(),
        )];
        let yaml = config.to_yaml();
        assert_eq!(BrokerConfig::from_yaml(&yaml).unwrap(), config, "{yaml}");
        assert!(
            !yaml.contains(": null") && !yaml.contains("[]"),
            "absent fields are left out: {yaml}"
        );
        assert!(yaml.contains("deadLetterURL"), "{yaml}");
        assert!(yaml.contains("backoffPolicy: linear"), "{yaml}");
        let empty = BrokerConfig::default().to_yaml();
        assert_eq!(
            BrokerConfig::from_yaml(&empty).unwrap(),
            BrokerConfig::default(),
            "{empty}"
        );
    }

    #[test]
    fn plain_serde_reads_the_same_config() {
        let via_serde: BrokerConfig = serde_saphyr::from_str(EXAMPLE).unwrap();
        assert_eq!(via_serde, BrokerConfig::from_yaml(EXAMPLE).unwrap());
    }

    #[test]
    fn empty_documents_are_empty_configs() {
        for text in ["", "\n", "triggers:\n", "triggers: {}\n", "{}"] {
            assert_eq!(
                BrokerConfig::from_yaml(text).unwrap(),
                BrokerConfig::default(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn validation_messages_name_trigger_and_field() {
        let target = "target: {url: 'http://127.0.0.1:1/'}";
        let cases = [
            (
                format!("triggers:\n  t1:\n    filters: [{{exact: {{type: a}}, prefix: {{type: b}}}}]\n    {target}\n"),
                r#"trigger "t1": filters[0]: a filter object has exactly one dialect"#,
            ),
            (
                format!("triggers:\n  t1:\n    filters: [{{}}]\n    {target}\n"),
                r#"trigger "t1": filters[0]: a filter object needs one dialect"#,
            ),
            (
                format!("triggers:\n  t2:\n    filters: [{{sql: \"type = 'x'\"}}]\n    {target}\n"),
                r#"trigger "t2": filters[0]: dialect "sql" is not supported"#,
            ),
            (
                format!("triggers:\n  t3:\n    filters: [{{exact: {{}}}}]\n    {target}\n"),
                r#"trigger "t3": filters[0].exact: needs at least one attribute"#,
            ),
            (
                format!("triggers:\n  t4:\n    filters: [{{exact: {{type: a}}}}, {{any: [{{suffix: {{Subject: x}}}}]}}]\n    {target}\n"),
                r#"trigger "t4": filters[1].any[0].suffix: attribute name "Subject" must be lower-case letters and digits"#,
            ),
            (
                "triggers:\n  t5:\n    target: {url: /relative}\n".into(),
                r#"trigger "t5": target.url: "/relative" is not a URL"#,
            ),
            (
                "triggers:\n  t6:\n    target: {url: 'ftp://host/x'}\n".into(),
                r#"trigger "t6": target.url: "ftp://host/x" is not an absolute http(s) URL"#,
            ),
            (
                "triggers:\n  t7:\n    target: {url: 'http://h/', deliveryOptions: {deadLetterURL: 'mailto:x@y'}}\n".into(),
                r#"trigger "t7": target.deliveryOptions.deadLetterURL: "mailto:x@y" is not an absolute http(s) URL"#,
            ),
            (
                "triggers:\n  t8:\n    target: {url: 'http://h/', deliveryOptions: {backoffDelay: 200ms}}\n".into(),
                r#"trigger "t8": target.deliveryOptions.backoffDelay: "200ms" is not an ISO 8601 duration"#,
            ),
            (
                "triggers:\n  t9:\n    target: {url: 'http://h/', deliveryOptions: {backoffPolicy: random}}\n".into(),
                r#"trigger "t9": target: unknown variant `random`"#,
            ),
            (
                "triggers:\n  t10:\n    target: {url: 'http://h/', deliveryOptions: {retries: 3}}\n".into(),
                r#"trigger "t10": target: unknown field `retries`"#,
            ),
            (
                "triggers:\n  t11:\n    filter: [{exact: {type: a}}]\n    target: {url: 'http://h/'}\n".into(),
                r#"trigger "t11": unknown field "filter""#,
            ),
            ("triggers:\n  t12:\n    filters: []\n".into(), r#"trigger "t12": target: missing"#),
            (
                "triggers:\n  'bad name':\n    target: {url: 'http://h/'}\n".into(),
                r#"trigger "bad name": a trigger name is"#,
            ),
            ("trigers: {}\n".into(), r#"unknown top-level field "trigers""#),
            ("triggers: [a, b]\n".into(), "`triggers` must map trigger names"),
            ("triggers: {t: {target: [}\n".into(), "not valid YAML"),
        ];
        for (yaml, want) in cases {
            let err = BrokerConfig::from_yaml(&yaml).unwrap_err().to_string();
            assert!(err.contains(want), "{yaml}\ngot:  {err}\nwant: {want}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn validate_checks_configs_built_in_code() {
        let mut config = BrokerConfig::default();
        config.triggers.insert(
            "t".into(),
            Trigger {
                filters: vec![Filter::Not(Box::new(Filter::Prefix(BTreeMap::new())))],
                target: Target {
                    url: "http://h/".into(),
                    delivery_options: None,
                },
            },
        );
        let err = config.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            r#"trigger "t": filters[0].not.prefix: needs at least one attribute"#
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.conf");
        let err = BrokerConfig::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read config file {}", missing.display())),
            "{err}"
        );
        let bad = dir.path().join("bad.conf");
        std::fs::write(&bad, "triggers:\n  t:\n    target: {url: nope}\n").unwrap();
        let err = BrokerConfig::load(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "config file {}: trigger \"t\": target.url",
                bad.display()
            )),
            "{err}"
        );
    }
}
