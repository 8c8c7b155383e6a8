//! The `memory-broker` binary: startup errors, SIGTERM draining, and the state file that
//! carries undelivered events across a stop and start.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use awsdynamodb_testkit::{RecordingSink, free_port};
use common::{BrokerProcess, WAIT, client, config, ids, numbered, send_binary, trigger};

#[tokio::test]
async fn startup_problems_are_one_error_line_and_exit_1() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.conf");
    let invalid = dir.path().join("invalid.conf");
    std::fs::write(
        &invalid,
        "triggers:\n  t:\n    filters: [{sql: x}]\n    target: {url: 'http://h/'}\n",
    )?;
    let valid = dir.path().join("valid.conf");
    std::fs::write(&valid, "triggers: {}\n")?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken_port = taken.local_addr()?.port();

    let cases = [
        (
            &missing,
            free_port(),
            format!("error: cannot read config file {}", missing.display()),
        ),
        (
            &invalid,
            free_port(),
            format!(
                r#"error: config file {}: trigger "t": filters[0]: dialect "sql" is not supported"#,
                invalid.display()
            ),
        ),
        (
            &valid,
            taken_port,
            format!("error: cannot listen on 127.0.0.1:{taken_port}: Address already in use"),
        ),
    ];
    for (config_path, port, want) in cases {
        let mut process = BrokerProcess::spawn(config_path, port, &[])?;
        let status = process.wait_exit().await?;
        let line = process.wait_for_line("error: ").await?;
        assert_eq!(status.code(), Some(1), "{want}");
        assert!(line.starts_with(&want), "got {line:?}, want {want:?}");
        let errors = process
            .lines()
            .iter()
            .filter(|l| l.contains("error"))
            .count();
        assert_eq!(errors, 1, "one line: {:?}", process.lines());
    }
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_ingest_and_drains_held_events_before_exit() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    sink.set_delay(Some(Duration::from_millis(100)));
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("broker.conf");
    std::fs::write(
        &config_path,
        config(&[trigger("t", &sink.url(), None, None)]),
    )?;
    let mut process =
        BrokerProcess::start(&config_path, free_port(), &["--drain-timeout", "20"]).await?;
    let client = client();
    let sent = numbered("d", 10);
    for id in &sent {
        assert_eq!(
            send_binary(&client, &process.url("/"), id, &[])
                .await?
                .status(),
            200
        );
    }
    process.terminate()?;
    process.wait_for_line("shutting down: draining").await?;
    let refused = send_binary(&client, &process.url("/"), "late", &[]).await?;
    assert_eq!(refused.status(), 503, "ingest is closed while draining");
    assert!(
        sink.events().len() < sent.len(),
        "the drain is still running when ingest closes"
    );

    let status = process.wait_exit().await?;
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        ids(&sink.events()),
        sent,
        "all held events delivered before exit, in order"
    );
    Ok(())
}

#[tokio::test]
async fn the_state_file_carries_undelivered_events_across_a_restart() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    sink.set_down(true).await?;
    let filtered = RecordingSink::start().await?;
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("broker.conf");
    let state_path = dir.path().join("state").join("broker.state");
    std::fs::create_dir(dir.path().join("state"))?;
    let fast = "{backoffDelay: PT0.01S, backoffPolicy: linear}";
    std::fs::write(
        &config_path,
        config(&[
            trigger("down", &sink.url(), None, Some(fast)),
            trigger(
                "odd",
                &filtered.url(),
                Some("[{suffix: {subject: odd}}]"),
                Some(fast),
            ),
        ]),
    )?;
    let state_arg = state_path.to_str().expect("UTF-8 path");
    let args = ["--drain-timeout", "1", "--state-file", state_arg];
    let client = client();

    let mut first = BrokerProcess::start(&config_path, free_port(), &args).await?;
    let sent = numbered("s", 6);
    for (i, id) in sent.iter().enumerate() {
        let subject = if i % 2 == 1 { "odd" } else { "even" };
        let response =
            send_binary(&client, &first.url("/"), id, &[("ce-subject", subject)]).await?;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        ids(&filtered.wait_for_count(3, WAIT).await?),
        ["s1", "s3", "s5"]
    );
    first.terminate()?;
    assert_eq!(first.wait_exit().await?.code(), Some(0));
    first
        .wait_for_line("saved undelivered events to the state file")
        .await?;
    let mode = std::fs::metadata(&state_path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the state file is private");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state"))?.collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");

    // The target is back; the restarted broker delivers every event, in order, before new ones.
    sink.set_down(false).await?;
    let mut second = BrokerProcess::start(&config_path, free_port(), &args).await?;
    assert!(
        !state_path.exists(),
        "the state file is removed once taken in"
    );
    let response = send_binary(
        &client,
        &second.url("/"),
        "after-restart",
        &[("ce-subject", "even")],
    )
    .await?;
    assert_eq!(response.status(), 200);
    let mut expected = sent.clone();
    expected.push("after-restart".into());
    let events = sink.wait_for_count(expected.len(), WAIT).await?;
    assert_eq!(ids(&events), expected);
    assert_eq!(
        events[0].data.as_ref(),
        br#"{"id": "s0"}"#,
        "data unchanged"
    );
    assert_eq!(events[1].subject.as_deref(), Some("odd"));
    assert_eq!(
        ids(&filtered.events()),
        ["s1", "s3", "s5"],
        "`odd` resumed where it was: no repeats"
    );

    second.terminate()?;
    assert_eq!(second.wait_exit().await?.code(), Some(0));
    assert!(!state_path.exists(), "nothing left, nothing saved");
    Ok(())
}

#[tokio::test]
async fn sighup_reloads_the_config() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("broker.conf");
    std::fs::write(&config_path, "triggers: {}\n")?;
    let process = BrokerProcess::start(&config_path, free_port(), &[]).await?;
    let client = client();
    assert_eq!(
        send_binary(&client, &process.url("/"), "unseen", &[])
            .await?
            .status(),
        200
    );
    std::fs::write(
        &config_path,
        config(&[trigger("t", &sink.url(), None, None)]),
    )?;
    process.signal(libc::SIGHUP)?;
    process.wait_for_line("config reloaded").await?;
    assert_eq!(
        send_binary(&client, &process.url("/"), "seen", &[])
            .await?
            .status(),
        200
    );
    assert_eq!(ids(&sink.wait_for_count(1, WAIT).await?), ["seen"]);

    std::fs::write(&config_path, "triggers: [\n")?;
    process.signal(libc::SIGHUP)?;
    process.wait_for_line("reload on SIGHUP failed").await?;
    assert_eq!(
        send_binary(&client, &process.url("/"), "still", &[])
            .await?
            .status(),
        200
    );
    assert_eq!(ids(&sink.wait_for_count(2, WAIT).await?), ["seen", "still"]);
    Ok(())
}
