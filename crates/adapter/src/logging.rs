//! Logs on standard error: JSON lines shaped like the original's (Knative's
//! zap): lower-case `level`, `ts`, `logger`, `msg`, then the event's fields —
//! tools that scan those logs (tmctl looks for `error`/`fatal` levels) keep
//! working. `LOG_FORMAT=text` gives plain lines for people.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Our crates log at `level`; libraries at warn, except the credential
/// chain's warning (a Debug dump), which the startup check says in one line.
/// `RUST_LOG`, when set, wins.
fn filter(level: Level) -> EnvFilter {
    let level = level.as_str().to_ascii_lowercase();
    EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,aws_config::meta::credentials::chain=error,awsdynamodb_source={level},awsdynamodbsource_adapter={level}"
        ))
    })
}

pub fn init(format: LogFormat, level: Level, namespace: Option<&str>, name: Option<&str>) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter(level));
    let result = match format {
        LogFormat::Json => builder
            .event_format(JsonLines {
                namespace: namespace.map(str::to_owned),
                name: name.map(str::to_owned),
            })
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).with_target(false).try_init(),
    };
    // Already set (tests): keep the first.
    drop(result);
}

/// A line at level `fatal` for the error that stops the process, written
/// directly so it comes out even before logging is set up.
pub fn fatal(format: LogFormat, msg: &str) {
    let line = match format {
        LogFormat::Json => json_line("fatal", "awsdynamodbsource", msg, &[]),
        LogFormat::Text => format!("{} FATAL {msg}", now()),
    };
    eprintln!("{line}");
}

/// One log line, members in zap's order: level, ts, logger, msg, the rest.
fn json_line(level: &str, logger: &str, msg: &str, rest: &[(String, Value)]) -> String {
    let mut line = String::with_capacity(128 + msg.len());
    line.push('{');
    let fixed = [
        ("level", level),
        ("ts", &now()),
        ("logger", logger),
        ("msg", msg),
    ];
    for (i, (k, v)) in fixed.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&Value::from(*k).to_string());
        line.push(':');
        line.push_str(&Value::from(*v).to_string());
    }
    for (k, v) in rest {
        line.push(',');
        line.push_str(&Value::from(k.as_str()).to_string());
        line.push(':');
        line.push_str(&v.to_string());
    }
    line.push('}');
    line
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

struct JsonLines {
    namespace: Option<String>,
    name: Option<String>,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut rest = Vec::with_capacity(fields.rest.len() + 2);
        if let Some(ns) = &self.namespace {
            rest.push(("namespace".to_owned(), Value::from(ns.as_str())));
        }
        if let Some(name) = &self.name {
            rest.push(("name".to_owned(), Value::from(name.as_str())));
        }
        rest.extend(fields.rest);
        let level = meta.level().as_str().to_ascii_lowercase();
        let logger = meta.target().replace("::", ".");
        let line = json_line(
            &level,
            &logger,
            fields.message.as_deref().unwrap_or_default(),
            &rest,
        );
        writeln!(writer, "{line}")
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.rest.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}
