//! The README's first section, run as written: `scripts/demo` builds, starts
//! its own DynamoDB Local, writes orders and prints their changes; Ctrl-C
//! (SIGINT to its process group, as a terminal sends it) stops all of it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::{Instant, timeout};

/// A first build of the adapter can take minutes on a small machine; the
/// suite has built most of it already.
const BUILD_AND_START: Duration = Duration::from_secs(20 * 60);
/// Every two seconds the writer places, ships and deletes an order.
const ALL_OPERATIONS: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test]
async fn the_demo_shows_inserts_updates_and_deletes_and_stops_on_ctrl_c() {
    let state = tempfile::tempdir().unwrap();
    let mut demo = Command::new(repo_root().join("scripts/demo"))
        .current_dir(repo_root())
        // Its own DynamoDB Local, as for a new user.
        .env_remove("DYNAMODB_LOCAL_ENDPOINT")
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("scripts/demo runs");
    let group = demo.id().unwrap() as libc::pid_t;
    let mut events = BufReader::new(demo.stdout.take().unwrap()).lines();
    let stderr = demo.stderr.take().unwrap();
    let (log_tx, mut log) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log_tx.send(line);
        }
    });

    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + BUILD_AND_START;
    let mut ops_deadline = None;
    let mut logged = Vec::new();
    while seen.len() < 3 {
        let deadline = ops_deadline.unwrap_or(deadline);
        tokio::select! {
            line = tokio::time::timeout_at(deadline, events.next_line()) => {
                let line = match line {
                    Ok(Ok(Some(line))) => line,
                    other => panic!(
                        "operations seen {seen:?}, then {other:?}; log:\n{}",
                        logged.join("\n")
                    ),
                };
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
                assert_eq!(event["type"], "com.amazon.dynamodb.stream_record");
                seen.insert(event["dynamodboperation"].as_str().unwrap().to_owned());
            }
            Some(line) = log.recv() => {
                if line.starts_with("demo: table ") {
                    ops_deadline = Some(Instant::now() + ALL_OPERATIONS);
                }
                logged.push(line);
            }
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["INSERT".into(), "MODIFY".into(), "REMOVE".into()])
    );
    // cargo's own progress shows while it builds (never --quiet).
    assert!(
        logged
            .iter()
            .any(|l| l.trim_start().starts_with("Finished")),
        "no cargo progress in the demo's log:\n{}",
        logged.join("\n")
    );
    let port: u16 = logged
        .iter()
        .find_map(|l| l.strip_prefix("demo: starting DynamoDB Local on port "))
        .and_then(|rest| rest.trim_end_matches("...").parse().ok())
        .expect("the demo says where it starts DynamoDB Local");

    // SAFETY: a plain syscall to the demo's own process group.
    assert_eq!(unsafe { libc::kill(-group, libc::SIGINT) }, 0);
    let status = timeout(Duration::from_secs(30), demo.wait())
        .await
        .expect("the demo stops within 30 s of Ctrl-C")
        .unwrap();
    assert!(status.code().is_some(), "ended by a signal: {status}");
    // Nothing is left behind: its DynamoDB Local is gone.
    let gone = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
    assert!(
        gone,
        "DynamoDB Local still listens on {port} after the demo"
    );
}
