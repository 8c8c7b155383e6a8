//! The set of running triggers: applying a configuration starts, restarts and stops delivery
//! tasks and adds or removes their cursors.
//!
//! Owns the rule for where a trigger starts: a new trigger at the end of the log (or where a
//! state file left it), a changed one where its cursor is, a removed one's cursor goes. It
//! never delivers; it only manages tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{BrokerConfig, Trigger};
use crate::delivery::DeliveryTask;
use crate::event_log::EventLog;
use crate::status::Counters;

struct Running {
    trigger: Trigger,
    task: JoinHandle<()>,
}

/// The triggers of the current configuration and their tasks.
pub(crate) struct Triggers {
    log: Arc<EventLog>,
    counters: Arc<Counters>,
    client: reqwest::Client,
    running: BTreeMap<String, Running>,
    /// Set by [`Triggers::stop_all`]: no task starts after it (a reload during shutdown).
    stopped: bool,
}

impl Triggers {
    pub fn new(log: Arc<EventLog>, counters: Arc<Counters>, client: reqwest::Client) -> Triggers {
        Triggers {
            log,
            counters,
            client,
            running: BTreeMap::new(),
            stopped: false,
        }
    }

    /// Makes the running triggers those of `config`. New triggers start at `resume_at[name]`
    /// when given (a state file's positions), else at the end of the log.
    pub async fn apply(&mut self, config: &BrokerConfig, resume_at: &BTreeMap<String, u64>) {
        if self.stopped {
            return;
        }
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|name| !config.triggers.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.running.remove(&name) {
                stop(running.task).await;
            }
            self.log.remove_cursor(&name);
            self.counters.remove(&name);
            info!(trigger = %name, "trigger removed");
        }
        for (name, trigger) in &config.triggers {
            match self.running.get(name) {
                Some(running) if running.trigger == *trigger => continue,
                Some(_) => {
                    // Changed: same cursor, new task (the event in flight may go out twice).
                    if let Some(running) = self.running.remove(name) {
                        stop(running.task).await;
                    }
                    info!(trigger = %name, "trigger changed; it resumes where it was");
                }
                None => {
                    self.log.add_cursor(name, resume_at.get(name).copied());
                    info!(trigger = %name, target = %trigger.target.url, "trigger added");
                }
            }
            let task = DeliveryTask {
                name: name.clone(),
                trigger: trigger.clone(),
                store: self.log.clone(),
                client: self.client.clone(),
                counters: self.counters.for_trigger(name),
            };
            self.running.insert(
                name.clone(),
                Running {
                    trigger: trigger.clone(),
                    task: tokio::spawn(task.run()),
                },
            );
        }
        // Entries no cursor holds (e.g. restored ones no configured trigger wants) go.
        self.log.release_unheld();
    }

    /// Stops every task; cursors stay (for the state file).
    pub async fn stop_all(&mut self) {
        self.stopped = true;
        for (_, running) in std::mem::take(&mut self.running) {
            stop(running.task).await;
        }
    }

    /// Whether [`Triggers::stop_all`] ran.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The configured trigger names.
    pub fn names(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }
}

/// Aborts a task and waits until it is gone, so two tasks never move one cursor.
async fn stop(task: JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}
