//! `tmctl stop` and `tmctl start`.
//!
//! Stopping goes downstream: the adapters first (each finishes its
//! deliveries and saves its checkpoints), then the broker, which delivers
//! what it holds (or keeps it in `broker-state.json` for its next start).
//! So an event is always either in the stream past no checkpoint, or in
//! the broker, or delivered: stop and start lose nothing.

use anyhow::{Result, bail};

use crate::home::{BrokerDir, Home};
use crate::manifest::{Manifest, SOURCE_KIND, name_of};
use crate::process;
use crate::runtime::{
    ADAPTER_GRACE, ADAPTER_PROGRAM, BROKER_DRAIN, BROKER_PROGRAM, RunState, broker_url,
    start_adapter, start_broker,
};

/// How long `start` waits for each adapter to capture.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn stop(home: &Home, broker: Option<&str>) -> Result<()> {
    let dir = home.broker(broker)?;
    let (sources, broker_was_running) = stop_all(&dir).await?;
    let name = &dir.name;
    match (broker_was_running, sources) {
        (false, 0) => println!("Broker {name} was not running"),
        (_, n) => println!("Stopped broker {name} and {n} source(s)"),
    }
    if dir.broker_state().exists() {
        println!(
            "Events the broker could not deliver yet are kept in {} and delivered when it starts again",
            dir.broker_state().display()
        );
    }
    Ok(())
}

/// Stops the adapters, then the broker. Returns how many adapters ran and
/// whether the broker did.
pub async fn stop_all(dir: &BrokerDir) -> Result<(usize, bool)> {
    let mut state = RunState::load(dir)?;
    let mut stopped = 0;
    let names: Vec<String> = state.sources.keys().cloned().collect();
    for name in names {
        if let Some(pid) = state.source_pid(&name) {
            if !process::stop(pid, ADAPTER_PROGRAM, ADAPTER_GRACE).await {
                eprintln!("warning: source {name}'s adapter did not stop in time and was killed");
            }
            stopped += 1;
        }
        if let Some(run) = state.sources.get_mut(&name) {
            run.pid = None;
            run.health_port = None;
        }
    }
    state.save(dir)?;
    let broker_ran = match state
        .broker
        .pid
        .filter(|pid| process::is_running(*pid, BROKER_PROGRAM))
    {
        Some(pid) => {
            let status = crate::runtime::broker_status(state.broker_port()).await;
            if let Some(held) = status.map(|s| s.held).filter(|n| *n > 0) {
                eprintln!(
                    "Broker {} delivers the {held} event(s) it holds before it stops (at most {} s)",
                    dir.name,
                    BROKER_DRAIN.as_secs()
                );
            }
            let grace = BROKER_DRAIN + std::time::Duration::from_secs(10);
            if !process::stop(pid, BROKER_PROGRAM, grace).await {
                eprintln!(
                    "warning: broker {} did not stop in time and was killed",
                    dir.name
                );
            }
            true
        }
        None => false,
    };
    state.broker.pid = None;
    state.save(dir)?;
    Ok((stopped, broker_ran))
}

pub async fn start(home: &Home, broker: Option<&str>, restart: bool) -> Result<()> {
    let dir = home.broker(broker)?;
    if restart {
        stop_all(&dir).await?;
    }
    let manifest = Manifest::load(&dir.manifest())?;
    let mut state = RunState::load(&dir)?;
    let port = match state.broker_port() {
        Some(port) => port,
        None => {
            let before = state.broker.port;
            let port = start_broker(&dir, &mut state).await?;
            state.save(&dir)?;
            // Adapters still sending to a previous port get the new one.
            if before != Some(port) {
                for (name, run) in state.sources.iter_mut() {
                    if let Some(pid) = run.pid.filter(|p| process::is_running(*p, ADAPTER_PROGRAM))
                    {
                        eprintln!("restarting source {name}: the broker moved to port {port}");
                        process::stop(pid, ADAPTER_PROGRAM, ADAPTER_GRACE).await;
                        run.pid = None;
                    }
                }
            }
            port
        }
    };
    println!("Broker {} running at {}", dir.name, broker_url(port));
    let mut failures = Vec::new();
    let names: Vec<String> = manifest
        .of_kind(SOURCE_KIND)
        .map(|s| name_of(s).to_owned())
        .collect();
    for name in names {
        if state.source_pid(&name).is_some() {
            println!("Source {name} already running");
            continue;
        }
        match start_adapter(&dir, &manifest, &name, &mut state, port, START_WAIT).await {
            Ok(()) => println!("Source {name} capturing"),
            Err(e) => failures.push(format!("source {name}: {e:#}")),
        }
        state.save(&dir)?;
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}
