//! The adapter binary as a child process of a test.
//!
//! [`AdapterProcess`] owns one spawned adapter: a clean environment (only PATH, HOME and what
//! the test gives), stdout and stderr captured line by line (stderr also echoed to the test's
//! stderr with a prefix), health polling, signals, and a kill when dropped (and, through
//! `PR_SET_PDEATHSIG`, when the test process dies). [`free_port`] picks a loopback port.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// A free TCP port on 127.0.0.1 (free when this returns; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
}

/// A running adapter process.
pub struct AdapterProcess {
    child: Child,
    pid: u32,
    health_port: Option<u16>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    /// Bumped on every captured line (stdout or stderr).
    changes: watch::Sender<u64>,
    exit: Option<ExitStatus>,
    /// The tasks that capture stdout and stderr (done at EOF).
    capture_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for AdapterProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterProcess")
            .field("pid", &self.pid)
            .field("health_port", &self.health_port)
            .finish()
    }
}

impl AdapterProcess {
    /// Spawns `binary` with only PATH, HOME and `env` in its environment. `HEALTH_PORT` in
    /// `env` is where [`AdapterProcess::wait_healthy`] looks.
    pub fn spawn(binary: impl AsRef<Path>, env: Vec<(String, String)>) -> Result<AdapterProcess> {
        let binary: PathBuf = binary.as_ref().to_path_buf();
        let health_port = env
            .iter()
            .rev()
            .find(|(k, _)| k == "HEALTH_PORT")
            .map(|(_, v)| v.parse::<u16>())
            .transpose()
            .context("HEALTH_PORT is not a port number")?;
        let mut cmd = Command::new(&binary);
        cmd.env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: the closure only calls prctl, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot spawn {}", binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("spawned process has no pid"))?;
        let (changes, _) = watch::channel(0);
        let stdout = Arc::new(Lines::default());
        let stderr = Arc::new(Lines::default());
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "adapter".into());
        let mut capture_tasks = Vec::new();
        if let Some(out) = child.stdout.take() {
            capture_tasks.push(capture(out, stdout.clone(), changes.clone(), None));
        }
        if let Some(err) = child.stderr.take() {
            capture_tasks.push(capture(
                err,
                stderr.clone(),
                changes.clone(),
                Some(format!("[{name} {pid}]")),
            ));
        }
        Ok(AdapterProcess {
            child,
            pid,
            health_port,
            stdout,
            stderr,
            changes,
            exit: None,
            capture_tasks,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `HEALTH_PORT` from the environment it was given.
    pub fn health_port(&self) -> Option<u16> {
        self.health_port
    }

    /// Lines written to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lines.lock().unwrap().clone()
    }

    /// Lines written to stderr so far (the JSON logs).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines.lock().unwrap().clone()
    }

    /// Polls `GET http://127.0.0.1:{HEALTH_PORT}/health` until it answers 204 (or 200: healthy
    /// and idle, a replica holding no shard lease). Fails when the
    /// process exits first or `timeout` passes.
    pub async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let port = self
            .health_port
            .ok_or_else(|| anyhow!("no HEALTH_PORT in the adapter's environment"))?;
        let url = format!("http://127.0.0.1:{port}/health");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exit = Some(status);
                self.finish_capture(tokio::time::Instant::now() + Duration::from_secs(2))
                    .await;
                bail!(
                    "adapter exited ({status}) before it was healthy; stderr:\n{}",
                    self.stderr_tail(20)
                );
            }
            let last = match client.get(&url).send().await {
                Ok(resp) if matches!(resp.status().as_u16(), 200 | 204) => return Ok(()),
                Ok(resp) => format!("status {}", resp.status()),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "adapter not healthy on {url} within {timeout:?} (last: {last}); stderr:\n{}",
                    self.stderr_tail(20)
                );
            }
            // An external process: short polling is the only way to see it come up.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `condition` holds for the stderr lines (woken on every new line).
    pub async fn wait_for_stderr(
        &self,
        condition: impl Fn(&[String]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<String>> {
        self.wait_for_lines(&self.stderr, "stderr", condition, timeout)
            .await
    }

    /// Waits until `condition` holds for the stdout lines (woken on every new line).
    pub async fn wait_for_stdout(
        &self,
        condition: impl Fn(&[String]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<String>> {
        self.wait_for_lines(&self.stdout, "stdout", condition, timeout)
            .await
    }

    async fn wait_for_lines(
        &self,
        lines: &Lines,
        what: &str,
        condition: impl Fn(&[String]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<String>> {
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            {
                let l = lines.lines.lock().unwrap();
                if condition(&l) {
                    return Ok(l.clone());
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Both streams closed: no new line will come.
                Ok(Err(_)) => bail!("adapter {what} closed before the condition held"),
                Err(_) => bail!(
                    "condition on adapter {what} not met within {timeout:?}; stderr:\n{}",
                    self.stderr_tail(20)
                ),
            }
        }
    }

    fn stderr_tail(&self, n: usize) -> String {
        let lines = self.stderr.lines.lock().unwrap();
        let start = lines.len().saturating_sub(n);
        lines[start..].join("\n")
    }

    fn signal(&self, signal: libc::c_int) -> Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        // SAFETY: plain syscall on the pid of a child this handle owns and has not reaped.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e).context("kill");
            }
        }
        Ok(())
    }

    /// SIGKILL.
    pub fn kill9(&self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// SIGSTOP: the process is frozen, its clocks run on.
    pub fn freeze(&self) -> Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) -> Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// SIGTERM (graceful shutdown).
    pub fn terminate(&self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Waits for the process to exit, then (bounded by the same timeout) for the rest of its
    /// output to be captured, so `stdout_lines`/`stderr_lines` are complete afterwards.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let status = tokio::time::timeout_at(deadline, self.child.wait())
            .await
            .map_err(|_| {
                anyhow!(
                    "adapter {} did not exit within {timeout:?}; stderr:\n{}",
                    self.pid,
                    self.stderr_tail(20)
                )
            })??;
        self.exit = Some(status);
        self.finish_capture(deadline).await;
        Ok(status)
    }

    /// Waits for the capture tasks to reach EOF, but not past `deadline` (a grandchild may
    /// hold the pipes open).
    async fn finish_capture(&mut self, deadline: tokio::time::Instant) {
        for task in self.capture_tasks.drain(..) {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
    }
}

fn capture(
    reader: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Lines>,
    changes: watch::Sender<u64>,
    echo_prefix: Option<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(prefix) = &echo_prefix {
                eprintln!("{prefix} {line}");
            }
            into.lines.lock().unwrap().push(line);
            changes.send_modify(|v| *v += 1);
        }
    })
}
