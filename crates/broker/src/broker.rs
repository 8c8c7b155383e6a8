//! The broker's life: start (config, listener, state file, triggers, HTTP server), reload,
//! and shutdown (stop ingest, drain, save what is left, stop serving).
//!
//! Owns the order of those steps. It never parses events or talks to targets itself, and it
//! never exits the process: the binary decides that.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{BrokerConfig, ConfigError};
use crate::delivery::http_client;
use crate::event_log::EventLog;
use crate::state_file::{self, StateFileError};
use crate::status::{BrokerStatus, Counters};
use crate::triggers::Triggers;
use awsdynamodbsource_cloudevents::CloudEvent;

/// How many events a watcher may fall behind before it gets `{"watchLagged": N}`.
const WATCH_BUFFER: usize = 1024;

/// How long open HTTP requests may take to finish once the broker stops serving.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to run a broker (the binary's flags).
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// The YAML config file (read at start and on reload).
    pub config_path: PathBuf,
    /// Where the HTTP API listens (port 0: any free port, see [`Broker::local_addr`]).
    pub listen: SocketAddr,
    /// The most events held before ingest answers 503.
    pub capacity: usize,
    /// Where held events are saved at shutdown and restored from at start.
    pub state_file: Option<PathBuf>,
    /// How long shutdown waits for triggers to finish the held events.
    pub drain_timeout: Duration,
}

impl BrokerOptions {
    /// Options with the binary's defaults: capacity 10000, no state file, 30 s drain.
    pub fn new(config_path: impl Into<PathBuf>, listen: SocketAddr) -> BrokerOptions {
        BrokerOptions {
            config_path: config_path.into(),
            listen,
            capacity: 10_000,
            state_file: None,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the broker could not start (one line).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why (e.g. "Address already in use").
        reason: String,
    },
    /// The state file cannot be read or removed.
    #[error(transparent)]
    State(#[from] StateFileError),
    /// The capacity is zero.
    #[error("the capacity must be at least 1")]
    Capacity,
}

/// What shutdown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Entries still held when the drain ended (0: every trigger finished everything).
    pub remaining: usize,
    /// Where they were saved, if they were.
    pub saved_to: Option<PathBuf>,
}

/// What the HTTP handlers and the broker handle share.
pub(crate) struct Shared {
    pub log: Arc<EventLog>,
    pub counters: Arc<Counters>,
    pub triggers: Mutex<Triggers>,
    pub watchers: broadcast::Sender<Arc<CloudEvent>>,
    pub config_path: PathBuf,
    /// Cancelled when the broker stops serving HTTP: ends watch streams.
    pub stop_serving: CancellationToken,
}

impl Shared {
    /// Re-reads the config file and applies it; on error the old config stays.
    pub async fn reload(&self) -> Result<Vec<String>, ConfigError> {
        let config = BrokerConfig::load(&self.config_path)?;
        let mut triggers = self.triggers.lock().await;
        if triggers.is_stopped() {
            return Err(ConfigError::Invalid(
                "the broker is shutting down; reload ignored".into(),
            ));
        }
        triggers.apply(&config, &BTreeMap::new()).await;
        let names = triggers.names();
        info!(triggers = %names.join(","), "config reloaded");
        Ok(names)
    }

