//! `tmctl create broker NAME`.

use anyhow::{Result, bail};

use crate::home::{Home, check_name, create_private_dir, write_private};
use crate::manifest::{Manifest, broker_object};
use crate::runtime::{RunState, broker_url, start_broker};

pub async fn create(home: &Home, name: &str, capacity: u32) -> Result<()> {
    check_name("broker", name)?;
    if capacity == 0 {
        bail!("--capacity must be at least 1");
    }
    let dir = home.broker_dir(name);
    if dir.exists() {
        bail!(
            "broker {name} already exists: `tmctl start {name}` starts it, `tmctl delete broker {name}` removes it"
        );
    }
    create_private_dir(&dir.dir)?;
    let mut manifest = Manifest::default();
    manifest.put(broker_object(name));
    write_private(
        &dir.broker_conf(),
        ::broker::config::BrokerConfig::default()
            .to_yaml()
            .as_bytes(),
    )?;
    let mut state = RunState::default();
    state.broker.capacity = capacity;
    let started = start_broker(&dir, &mut state).await;
    // The broker exists even when its process did not start: `tmctl start`
    // can try again once the cause is fixed.
    manifest.save(&dir.manifest())?;
    state.save(&dir)?;
    home.set_current(Some(name))?;
    let port = started?;
    println!("Created broker {name}, listening at {}", broker_url(port));
    println!("Current context: {name}");
    println!(
        "Next: tmctl create source awsdynamodb --arn ARN --auth.credentials.accessKeyID ID --auth.credentials.secretAccessKey KEY"
    );
    Ok(())
}
