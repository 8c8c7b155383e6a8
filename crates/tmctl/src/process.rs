//! Background processes: finding their binaries, starting them detached
//! with their output in a log file, telling whether a pid is still ours,
//! and stopping them.
//!
//! It knows nothing of brokers or sources: callers say what to run and
//! where its log goes.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::home::create_private_dir;

/// The binary `name`, from beside tmctl's own executable, then `PATH`.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return Ok(path);
    }
    bail!(
        "cannot find the `{name}` program beside tmctl{} or on PATH: build it (`cargo build --release`) or put it on PATH",
        beside
            .and_then(|p| p.parent().map(|d| format!(" (in {})", d.display())))
            .unwrap_or_default()
    )
}

/// A process just started, and where its output goes.
pub struct Started {
    pub child: Child,
    pub log: PathBuf,
    /// The log's length before the process started: its lines come after.
    pub log_offset: u64,
}

/// Starts `binary` detached: its own process group (so that Ctrl-C in the
/// terminal that ran tmctl does not reach it), stdin closed, stdout and
/// stderr appended to `log`. The environment is tmctl's plus `env`.
pub fn spawn(
    binary: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
) -> Result<Started> {
    create_private_dir(log.parent().context("a log file has a folder")?)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let log_offset = file.metadata().map(|m| m.len()).unwrap_or(0);
    let err = file.try_clone().context("cannot share the log file")?;
    let child = Command::new(binary)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    Ok(Started {
        child,
        log: log.to_path_buf(),
        log_offset,
    })
}

/// True when `pid` is a live process running the program `program` (a pid
/// can be reused by another program once ours is gone).
pub fn is_running(pid: u32, program: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: a zombie (Z) or dead (X) process is not running.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    Path::new(std::str::from_utf8(argv0).unwrap_or_default())
        .file_name()
        .is_some_and(|n| n == program)
}

/// Sends SIGTERM and waits up to `grace` for the process to end, then
/// SIGKILL. True when it ended by itself.
pub async fn stop(pid: u32, program: &str, grace: Duration) -> bool {
    if !is_running(pid, program) {
        return true;
    }
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_running(pid, program) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_running(pid, program) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The log's lines written since `offset` (complete lines only).
pub fn log_lines_since(log: &Path, offset: u64) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    BufReader::new(file)
        .split(b'\n')
        .map_while(|l| l.ok())
        .map(|l| String::from_utf8_lossy(&l).trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A free TCP port on 127.0.0.1 (free now; the process binds it soon).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// True when something listens on 127.0.0.1:`port`.
pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spawned_process_is_seen_running_then_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs").join("sleep.log");
        let sleep = find_binary("sleep").unwrap();
        let mut started = spawn(&sleep, &["30".into()], &[], &log).unwrap();
        let pid = started.child.id();
        // The child may still be between fork and exec: wait (bounded) for
        // the program to be `sleep`.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_running(pid, "sleep") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(is_running(pid, "sleep"));
        assert!(
            !is_running(pid, "memory-broker"),
            "another program's pid is not ours"
        );
        // Reap it from here, as its parent, so that it does not linger as a zombie.
        let waiter = std::thread::spawn(move || started.child.wait());
        assert!(stop(pid, "sleep", Duration::from_secs(5)).await);
        assert!(!waiter.join().unwrap().unwrap().success());
        assert!(!is_running(pid, "sleep"));
    }

    #[test]
    fn log_lines_after_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, "old\nnew 1\nnew 2\n").unwrap();
        assert_eq!(log_lines_since(&log, 4), ["new 1", "new 2"]);
        assert!(log_lines_since(&dir.path().join("none"), 0).is_empty());
    }

    #[test]
    fn a_missing_binary_is_one_clear_error() {
        let e = find_binary("no-such-program-xyz").unwrap_err().to_string();
        assert!(
            e.contains("cannot find the `no-such-program-xyz` program"),
            "{e}"
        );
    }
}
