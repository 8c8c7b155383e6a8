//! The broker's process: started with its configuration and state file,
//! waited for until it answers, asked for its status and to reload.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{RunState, answers, http};
use crate::home::BrokerDir;
use crate::process;

pub const BROKER_PROGRAM: &str = "memory-broker";

/// How long the broker may take to deliver what it holds when stopped
/// (beyond that, it keeps the rest in `broker-state.json` for its next start).
pub const BROKER_DRAIN: Duration = Duration::from_secs(30);

/// Starts the broker's process and waits until it answers; records it.
pub async fn start_broker(dir: &BrokerDir, state: &mut RunState) -> Result<u16> {
    let binary = process::find_binary(BROKER_PROGRAM)?;
    let port = match state.broker.port {
        Some(p) if process::port_is_free(p) => p,
        _ => process::free_port()?,
    };
    let capacity = if state.broker.capacity == 0 {
        10_000
    } else {
        state.broker.capacity
    };
    let args = vec![
        "--config-path".to_owned(),
        dir.broker_conf().display().to_string(),
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--capacity".to_owned(),
        capacity.to_string(),
        "--state-file".to_owned(),
        dir.broker_state().display().to_string(),
        "--drain-timeout".to_owned(),
        BROKER_DRAIN.as_secs().to_string(),
    ];
    let mut started = process::spawn(&binary, &args, &[], &dir.log("broker"))?;
    let url = format!("http://127.0.0.1:{port}/health");
    let client = http();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = started.child.try_wait() {
            let lines = process::log_lines_since(&started.log, started.log_offset);
            let reason = lines
                .iter()
                .rev()
                .find(|l| l.starts_with("error"))
                .or(lines.last())
                .map(|l| l.trim_start_matches("error: ").to_owned())
                .unwrap_or_else(|| format!("it exited ({status})"));
            bail!("the broker did not start: {reason}");
        }
        if answers(&client, &url).await {
            break;
        }
        if Instant::now() > deadline {
            process::stop(started.child.id(), BROKER_PROGRAM, Duration::from_secs(2)).await;
            bail!(
                "the broker did not answer on port {port} within 15 s (its log: {})",
                started.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    state.broker.pid = Some(started.child.id());
    state.broker.port = Some(port);
    state.broker.capacity = capacity;
    Ok(port)
}

/// What the broker reports (`GET /-/status`), if it runs (`port`) and
/// answers.
pub async fn broker_status(port: Option<u16>) -> Option<::broker::BrokerStatus> {
    let port = port?;
    let resp = http()
        .get(format!("http://127.0.0.1:{port}/-/status"))
        .send()
        .await
        .ok()?;
    serde_json::from_slice(&resp.bytes().await.ok()?).ok()
}

/// Asks a running broker to re-read `broker.conf`.
pub async fn reload_broker(port: u16) -> Result<()> {
    let resp = http()
        .post(format!("http://127.0.0.1:{port}/-/reload"))
        .send()
        .await
        .context("the broker did not answer")?;
    if !resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        bail!("the broker refused its configuration: {}", text.trim());
    }
    Ok(())
}
