//! The status a source reports: its conditions (SinkProvided, Deployed,
//! Ready) and where its events go.
//!
//! Owns deciding each condition from what was resolved and observed, and
//! keeping a condition's transition time while its status holds. It never
//! decides what to change in the cluster (see [`super::plan`]) and never
//! writes the status itself.

use awsdynamodbsource_api::{
    AWSDynamoDBSource, AWSDynamoDBSourceStatus, CeAttribute, Condition, EVENT_TYPE,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use super::Observed;
use crate::resources::Targets;
use crate::sink::SinkError;

fn condition(
    type_: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<String>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        severity: None,
        reason: reason.map(str::to_owned),
        message,
        last_transition_time: None,
    }
}

/// Whether the adapter runs: the Deployment has an available replica.
fn deployed(deployment: Option<&Deployment>, pods: &[Pod], just_changed: bool) -> Condition {
    let status = deployment.and_then(|d| d.status.as_ref());
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0) >= 1;
    if available && !just_changed {
        return condition("Deployed", "True", None, None);
    }
    if !just_changed && let Some((reason, message)) = pod_failure(pods) {
        return condition("Deployed", "False", Some(reason), Some(message));
    }
    let message = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "Available" && c.status != "True")
        })
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "the adapter is not available yet".to_owned());
    let state = if deployment.is_none() || just_changed {
        "Unknown"
    } else {
        "False"
    };
    condition("Deployed", state, Some("AdapterUnavailable"), Some(message))
}

/// Why the adapter's pods do not run, from their container statuses: an
/// image that cannot be pulled, or an adapter that exits (its last log
/// lines, the termination message, say why).
fn pod_failure(pods: &[Pod]) -> Option<(&'static str, String)> {
    let statuses = pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten();
    for status in statuses {
        let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
        let reason = waiting
            .and_then(|w| w.reason.as_deref())
            .unwrap_or_default();
        let waiting_message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
        if matches!(
            reason,
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"
        ) {
            return Some((
                "BadContainerImage",
                format!("{reason}: {waiting_message}")
                    .trim_end_matches(": ")
                    .to_owned(),
            ));
        }
        let terminated = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .or(status.state.as_ref().and_then(|s| s.terminated.as_ref()));
        if reason == "CrashLoopBackOff" || terminated.is_some_and(|t| t.exit_code != 0) {
            let said = terminated
                .and_then(|t| t.message.as_deref())
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| m.lines().last().unwrap_or(m).to_owned());
            let exit = terminated.map(|t| format!("exited with code {}", t.exit_code));
            let message = [
                Some("the adapter".to_owned()),
                exit.or(Some("keeps restarting".into())),
                said,
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            return Some(("AppRuntimeFailure", message));
        }
    }
    None
}

/// Conditions with their transition times kept when their status did not
/// change, and `now` when it did.
fn with_times(mut conditions: Vec<Condition>, previous: &[Condition], now: &str) -> Vec<Condition> {
    for c in &mut conditions {
        let before = previous.iter().find(|p| p.type_ == c.type_);
        c.last_transition_time = match before {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(now.to_owned()),
        };
    }
    conditions
}

/// The status to write; `None` when the source already reports it.
pub(super) fn to_write(
    source: &AWSDynamoDBSource,
    observed: &Observed,
    resolved: Result<Targets, SinkError>,
    deployment_changed: bool,
    now: &str,
) -> Option<AWSDynamoDBSourceStatus> {
    let sink_condition = sink_provided(&resolved);
    let deployed_condition = deployed(
        observed.deployment.as_ref(),
        &observed.pods,
        deployment_changed,
    );
    let ready = ready(&sink_condition, &deployed_condition);
    let previous = source.status.clone().unwrap_or_default();
    let status = AWSDynamoDBSourceStatus {
        sink_uri: resolved.ok().map(|t| t.sink),
        ce_attributes: Some(vec![CeAttribute {
            type_: EVENT_TYPE.to_owned(),
            source: source.spec.arn.clone(),
        }]),
        observed_generation: source.metadata.generation,
        conditions: Some(with_times(
            vec![deployed_condition, ready, sink_condition],
            previous.conditions.as_deref().unwrap_or_default(),
            now,
        )),
    };
    (status != previous).then_some(status)
}

/// Whether the sink (and dead-letter sink) resolved to a URL.
fn sink_provided(resolved: &Result<Targets, SinkError>) -> Condition {
    match resolved {
        Ok(_) => condition("SinkProvided", "True", None, None),
        Err(e) => condition(
            "SinkProvided",
            "False",
            Some(e.reason),
            Some(e.message.clone()),
        ),
    }
}

/// Ready when both are; otherwise the sink's problem first, as nothing is
/// deployed without a sink.
fn ready(sink: &Condition, deployed: &Condition) -> Condition {
    if sink.status == "True" && deployed.status == "True" {
        condition("Ready", "True", None, None)
    } else if sink.status != "True" {
        condition(
            "Ready",
            "False",
            sink.reason.as_deref(),
            sink.message.clone(),
        )
    } else {
        condition(
            "Ready",
            &deployed.status,
            deployed.reason.as_deref(),
            deployed.message.clone(),
        )
    }
}

/// The status when the adapter's RBAC cannot be set up (the controller may
/// not create its Role or RoleBinding): not deployed, for that reason.
pub fn rbac_not_bound(
    source: &AWSDynamoDBSource,
    planned: Option<AWSDynamoDBSourceStatus>,
    message: &str,
    now: &str,
) -> AWSDynamoDBSourceStatus {
    let previous = source.status.clone().unwrap_or_default();
    let mut status = planned.unwrap_or_else(|| previous.clone());
    let reason = Some("RBACNotBound");
    let mut conditions: Vec<Condition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "Deployed" && c.type_ != "Ready")
        .collect();
    conditions.push(condition(
        "Deployed",
        "False",
        reason,
        Some(message.to_owned()),
    ));
    conditions.push(condition(
        "Ready",
        "False",
        reason,
        Some(message.to_owned()),
    ));
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    status.conditions = Some(with_times(
        conditions,
        previous.conditions.as_deref().unwrap_or_default(),
        now,
    ));
    status
}
