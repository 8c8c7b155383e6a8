use super::*;

fn args(env: &[(&str, &str)]) -> Result<Settings, String> {
    let mut argv = vec!["adapter".to_string()];
    for (k, v) in env {
        let flag = match *k {
            "ARN" => "--arn",
            "K_SINK" => "--sink",
            "K_CE_OVERRIDES" => "--ce-overrides",
            "STARTING_POSITION" => "--starting-position",
            "CHECKPOINT_STORE" => "--checkpoint-store",
            "MAX_IN_FLIGHT" => "--max-in-flight",
            "POLL_INTERVAL" => "--poll-interval",
            "IDLE_POLL_INTERVAL" => "--idle-poll-interval",
            "K_SINK_TIMEOUT" => "--sink-timeout",
            "NAME" => "--name",
            "NAMESPACE" => "--namespace",
            "STATE_DIR" => "--state-dir",
            "COORDINATION" => "--coordination",
            "LEASE_DURATION" => "--lease-duration",
            other => panic!("{other}"),
        };
        argv.push(format!("{flag}={v}"));
    }
    // As main reports them: a bad value stops clap, with one line.
    Args::try_parse_from(argv)
        .map_err(|e| error_line(&e))?
        .settings()
}

const ARN: &str = "arn:aws:dynamodb:ddblocal:000000000000:table/orders";

#[test]
fn checkpoints_in_a_configmap() {
    let s = args(&[
        ("ARN", ARN),
        (
            "CHECKPOINT_STORE",
            "kubernetes:awsdynamodbsource-x-checkpoints",
        ),
    ])
    .unwrap();
    assert_eq!(
        s.checkpoints,
        CheckpointLocation::Kubernetes("awsdynamodbsource-x-checkpoints".into())
    );
}

#[test]
fn coordination() {
    let s = args(&[("ARN", ARN), ("COORDINATION", "dynamodb:leases")]).unwrap();
    assert_eq!(
        s.coordination,
        Some(Coordination::DynamoDb("leases".into()))
    );
    assert_eq!(s.lease_duration, Duration::from_secs(10));
    let s = args(&[
        ("ARN", ARN),
        ("COORDINATION", "kubernetes"),
        ("NAME", "orders"),
        ("LEASE_DURATION", "15s"),
    ])
    .unwrap();
    assert_eq!(s.coordination, Some(Coordination::Kubernetes));
    assert_eq!(s.lease_duration, Duration::from_secs(15));
    assert_eq!(args(&[("ARN", ARN)]).unwrap().coordination, None);
}

#[test]
fn defaults() {
    let s = args(&[("ARN", ARN), ("STATE_DIR", "/state")]).unwrap();
    assert_eq!(s.max_in_flight, 64);
    assert_eq!(s.poll_interval, Duration::from_millis(250));
    assert_eq!(s.idle_poll_interval, Duration::from_secs(2));
    assert_eq!(s.sink_timeout, Duration::from_secs(30));
    assert_eq!(s.startup_timeout, Duration::from_secs(30));
    assert_eq!((s.health_port, s.metrics_port), (8080, 9092));
    assert_eq!(s.starting_position, StartingPosition::Latest);
    assert_eq!(s.log_format, LogFormat::Json);
    assert!(s.sink.is_none());
    assert_eq!(
        s.checkpoints,
        CheckpointLocation::File("/state/aws.ddblocal.000000000000.orders".into())
    );
    let s = args(&[
        ("ARN", ARN),
        ("STATE_DIR", "/state"),
        ("NAME", "../x"),
        ("NAMESPACE", "prod"),
    ])
    .unwrap();
    assert_eq!(
        s.checkpoints,
        CheckpointLocation::File("/state/prod..._x".into())
    );
}

#[test]
fn each_bad_value_gives_one_line_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "ARN is not set"),
        (
            &[("ARN", "arn:aws:dynamodb:us-east-1:123:table/x")],
            "invalid ARN",
        ),
        (&[("ARN", ARN), ("K_SINK", "ftp://x/")], "K_SINK"),
        (
            &[("ARN", ARN), ("K_SINK", "http://u:secret@[::1/")],
            "K_SINK",
        ),
        (
            &[("ARN", ARN), ("K_CE_OVERRIDES", "{nope")],
            "K_CE_OVERRIDES",
        ),
        (
            &[("ARN", ARN), ("STARTING_POSITION", "EARLIEST")],
            "STARTING_POSITION",
        ),
        (
            &[("ARN", ARN), ("CHECKPOINT_STORE", "redis://x")],
            "CHECKPOINT_STORE",
        ),
        (
            &[("ARN", ARN), ("CHECKPOINT_STORE", "kubernetes:")],
            "CHECKPOINT_STORE",
        ),
        (&[("ARN", ARN), ("MAX_IN_FLIGHT", "0")], "MAX_IN_FLIGHT"),
        (&[("ARN", ARN), ("POLL_INTERVAL", "fast")], "POLL_INTERVAL"),
        (&[("ARN", ARN), ("K_SINK_TIMEOUT", "0")], "K_SINK_TIMEOUT"),
        (&[("ARN", ARN), ("COORDINATION", "redis:x")], "COORDINATION"),
        (
            &[("ARN", ARN), ("COORDINATION", "dynamodb:a")],
            "COORDINATION",
        ),
        (
            &[("ARN", ARN), ("COORDINATION", "kubernetes")],
            "COORDINATION=kubernetes needs NAME",
        ),
        (&[("ARN", ARN), ("LEASE_DURATION", "1s")], "LEASE_DURATION"),
    ];
    for (env, needle) in cases {
        let err = args(env).expect_err(needle);
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("X", "250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("X", "30"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("X", "2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("X", "1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("X", "1d").is_err());
    assert!(parse_duration("X", "-1s").is_err());
}
