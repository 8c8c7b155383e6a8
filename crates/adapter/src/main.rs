//! `awsdynamodbsource-adapter`: the environment → the engine, with health,
//! metrics, logs and a clean shutdown.
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 2 for bad configuration, 1 when the
//! source cannot start (table, stream, permissions, endpoint, checkpoints).
//! Each failure is one line on standard error.

mod aws;
mod config;
mod logging;
mod process_metrics;
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use awsdynamodb_source::Health;
use awsdynamodb_source::Metrics;
use awsdynamodb_source::{CheckpointStore, Checkpointer, FileStore, MemoryStore};
use awsdynamodb_source::{DeadLetter, HttpSink, Sink, SinkLimits, StdoutSink, Url, redact};
use awsdynamodb_source::{Engine, EngineConfig, StartupBudget, duration_text, preflight};
use awsdynamodb_source::{LeaseKeeper, LeaseSettings, LeaseStore};
use awsdynamodb_source::{ReadRate, Snapshot, TableScanner, snapshot_due};
use awsdynamodbsource_api::vars::{CHECKPOINT_STORE, COORDINATION, SNAPSHOT, STARTUP_TIMEOUT};
use awsdynamodbsource_checkpoint_kube::{ConfigMapStore, KubeLeaseStore};
use clap::Parser;
use config::{Args, CheckpointLocation, Coordination, Settings, SnapshotSettings};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    one_malloc_arena();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            logging::fatal(config::requested_log_format(), &config::error_line(&e));
            return ExitCode::from(2);
        }
    };
    let log_format = args.log_format();
    let settings = match args.settings() {
        Ok(s) => s,
        Err(e) => {
            logging::fatal(log_format, &e);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::fatal(log_format, &format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::fatal(log_format, &e);
            ExitCode::FAILURE
        }
    }
}

