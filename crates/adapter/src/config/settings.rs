//! What depends on several variables, and the settings checked.

use std::path::PathBuf;
use std::time::Duration;

use awsdynamodb_source::RecordFilter;
use awsdynamodb_source::{CeOverrides, EventOptions};
use awsdynamodb_source::{ContentMode, Url};
use awsdynamodb_source::{StartingPosition, TableArn};
use awsdynamodbsource_api::vars::{
    ARN, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, CHECKPOINT_STORE, COORDINATION, NAME, SNAPSHOT,
    STATE_DIR,
};

use super::Args;

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

/// How replicas share the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coordination {
    /// Shard leases in this DynamoDB table.
    DynamoDb(String),
    /// Shard leases as Leases in the adapter's namespace, named after the
    /// source (`NAME`).
    Kubernetes,
}

/// `SNAPSHOT=initial`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSettings {
    pub segments: u32,
    pub read_units: Option<f64>,
    pub margin: Duration,
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
    pub coordination: Option<Coordination>,
    pub lease_duration: Duration,
    pub max_in_flight: usize,
    pub poll_interval: Duration,
    pub idle_poll_interval: Duration,
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
    pub snapshot: Option<SnapshotSettings>,
}

impl Args {
    /// The log format asked for.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// What depends on several variables; the error is one line naming
    /// them. Each value alone was checked by its parser.
    pub fn settings(self) -> Result<Settings, String> {
        let arn = self.arn.flatten().ok_or_else(|| {
            format!(
                "{ARN} is not set: give the table's ARN, arn:aws:dynamodb:{{region}}:{{account}}:table/{{name}}"
            )
        })?;
        half_set_credentials()?;
        let (namespace, name) = (self.namespace.flatten(), self.name.flatten());
        let coordination = self.coordination.flatten();
        if coordination == Some(Coordination::Kubernetes) && name.is_none() {
            return Err(format!(
                "{COORDINATION}=kubernetes needs {NAME}: the source's name, after which its Leases are named"
            ));
        }
        if self.snapshot && coordination.is_some() {
            return Err(format!(
                "{SNAPSHOT}=initial cannot be used with {COORDINATION} yet: run one replica for the snapshot, then add replicas"
            ));
        }
        let checkpoints = match self.checkpoint_store.flatten() {
            Some(location) => location,
            None => CheckpointLocation::File(default_checkpoint_dir(
                self.state_dir,
                &arn,
                &namespace,
                &name,
            )?),
        };
        Ok(Settings {
            arn,
            sink: self.sink.flatten(),
            sink_timeout: self.sink_timeout,
            sink_connect_timeout: self.sink_connect_timeout,
            sink_max_connections: self.sink_max_connections,
            overrides: self.ce_overrides.unwrap_or_default(),
            namespace,
            name,
            starting_position: self.starting_position,
            checkpoints,
            coordination,
            lease_duration: self.lease_duration,
            max_in_flight: self.max_in_flight,
            poll_interval: self.poll_interval,
            idle_poll_interval: self.idle_poll_interval,
            startup_timeout: self.startup_timeout,
            shutdown_timeout: self.shutdown_timeout,
            unhealthy_after: self.unhealthy_after,
            health_port: self.health_port,
            metrics_port: self.metrics_port,
            log_format: self.log_format,
            log_level: self.log_level,
            assume_role_arn: self.assume_role_arn.flatten(),
            events: EventOptions {
                data_format: self.data_format,
                subject: self.subject,
                extensions: self.extensions.unwrap_or_default(),
                dataschema_base: self.dataschema_base.flatten(),
            },
            ce_mode: self.ce_mode,
            filter: self.filter.flatten(),
            dead_letter_sink: self.dead_letter_sink.flatten(),
            max_attempts: self.max_attempts.flatten(),
            max_record_age: self.max_record_age.flatten(),
            snapshot: self.snapshot.then(|| SnapshotSettings {
                segments: self.snapshot_segments as u32,
                read_units: self.snapshot_read_units.flatten(),
                margin: self.snapshot_margin,
            }),
        })
    }
}

/// Static credentials are a pair: one half alone would send the SDK on to
/// other sources and fail there, blaming them. Only presence is read.
fn half_set_credentials() -> Result<(), String> {
    let set = |var| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    match (set(AWS_ACCESS_KEY_ID), set(AWS_SECRET_ACCESS_KEY)) {
        (true, false) => Err(format!(
            "{AWS_ACCESS_KEY_ID} is set but {AWS_SECRET_ACCESS_KEY} is not: static credentials need both"
        )),
        (false, true) => Err(format!(
            "{AWS_SECRET_ACCESS_KEY} is set but {AWS_ACCESS_KEY_ID} is not: static credentials need both"
        )),
        _ => Ok(()),
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
        .ok_or_else(|| {
            format!("no place for checkpoints: set {CHECKPOINT_STORE}, {STATE_DIR} or HOME")
        })?;
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
