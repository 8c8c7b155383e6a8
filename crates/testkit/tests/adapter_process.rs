//! AdapterProcess with a stand-in binary (a script written by the test).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use awsdynamodb_testkit::{AdapterProcess, free_port};

/// Writes an executable script and returns its path (kept alive by the returned guard).
fn script(body: &str) -> tempfile::TempPath {
    let mut file = tempfile::Builder::new()
        .prefix("fake-adapter")
        .tempfile()
        .unwrap();
    file.write_all(body.as_bytes()).unwrap();
    let path = file.into_temp_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const FAKE_ADAPTER: &str = r#"#!/usr/bin/env python3
import http.server, os, signal, sys, threading

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

print("event-1", flush=True)
print("event-2", flush=True)
print('{"level":"INFO","fields":{"message":"started"},"secret":"%s","home":%s}' % (os.environ.get("SECRET", ""), "true" if "HOME" in os.environ else "false"), file=sys.stderr, flush=True)
print("env-leaked %d" % len([k for k in os.environ if k.startswith("CARGO")]), file=sys.stderr, flush=True)

def term(*_):
    print('{"level":"INFO","fields":{"message":"shutting down"}}', file=sys.stderr, flush=True)
    os._exit(0)

signal.signal(signal.SIGTERM, term)
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["HEALTH_PORT"])), Health)
server.serve_forever()
"#;

#[tokio::test]
async fn captures_output_waits_for_health_and_terminates() {
    let path = script(FAKE_ADAPTER);
    let port = free_port();
    let mut adapter = AdapterProcess::spawn(
        &path,
        vec![
            ("HEALTH_PORT".into(), port.to_string()),
            ("SECRET".into(), "s3".into()),
        ],
    )
    .unwrap();
    assert_eq!(adapter.health_port(), Some(port));
    adapter.wait_healthy(Duration::from_secs(20)).await.unwrap();
    let out = adapter
        .wait_for_stdout(|l| l.len() >= 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(out, ["event-1", "event-2"]);
    let err = adapter
        .wait_for_stderr(
            |l| l.iter().any(|l| l.starts_with("env-leaked")),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(err[0].contains(r#""secret":"s3""#), "{err:?}");
    assert!(err[0].contains(r#""home":true"#), "{err:?}");
    // Nothing of the test's own environment leaked in.
    assert!(
        std::env::var_os("CARGO_PKG_NAME").is_some(),
        "cargo sets CARGO_* for tests"
    );
    assert_eq!(err[1], "env-leaked 0");
    adapter.terminate().unwrap();
    let status = adapter.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        adapter
            .stderr_lines()
            .last()
            .unwrap()
            .contains("shutting down")
    );
}

#[tokio::test]
async fn kill9_and_exit_status() {
    let path = script("#!/bin/sh\necho ready\nexec sleep 60\n");
    let mut adapter = AdapterProcess::spawn(&path, vec![]).unwrap();
    adapter
        .wait_for_stdout(|l| l.iter().any(|l| l == "ready"), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(adapter.wait_exit(Duration::from_millis(100)).await.is_err());
    adapter.kill9().unwrap();
    let status = adapter.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn wait_healthy_fails_fast_when_the_process_exits() {
    let path = script("#!/bin/sh\necho 'boom: bad config' >&2\nexit 3\n");
    let port = free_port();
    let mut adapter =
        AdapterProcess::spawn(&path, vec![("HEALTH_PORT".into(), port.to_string())]).unwrap();
    let err = adapter
        .wait_healthy(Duration::from_secs(20))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited"), "{err}");
    let status = adapter.wait_exit(Duration::from_secs(5)).await.unwrap();
    assert_eq!(status.code(), Some(3));
    adapter
        .wait_for_stderr(
            |l| l.iter().any(|l| l.contains("boom")),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn dropping_the_handle_kills_the_process() {
    let path = script("#!/bin/sh\necho ready\nexec sleep 60\n");
    let adapter = AdapterProcess::spawn(&path, vec![]).unwrap();
    adapter
        .wait_for_stdout(|l| !l.is_empty(), Duration::from_secs(10))
        .await
        .unwrap();
    let pid = adapter.pid() as libc::pid_t;
    drop(adapter);
    // The kill is sent on drop; the runtime reaps it. Wait for the pid to disappear.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting to be reaped: either way, dead.
        if status.is_empty() || status.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} survived the drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
