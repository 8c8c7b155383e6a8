//! The environment → settings, checked. Every variable is read by clap (so
//! `--help` lists them all with their defaults) through a typed parser of
//! [`parse`] that names the variable in its one-line error; [`Args::settings`]
//! adds what depends on several of them.

mod parse;
mod settings;

use std::path::PathBuf;
use std::time::Duration;

use awsdynamodb_source::RecordFilter;
use awsdynamodb_source::{CeOverrides, DataFormat, Extensions, SubjectMode};
use awsdynamodb_source::{ContentMode, Url};
use awsdynamodb_source::{StartingPosition, TableArn};
use awsdynamodbsource_api::vars::*;
use clap::Parser;
use parse::*;
pub use parse::{error_line, requested_log_format};
pub use settings::{CheckpointLocation, Coordination, LogFormat, Settings, SnapshotSettings};

const AFTER_HELP: &str = "\
AWS credentials come from the standard sources, in this order: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; EKS IAM roles for service accounts
(AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE); profiles (AWS_PROFILE); container and
instance metadata. AWS_ASSUME_ROLE_ARN assumes that role on top of them.
AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_DYNAMODB_STREAMS) points at another endpoint, e.g.
DynamoDB Local. The region is always the ARN's; AWS_REGION is ignored.

K_LOGGING_CONFIG, K_METRICS_CONFIG and K_TRACING_CONFIG (Knative) are accepted and ignored.

The IAM policy needs exactly: dynamodb:ListStreams, dynamodb:DescribeStream,
dynamodb:GetShardIterator, dynamodb:GetRecords; with SNAPSHOT=initial also
dynamodb:DescribeTable and dynamodb:Scan on the table.";

/// The shortest POLL_INTERVAL and IDLE_POLL_INTERVAL (the CRD checks it too).
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(MIN_POLL_INTERVAL_MS);
/// The shortest sink timeouts: below, a sink across a network could never answer.
const MIN_SINK_TIMEOUT: Duration = Duration::from_millis(100);
/// The shortest lease: renewed every third of it, a lease shorter than 2 s
/// would be lost to one slow write.
const MIN_LEASE_DURATION: Duration = Duration::from_secs(2);

