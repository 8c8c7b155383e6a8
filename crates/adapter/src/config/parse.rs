//! clap's value parsers, one per kind of value. Each is given the variable's
//! name, so that a bad value's error is one line naming the variable (and
//! never showing a password); [`error_line`] reports it as such.

use std::path::PathBuf;
use std::time::Duration;

use awsdynamodb_source::RecordFilter;
use awsdynamodb_source::{CeOverrides, DataFormat, Extensions, SubjectMode};
use awsdynamodb_source::{ContentMode, Url, parse_sink_url_of};
use awsdynamodb_source::{StartingPosition, TableArn, duration_text};
use awsdynamodbsource_api::vars::{
    AWS_ASSUME_ROLE_ARN, CE_MODE, CHECKPOINT_STORE, COORDINATION, DATASCHEMA_BASE, LOG_FORMAT,
    LOG_LEVEL, MAX_ATTEMPTS, SNAPSHOT, SNAPSHOT_READ_UNITS, SNAPSHOT_RULE,
};
use clap::error::ErrorKind;

use super::{CheckpointLocation, Coordination, LogFormat};

/// A value parser clap can use.
pub trait Parse<T>: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {}
impl<T, F: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static> Parse<T> for F {}

/// What a variable gives where a blank value means unset: `None`. An alias,
/// as clap's derive reads a field spelled `Option<Option<T>>` as a flag whose
/// value may be left out.
pub type OrBlank<T> = Option<T>;

/// `parse`, except that a blank value is `None`.
pub fn blank_or<T>(parse: impl Parse<T>) -> impl Parse<OrBlank<T>> {
    move |s: &str| {
        if s.trim().is_empty() {
            Ok(None)
        } else {
            parse(s).map(Some)
        }
    }
}

/// A clap error as one line: a bad value's own message (it names the
/// variable), else clap's first line.
pub fn error_line(e: &clap::Error) -> String {
    match (e.kind(), std::error::Error::source(e)) {
        (ErrorKind::ValueValidation, Some(reason)) => reason.to_string(),
        _ => e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned(),
    }
}

/// The log format asked for (flag, else variable), read apart from clap:
/// clap gives nothing when any value is bad, and that error is logged in
/// this format all the same.
pub fn requested_log_format() -> LogFormat {
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let mut flag = None;
    while let Some(arg) = args.next() {
        if arg == "--log-format" {
            flag = args.next();
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            flag = Some(value.to_owned());
        }
    }
    flag.or_else(|| std::env::var(LOG_FORMAT).ok())
        .and_then(|f| log_format(&f).ok())
        .unwrap_or(LogFormat::Json)
}

pub fn log_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" | "console" => Ok(LogFormat::Text),
        _ => Err(format!("{LOG_FORMAT} {s:?} is not json or text")),
    }
}

pub fn log_level(s: &str) -> Result<tracing::Level, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{LOG_LEVEL} {s:?} is not error, warn, info, debug or trace"))
}

/// `250ms`, `30s`, `2m`, `1h`, or whole seconds.
pub fn parse_duration(var: &str, s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("{var} {s:?} is not a duration (like 250ms, 30s, 2m, 1h or whole seconds)")
    })?;
    match unit.trim() {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "{var} {s:?} is not a duration (like 250ms, 30s, 2m, 1h or whole seconds)"
        )),
    }
}

pub fn duration(var: &'static str) -> impl Parse<Duration> {
    move |s: &str| parse_duration(var, s)
}

/// A duration of at least `min`: below it, a setting costs (calls to AWS)
/// or breaks (every attempt timing out) more than it could give.
pub fn duration_at_least(var: &'static str, min: Duration) -> impl Parse<Duration> {
    move |s: &str| match parse_duration(var, s)? {
        d if d < min => Err(format!(
            "{var} {s:?} is below its minimum, {}",
            duration_text(min)
        )),
        d => Ok(d),
    }
}

/// A port from 1 to 65535 (0, "any free port", cannot be found by a probe).
pub fn port(var: &'static str) -> impl Parse<u16> {
    move |s: &str| {
        s.trim()
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{var} {s:?} is not a port number from 1 to 65535"))
    }
}

/// A whole number from 1 to 10000.
pub fn count(var: &'static str) -> impl Parse<usize> {
    move |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| format!("{var} {s:?} is not a whole number from 1 to 10000"))
    }
}

