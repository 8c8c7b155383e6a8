//! DynamoDB Local, the real emulator from AWS, for this test process.
//!
//! [`DynamoDbLocal::shared`] owns the one instance a test process uses: the endpoint named by
//! `DYNAMODB_LOCAL_ENDPOINT` when set (CI starts one with `scripts/ddb-local start`), otherwise
//! a JVM this module installs (`scripts/ddb-local install`) and spawns on a free loopback port
//! (`scripts/ddb-local run PORT`, which `exec`s java). The JVM is spawned from a dedicated
//! thread that lives as long as the JVM, with `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the
//! test process however that ends; nothing needs to stop it. This works the same under
//! `cargo test` (one process, many test threads and runtimes: clients are built per call,
//! never cached across runtimes) and `cargo nextest` (one process, hence one JVM, per test).

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::OnceCell;

use crate::clients::{Retries, dynamodb_client, streams_client};

/// How long a fresh JVM gets to answer ListTables.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the npm install may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of the JVM's output kept for error messages.
const OUTPUT_LINES: usize = 200;

static SHARED: OnceCell<DynamoDbLocal> = OnceCell::const_new();

/// A running DynamoDB Local (`-inMemory -sharedDb`).
#[derive(Debug)]
pub struct DynamoDbLocal {
    endpoint: String,
    process: Option<JvmProcess>,
}

#[derive(Debug)]
struct JvmProcess {
    pid: u32,
    output: Arc<Mutex<VecDeque<String>>>,
    exit: Arc<Mutex<Option<ExitStatus>>>,
}

impl JvmProcess {
    fn output_tail(&self) -> String {
        let out = self.output.lock().unwrap();
        out.iter()
            .rev()
            .take(15)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn failed_to_bind(&self) -> bool {
        self.output
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Failed to bind") || l.contains("Address already in use"))
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.lock().unwrap()
    }

    fn kill(&self) {
        if self.exit_status().is_none() {
            // SAFETY: plain syscall on a pid this module spawned and whose exit it has not reaped.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        if let Some(p) = &self.process {
            p.kill();
        }
    }
}

impl DynamoDbLocal {
    /// The instance for this test process, started on first use. Panics (this is test code)
    /// with a clear message when DynamoDB Local cannot be installed or does not answer.
    pub async fn shared() -> &'static DynamoDbLocal {
        SHARED
            .get_or_init(|| async {
                match std::env::var("DYNAMODB_LOCAL_ENDPOINT") {
                    Ok(endpoint) if !endpoint.trim().is_empty() => {
                        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
                        wait_answers(&endpoint, None, 0, START_TIMEOUT)
                            .await
                            .unwrap_or_else(|e| {
                                panic!("DYNAMODB_LOCAL_ENDPOINT={endpoint} does not answer: {e:#}")
                            });
                        DynamoDbLocal {
                            endpoint,
                            process: None,
                        }
                    }
                    _ => DynamoDbLocal::spawn().await.unwrap_or_else(|e| {
                        panic!("cannot start DynamoDB Local for the tests: {e:#}")
                    }),
                }
            })
            .await
    }

