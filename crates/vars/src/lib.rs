//! The adapter's environment variables, each name written once.
//!
//! The adapter reads them (its `--help` lists them with their defaults); the
//! api crate's `spec_env`, the controller and tmctl set them; the engine
//! names them in its errors. A crate of its own, with no dependencies, so
//! that the engine can use it without knowing of Kubernetes. What each one
//! means is the adapter's `--help`.

// Read by the adapter's flags.
pub const ARN: &str = "ARN";
pub const K_SINK: &str = "K_SINK";
pub const K_SINK_TIMEOUT: &str = "K_SINK_TIMEOUT";
pub const SINK_CONNECT_TIMEOUT: &str = "SINK_CONNECT_TIMEOUT";
pub const SINK_MAX_CONNECTIONS: &str = "SINK_MAX_CONNECTIONS";
pub const K_CE_OVERRIDES: &str = "K_CE_OVERRIDES";
pub const NAMESPACE: &str = "NAMESPACE";
pub const NAME: &str = "NAME";
pub const STARTING_POSITION: &str = "STARTING_POSITION";
pub const CHECKPOINT_STORE: &str = "CHECKPOINT_STORE";
pub const STATE_DIR: &str = "STATE_DIR";
pub const COORDINATION: &str = "COORDINATION";
pub const LEASE_DURATION: &str = "LEASE_DURATION";
pub const MAX_IN_FLIGHT: &str = "MAX_IN_FLIGHT";
pub const POLL_INTERVAL: &str = "POLL_INTERVAL";
pub const IDLE_POLL_INTERVAL: &str = "IDLE_POLL_INTERVAL";
pub const STARTUP_TIMEOUT: &str = "STARTUP_TIMEOUT";
pub const SHUTDOWN_TIMEOUT: &str = "SHUTDOWN_TIMEOUT";
pub const UNHEALTHY_AFTER: &str = "UNHEALTHY_AFTER";
pub const HEALTH_PORT: &str = "HEALTH_PORT";
pub const METRICS_PROMETHEUS_PORT: &str = "METRICS_PROMETHEUS_PORT";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const DATA_FORMAT: &str = "DATA_FORMAT";
pub const DATASCHEMA_BASE: &str = "DATASCHEMA_BASE";
pub const SUBJECT: &str = "SUBJECT";
pub const CE_MODE: &str = "CE_MODE";
pub const EXTENSIONS: &str = "EXTENSIONS";
pub const FILTER: &str = "FILTER";
pub const DEAD_LETTER_SINK: &str = "DEAD_LETTER_SINK";
pub const MAX_ATTEMPTS: &str = "MAX_ATTEMPTS";
pub const MAX_RECORD_AGE: &str = "MAX_RECORD_AGE";
pub const AWS_ASSUME_ROLE_ARN: &str = "AWS_ASSUME_ROLE_ARN";
pub const SNAPSHOT: &str = "SNAPSHOT";
pub const SNAPSHOT_SEGMENTS: &str = "SNAPSHOT_SEGMENTS";
pub const SNAPSHOT_READ_UNITS: &str = "SNAPSHOT_READ_UNITS";
pub const SNAPSHOT_MARGIN: &str = "SNAPSHOT_MARGIN";

// Read by the AWS SDK.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const AWS_ENDPOINT_URL_DYNAMODB_STREAMS: &str = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS";

// Not a variable, but a name the adapter and the controller share the same
// way: the label on every shard Lease (COORDINATION=kubernetes) naming its
// source, by which the controller sees that a source's adapters use Leases.
pub const LEASE_SOURCE_LABEL: &str = "awsdynamodbsource.triggermesh.io/source";

// Not a name either: the one rule for a starting position, wherever one is
// given (the adapter's variable, the CRD's field, tmctl's flag), so that
// all three take the same values and say the same thing about others.
pub const STARTING_POSITION_RULE: &str =
    "LATEST, TRIM_HORIZON (in any case) or an RFC 3339 time such as 2024-01-01T00:00:00Z";

// The values of SNAPSHOT, wherever it is given (the variable, the CRD's
// field, tmctl's flag).
pub const SNAPSHOT_RULE: &str = "off or initial";

// And the floor of POLL_INTERVAL, which the CRD's check shares: 10
// GetRecords calls a second per idle shard (AWS Lambda makes 4).
pub const MIN_POLL_INTERVAL_MS: u64 = 100;
