//! `tmctl delete source|trigger|broker NAME`.

use anyhow::{Result, bail};
use clap::ValueEnum;

use crate::home::Home;
use crate::manifest::{Manifest, SECRET_KIND, SOURCE_KIND, TRIGGER_KIND};
use crate::process;
use crate::runtime::{ADAPTER_GRACE, ADAPTER_PROGRAM, RunState};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    Source,
    Trigger,
    Broker,
}

pub async fn run(home: &Home, kind: Kind, name: &str, broker: Option<&str>) -> Result<()> {
    match kind {
        Kind::Broker => {
            let dir = home.broker(Some(name))?;
            super::lifecycle::stop_all(&dir).await?;
            std::fs::remove_dir_all(&dir.dir)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.dir.display()))?;
            if home.current()?.as_deref() == Some(name) {
                home.set_current(None)?;
            }
            println!("Deleted broker {name}");
        }
        Kind::Trigger => {
            let dir = home.broker(broker)?;
            let mut manifest = Manifest::load(&dir.manifest())?;
            if !manifest.remove(TRIGGER_KIND, name) {
                bail!("there is no trigger {name} in broker {}", dir.name);
            }
            super::sync_broker_conf(&dir, &manifest).await?;
            manifest.save(&dir.manifest())?;
            println!("Deleted trigger {name}");
        }
        Kind::Source => {
            let dir = home.broker(broker)?;
            let mut manifest = Manifest::load(&dir.manifest())?;
            if manifest.get(SOURCE_KIND, name).is_none() {
                bail!("there is no source {name} in broker {}", dir.name);
            }
            let mut state = RunState::load(&dir)?;
            if let Some(pid) = state.source_pid(name) {
                process::stop(pid, ADAPTER_PROGRAM, ADAPTER_GRACE).await;
            }
            state.sources.remove(name);
            state.save(&dir)?;
            manifest.remove(SOURCE_KIND, name);
            manifest.remove(SECRET_KIND, &format!("{name}-secret"));
            manifest.save(&dir.manifest())?;
            let _ = std::fs::remove_dir_all(dir.checkpoints(name));
            println!("Deleted source {name}");
        }
    }
    Ok(())
}
