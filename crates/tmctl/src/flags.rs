//! `create source`'s dotted flags: `--auth.credentials.accessKeyID KEY`
//! becomes `spec.auth.credentials.accessKeyID`, for every field the CRD's
//! schema has.
//!
//! The schema decides what a flag may be and how its value is typed, so
//! that a field added to the CRD is a flag at once. Values that name a
//! readable file are replaced by the file's contents (as the original
//! tmctl does). Credential fields (the CRD's `value`/`valueFromSecret`
//! pairs) never stay in the spec: their values go to the source's Secret
//! and the spec refers to it. Errors never repeat a credential's value.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// What the flags of `create source` say.
#[derive(Debug, Default)]
pub struct SourceFlags {
    pub name: Option<String>,
    pub broker: Option<String>,
    pub wait: Option<Duration>,
    pub help: bool,
    /// The spec as the flags give it, with credentials as Secret references
    /// to `<name>-secret` (filled in by [`SourceFlags::spec_for`]).
    spec: Map<String, Value>,
    /// Credential paths and values, moved to the Secret.
    credentials: Vec<(Vec<String>, String)>,
}

impl SourceFlags {
    /// The spec, with credentials referring to Secret `secret`, and the
    /// Secret's keys and values.
    pub fn spec_for(&self, secret: &str) -> (Value, BTreeMap<String, String>) {
        let mut spec = Value::Object(self.spec.clone());
        let mut values = BTreeMap::new();
        for (path, value) in &self.credentials {
            let key = path.last().cloned().unwrap_or_default();
            set(
                &mut spec,
                path,
                json!({"valueFromSecret": {"name": secret, "key": key}}),
            );
            values.insert(key, value.clone());
        }
        (spec, values)
    }
}

/// The `spec` schema of the CRD.
fn spec_schema() -> Value {
    awsdynamodbsource_api::crd_schema()["properties"]["spec"].clone()
}

/// A `value` or `valueFromSecret` credential field of the CRD.
fn is_credential(node: &Value) -> bool {
    node["properties"].get("valueFromSecret").is_some()
}

pub fn parse(args: &[String]) -> Result<SourceFlags> {
    let schema = spec_schema();
    let mut flags = SourceFlags::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--help" || arg == "-h" {
            flags.help = true;
            continue;
        }
        let Some(flag) = arg.strip_prefix("--") else {
            bail!(
                "unexpected argument {arg:?}: flags look like --arn ARN or --auth.credentials.accessKeyID=KEY"
            );
        };
        let (flag, value) = match flag.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => {
                let Some(value) = args.get(i) else {
                    bail!("--{flag} needs a value");
                };
                i += 1;
                (flag.to_owned(), value.clone())
            }
        };
        if !seen.insert(flag.clone()) {
            bail!("--{flag} is given twice");
        }
        let value = file_or_value(&flag, value)?;
        match flag.as_str() {
            "name" => flags.name = Some(value),
            "broker" => flags.broker = Some(value),
            "wait" => {
                let secs: u64 = value
                    .trim_end_matches('s')
                    .parse()
                    .with_context(|| format!("--wait: expected seconds, got {value:?}"))?;
                flags.wait = Some(Duration::from_secs(secs));
            }
            _ => put_spec_field(&schema, &mut flags, &flag, value)?,
        }
    }
    Ok(flags)
}

/// The file's contents when `value` names a readable file (one trailing
/// newline dropped: key files end with one), else `value`.
fn file_or_value(flag: &str, value: String) -> Result<String> {
    let path = std::path::Path::new(&value);
    if value.is_empty() || !path.is_file() {
        return Ok(value);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--{flag}: cannot read the file {value}"))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

/// Puts `--flag value` into the spec, typed as the schema says, or among
/// the credentials when the flag names one.
fn put_spec_field(
    schema: &Value,
    flags: &mut SourceFlags,
    flag: &str,
    value: String,
) -> Result<()> {
    let path: Vec<String> = flag.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        bail!("--{flag} is not a field path");
    }
    let node = field_schema(schema, flag, &path)?;
    if is_credential(node) {
        flags.credentials.push((path, value));
        return Ok(());
    }
    let typed = typed_value(node, flag, value)?;
    let mut spec = Value::Object(std::mem::take(&mut flags.spec));
    set(&mut spec, &path, typed);
    if let Value::Object(map) = spec {
        flags.spec = map;
    }
    Ok(())
}

/// The schema of the field at `path`; an unknown field is an error that
/// lists the fields there are.
fn field_schema<'a>(schema: &'a Value, flag: &str, path: &[String]) -> Result<&'a Value> {
    let mut node = schema;
    for (depth, segment) in path.iter().enumerate() {
        node = if let Some(child) = node["properties"].get(segment) {
            child
        } else if node["additionalProperties"].is_object() {
            &node["additionalProperties"]
        } else {
            return Err(unknown_field(flag, node, &path[..depth], segment));
        };
    }
    Ok(node)
}

