//! `memory-broker`: the local in-memory CloudEvents broker as a process (tmctl starts it).
//!
//! Owns the process edge only: flags, logging, signals (SIGTERM/SIGINT drain and stop,
//! SIGHUP reloads) and exit codes. Startup problems are one `error: ` line and exit 1.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use broker::{Broker, BrokerOptions};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

/// A local in-memory CloudEvents broker: events POSTed to it are delivered, in order and
/// with retries, to the targets of the triggers in its config file.
#[derive(Parser, Debug)]
#[command(
    name = "memory-broker",
    version,
    after_help = "HTTP API on the listen address:\n  \
POST /           ingest one CloudEvent (binary or structured mode)\n  \
GET  /health     200 when serving\n  \
GET  /-/watch    every event ingested from now on, one JSON per line\n  \
POST /-/reload   re-read the config file (SIGHUP does the same)\n  \
GET  /-/status   held events and per-trigger counters, as JSON\n\n\
SIGTERM or SIGINT: stop ingest, deliver what is held (up to --drain-timeout), save the rest to\n\
--state-file, exit 0. A second signal ends the wait at once."
)]
struct Cli {
    /// The broker config file (YAML: triggers with filters, target and delivery options).
    #[arg(long, value_name = "PATH")]
    config_path: PathBuf,

    /// Where the HTTP API listens, e.g. 127.0.0.1:4000.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,

    /// The most events held in memory; beyond it, ingest answers 503.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    capacity: u64,

    /// Save undelivered events here at shutdown; restore (and delete) it at start.
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,

    /// Seconds shutdown waits for triggers to deliver what is held.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    drain_timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each error's own text names its causes; `{e}` keeps it to one line.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Installed before anything else, so an early SIGTERM still drains instead of killing.
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| anyhow!("cannot handle SIGTERM: {e}"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| anyhow!("cannot handle SIGINT: {e}"))?;
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| anyhow!("cannot handle SIGHUP: {e}"))?;

    let options = BrokerOptions {
        config_path: cli.config_path,
        listen: cli.listen,
        capacity: usize::try_from(cli.capacity).unwrap_or(usize::MAX),
        state_file: cli.state_file,
        drain_timeout: Duration::from_secs(cli.drain_timeout),
    };
    let broker = Broker::start(options).await?;
    loop {
        tokio::select! {
            _ = terminate.recv() => { info!("SIGTERM received"); break; }
            _ = interrupt.recv() => { info!("SIGINT received"); break; }
            _ = hangup.recv() => {
                if let Err(e) = broker.reload().await {
                    error!("reload on SIGHUP failed, the previous config stays: {e}");
                }
            }
        }
    }
    let second_signal = async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    broker.shutdown(second_signal).await?;
    Ok(())
}
