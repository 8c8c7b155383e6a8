//! One module per command. Each reads the broker's files, changes what it
//! must, and says what it did in a line or two.

pub mod broker;
pub mod delete;
pub mod describe;
pub mod dump;
pub mod lifecycle;
pub mod source;
pub mod trigger;

use ::broker::config::{BackoffPolicy, BrokerConfig, DeliveryOptions, Filter, Target, Trigger};
use anyhow::{Context, Result};
use serde_json::Value;

use crate::home::{BrokerDir, write_private};
use crate::manifest::{Manifest, TRIGGER_KIND, name_of};
use crate::runtime::{RunState, reload_broker};

/// The broker's trigger configuration, from the manifest's triggers.
pub fn broker_config(manifest: &Manifest) -> Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    for object in manifest.of_kind(TRIGGER_KIND) {
        let name = name_of(object);
        config.triggers.insert(
            name.to_owned(),
            trigger_config(&object["spec"])
                .with_context(|| format!("trigger {name} in the manifest"))?,
        );
    }
    Ok(config)
}

/// A Trigger object's spec as the broker's configuration of it.
fn trigger_config(spec: &Value) -> Result<Trigger> {
    let filters: Vec<Filter> = match spec.get("filters") {
        Some(f) if !f.is_null() => {
            serde_json::from_value(f.clone()).context("its filters are not valid")?
        }
        _ => Vec::new(),
    };
    let url = spec["target"]["uri"]
        .as_str()
        .context("it has no target.uri")?
        .to_owned();
    let delivery = &spec["delivery"];
    let delivery_options = delivery.is_object().then(|| DeliveryOptions {
        retry: delivery["retry"].as_u64().map(|n| n as u32),
        backoff_delay: delivery["backoffDelay"].as_str().map(str::to_owned),
        backoff_policy: match delivery["backoffPolicy"].as_str() {
            Some("linear") => Some(BackoffPolicy::Linear),
            Some("exponential") => Some(BackoffPolicy::Exponential),
            _ => None,
        },
        dead_letter_url: delivery["deadLetterSink"]["uri"]
            .as_str()
            .map(str::to_owned),
    });
    Ok(Trigger {
        filters,
        target: Target {
            url,
            delivery_options,
        },
    })
}

/// Writes `broker.conf` from the manifest and, when the broker runs, has it
/// re-read the file.
pub async fn sync_broker_conf(dir: &BrokerDir, manifest: &Manifest) -> Result<()> {
    let config = broker_config(manifest)?;
    config.validate().map_err(anyhow::Error::from)?;
    write_private(&dir.broker_conf(), config.to_yaml().as_bytes())?;
    if let Some(port) = RunState::load(dir)?.broker_port() {
        reload_broker(port).await?;
    }
    Ok(())
}
