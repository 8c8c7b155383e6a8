//! What runs for a broker: its `run.json` (pids and ports), and starting
//! the broker and the adapters with what the manifest says.
//!
//! The manifest says what should exist; `run.json` says what was started
//! and where it listens. A pid there is trusted only while
//! [`crate::process::is_running`] says it still runs the same program.
//!
//! - `state`: `run.json`;
//! - `broker`: starting and asking the broker;
//! - `adapter`: an adapter's environment, starting it, reading its complaints.

mod adapter;
mod broker;
mod state;

use std::time::Duration;

pub use adapter::{ADAPTER_GRACE, ADAPTER_PROGRAM, start_adapter};
pub use broker::{BROKER_DRAIN, BROKER_PROGRAM, broker_status, reload_broker, start_broker};
pub use state::RunState;

pub fn broker_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// The HTTP client tmctl asks its processes with: short timeouts, since they run here.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// True when `url` answers 2xx.
async fn answers(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