/// `SNAPSHOT`: whether the first start sends the table's items (`initial`).
pub fn snapshot(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" | "" => Ok(false),
        "initial" => Ok(true),
        _ => Err(format!("{SNAPSHOT} {s:?} is not {SNAPSHOT_RULE}")),
    }
}

/// `SNAPSHOT_READ_UNITS`: read capacity units per second, more than 0.
pub fn read_units(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .ok_or_else(|| {
            format!("{SNAPSHOT_READ_UNITS} {s:?} is not a number of read units per second above 0")
        })
}

/// `MAX_ATTEMPTS`: a whole number of at least 1.
pub fn attempts(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{MAX_ATTEMPTS} {s:?} is not a whole number of at least 1"))
}

/// An http(s) URL of a sink; the error never shows its password.
pub fn sink_url(var: &'static str) -> impl Parse<Url> {
    move |s: &str| parse_sink_url_of(var, s.trim()).map_err(|e| e.to_string())
}

/// Any text, as given.
pub fn text(s: &str) -> Result<String, String> {
    Ok(s.to_owned())
}

pub fn table_arn(s: &str) -> Result<TableArn, String> {
    s.trim().parse::<TableArn>().map_err(|e| e.to_string())
}

pub fn starting_position(s: &str) -> Result<StartingPosition, String> {
    s.parse::<StartingPosition>().map_err(|e| e.to_string())
}

pub fn ce_overrides(s: &str) -> Result<CeOverrides, String> {
    CeOverrides::parse(s).map_err(|e| e.to_string())
}

/// `file:<directory>`, `memory:` or `kubernetes:<configmap>`.
pub fn checkpoint_store(s: &str) -> Result<CheckpointLocation, String> {
    let s = s.trim();
    if s == "memory:" {
        return Ok(CheckpointLocation::Memory);
    }
    match (s.strip_prefix("file:"), s.strip_prefix("kubernetes:")) {
        (Some(dir), _) if !dir.is_empty() => Ok(CheckpointLocation::File(PathBuf::from(dir))),
        (_, Some(name)) if !name.is_empty() => Ok(CheckpointLocation::Kubernetes(name.to_owned())),
        _ => Err(format!(
            "{CHECKPOINT_STORE} {s:?} is not file:<directory>, memory: or kubernetes:<configmap>"
        )),
    }
}

pub fn coordination(s: &str) -> Result<Coordination, String> {
    let s = s.trim();
    if s == "kubernetes" {
        return Ok(Coordination::Kubernetes);
    }
    match s.strip_prefix("dynamodb:") {
        Some(table) if is_table_name(table) => Ok(Coordination::DynamoDb(table.to_owned())),
        _ => Err(format!(
            "{COORDINATION} {s:?} is neither dynamodb:<table> (a DynamoDB table name: 3 to 255 letters, digits, '_', '-' or '.') nor kubernetes"
        )),
    }
}

fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub fn role_arn(role: &str) -> Result<String, String> {
    if role.starts_with("arn:") && role.contains(":iam::") && role.contains(":role/") {
        Ok(role.to_owned())
    } else {
        Err(format!(
            "{AWS_ASSUME_ROLE_ARN} {role:?} is not an IAM role ARN"
        ))
    }
}

pub fn data_format(s: &str) -> Result<DataFormat, String> {
    s.trim().parse::<DataFormat>().map_err(|e| e.to_string())
}

pub fn subject(s: &str) -> Result<SubjectMode, String> {
    s.trim().parse::<SubjectMode>().map_err(|e| e.to_string())
}

pub fn extensions(s: &str) -> Result<Extensions, String> {
    s.parse::<Extensions>().map_err(|e| e.to_string())
}

/// A URL, kept as text (trimmed).
pub fn dataschema_base(s: &str) -> Result<String, String> {
    let base = s.trim();
    Url::parse(base)
        .map(|_| base.to_owned())
        .map_err(|e| format!("{DATASCHEMA_BASE} {base:?} is not a URL ({e})"))
}

pub fn ce_mode(s: &str) -> Result<ContentMode, String> {
    s.trim()
        .parse::<ContentMode>()
        .map_err(|e| format!("{CE_MODE}: {e}"))
}

/// Its errors name FILTER themselves (`FILTER[0].eventName: ...`).
pub fn filter(s: &str) -> Result<RecordFilter, String> {
    RecordFilter::parse(s).map_err(|e| e.to_string())
}