/// Says that `node`, at `at` in the spec, has no field `segment`, and
/// which fields it has.
fn unknown_field(flag: &str, node: &Value, at: &[String], segment: &str) -> anyhow::Error {
    let fields: Vec<&String> = node["properties"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    let within = if at.is_empty() {
        "the AWSDynamoDBSource spec".to_owned()
    } else {
        format!("spec.{}", at.join("."))
    };
    if fields.is_empty() {
        return anyhow::anyhow!("unknown flag --{flag}: {within} has no fields");
    }
    let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    anyhow::anyhow!(
        "unknown flag --{flag}: {within} has no field {segment:?} (it has {}); `tmctl create source awsdynamodb --help` lists the flags",
        fields.join(", ")
    )
}

/// `value` as the JSON type the field's schema `node` has.
fn typed_value(node: &Value, flag: &str, value: String) -> Result<Value> {
    Ok(match node["type"].as_str() {
        Some("string") | None => Value::String(value),
        Some("integer") => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| anyhow::anyhow!("--{flag}: expected a whole number, got {value:?}"))?,
        Some("number") => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .with_context(|| format!("--{flag}: expected a number, got {value:?}"))?,
        Some("boolean") => match value.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => bail!("--{flag}: expected true or false, got {value:?}"),
        },
        // A list of words may be written as `a,b`.
        Some("array")
            if node["items"]["type"] == "string" && !value.trim_start().starts_with('[') =>
        {
            Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect(),
            )
        }
        Some(kind @ ("object" | "array")) => {
            let parsed: Value = serde_json::from_str(&value)
                .with_context(|| format!("--{flag}: expected JSON (an {kind})"))?;
            parsed
        }
        Some(other) => bail!("--{flag}: fields of type {other} are not supported as flags"),
    })
}

/// Sets `path` in `root`, making objects on the way.
fn set(root: &mut Value, path: &[String], value: Value) {
    let mut node = root;
    for segment in &path[..path.len().saturating_sub(1)] {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node
            .as_object_mut()
            .map(|m| m.entry(segment.clone()).or_insert_with(|| json!({})))
            .expect("made an object above");
    }
    if let (Some(map), Some(last)) = (node.as_object_mut(), path.last()) {
        map.insert(last.clone(), value);
    }
}

/// `--help` for `create source awsdynamodb`: every flag the schema allows.
pub fn help() -> String {
    let mut out = String::from(
        "Create an AWSDynamoDBSource in the current broker and start its adapter.\n\n\
         Usage: tmctl create source awsdynamodb --arn ARN --auth.credentials.accessKeyID ID --auth.credentials.secretAccessKey KEY [FLAGS]\n\n\
         A value that names a readable file is replaced by the file's contents.\n\
         Credentials go to the Secret <name>-secret; the spec refers to it.\n\n\
         Options:\n\
         \x20 --name NAME        the source's name (default: <broker>-awsdynamodbsource)\n\
         \x20 --broker NAME      the broker (default: the current one)\n\
         \x20 --wait SECONDS     how long to wait for the adapter to capture (default: 30)\n\n\
         Spec fields (AWSDynamoDBSource spec, as dotted flags):\n",
    );
    let mut lines = Vec::new();
    list(&spec_schema(), "", &mut lines);
    for (flag, kind, doc) in lines {
        out.push_str(&format!("  --{flag} <{kind}>\n"));
        if !doc.is_empty() {
            out.push_str(&format!("        {doc}\n"));
        }
    }
    out
}

