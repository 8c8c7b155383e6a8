//! The environment → settings, checked. Every variable is read by clap (so
//! `--help` lists them all with their defaults) as text, and checked here,
//! so that each bad value gives one line naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use awsdynamodb_source::event::{CeOverrides, EventOptions, OptionError};
use awsdynamodb_source::filter::RecordFilter;
use awsdynamodb_source::sink::{ContentMode, Url, parse_sink_url};
use awsdynamodb_source::{StartingPosition, TableArn};
use clap::Parser;

const AFTER_HELP: &str = "\
AWS credentials come from the standard sources, in this order: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; EKS IAM roles for service accounts
(AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE); profiles (AWS_PROFILE); container and
instance metadata. AWS_ASSUME_ROLE_ARN assumes that role on top of them.
AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_DYNAMODB_STREAMS) points at another endpoint, e.g.
DynamoDB Local. The region is always the ARN's; AWS_REGION is ignored.

K_LOGGING_CONFIG, K_METRICS_CONFIG and K_TRACING_CONFIG (Knative) are accepted and ignored.

The IAM policy needs exactly: dynamodb:ListStreams, dynamodb:DescribeStream,
dynamodb:GetShardIterator, dynamodb:GetRecords.";

/// Reads a DynamoDB table's stream and sends every change as a CloudEvent
/// (type com.amazon.dynamodb.stream_record), in order per item, losing
/// nothing. Configured by environment variables (or the equivalent flags).
#[derive(Debug, Parser)]
#[command(name = "awsdynamodbsource-adapter", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Table ARN: arn:{partition}:dynamodb:{region}:{account}:table/{name}. Required.
    #[arg(long, hide_env_values = true, env = "ARN", value_name = "ARN")]
    arn: Option<String>,

    /// URL events are POSTed to (CloudEvents binary mode). Unset: events are written to
    /// standard output as structured CloudEvents, one JSON per line.
    #[arg(long, hide_env_values = true, env = "K_SINK", value_name = "URL")]
    sink: Option<String>,

    /// Per-request timeout of the sink: whole seconds, or a duration like 500ms.
    #[arg(
        long,
        hide_env_values = true,
        env = "K_SINK_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS"
    )]
    sink_timeout: String,

    /// How long connecting to the sink may take; a connection not established by then is
    /// abandoned (the request goes on another connection, or is retried).
    #[arg(
        long,
        hide_env_values = true,
        env = "SINK_CONNECT_TIMEOUT",
        default_value = "2s",
        value_name = "DURATION"
    )]
    sink_connect_timeout: String,

    /// Requests to the sink at once across all shards, and so the most connections open to
    /// it. New connections are opened one at a time, as the sink answers.
    #[arg(
        long,
        hide_env_values = true,
        env = "SINK_MAX_CONNECTIONS",
        default_value = "64",
        value_name = "N"
    )]
    sink_max_connections: String,

    /// Extensions added to every event: {"extensions": {"name": "value"}}.
    #[arg(
        long,
        hide_env_values = true,
        env = "K_CE_OVERRIDES",
        value_name = "JSON"
    )]
    ce_overrides: Option<String>,

    /// Namespace of the owning object (logs, default checkpoint folder).
    #[arg(long, hide_env_values = true, env = "NAMESPACE")]
    namespace: Option<String>,

    /// Name of the owning object (logs, default checkpoint folder).
    #[arg(long, hide_env_values = true, env = "NAME")]
    name: Option<String>,

    /// Where shards that exist at the first start begin: LATEST, TRIM_HORIZON, or an
    /// RFC 3339 time (read from TRIM_HORIZON, skipping older records). Later shards and
    /// streams are always read from their beginning.
    #[arg(
        long,
        hide_env_values = true,
        env = "STARTING_POSITION",
        default_value = "LATEST",
        value_name = "POSITION"
    )]
    starting_position: String,

    /// file:<directory>, memory:, or kubernetes:<configmap> (a ConfigMap of the adapter's
    /// namespace, in a cluster). Default: file: in a folder of STATE_DIR named after
    /// NAMESPACE/NAME, or after the table.
    #[arg(
        long,
        hide_env_values = true,
        env = "CHECKPOINT_STORE",
        value_name = "STORE"
    )]
    checkpoint_store: Option<String>,

    /// Where default checkpoint folders live. Default: $XDG_STATE_HOME/awsdynamodbsource,
    /// else ~/.local/state/awsdynamodbsource.
    #[arg(long, hide_env_values = true, env = "STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Events of a shard sent and not yet behind its checkpoint: at most this many are in
    /// flight per shard, and delivery never runs more than this far ahead of the shard's
    /// oldest undelivered event (an item's changes are never sent in parallel).
    #[arg(
        long,
        hide_env_values = true,
        env = "MAX_IN_FLIGHT",
        default_value = "64",
        value_name = "N"
    )]
    max_in_flight: String,

    /// Pause after an empty GetRecords page (records are fetched at once while they come).
    #[arg(
        long,
        hide_env_values = true,
        env = "POLL_INTERVAL",
        default_value = "250ms",
        value_name = "DURATION"
    )]
    poll_interval: String,

    /// How long to keep trying to reach DynamoDB Streams at startup.
    #[arg(
        long,
        hide_env_values = true,
        env = "STARTUP_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    startup_timeout: String,

    /// On SIGTERM/SIGINT, how long deliveries in flight may take before the process exits.
    #[arg(
        long,
        hide_env_values = true,
        env = "SHUTDOWN_TIMEOUT",
        default_value = "20s",
        value_name = "DURATION"
    )]
    shutdown_timeout: String,

    /// How long a delivery problem lasts before /health reports it: the sink failing every
    /// attempt, a saved position standing still behind delivered events, or an event
    /// waiting since it was read.
    #[arg(
        long,
        hide_env_values = true,
        env = "UNHEALTHY_AFTER",
        default_value = "60s",
        value_name = "DURATION"
    )]
    unhealthy_after: String,

    /// Port of /health: 204 when capturing, else 503 with the reason.
    #[arg(
        long,
        hide_env_values = true,
        env = "HEALTH_PORT",
        default_value = "8080",
        value_name = "PORT"
    )]
    health_port: String,

    /// Port of the Prometheus /metrics.
    #[arg(
        long,
        hide_env_values = true,
        env = "METRICS_PROMETHEUS_PORT",
        default_value = "9092",
        value_name = "PORT"
    )]
    metrics_port: String,

    /// json (one JSON object per line on standard error) or text.
    #[arg(
        long,
        hide_env_values = true,
        env = "LOG_FORMAT",
        default_value = "json",
        value_name = "FORMAT"
    )]
    log_format: String,

    /// error, warn, info, debug or trace.
    #[arg(
        long,
        hide_env_values = true,
        env = "LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    log_level: String,

    /// Role assumed (STS AssumeRole) on top of the credentials.
    #[arg(
        long,
        hide_env_values = true,
        env = "AWS_ASSUME_ROLE_ARN",
        value_name = "ROLE_ARN"
    )]
    assume_role_arn: Option<String>,

    /// The shape of `data`: triggermesh (the original's bytes), aws (the record as the
    /// Streams API and AWS Lambda give it, plus eventSourceARN) or plain (items as
    /// ordinary JSON).
    #[arg(
        long,
        hide_env_values = true,
        env = "DATA_FORMAT",
        default_value = "triggermesh",
        value_name = "FORMAT"
    )]
    data_format: String,

    /// Where the formats' JSON Schemas are published: `dataschema` is
    /// <base>/com.amazon.dynamodb.stream_record.<format>.json. Unset: no dataschema.
    #[arg(
        long,
        hide_env_values = true,
        env = "DATASCHEMA_BASE",
        value_name = "URL"
    )]
    dataschema_base: Option<String>,

    /// `subject`: keynames (the key attributes' names, pk,sk) or keys (the item's key,
    /// pk=alice,sk=42).
    #[arg(
        long,
        hide_env_values = true,
        env = "SUBJECT",
        default_value = "keynames",
        value_name = "MODE"
    )]
    subject: String,

    /// binary (attributes as ce- headers) or structured (application/cloudevents+json).
    #[arg(
        long,
        hide_env_values = true,
        env = "CE_MODE",
        default_value = "binary",
        value_name = "MODE"
    )]
    ce_mode: String,

    /// Optional extensions, comma-separated: dynamodbtable, dynamodbshard, sequence
    /// (zero-padded to 40 digits), streamviewtype.
    #[arg(long, hide_env_values = true, env = "EXTENSIONS", value_name = "LIST")]
    extensions: Option<String>,

    /// Only records matching one of these EventBridge-style patterns are sent (a JSON
    /// array, as AWS Lambda's FilterCriteria), matched against the record in the aws shape;
    /// the others are skipped and checkpointed.
    #[arg(long, hide_env_values = true, env = "FILTER", value_name = "JSON")]
    filter: Option<String>,

    /// URL that receives events the sink refuses for good (a 4xx other than 404, 408, 409,
    /// 429), that exhaust MAX_ATTEMPTS or outgrow MAX_RECORD_AGE, with Knative's
    /// knativeerror* extensions. Unset: such events are logged and dropped.
    #[arg(
        long,
        hide_env_values = true,
        env = "DEAD_LETTER_SINK",
        value_name = "URL"
    )]
    dead_letter_sink: Option<String>,

    /// Attempts at the sink before an event is given up. Unset: until it is delivered.
    #[arg(long, hide_env_values = true, env = "MAX_ATTEMPTS", value_name = "N")]
    max_attempts: Option<String>,

    /// Age of a record (from its creation time) past which it is given up instead of
    /// tried again, e.g. 1h or 3600. Unset: no limit.
    #[arg(
        long,
        hide_env_values = true,
        env = "MAX_RECORD_AGE",
        value_name = "DURATION"
    )]
    max_record_age: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointLocation {
    File(PathBuf),
    Memory,
    /// A ConfigMap's name, in the adapter's namespace.
    Kubernetes(String),
}

