//! `tmctl dump`: the broker's objects for a cluster, for `kubectl apply -f -`.
//!
//! `-p kubernetes` prints them as TriggerMesh's controllers take them
//! (RedisBroker, Trigger, AWSDynamoDBSource, Secret); `-p knative` uses
//! Knative Eventing's Broker and Trigger instead. Every AWSDynamoDBSource is
//! checked against the CRD's schema before it is printed.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::home::Home;
use crate::manifest::{BROKER_KIND, Manifest, SECRET_KIND, SOURCE_KIND, TRIGGER_KIND, name_of};

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The broker (default: the current one).
    broker: Option<String>,
    /// Whose broker and trigger objects to print.
    #[arg(short = 'p', long = "platform", value_enum, default_value_t = Platform::Kubernetes)]
    platform: Platform,
    /// The output format (JSON: one `List`).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Leave Secrets out (create them in the cluster yourself).
    #[arg(long = "no-secrets")]
    no_secrets: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// TriggerMesh's RedisBroker and Trigger.
    Kubernetes,
    /// Knative Eventing's Broker and Trigger.
    Knative,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

pub fn run(home: &Home, args: DumpArgs) -> Result<()> {
    let dir = home.broker(args.broker.as_deref())?;
    let manifest = Manifest::load(&dir.manifest())?;
    let objects = objects(&manifest, args.platform, args.no_secrets)?;
    let text = match args.output {
        Format::Yaml => serde_saphyr::to_string_multiple(&objects).context("cannot write YAML")?,
        Format::Json => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            serde_json::to_string_pretty(&list)? + "\n"
        }
    };
    print!("{text}");
    Ok(())
}

/// The objects to print, in the manifest's order.
pub fn objects(manifest: &Manifest, platform: Platform, no_secrets: bool) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for object in manifest.objects() {
        let kind = object["kind"].as_str().unwrap_or_default();
        let object = match (kind, platform) {
            (SECRET_KIND, _) if no_secrets => continue,
            (SOURCE_KIND, _) => {
                let mut source = object.clone();
                if platform == Platform::Knative && is_broker_ref(&source["spec"]["sink"]["ref"]) {
                    source["spec"]["sink"]["ref"] = json!({
                        "apiVersion": "eventing.knative.dev/v1",
                        "kind": "Broker",
                        "name": source["spec"]["sink"]["ref"]["name"],
                    });
                }
                if let Err(e) = awsdynamodbsource_api::validate(&source) {
                    bail!(
                        "source {} in the manifest does not fit the CRD: {}",
                        name_of(&source),
                        e.problems.join("; ")
                    );
                }
                source
            }
            (BROKER_KIND, Platform::Knative) => json!({
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Broker",
                "metadata": object["metadata"],
            }),
            (TRIGGER_KIND, Platform::Knative) => knative_trigger(object),
            _ => object.clone(),
        };
        out.push(object);
    }
    Ok(out)
}

fn is_broker_ref(reference: &Value) -> bool {
    reference["kind"] == BROKER_KIND
}

/// A TriggerMesh Trigger as Knative's: the same filters dialects and
/// delivery options, `subscriber` for `target`.
fn knative_trigger(object: &Value) -> Value {
    let spec = &object["spec"];
    let mut out = json!({
        "broker": spec["broker"]["name"],
        "subscriber": spec["target"],
    });
    for key in ["filters", "delivery"] {
        if let Some(v) = spec.get(key).filter(|v| !v.is_null()) {
            out[key] = v.clone();
        }
    }
    json!({
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": object["metadata"],
        "spec": out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{broker_object, broker_ref, metadata, secret_object};

    fn manifest() -> Manifest {
        let mut m = Manifest::default();
        m.put(broker_object("b"));
        m.put(secret_object(
            "s-secret",
            "b",
            &[("secretAccessKey".to_owned(), "x".to_owned())].into(),
        ));
        m.put(json!({
            "apiVersion": "sources.triggermesh.io/v1alpha1",
            "kind": "AWSDynamoDBSource",
            "metadata": metadata("s", "b"),
            "spec": {
                "arn": "arn:aws:dynamodb:us-west-2:123456789012:table/orders",
                "auth": {"credentials": {
                    "accessKeyID": {"valueFromSecret": {"name": "s-secret", "key": "accessKeyID"}},
                    "secretAccessKey": {"valueFromSecret": {"name": "s-secret", "key": "secretAccessKey"}},
                }},
                "sink": {"ref": broker_ref("b")},
            },
        }));
        m.put(json!({
            "apiVersion": "eventing.triggermesh.io/v1alpha1",
            "kind": "Trigger",
            "metadata": metadata("t", "b"),
            "spec": {
                "broker": {"group": "eventing.triggermesh.io", "kind": "RedisBroker", "name": "b"},
                "filters": [{"exact": {"type": "x"}}],
                "target": {"uri": "http://localhost:9000/"},
                "delivery": {"retry": 3},
            },
        }));
        m
    }

    #[test]
    fn knative_uses_brokers_and_subscribers() {
        let objects = objects(&manifest(), Platform::Knative, true).unwrap();
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Broker", "AWSDynamoDBSource", "Trigger"]);
        assert_eq!(objects[1]["spec"]["sink"]["ref"]["kind"], "Broker");
        assert_eq!(objects[2]["spec"]["broker"], "b");
        assert_eq!(
            objects[2]["spec"]["subscriber"]["uri"],
            "http://localhost:9000/"
        );
        assert_eq!(objects[2]["spec"]["filters"][0]["exact"]["type"], "x");
        assert_eq!(objects[2]["spec"]["delivery"]["retry"], 3);
    }

    #[test]
    fn kubernetes_keeps_the_manifest_and_secrets_unless_told() {
        let m = manifest();
        assert_eq!(
            objects(&m, Platform::Kubernetes, false).unwrap(),
            m.objects()
        );
        assert_eq!(objects(&m, Platform::Kubernetes, true).unwrap().len(), 3);
    }
}