fn list(node: &Value, prefix: &str, out: &mut Vec<(String, String, String)>) {
    let Some(props) = node["properties"].as_object() else {
        return;
    };
    for (name, child) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        // The whole description, on one line (doc comments wrap).
        let doc = child["description"]
            .as_str()
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        // Deep Kubernetes types (affinity, resources, ...) are one JSON flag.
        let deep = prefix.starts_with("adapterOverrides") || path == "sink.ref";
        if is_credential(child) {
            let doc = "kept in the Secret <name>-secret, not in the spec".to_owned();
            out.push((path, "value or file".into(), doc));
        } else if child["type"] == "object" && child["properties"].is_object() && !deep {
            list(child, &path, out);
        } else {
            let kind = match child["type"].as_str() {
                Some("object") | Some("array") => "JSON".to_owned(),
                Some(t) => t.to_owned(),
                None => "value".to_owned(),
            };
            out.push((path, kind, doc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_seed_command_becomes_a_spec_and_a_secret() {
        let f = parse(&args(&[
            "--arn",
            "arn:aws:dynamodb:us-west-2:123456789012:table/t1",
            "--auth.credentials.accessKeyID",
            "AKIDEXAMPLE",
            "--auth.credentials.secretAccessKey=wJalrXUtnFEMI",
            "--maxInFlight",
            "8",
            "--name",
            "src",
        ]))
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("src"));
        let (spec, values) = f.spec_for("src-secret");
        assert_eq!(
            spec,
            json!({
                "arn": "arn:aws:dynamodb:us-west-2:123456789012:table/t1",
                "maxInFlight": 8,
                "auth": {"credentials": {
                    "accessKeyID": {"valueFromSecret": {"name": "src-secret", "key": "accessKeyID"}},
                    "secretAccessKey": {"valueFromSecret": {"name": "src-secret", "key": "secretAccessKey"}},
                }},
            })
        );
        assert_eq!(values["accessKeyID"], "AKIDEXAMPLE");
        assert_eq!(values["secretAccessKey"], "wJalrXUtnFEMI");
    }

    #[test]
    fn a_snapshot_is_a_flag_and_help_says_so() {
        let f = parse(&args(&["--snapshot", "initial"])).unwrap();
        assert_eq!(f.spec_for("s").0, json!({"snapshot": "initial"}));
        assert!(help().contains("  --snapshot <string>\n        off (default) or initial"));
    }

    #[test]
    fn a_value_naming_a_file_is_the_files_contents() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "from-a-file\n").unwrap();
        let f = parse(&args(&[
            "--auth.credentials.secretAccessKey",
            key.to_str().unwrap(),
        ]))
        .unwrap();
        let (_, values) = f.spec_for("s");
        assert_eq!(values["secretAccessKey"], "from-a-file");
    }

    #[test]
    fn the_event_options_are_flags_too() {
        let f = parse(&args(&[
            "--dataFormat",
            "plain",
            "--extensions",
            "sequence,dynamodbtable",
            "--filters",
            r#"[{"eventName":["INSERT"]}]"#,
            "--delivery.deadLetterSink.uri",
            "http://127.0.0.1:9/",
            "--delivery.maxAttempts",
            "3",
        ]))
        .unwrap();
        let (spec, _) = f.spec_for("s");
        assert_eq!(spec["dataFormat"], "plain");
        assert_eq!(spec["extensions"], json!(["sequence", "dynamodbtable"]));
        assert_eq!(spec["filters"][0]["eventName"][0], "INSERT");
        assert_eq!(
            spec["delivery"]["deadLetterSink"]["uri"],
            "http://127.0.0.1:9/"
        );
        assert_eq!(spec["delivery"]["maxAttempts"], 3);
    }

    #[test]
    fn maps_and_json_fields() {
        let f = parse(&args(&[
            "--adapterOverrides.labels.team",
            "data",
            "--adapterOverrides.env",
            r#"[{"name":"LOG_LEVEL","value":"debug"}]"#,
        ]))
        .unwrap();
        let (spec, _) = f.spec_for("s");
        assert_eq!(spec["adapterOverrides"]["labels"]["team"], "data");
        assert_eq!(spec["adapterOverrides"]["env"][0]["value"], "debug");
    }

    #[test]
    fn bad_flags_say_what_is_wrong_without_repeating_credentials() {
        let e = |a: &[&str]| parse(&args(a)).unwrap_err().to_string();
        let unknown = e(&["--nope", "x"]);
        assert!(
            unknown.contains("unknown flag --nope") && unknown.contains("arn"),
            "{unknown}"
        );
        assert!(
            e(&["--auth.credentials.foo", "x"])
                .contains("spec.auth.credentials has no field \"foo\"")
        );
        assert!(e(&["--maxInFlight", "many"]).contains("expected a whole number"));
        assert!(e(&["--arn"]).contains("--arn needs a value"));
        assert!(e(&["--arn", "a", "--arn", "b"]).contains("given twice"));
        assert!(e(&["stray"]).contains("unexpected argument"));
        let twice = e(&[
            "--auth.credentials.secretAccessKey",
            "TOPSECRET",
            "--auth.credentials.secretAccessKey",
            "TOPSECRET",
        ]);
        assert!(!twice.contains("TOPSECRET"), "{twice}");
    }

    #[test]
    fn help_lists_the_schema_fields() {
        let h = help();
        for flag in [
            "--arn <string>",
            "--auth.credentials.accessKeyID <value or file>",
            "--auth.iamrole <string>",
            "--maxInFlight <integer>",
            "--adapterOverrides.env <JSON>",
        ] {
            assert!(h.contains(flag), "{flag} missing from:\n{h}");
        }
    }
}
