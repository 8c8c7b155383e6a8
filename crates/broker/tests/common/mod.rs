//! Shared test parts: a broker in this process on loopback, the binary as a child process,
//! and a client that posts CloudEvents.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use broker::{Broker, BrokerOptions, BrokerStatus};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// A broker running in this process, with its config file in a temporary directory.
pub struct TestBroker {
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub client: reqwest::Client,
}

impl TestBroker {
    /// Starts a broker on 127.0.0.1 (any free port) with this config text.
    pub async fn start(config: &str) -> Result<TestBroker> {
        TestBroker::start_with(config, |_| {}).await
    }

    /// Like [`TestBroker::start`], adjusting the options first.
    pub async fn start_with(
        config: &str,
        adjust: impl FnOnce(&mut BrokerOptions),
    ) -> Result<TestBroker> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("broker.conf");
        std::fs::write(&config_path, config)?;
        let mut options = BrokerOptions::new(&config_path, "127.0.0.1:0".parse()?);
        adjust(&mut options);
        let broker = Broker::start(options).await?;
        Ok(TestBroker {
            broker,
            dir,
            config_path,
            client: client(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.broker.local_addr())
    }

    /// POSTs a binary-mode event with `id`, type `t`, source `test` and JSON data.
    pub async fn send(&self, id: &str, extra: &[(&str, &str)]) -> Result<reqwest::Response> {
        send_binary(&self.client, &self.url("/"), id, extra).await
    }

    /// Sends and requires 200.
    pub async fn send_ok(&self, id: &str, extra: &[(&str, &str)]) -> Result<()> {
        let response = self.send(id, extra).await?;
        if response.status() != 200 {
            bail!(
                "event {id}: status {}: {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(())
    }

    /// `GET /-/status`, parsed.
    pub async fn status(&self) -> Result<BrokerStatus> {
        json(self.client.get(self.url("/-/status")).send().await?).await
    }

    /// Rewrites the config file and POSTs `/-/reload`.
    pub async fn reload(&self, config: &str) -> Result<reqwest::Response> {
        std::fs::write(&self.config_path, config)?;
        Ok(self.client.post(self.url("/-/reload")).send().await?)
    }

    /// Waits until every trigger has finished every held entry.
    pub async fn wait_idle(&self) -> Result<()> {
        tokio::time::timeout(WAIT, self.broker.wait_idle())
            .await
            .map_err(|_| {
                anyhow!(
                    "broker not idle within {WAIT:?}: {:?}",
                    self.broker.status()
                )
            })
    }
}

/// A response body parsed as JSON.
pub async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("reqwest client")
}

/// POSTs a binary-mode event: `id`, type `t` (unless given), source `test`, JSON data
/// `{"id": ID}`; `extra` adds or replaces headers (`ce-type`, `ce-subject`, ...).
pub async fn send_binary(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    extra: &[(&str, &str)],
) -> Result<reqwest::Response> {
    let mut request = client.post(url);
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-source", "test"),
        ("ce-type", "t"),
        ("content-type", "application/json"),
    ];
    for (name, value) in extra {
        headers.retain(|(n, _)| n != name);
        headers.push((name, value));
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Ok(request.body(format!(r#"{{"id": "{id}"}}"#)).send().await?)
}

/// Ids in order.
pub fn ids(events: &[awsdynamodb_testkit::ReceivedEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// `prefix0`, `prefix1`, ...
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// A YAML trigger entry: `name`, its target, optional filters (YAML flow list) and delivery
/// options (YAML flow map).
pub fn trigger(name: &str, url: &str, filters: Option<&str>, options: Option<&str>) -> String {
    let mut text = format!("  {name}:\n");
    if let Some(filters) = filters {
        text.push_str(&format!("    filters: {filters}\n"));
    }
    text.push_str(&format!("    target:\n      url: {url}\n"));
    if let Some(options) = options {
        text.push_str(&format!("      deliveryOptions: {options}\n"));
    }
    text
}

/// `triggers:` followed by the entries.
pub fn config(triggers: &[String]) -> String {
    format!("triggers:\n{}", triggers.concat())
}

/// The `memory-broker` binary as a child: stderr captured line by line, killed on drop.
pub struct BrokerProcess {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    changes: watch::Receiver<u64>,
}

impl BrokerProcess {
    /// Spawns the binary with `--config-path`, `--listen 127.0.0.1:PORT` and `args`, and
    /// waits for its `listening on` line.
    pub async fn start(config_path: &Path, port: u16, args: &[&str]) -> Result<BrokerProcess> {
        let process = BrokerProcess::spawn(config_path, port, args)?;
        process
            .wait_for_line(&format!("listening on http://127.0.0.1:{port}"))
            .await?;
        Ok(process)
    }

    /// Spawns without waiting.
    pub fn spawn(config_path: &Path, port: u16, args: &[&str]) -> Result<BrokerProcess> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_memory-broker"))
            .arg("--config-path")
            .arg(config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawning memory-broker")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, changes) = watch::channel(0u64);
        let captured = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("[memory-broker] {line}");
                captured.lock().unwrap().push(line);
                sender.send_modify(|n| *n += 1);
            }
        });
        Ok(BrokerProcess {
            child,
            port,
            lines,
            changes,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for a stderr line containing `text` (woken on every line).
    pub async fn wait_for_line(&self, text: &str) -> Result<String> {
        let mut changes = self.changes.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            changes.borrow_and_update();
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(text)) {
                return Ok(line);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!(
                    "memory-broker closed stderr before {text:?}; stderr:\n{}",
                    self.lines().join("\n")
                ),
                Err(_) => bail!(
                    "no {text:?} on stderr within {WAIT:?}; stderr:\n{}",
                    self.lines().join("\n")
                ),
            }
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Sends a signal.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        let pid = self.child.id().context("already exited")?;
        // SAFETY: kill(2) with the pid of our own child and a valid signal number.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the exit.
    pub async fn wait_exit(&mut self) -> Result<ExitStatus> {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .map_err(|_| anyhow!("memory-broker did not exit within {WAIT:?}"))?
            .map_err(Into::into)
    }
}