async fn run(s: Settings) -> Result<(), String> {
    logging::init(
        s.log_format,
        s.log_level,
        s.namespace.as_deref(),
        s.name.as_deref(),
    );
    // The settings that decide what happens, as the variables spell them.
    tracing::info!(
        arn = %s.arn,
        endpoint = %aws::streams_endpoint(&s),
        sink = %s.sink.as_ref().map(redact).unwrap_or_else(|| "stdout".into()),
        starting_position = %s.starting_position,
        checkpoint_store = %checkpoint_location(&s.checkpoints),
        coordination = %match &s.coordination {
            Some(Coordination::DynamoDb(table)) => format!("dynamodb:{table}"),
            Some(Coordination::Kubernetes) => "kubernetes".into(),
            None => "none".into(),
        },
        poll_interval = %duration_text(s.poll_interval),
        idle_poll_interval = %duration_text(s.idle_poll_interval),
        max_in_flight = max_in_flight(&s),
        data_format = %s.events.data_format,
        filter_patterns = s.filter.as_ref().map(|f| f.len()).unwrap_or(0),
        dead_letter_sink = %s.dead_letter_sink.as_ref().map(redact).unwrap_or_else(|| "none".into()),
        "starting"
    );

    let store = checkpoint_store(&s).await?;

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    process_metrics::register(&mut registry);
    let health = Arc::new(Health::new(s.unhealthy_after));
    server::start(
        s.health_port,
        s.metrics_port,
        health.clone(),
        Arc::new(registry),
    )
    .await?;

    let aws = aws::Aws::load(&s).await;
    let endpoint = aws::streams_endpoint(&s);
    let api = Arc::new(aws.streams());
    // One STARTUP_TIMEOUT for both checks, each saying itself why it gave
    // up; the margin is for a call that hangs.
    let budget = StartupBudget::new(s.startup_timeout);
    aws.await_credentials(&budget).await?;
    match tokio::time::timeout_at(
        budget.deadline() + Duration::from_secs(2),
        preflight(&*api, &s.arn, &endpoint, &budget),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "cannot reach DynamoDB Streams at {endpoint} within {STARTUP_TIMEOUT} ({}): no answer",
                duration_text(s.startup_timeout)
            ));
        }
    }

    let leases = match &s.coordination {
        Some(coordination) => {
            let lease_store =
                tokio::time::timeout(s.startup_timeout, lease_store(&s, &aws, coordination))
                    .await
                    .map_err(|_| {
                        format!(
                            "cannot reach the lease store within {STARTUP_TIMEOUT} ({:?})",
                            s.startup_timeout
                        )
                    })??;
            // Read once: where shards without a lease yet begin.
            let carried = store.load().await.map_err(|e| e.to_string())?;
            let settings = LeaseSettings {
                replica: replica_name(),
                lease_time: s.lease_duration,
            };
            tracing::info!(store = %lease_store.location(), replica = %settings.replica, lease_duration = %duration_text(s.lease_duration), "sharing the stream through shard leases");
            Some(LeaseKeeper::new(
                lease_store,
                settings,
                carried,
                metrics.clone(),
                health.clone(),
            ))
        }
        None => None,
    };
    // With leases, the carried store is let go (a file store's lock with it).
    let store: Arc<dyn CheckpointStore> = match &leases {
        Some(keeper) => {
            drop(store);
            keeper.clone()
        }
        None => store,
    };
    let checkpoints = Checkpointer::open(store, metrics.clone(), health.clone())
        .await
        .map_err(|e| e.to_string())?;
    let saved = checkpoints.snapshot();
    let saved_shards: usize = saved.streams.values().map(|s| s.shards.len()).sum();
    tracing::info!(
        store = %checkpoints.location(),
        saved_shards,
        resumes = if saved_shards == 0 {
            "at STARTING_POSITION (first start)"
        } else {
            "from the checkpoints (STARTING_POSITION applies to shards without one)"
        },
        "checkpoints loaded"
    );

    let (sink, dead_letter) = sinks(&s)?;
    let mut engine = Engine::new(
        engine_config(&s, dead_letter),
        api,
        sink,
        checkpoints,
        health,
        metrics,
    );
    if let Some(keeper) = leases {
        engine = engine.with_leases(keeper);
    }
    if let Some(snapshot) = &s.snapshot
        && snapshot_due(&saved, &s.arn)
    {
        engine = engine.with_snapshot(table_snapshot(&s, snapshot, &aws).await?);
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    engine.run(shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

const SNAPSHOT_PAGE_ITEMS: i32 = 1_000;

/// The snapshot's scanner, once the table is checked: the stream carries
/// new images, and DescribeTable and Scan are allowed.
async fn table_snapshot(
    s: &Settings,
    snapshot: &SnapshotSettings,
    aws: &aws::Aws,
) -> Result<Snapshot, String> {
    let rate = snapshot
        .read_units
        .map(|units| Arc::new(ReadRate::new(units)));
    // Pages of 1,000 items at most: a chunk waits a few seconds for the
    // stream, and the fewer items wait, the less memory and the less time
    // changes are held while a chunk's rows go out.
    let scanner = TableScanner::new(
        aws.dynamodb(),
        s.arn.table(),
        snapshot.segments,
        Some(SNAPSHOT_PAGE_ITEMS),
        rate,
    );
    let facts = tokio::time::timeout(s.startup_timeout, scanner.check())
        .await
        .map_err(|_| {
            format!(
                "{SNAPSHOT}=initial: DynamoDB did not answer DescribeTable or Scan within {STARTUP_TIMEOUT} ({})",
                duration_text(s.startup_timeout)
            )
        })?
        .map_err(|e| e.to_string())?;
    tracing::info!(
        segments = snapshot.segments,
        read_units = snapshot.read_units,
        margin = %duration_text(snapshot.margin),
        estimated_items = facts.estimated_items,
        "a snapshot of the table is due"
    );
    Ok(Snapshot {
        scanner,
        margin: snapshot.margin,
        estimated_items: facts.estimated_items,
    })
}

/// This replica's name in the leases: the host (the pod's name in
/// Kubernetes) and a random suffix, so a restarted process is a new replica.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "adapter".into());
    format!("{host}-{:06x}", fastrand::u32(..0x0100_0000))
}

/// Where the shard leases are kept (checked at once: a missing table or
/// permission is named at startup).
async fn lease_store(
    s: &Settings,
    aws: &aws::Aws,
    coordination: &Coordination,
) -> Result<Arc<dyn LeaseStore>, String> {
    match coordination {
        Coordination::DynamoDb(table) => aws.lease_store(table).await,
        Coordination::Kubernetes => {
            // A call must end well within a renewal period (a third of the
            // lease), or one hung request costs this replica its leases.
            let bound = (s.lease_duration / 4).max(std::time::Duration::from_millis(500));
            let (client, namespace) = kube_client(s, Some(bound)).await.map_err(|e| {
                format!("{COORDINATION}=kubernetes: no Kubernetes API reachable: {e}")
            })?;
            let name = s.name.as_deref().unwrap_or_default();
            let store = KubeLeaseStore::new(client, &namespace, name, s.lease_duration);
            store
                .list(s.arn.as_str())
                .await
                .map_err(|e| format!("{COORDINATION}=kubernetes: cannot list the Leases: {e}"))?;
            Ok(Arc::new(store))
        }
    }
}

/// The checkpoint store as CHECKPOINT_STORE spells it.
fn checkpoint_location(location: &CheckpointLocation) -> String {
    match location {
        CheckpointLocation::File(dir) => format!("file:{}", dir.display()),
        CheckpointLocation::Memory => "memory:".into(),
        CheckpointLocation::Kubernetes(name) => format!("kubernetes:{name}"),
    }
}

/// Where checkpoints are kept.
async fn checkpoint_store(s: &Settings) -> Result<Arc<dyn CheckpointStore>, String> {
    Ok(match &s.checkpoints {
        CheckpointLocation::File(dir) => Arc::new(FileStore::open(dir).map_err(|e| e.to_string())?),
        CheckpointLocation::Memory => Arc::new(MemoryStore::new()),
        CheckpointLocation::Kubernetes(name) => {
            let (client, namespace) = kube_client(s, None).await.map_err(|e| {
                format!("{CHECKPOINT_STORE} kubernetes:{name}: no Kubernetes API reachable: {e}")
            })?;
            Arc::new(ConfigMapStore::new(client, &namespace, name))
        }
    })
}

/// A client of the cluster's API (each call bounded by `timeout` when
/// given), and the adapter's namespace: NAMESPACE, else the client's own.
async fn kube_client(
    s: &Settings,
    timeout: Option<std::time::Duration>,
) -> Result<(kube::Client, String), String> {
    let mut config = kube::Config::infer().await.map_err(|e| e.to_string())?;
    if let Some(bound) = timeout {
        config.connect_timeout = Some(bound);
        config.read_timeout = Some(bound);
        config.write_timeout = Some(bound);
    }
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    let namespace = s
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    Ok((client, namespace))
}

/// The sink (K_SINK, else standard output) and the dead-letter sink.
fn sinks(s: &Settings) -> Result<(Arc<dyn Sink>, Option<DeadLetter>), String> {
    let http_sink = |url: &Url| -> Result<Arc<dyn Sink>, String> {
        Ok(Arc::new(
            HttpSink::new(
                url.clone(),
                SinkLimits {
                    response_timeout: s.sink_timeout,
                    connect_timeout: s.sink_connect_timeout,
                    max_connections: s.sink_max_connections,
                },
            )
            .map_err(|e| e.to_string())?
            .with_mode(s.ce_mode),
        ))
    };
    let sink: Arc<dyn Sink> = match &s.sink {
        Some(url) => http_sink(url)?,
        None => Arc::new(StdoutSink),
    };
    let dead_letter = s
        .dead_letter_sink
        .as_ref()
        .map(|url| http_sink(url).map(|sink| DeadLetter { sink }))
        .transpose()?;
    Ok((sink, dead_letter))
}

fn engine_config(s: &Settings, dead_letter: Option<DeadLetter>) -> EngineConfig {
    let mut config = EngineConfig::new(s.arn.clone());
    config.starting_position = s.starting_position.clone();
    config.overrides = s.overrides.clone();
    config.max_in_flight = max_in_flight(s);
    config.poll_interval = s.poll_interval;
    config.idle_poll_interval = s.idle_poll_interval;
    config.shutdown_timeout = s.shutdown_timeout;
    config.events = s.events.clone();
    config.filter = s.filter.clone().map(Arc::new);
    config.dead_letter = dead_letter;
    config.retry.max_attempts = s.max_attempts;
    config.retry.max_record_age = s.max_record_age;
    config
}

/// Writing to standard output is immediate: one event at a time costs
/// nothing there and keeps the lines in stream order.
fn max_in_flight(s: &Settings) -> usize {
    if s.sink.is_some() { s.max_in_flight } else { 1 }
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing deliveries in flight, then stopping"),
        _ = int.recv() => tracing::info!("SIGINT: finishing deliveries in flight, then stopping"),
    }
    shutdown.cancel();
}

/// glibc gives each thread that allocates its own arena, and each arena
/// keeps freed pages: the drain benchmark peaked near 29 MB with them and
/// near 23 MB with one, at the same throughput (threads still cache small
/// blocks locally). Called first, before any thread exists.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