    /// A private instance (its own JVM), killed when the value is dropped: for tests that need
    /// to stop DynamoDB Local or want a database of their own.
    pub async fn spawn() -> Result<DynamoDbLocal> {
        let script = script_path();
        install(&script).await?;
        let mut last_error = anyhow!("no attempt made");
        for _ in 0..5 {
            let port = crate::process::free_port();
            let process = spawn_jvm(&script, port)?;
            let endpoint = format!("http://127.0.0.1:{port}");
            match wait_answers(&endpoint, Some(&process), port, START_TIMEOUT).await {
                Ok(()) => {
                    return Ok(DynamoDbLocal {
                        endpoint,
                        process: Some(process),
                    });
                }
                Err(e) => {
                    process.kill();
                    if process.failed_to_bind() {
                        // Someone took the port between free_port() and the JVM's bind: retry.
                        last_error = e;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Err(last_error.context("DynamoDB Local could not bind a free port in 5 attempts"))
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The JVM's pid, when this process started it.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    /// A DynamoDB client (standard retries) for this instance.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        dynamodb_client(&self.endpoint, Retries::Standard)
    }

    /// A DynamoDB Streams client (standard retries) for this instance.
    pub fn streams(&self) -> aws_sdk_dynamodbstreams::Client {
        streams_client(&self.endpoint, Retries::Standard)
    }
}

/// `scripts/ddb-local`, found from the running test's package folder
/// (`crates/<name>`, which cargo names at run time), else from this crate's
/// folder at build time. Run time first: a build cache shared by two
/// checkouts would otherwise send every test to the other checkout.
pub fn script_path() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(env!("CARGO_MANIFEST_DIR"))])
        .map(|dir| dir.join("../../scripts/ddb-local"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ddb-local")
        })
}

async fn install(script: &std::path::Path) -> Result<PathBuf> {
    let mut cmd = tokio::process::Command::new(script);
    cmd.arg("install")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(INSTALL_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            anyhow!(
                "`{} install` took more than {INSTALL_TIMEOUT:?}",
                script.display()
            )
        })?
        .with_context(|| format!("cannot run `{} install`", script.display()))?;
    if !output.status.success() {
        bail!(
            "`{} install` failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(PathBuf::from(dir))
}

/// Spawns `script run PORT` from a dedicated thread that waits for it, so that
/// `PR_SET_PDEATHSIG` (which fires when the *thread* that forked exits) only fires when the
/// test process dies.
fn spawn_jvm(script: &std::path::Path, port: u16) -> Result<JvmProcess> {
    let (tx, rx) = std::sync::mpsc::channel();
    let script = script.to_path_buf();
    std::thread::Builder::new()
        .name(format!("dynamodb-local-{port}"))
        .spawn(move || {
            let mut cmd = Command::new(&script);
            cmd.arg("run")
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // SAFETY: getpid is async-signal-safe; the closure below only calls prctl, getppid
            // and _exit, which are async-signal-safe too, as pre_exec requires.
            let parent = unsafe { libc::getpid() };
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() != parent {
                        // The parent died between fork and prctl.
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::Error::new(e)
                        .context(format!("cannot spawn `{} run {port}`", script.display()))));
                    return;
                }
            };
            let output = Arc::new(Mutex::new(VecDeque::new()));
            let exit = Arc::new(Mutex::new(None));
            if let Some(stdout) = child.stdout.take() {
                drain_lines(stdout, output.clone());
            }
            if let Some(stderr) = child.stderr.take() {
                drain_lines(stderr, output.clone());
            }
            let _ = tx.send(Ok(JvmProcess {
                pid: child.id(),
                output,
                exit: exit.clone(),
            }));
            let status = child.wait();
            if let Ok(status) = status {
                *exit.lock().unwrap() = Some(status);
            }
        })
        .context("cannot start the thread that owns DynamoDB Local")?;
    rx.recv()
        .context("the thread that owns DynamoDB Local died")?
}

fn drain_lines(reader: impl std::io::Read + Send + 'static, sink: Arc<Mutex<VecDeque<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().unwrap();
            if sink.len() == OUTPUT_LINES {
                sink.pop_front();
            }
            sink.push_back(line);
        }
    });
}

/// Waits until `endpoint` answers ListTables. With a `process`, also requires that process to
/// own the listening socket on `port` (so a foreign server on a reused port never passes), and
/// fails early when it exits or cannot bind.
async fn wait_answers(
    endpoint: &str,
    process: Option<&JvmProcess>,
    port: u16,
    timeout: Duration,
) -> Result<()> {
    let client = dynamodb_client(endpoint, Retries::Disabled);
    let started = Instant::now();
    loop {
        if let Some(p) = process {
            if let Some(status) = p.exit_status() {
                bail!(
                    "DynamoDB Local exited ({status}) before answering; its output:\n{}",
                    p.output_tail()
                );
            }
            if p.failed_to_bind() {
                bail!(
                    "DynamoDB Local could not bind port {port}:\n{}",
                    p.output_tail()
                );
            }
        }
        let owned = process.is_none_or(|p| owns_listening_socket(p.pid, port));
        let last_error = if owned {
            match tokio::time::timeout(Duration::from_secs(5), client.list_tables().send()).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)),
                Err(_) => "ListTables took more than 5 s".into(),
            }
        } else {
            format!("port {port} is not listening yet")
        };
        if started.elapsed() > timeout {
            let tail = process.map(|p| p.output_tail()).unwrap_or_default();
            bail!(
                "{endpoint} did not answer ListTables within {timeout:?} (last: {last_error}){}{tail}",
                if tail.is_empty() { "" } else { "; output:\n" }
            );
        }
        // An external process: short polling is the only way to see it come up.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True when `pid` holds a TCP socket listening on `port` (read from /proc).
fn owns_listening_socket(pid: u32, port: u16) -> bool {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            let local_port = fields[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && let Ok(inode) = fields[9].parse::<u64>()
            {
                inodes.insert(inode);
            }
        }
    }
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| {
                let t = target.to_string_lossy().into_owned();
                t.strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
            })
            .is_some_and(|inode| inodes.contains(&inode))
    })
}