/// Settings, checked. Holds no secret (credentials stay with the AWS SDK).
#[derive(Debug, Clone)]
pub struct Settings {
    pub arn: TableArn,
    pub sink: Option<Url>,
    pub sink_timeout: Duration,
    pub sink_connect_timeout: Duration,
    pub sink_max_connections: usize,
    pub overrides: CeOverrides,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub starting_position: StartingPosition,
    pub checkpoints: CheckpointLocation,
    pub max_in_flight: usize,
    pub poll_interval: Duration,
    pub startup_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub unhealthy_after: Duration,
    pub health_port: u16,
    pub metrics_port: u16,
    pub log_format: LogFormat,
    pub log_level: tracing::Level,
    pub assume_role_arn: Option<String>,
    pub events: EventOptions,
    pub ce_mode: ContentMode,
    pub filter: Option<RecordFilter>,
    pub dead_letter_sink: Option<Url>,
    pub max_attempts: Option<u32>,
    pub max_record_age: Option<Duration>,
}

/// What logging can be set up with even when other settings are bad.
pub fn log_setup(args: &Args) -> (LogFormat, tracing::Level) {
    (
        parse_log_format(&args.log_format).unwrap_or(LogFormat::Json),
        parse_level(&args.log_level).unwrap_or(tracing::Level::INFO),
    )
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" | "console" => Ok(LogFormat::Text),
        _ => Err(format!("LOG_FORMAT {s:?} is not json or text")),
    }
}

