//! `/livez`, the liveness endpoint, answers 200 while `/health` answers
//! 503: a failing sink makes the adapter unready, never a candidate for a
//! restart (which would send events again and fix nothing); and a start
//! that waits on DynamoDB is alive before it is ready.

mod common;

use std::time::Duration;

use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, RecordingSink, StreamViewType,
    TestTable, items,
};
use common::{Probe, spawn_healthy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_makes_the_adapter_unready_but_not_dead() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    common::set(&mut env, "UNHEALTHY_AFTER", "1s");
    let mut adapter = spawn_healthy(env.clone()).await;
    let probe = Probe::new(&env);
    assert_eq!(probe.live().await?, 200, "alive while healthy");

    sink.set_down(true).await?;
    table.put(items::key("k")).await?;
    let why = probe.await_health(|status, _| status == 503).await?;
    // Both delivery verdicts start within a millisecond of each other (the
    // event is read, its first attempt fails): either may be the one shown.
    assert!(
        why.starts_with("the sink has failed every attempt")
            || why.starts_with("delivery is falling behind"),
        "{why}"
    );
    assert_eq!(probe.live().await?, 200, "alive while the sink fails");

    sink.set_down(false).await?;
    sink.wait_for_count(1, common::WAIT).await?;
    common::stop(&mut adapter).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waiting_on_dynamodb_is_alive_before_it_is_ready() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let proxy = FaultProxy::start(ddb.endpoint()).await?;
    // The stream's lookup is held back, so that the start is seen waiting
    // (long enough for three probes on a loaded machine).
    proxy.fail_next(Op::ListStreams, 1, Fault::Delay(Duration::from_secs(8)));
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), &proxy.endpoint(), None, state.path());
    let mut adapter = AdapterProcess::spawn(common::BINARY, env.clone())?;
    let probe = Probe::new(&env);
    probe.await_health(|status, _| status == 503).await?;
    assert_eq!(probe.live().await?, 200, "alive while starting");
    assert_eq!(probe.health().await?.0, 503, "and still starting then");
    probe.await_health(|status, _| status == 204).await?;
    common::stop(&mut adapter).await;
    Ok(())
}
