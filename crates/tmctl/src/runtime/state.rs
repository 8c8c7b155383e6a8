//! `run.json`: what was started for a broker (pids and ports). A pid there
//! is trusted only while `process::is_running` says it still runs the same
//! program.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{ADAPTER_PROGRAM, BROKER_PROGRAM};
use crate::home::{BrokerDir, write_private};
use crate::process;

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    #[serde(default)]
    pub broker: BrokerRun,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceRun>,
}

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Kept when stopped, so that a restart listens on the same port if it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub capacity: u32,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct SourceRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_port: Option<u16>,
    /// `AWS_ENDPOINT_URL` as it was when the source was created (DynamoDB
    /// Local, LocalStack): the adapter keeps using it on later starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl RunState {
    pub fn load(dir: &BrokerDir) -> Result<RunState> {
        let path = dir.run_state();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunState::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, dir: &BrokerDir) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context("cannot encode run.json")?;
        write_private(&dir.run_state(), &bytes)
    }

    /// The broker's port when its process runs.
    pub fn broker_port(&self) -> Option<u16> {
        let pid = self.broker.pid?;
        process::is_running(pid, BROKER_PROGRAM)
            .then_some(self.broker.port)
            .flatten()
    }

    /// The source's pid when its adapter runs.
    pub fn source_pid(&self, name: &str) -> Option<u32> {
        self.sources
            .get(name)
            .and_then(|s| s.pid)
            .filter(|pid| process::is_running(*pid, ADAPTER_PROGRAM))
    }
}