    pub fn status(&self) -> BrokerStatus {
        BrokerStatus {
            accepting: self.log.accepting(),
            held: self.log.held() as u64,
            capacity: self.log.capacity() as u64,
            triggers: self.counters.statuses(|name| self.log.pending(name)),
        }
    }
}

/// A running broker. Dropping it without [`Broker::shutdown`] leaves its tasks running until
/// the runtime ends.
pub struct Broker {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    state_file: Option<PathBuf>,
    drain_timeout: Duration,
    server: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Broker {
    /// Reads the config, binds the listener, restores and removes the state file, starts the
    /// triggers and serves. Logs `listening on http://ADDR` when ready.
    pub async fn start(options: BrokerOptions) -> Result<Broker, StartError> {
        if options.capacity == 0 {
            return Err(StartError::Capacity);
        }
        let config = BrokerConfig::load(&options.config_path)?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| StartError::Listen {
                addr: options.listen,
                reason: io_reason(&e),
            })?;
        let local_addr = listener.local_addr().map_err(|e| StartError::Listen {
            addr: options.listen,
            reason: io_reason(&e),
        })?;

        let restored = match &options.state_file {
            Some(path) => state_file::load(path)?,
            None => None,
        };
        let restored = restored.unwrap_or_default();
        let restored_count = restored.entries.len();
        let log = Arc::new(EventLog::new(
            options.capacity,
            restored.entries,
            restored.next_seq,
        ));
        let counters = Arc::new(Counters::default());
        if let Some(path) = &options.state_file {
            // Taken in (before any delivery starts); a later start must not deliver these again.
            state_file::remove(path)?;
        }
        let mut triggers = Triggers::new(log.clone(), counters.clone(), http_client());
        triggers.apply(&config, &restored.cursors).await;
        if let Some(path) = &options.state_file
            && restored_count > 0
        {
            info!(events = restored_count, held = log.held(), path = %path.display(), "restored events from the state file");
        }

        let shared = Arc::new(Shared {
            log,
            counters,
            triggers: Mutex::new(triggers),
            watchers: broadcast::channel(WATCH_BUFFER).0,
            config_path: options.config_path.clone(),
            stop_serving: CancellationToken::new(),
        });
        let app = crate::server::router(shared.clone());
        let stop = shared.stop_serving.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        info!("listening on http://{local_addr}");
        Ok(Broker {
            shared,
            local_addr,
            state_file: options.state_file,
            drain_timeout: options.drain_timeout,
            server,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR/`, where events are POSTed.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr)
    }

    /// Re-reads the config file (as `POST /-/reload` and SIGHUP do); returns the trigger
    /// names, or the error (the old config stays).
    pub async fn reload(&self) -> Result<Vec<String>, ConfigError> {
        self.shared.reload().await
    }

    /// Waits until every trigger has finished every held entry (delivered, dead-lettered,
    /// dropped or filtered out). Returns at once when nothing is pending.
    pub async fn wait_idle(&self) {
        self.shared.log.wait_drained().await
    }

    /// What `GET /-/status` answers.
    pub fn status(&self) -> BrokerStatus {
        self.shared.status()
    }

    /// Stops ingest (503 from now on), waits until every trigger has finished every held
    /// entry, the drain timeout passes, or `cut_short` completes; then saves what is left to
    /// the state file (if any) and stops serving.
    pub async fn shutdown(
        self,
        cut_short: impl Future<Output = ()>,
    ) -> Result<ShutdownReport, StateFileError> {
        let shared = &self.shared;
        shared.log.stop_accepting();
        info!(held = shared.log.held(), timeout = ?self.drain_timeout, "shutting down: draining");
        tokio::select! {
            _ = shared.log.wait_drained() => {}
            _ = tokio::time::sleep(self.drain_timeout) => {
                warn!("drain timeout passed with events undelivered");
            }
            _ = cut_short => warn!("drain cut short"),
        }
        shared.triggers.lock().await.stop_all().await;
        let snapshot = shared.log.snapshot();
        let remaining = snapshot.entries.len();
        let mut saved_to = None;
        let saved = match (&self.state_file, remaining) {
            (_, 0) => Ok(()),
            (Some(path), _) => {
                let result = state_file::save(path, &snapshot);
                if result.is_ok() {
                    info!(events = remaining, path = %path.display(), "saved undelivered events to the state file");
                    saved_to = Some(path.clone());
                }
                result
            }
            (None, _) => {
                warn!(
                    events = remaining,
                    "undelivered events are lost: no state file"
                );
                Ok(())
            }
        };
        shared.stop_serving.cancel();
        let mut server = self.server;
        if tokio::time::timeout(SERVER_STOP_TIMEOUT, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        saved?;
        info!(remaining, "stopped");
        Ok(ShutdownReport {
            remaining,
            saved_to,
        })
    }
}

/// An I/O error's text without the "(os error N)" suffix.
fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