fn parse_level(s: &str) -> Result<tracing::Level, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("LOG_LEVEL {s:?} is not error, warn, info, debug or trace"))
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

fn parse_port(var: &str, s: &str) -> Result<u16, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{var} {s:?} is not a port number"))
}

/// A whole number from 1 to 10000.
fn parse_count(var: &str, s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| format!("{var} {s:?} is not a whole number from 1 to 10000"))
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl Args {
    /// Checks every setting; the error is one line naming the variable.
    pub fn settings(self) -> Result<Settings, String> {
        let arn = non_empty(self.arn)
            .ok_or("ARN is not set: give the table's ARN, arn:aws:dynamodb:{region}:{account}:table/{name}")?
            .trim()
            .parse::<TableArn>()
            .map_err(|e| e.to_string())?;
        let sink = non_empty(self.sink)
            .map(|s| parse_sink_url(s.trim()))
            .transpose()
            .map_err(|e| e.to_string())?;
        let sink_timeout = parse_duration("K_SINK_TIMEOUT", &self.sink_timeout)?;
        if sink_timeout.is_zero() {
            return Err("K_SINK_TIMEOUT must be more than 0".into());
        }
        let sink_connect_timeout =
            parse_duration("SINK_CONNECT_TIMEOUT", &self.sink_connect_timeout)?;
        if sink_connect_timeout.is_zero() {
            return Err("SINK_CONNECT_TIMEOUT must be more than 0".into());
        }
        let sink_max_connections = parse_count("SINK_MAX_CONNECTIONS", &self.sink_max_connections)?;
        let unhealthy_after = parse_duration("UNHEALTHY_AFTER", &self.unhealthy_after)?;
        if unhealthy_after.is_zero() {
            return Err("UNHEALTHY_AFTER must be more than 0".into());
        }
        let overrides = CeOverrides::parse(self.ce_overrides.as_deref().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        let starting_position = self
            .starting_position
            .parse::<StartingPosition>()
            .map_err(|e| e.to_string())?;
        let namespace = non_empty(self.namespace);
        let name = non_empty(self.name);
        let checkpoints = match non_empty(self.checkpoint_store).as_deref().map(str::trim) {
            None => CheckpointLocation::File(default_checkpoint_dir(
                self.state_dir,
                &arn,
                &namespace,
                &name,
            )?),
            Some("memory:") => CheckpointLocation::Memory,
            Some(s) => match (s.strip_prefix("file:"), s.strip_prefix("kubernetes:")) {
                (Some(dir), _) if !dir.is_empty() => CheckpointLocation::File(PathBuf::from(dir)),
                (_, Some(name)) if !name.is_empty() => {
                    CheckpointLocation::Kubernetes(name.to_owned())
                }
                _ => {
                    return Err(format!(
                        "CHECKPOINT_STORE {s:?} is not file:<directory>, memory: or kubernetes:<configmap>"
                    ));
                }
            },
        };
        let max_in_flight = parse_count("MAX_IN_FLIGHT", &self.max_in_flight)?;
        let poll_interval = parse_duration("POLL_INTERVAL", &self.poll_interval)?;
        let assume_role_arn = non_empty(self.assume_role_arn);
        if let Some(role) = &assume_role_arn
            && !(role.starts_with("arn:") && role.contains(":iam::") && role.contains(":role/"))
        {
            return Err(format!(
                "AWS_ASSUME_ROLE_ARN {role:?} is not an IAM role ARN"
            ));
        }
        let events = EventOptions {
            data_format: self
                .data_format
                .trim()
                .parse()
                .map_err(|e: OptionError| e.to_string())?,
            subject: self
                .subject
                .trim()
                .parse()
                .map_err(|e: OptionError| e.to_string())?,
            extensions: self
                .extensions
                .as_deref()
                .unwrap_or("")
                .parse()
                .map_err(|e: OptionError| e.to_string())?,
            dataschema_base: non_empty(self.dataschema_base)
                .map(|base| {
                    let base = base.trim().to_owned();
                    Url::parse(&base)
                        .map(|_| base.clone())
                        .map_err(|e| format!("DATASCHEMA_BASE {base:?} is not a URL ({e})"))
                })
                .transpose()?,
        };
        let ce_mode = self
            .ce_mode
            .trim()
            .parse::<ContentMode>()
            .map_err(|e| format!("CE_MODE: {e}"))?;
        let filter = non_empty(self.filter)
            .map(|f| RecordFilter::parse(&f).map_err(|e| format!("FILTER: {e}")))
            .transpose()?;
        let dead_letter_sink = non_empty(self.dead_letter_sink)
            .map(|s| {
                parse_sink_url(s.trim())
                    .map_err(|e| e.to_string().replacen("K_SINK", "DEAD_LETTER_SINK", 1))
            })
            .transpose()?;
        let max_attempts = non_empty(self.max_attempts)
            .map(|n| {
                n.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        format!("MAX_ATTEMPTS {n:?} is not a whole number of at least 1")
                    })
            })
            .transpose()?;
        let max_record_age = non_empty(self.max_record_age)
            .map(|d| parse_duration("MAX_RECORD_AGE", &d))
            .transpose()?;
        Ok(Settings {
            events,
            ce_mode,
            filter,
            dead_letter_sink,
            max_attempts,
            max_record_age,
            arn,
            sink,
            sink_timeout,
            sink_connect_timeout,
            sink_max_connections,
            unhealthy_after,
            overrides,
            namespace,
            name,
            starting_position,
            checkpoints,
            max_in_flight,
            poll_interval,
            startup_timeout: parse_duration("STARTUP_TIMEOUT", &self.startup_timeout)?,
            shutdown_timeout: parse_duration("SHUTDOWN_TIMEOUT", &self.shutdown_timeout)?,
            health_port: parse_port("HEALTH_PORT", &self.health_port)?,
            metrics_port: parse_port("METRICS_PROMETHEUS_PORT", &self.metrics_port)?,
            log_format: parse_log_format(&self.log_format)?,
            log_level: parse_level(&self.log_level)?,
            assume_role_arn,
        })
    }
}