/// Reads a DynamoDB table's stream and sends every change as a CloudEvent
/// (type com.amazon.dynamodb.stream_record), in order per item, losing
/// nothing. Configured by environment variables (or the equivalent flags).
#[derive(Debug, Parser)]
#[command(name = "awsdynamodbsource-adapter", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Table ARN: arn:{partition}:dynamodb:{region}:{account}:table/{name}. Required.
    #[arg(
        long,
        hide_env_values = true,
        env = ARN,
        value_name = "ARN",
        value_parser = blank_or(table_arn),
    )]
    arn: Option<OrBlank<TableArn>>,

    /// URL events are POSTed to (CloudEvents binary mode). Unset: events are written to
    /// standard output as structured CloudEvents, one JSON per line.
    #[arg(
        long,
        hide_env_values = true,
        env = K_SINK,
        value_name = "URL",
        value_parser = blank_or(sink_url(K_SINK)),
    )]
    sink: Option<OrBlank<Url>>,

    /// Per-request timeout of the sink: whole seconds, or a duration like 500ms. At least
    /// 100ms.
    #[arg(
        long,
        hide_env_values = true,
        env = K_SINK_TIMEOUT,
        default_value = "30",
        value_name = "SECONDS",
        value_parser = duration_at_least(K_SINK_TIMEOUT, MIN_SINK_TIMEOUT),
    )]
    sink_timeout: Duration,

    /// How long connecting to the sink may take; a connection not established by then is
    /// abandoned (the request goes on another connection, or is retried). At least 100ms.
    #[arg(
        long,
        hide_env_values = true,
        env = SINK_CONNECT_TIMEOUT,
        default_value = "2s",
        value_name = "DURATION",
        value_parser = duration_at_least(SINK_CONNECT_TIMEOUT, MIN_SINK_TIMEOUT),
    )]
    sink_connect_timeout: Duration,

    /// Requests to the sink at once across all shards, and so the most connections open to
    /// it. New connections are opened one at a time, as the sink answers.
    #[arg(
        long,
        hide_env_values = true,
        env = SINK_MAX_CONNECTIONS,
        default_value = "64",
        value_name = "N",
        value_parser = count(SINK_MAX_CONNECTIONS),
    )]
    sink_max_connections: usize,

    /// Extensions added to every event: {"extensions": {"name": "value"}}.
    #[arg(
        long,
        hide_env_values = true,
        env = K_CE_OVERRIDES,
        value_name = "JSON",
        value_parser = ce_overrides,
    )]
    ce_overrides: Option<CeOverrides>,

    /// Namespace of the owning object (logs, default checkpoint folder).
    #[arg(long, hide_env_values = true, env = NAMESPACE, value_parser = blank_or(text))]
    namespace: Option<OrBlank<String>>,

    /// Name of the owning object (logs, default checkpoint folder).
    #[arg(long, hide_env_values = true, env = NAME, value_parser = blank_or(text))]
    name: Option<OrBlank<String>>,

    /// Where shards that exist at the first start begin: LATEST, TRIM_HORIZON, or an
    /// RFC 3339 time (read from TRIM_HORIZON, skipping older records). Later shards and
    /// streams are always read from their beginning.
    #[arg(
        long,
        hide_env_values = true,
        env = STARTING_POSITION,
        default_value = "LATEST",
        value_name = "POSITION",
        value_parser = starting_position,
    )]
    starting_position: StartingPosition,

    /// file:<directory>, memory:, or kubernetes:<configmap> (a ConfigMap of the adapter's
    /// namespace, in a cluster). Default: file: in a folder of STATE_DIR named after
    /// NAMESPACE/NAME, or after the table.
    #[arg(
        long,
        hide_env_values = true,
        env = CHECKPOINT_STORE,
        value_name = "STORE",
        value_parser = blank_or(checkpoint_store),
    )]
    checkpoint_store: Option<OrBlank<CheckpointLocation>>,

    /// Share the stream with other replicas through shard leases: dynamodb:<table> (the
    /// table is created when missing, if allowed), or kubernetes (Leases in the adapter's
    /// namespace, named after NAME). Each shard's checkpoint then lives in its
    /// lease, and CHECKPOINT_STORE is only read, once at startup, for where shards that have
    /// no lease yet begin (so a source moving to leases resumes where it was). Default: no
    /// leases; this process reads every shard, and a second one on the same checkpoints is
    /// refused.
    #[arg(
        long,
        hide_env_values = true,
        env = COORDINATION,
        value_name = "STORE",
        value_parser = blank_or(coordination),
    )]
    coordination: Option<OrBlank<Coordination>>,

    /// With COORDINATION: how long the leases of a replica that stopped renewing them last
    /// (it renews every third of this). A crashed replica's shards are taken over after
    /// about this long; a replica that cannot renew stops delivering after it. At least 2s.
    #[arg(
        long,
        hide_env_values = true,
        env = LEASE_DURATION,
        default_value = "10s",
        value_name = "DURATION",
        value_parser = duration_at_least(LEASE_DURATION, MIN_LEASE_DURATION),
    )]
    lease_duration: Duration,

    /// Where default checkpoint folders live. Default: $XDG_STATE_HOME/awsdynamodbsource,
    /// else ~/.local/state/awsdynamodbsource.
    #[arg(long, hide_env_values = true, env = STATE_DIR, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Events of a shard sent and not yet behind its checkpoint: at most this many are in
    /// flight per shard, and delivery never runs more than this far ahead of the shard's
    /// oldest undelivered event (an item's changes are never sent in parallel).
    #[arg(
        long,
        hide_env_values = true,
        env = MAX_IN_FLIGHT,
        default_value = "64",
        value_name = "N",
        value_parser = count(MAX_IN_FLIGHT),
    )]
    max_in_flight: usize,

    /// Pause after an empty GetRecords page (records are fetched at once while they come; 50 ms
    /// apart for 5 s after records). A shard without records for 10 s waits twice as long,
    /// and so on every 10 s, up to IDLE_POLL_INTERVAL. At least 100ms: each empty page is a
    /// GetRecords call, billed, and DynamoDB Streams throttles a shard read too often.
    #[arg(
        long,
        hide_env_values = true,
        env = POLL_INTERVAL,
        default_value = "250ms",
        value_name = "DURATION",
        value_parser = duration_at_least(POLL_INTERVAL, MIN_POLL_INTERVAL),
    )]
    poll_interval: Duration,

    /// The longest pause between GetRecords calls of a shard without records for long (no
    /// effect below POLL_INTERVAL). The first change after a long quiet waits up to this long.
    /// At least 100ms.
    #[arg(
        long,
        hide_env_values = true,
        env = IDLE_POLL_INTERVAL,
        default_value = "2s",
        value_name = "DURATION",
        value_parser = duration_at_least(IDLE_POLL_INTERVAL, MIN_POLL_INTERVAL),
    )]
    idle_poll_interval: Duration,

    /// How long to keep trying to reach DynamoDB Streams at startup. At least 1s.
    #[arg(
        long,
        hide_env_values = true,
        env = STARTUP_TIMEOUT,
        default_value = "30s",
        value_name = "DURATION",
        value_parser = duration_at_least(STARTUP_TIMEOUT, Duration::from_secs(1)),
    )]
    startup_timeout: Duration,

    /// On SIGTERM/SIGINT, how long deliveries in flight may take before the process exits.
    #[arg(
        long,
        hide_env_values = true,
        env = SHUTDOWN_TIMEOUT,
        default_value = "20s",
        value_name = "DURATION",
        value_parser = duration(SHUTDOWN_TIMEOUT),
    )]
    shutdown_timeout: Duration,

    /// How long a delivery problem lasts before /health reports it: the sink failing every
    /// attempt, a saved position standing still behind delivered events, or an event
    /// waiting since it was read. At least 1s.
    #[arg(
        long,
        hide_env_values = true,
        env = UNHEALTHY_AFTER,
        default_value = "60s",
        value_name = "DURATION",
        value_parser = duration_at_least(UNHEALTHY_AFTER, Duration::from_secs(1)),
    )]
    unhealthy_after: Duration,

    /// Port of /health: 204 when capturing (200 and a note when idle: a
    /// replica holding no shard lease), else 503 with the reason.
    #[arg(
        long,
        hide_env_values = true,
        env = HEALTH_PORT,
        default_value = "8080",
        value_name = "PORT",
        value_parser = port(HEALTH_PORT),
    )]
    health_port: u16,

    /// Port of the Prometheus /metrics.
    #[arg(
        long,
        hide_env_values = true,
        env = METRICS_PROMETHEUS_PORT,
        default_value = "9092",
        value_name = "PORT",
        value_parser = port(METRICS_PROMETHEUS_PORT),
    )]
    metrics_port: u16,

    /// json (one JSON object per line on standard error) or text.
    #[arg(
        long,
        hide_env_values = true,
        env = LOG_FORMAT,
        default_value = "json",
        value_name = "FORMAT",
        value_parser = log_format,
    )]
    log_format: LogFormat,

    /// error, warn, info, debug or trace.
    #[arg(
        long,
        hide_env_values = true,
        env = LOG_LEVEL,
        default_value = "info",
        value_name = "LEVEL",
        value_parser = log_level,
    )]
    log_level: tracing::Level,

    /// Role assumed (STS AssumeRole) on top of the credentials.
    #[arg(
        long,
        hide_env_values = true,
        env = AWS_ASSUME_ROLE_ARN,
        value_name = "ROLE_ARN",
        value_parser = blank_or(role_arn),
    )]
    assume_role_arn: Option<OrBlank<String>>,

    /// The shape of `data`: triggermesh (the original's bytes), aws (the record as the
    /// Streams API and AWS Lambda give it, plus eventSourceARN) or plain (items as
    /// ordinary JSON).
    #[arg(
        long,
        hide_env_values = true,
        env = DATA_FORMAT,
        default_value = "triggermesh",
        value_name = "FORMAT",
        value_parser = data_format,
    )]
    data_format: DataFormat,

    /// Where the formats' JSON Schemas are published: `dataschema` is
    /// <base>/com.amazon.dynamodb.stream_record.<format>.json. Unset: no dataschema.
    #[arg(
        long,
        hide_env_values = true,
        env = DATASCHEMA_BASE,
        value_name = "URL",
        value_parser = blank_or(dataschema_base),
    )]
    dataschema_base: Option<OrBlank<String>>,

    /// `subject`: keynames (the key attributes' names, pk,sk) or keys (the item's key,
    /// pk=alice,sk=42).
    #[arg(
        long,
        hide_env_values = true,
        env = SUBJECT,
        default_value = "keynames",
        value_name = "MODE",
        value_parser = subject,
    )]
    subject: SubjectMode,

    /// binary (attributes as ce- headers) or structured (application/cloudevents+json).
    #[arg(
        long,
        hide_env_values = true,
        env = CE_MODE,
        default_value = "binary",
        value_name = "MODE",
        value_parser = ce_mode,
    )]
    ce_mode: ContentMode,

    /// Optional extensions, comma-separated: dynamodbtable, dynamodbshard, sequence
    /// (zero-padded to 40 digits), streamviewtype.
    #[arg(
        long,
        hide_env_values = true,
        env = EXTENSIONS,
        value_name = "LIST",
        value_parser = extensions,
    )]
    extensions: Option<Extensions>,

    /// Only records matching one of these EventBridge-style patterns are sent (a JSON
    /// array, as AWS Lambda's FilterCriteria), matched against the record in the aws shape;
    /// the others are skipped and checkpointed.
    #[arg(
        long,
        hide_env_values = true,
        env = FILTER,
        value_name = "JSON",
        value_parser = blank_or(filter),
    )]
    filter: Option<OrBlank<RecordFilter>>,

    /// URL that receives events the sink refuses for good (a 4xx other than 404, 408, 409,
    /// 429), that exhaust MAX_ATTEMPTS or outgrow MAX_RECORD_AGE, with Knative's
    /// knativeerror* extensions. Unset: such events are logged and dropped.
    #[arg(
        long,
        hide_env_values = true,
        env = DEAD_LETTER_SINK,
        value_name = "URL",
        value_parser = blank_or(sink_url(DEAD_LETTER_SINK)),
    )]
    dead_letter_sink: Option<OrBlank<Url>>,

    /// off, or initial: at the first start (no checkpoint yet), every item of the table is
    /// sent once (operation SNAPSHOT, a stable id per item), joined with the changes made
    /// meanwhile so that no item's state steps back; then changes follow. The stream needs
    /// new images (NEW_IMAGE or NEW_AND_OLD_IMAGES); IAM needs dynamodb:DescribeTable and
    /// dynamodb:Scan. A snapshot cut short resumes where it was. Not with COORDINATION.
    #[arg(
        long,
        hide_env_values = true,
        env = SNAPSHOT,
        default_value = "off",
        value_name = "MODE",
        value_parser = snapshot,
    )]
    snapshot: bool,

    /// Segments of the snapshot's parallel scan, read at once.
    #[arg(
        long,
        hide_env_values = true,
        env = SNAPSHOT_SEGMENTS,
        default_value = "4",
        value_name = "N",
        value_parser = count(SNAPSHOT_SEGMENTS),
    )]
    snapshot_segments: usize,

    /// The most read capacity units per second the snapshot's scan spends (strongly
    /// consistent: one unit per 4 KB), so that it does not starve the table's own traffic.
    /// Unset: as fast as the table allows.
    #[arg(
        long,
        hide_env_values = true,
        env = SNAPSHOT_READ_UNITS,
        value_name = "UNITS",
        value_parser = blank_or(read_units),
    )]
    snapshot_read_units: Option<OrBlank<f64>>,

    /// How far a stream record's time may fall before its write: the rounding of record
    /// times (AWS: down to the second) plus clock skew. DynamoDB Local rounds to the minute:
    /// give it 61s. At least 1s.
    #[arg(
        long,
        hide_env_values = true,
        env = SNAPSHOT_MARGIN,
        default_value = "2s",
        value_name = "DURATION",
        value_parser = duration_at_least(SNAPSHOT_MARGIN, Duration::from_secs(1)),
    )]
    snapshot_margin: Duration,

    /// Attempts at the sink before an event is given up. Unset: until it is delivered.
    #[arg(
        long,
        hide_env_values = true,
        env = MAX_ATTEMPTS,
        value_name = "N",
        value_parser = blank_or(attempts),
    )]
    max_attempts: Option<OrBlank<u32>>,

    /// Age of a record (from its creation time) past which it is given up instead of
    /// tried again, e.g. 1h or 3600. At least 1s. Unset: no limit.
    #[arg(
        long,
        hide_env_values = true,
        env = MAX_RECORD_AGE,
        value_name = "DURATION",
        value_parser = blank_or(duration_at_least(MAX_RECORD_AGE, Duration::from_secs(1))),
    )]
    max_record_age: Option<OrBlank<Duration>>,
}

#[cfg(test)]
mod tests;