/// `<state>/<namespace>.<name>`, or `<state>/<partition>.<region>.<account>.<table>`.
fn default_checkpoint_dir(
    state_dir: Option<PathBuf>,
    arn: &TableArn,
    namespace: &Option<String>,
    name: &Option<String>,
) -> Result<PathBuf, String> {
    let state = state_dir
        .or_else(|| {
            std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("awsdynamodbsource"))
        })
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".local/state/awsdynamodbsource"))
        })
        .ok_or("no place for checkpoints: set CHECKPOINT_STORE, STATE_DIR or HOME")?;
    let folder = match name {
        Some(name) => format!("{}.{}", namespace.as_deref().unwrap_or("default"), name),
        None => format!(
            "{}.{}.{}.{}",
            arn.partition(),
            arn.region(),
            arn.account(),
            arn.table()
        ),
    };
    // Names from the environment must not climb out of the state folder.
    let folder: String = folder
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(state.join(folder.trim_start_matches('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(env: &[(&str, &str)]) -> Result<Settings, String> {
        let mut argv = vec!["adapter".to_string()];
        for (k, v) in env {
            let flag = match *k {
                "ARN" => "--arn",
                "K_SINK" => "--sink",
                "K_CE_OVERRIDES" => "--ce-overrides",
                "STARTING_POSITION" => "--starting-position",
                "CHECKPOINT_STORE" => "--checkpoint-store",
                "MAX_IN_FLIGHT" => "--max-in-flight",
                "POLL_INTERVAL" => "--poll-interval",
                "K_SINK_TIMEOUT" => "--sink-timeout",
                "NAME" => "--name",
                "NAMESPACE" => "--namespace",
                "STATE_DIR" => "--state-dir",
                other => panic!("{other}"),
            };
            argv.push(format!("{flag}={v}"));
        }
        Args::try_parse_from(argv).unwrap().settings()
    }

    const ARN: &str = "arn:aws:dynamodb:ddblocal:000000000000:table/orders";

    #[test]
    fn checkpoints_in_a_configmap() {
        let s = args(&[
            ("ARN", ARN),
            (
                "CHECKPOINT_STORE",
                "kubernetes:awsdynamodbsource-x-checkpoints",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.checkpoints,
            CheckpointLocation::Kubernetes("awsdynamodbsource-x-checkpoints".into())
        );
    }

    #[test]
    fn defaults() {
        let s = args(&[("ARN", ARN), ("STATE_DIR", "/state")]).unwrap();
        assert_eq!(s.max_in_flight, 64);
        assert_eq!(s.poll_interval, Duration::from_millis(250));
        assert_eq!(s.sink_timeout, Duration::from_secs(30));
        assert_eq!(s.startup_timeout, Duration::from_secs(30));
        assert_eq!((s.health_port, s.metrics_port), (8080, 9092));
        assert_eq!(s.starting_position, StartingPosition::Latest);
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.sink.is_none());
        assert_eq!(
            s.checkpoints,
            CheckpointLocation::File("/state/aws.ddblocal.000000000000.orders".into())
        );
        let s = args(&[
            ("ARN", ARN),
            ("STATE_DIR", "/state"),
            ("NAME", "../x"),
            ("NAMESPACE", "prod"),
        ])
        .unwrap();
        assert_eq!(
            s.checkpoints,
            CheckpointLocation::File("/state/prod..._x".into())
        );
    }

    #[test]
    fn each_bad_value_gives_one_line_naming_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "ARN is not set"),
            (
                &[("ARN", "arn:aws:dynamodb:us-east-1:123:table/x")],
                "invalid ARN",
            ),
            (&[("ARN", ARN), ("K_SINK", "ftp://x/")], "K_SINK"),
            (
                &[("ARN", ARN), ("K_SINK", "http://u:secret@[::1/")],
                "K_SINK",
            ),
            (
                &[("ARN", ARN), ("K_CE_OVERRIDES", "{nope")],
                "K_CE_OVERRIDES",
            ),
            (
                &[("ARN", ARN), ("STARTING_POSITION", "EARLIEST")],
                "STARTING_POSITION",
            ),
            (
                &[("ARN", ARN), ("CHECKPOINT_STORE", "redis://x")],
                "CHECKPOINT_STORE",
            ),
            (
                &[("ARN", ARN), ("CHECKPOINT_STORE", "kubernetes:")],
                "CHECKPOINT_STORE",
            ),
            (&[("ARN", ARN), ("MAX_IN_FLIGHT", "0")], "MAX_IN_FLIGHT"),
            (&[("ARN", ARN), ("POLL_INTERVAL", "fast")], "POLL_INTERVAL"),
            (&[("ARN", ARN), ("K_SINK_TIMEOUT", "0")], "K_SINK_TIMEOUT"),
        ];
        for (env, needle) in cases {
            let err = args(env).expect_err(needle);
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains('\n'), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("X", "250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("X", "30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("X", "2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("X", "1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("X", "1d").is_err());
        assert!(parse_duration("X", "-1s").is_err());
    }
}
