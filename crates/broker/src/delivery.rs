//! One trigger's delivery task: it walks the events of an [`EventStore`] from the trigger's
//! cursor strictly in order, skips what the filters refuse, POSTs the rest in binary mode with
//! retries, and dead-letters or drops what cannot be delivered.
//!
//! Owns the HTTP attempts and their outcome. It never releases entries itself (it advances
//! its cursor and the store decides), never works on two entries at once, and never logs event
//! data.

use std::sync::Arc;
use std::time::Duration;

use awsdynamodbsource_cloudevents::http::{binary_headers, retry_after};
use awsdynamodbsource_cloudevents::knative::{ERROR_DATA_LIMIT, dead_letter, retryable_status};
use bytes::Bytes;
use tracing::{debug, error, info, warn};

use crate::config::Trigger;
use crate::retry::RetryPolicy;
use crate::status::TriggerCounters;
use crate::store::EventStore;
use awsdynamodbsource_cloudevents::CloudEvent;

/// How long one attempt (connect, send, answer) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client every delivery task shares: no redirects (a POST must not turn into a
/// GET), no proxies (targets are local), [`ATTEMPT_TIMEOUT`] per attempt.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        // Building fails only when the TLS backend cannot initialise; the default is then the
        // best left (it fails the same way on first use, with a message).
        .unwrap_or_default()
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    /// No answer: connection refused, reset, timeout...
    Transport(String),
    /// A non-2xx answer.
    Status {
        code: u16,
        retry_after: Option<Duration>,
        /// The start of the answer's body.
        body: Bytes,
    },
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status { code, .. } => retryable_status(*code),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Transport(_) => None,
            Failure::Status { retry_after, .. } => *retry_after,
        }
    }

    fn describe(&self, url: &str) -> String {
        match self {
            Failure::Transport(reason) => format!("POST {url}: {reason}"),
            Failure::Status { code, .. } => format!("POST {url}: status {code}"),
        }
    }
}

/// The running part of one trigger.
pub(crate) struct DeliveryTask {
    pub name: String,
    pub trigger: Trigger,
    pub store: Arc<dyn EventStore>,
    pub client: reqwest::Client,
    pub counters: Arc<TriggerCounters>,
}

impl DeliveryTask {
    /// Runs until aborted. Starts at the trigger's cursor.
    pub async fn run(self) {
        let Some(mut position) = self.store.cursor(&self.name).await else {
            return;
        };
        let retry = RetryPolicy::from_options(self.trigger.target.delivery_options.as_ref());
        loop {
            let entry = self.store.next_entry(position).await;
            let event = &entry.event;
            let attribute = |name: &str| event.attribute(name).map(str::to_string);
            if self.trigger.filters.iter().all(|f| f.matches(&attribute)) {
                self.deliver(event, retry).await;
            } else {
                debug!(trigger = %self.name, id = event.id.as_str(), "filtered out");
            }
            position = entry.seq + 1;
            self.store.advance(&self.name, position).await;
        }
    }

    /// Delivers one event, retrying as configured; then dead-letters or drops it.
    async fn deliver(&self, event: &CloudEvent, retry: RetryPolicy) {
        let url = &self.trigger.target.url;
        let mut retries_done = 0u32;
        loop {
            let failure = match post(&self.client, url, event).await {
                Ok(()) => {
                    self.counters.delivered();
                    if retries_done > 0 {
                        info!(trigger = %self.name, id = event.id.as_str(), retries = retries_done, "delivered after retries");
                    } else {
                        debug!(trigger = %self.name, id = event.id.as_str(), "delivered");
                    }
                    return;
                }
                Err(failure) => failure,
            };
            let reason = failure.describe(url);
            self.counters.set_last_error(Some(reason.clone()));
            if failure.retryable() && retry.may_retry(retries_done) {
                let wait = retry.wait(retries_done, failure.retry_after());
                if retries_done == 0 {
                    warn!(trigger = %self.name, id = event.id.as_str(), "{reason}; retrying");
                } else {
                    debug!(trigger = %self.name, id = event.id.as_str(), retry = retries_done, ?wait, "{reason}; retrying");
                }
                tokio::time::sleep(wait).await;
                retries_done += 1;
                continue;
            }
            let why = if failure.retryable() {
                format!("{reason} (after {retries_done} retries)")
            } else {
                reason
            };
            match &self
                .trigger
                .target
                .delivery_options
                .as_ref()
                .and_then(|o| o.dead_letter_url.clone())
            {
                Some(dead_letter_url) => {
                    self.dead_letter(event, &failure, dead_letter_url, &why, retry)
                        .await;
                }
                None => {
                    error!(trigger = %self.name, id = event.id.as_str(), "dropping event: {why}; no dead-letter URL");
                    self.counters.dropped();
                }
            }
            return;
        }
    }

    /// Sends the event to the dead-letter sink with Knative's error extensions, retrying with
    /// the trigger's backoff until the sink accepts it. A sink that refuses it for good (a
    /// non-retryable status) would block the trigger forever, so then the event is dropped.
    async fn dead_letter(
        &self,
        event: &CloudEvent,
        failure: &Failure,
        dead_letter_url: &str,
        why: &str,
        retry: RetryPolicy,
    ) {
        let answer = match failure {
            Failure::Status { code, body, .. } => Some((*code, &body[..])),
            Failure::Transport(_) => None,
        };
        let dead = dead_letter(event, &self.trigger.target.url, answer);
        warn!(trigger = %self.name, id = event.id.as_str(), "{why}; sending it to the dead-letter URL {dead_letter_url}");
        let mut attempt = 0u32;
        loop {
            match post(&self.client, dead_letter_url, &dead).await {
                Ok(()) => {
                    self.counters.dead_lettered();
                    return;
                }
                Err(dl_failure) if dl_failure.retryable() => {
                    let reason = format!("dead letter: {}", dl_failure.describe(dead_letter_url));
                    debug!(trigger = %self.name, id = event.id.as_str(), "{reason}; retrying");
                    self.counters.set_last_error(Some(reason));
                    tokio::time::sleep(retry.wait(attempt, dl_failure.retry_after())).await;
                    attempt = attempt.saturating_add(1);
                }
                Err(dl_failure) => {
                    let reason = format!("dead letter: {}", dl_failure.describe(dead_letter_url));
                    error!(trigger = %self.name, id = event.id.as_str(), "dropping event: {why}; {reason}");
                    self.counters.set_last_error(Some(reason));
                    self.counters.dropped();
                    return;
                }
            }
        }
    }
}

/// One POST in binary mode.
async fn post(client: &reqwest::Client, url: &str, event: &CloudEvent) -> Result<(), Failure> {
    let response = client
        .post(url)
        .headers(binary_headers(event))
        .body(event.data.clone().unwrap_or_default())
        .send()
        .await
        .map_err(|e| Failure::Transport(error_chain(&e)))?;
    let code = response.status().as_u16();
    if (200..300).contains(&code) {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(retry_after);
    Err(Failure::Status {
        code,
        retry_after,
        body: body_start(response).await,
    })
}

/// Up to [`ERROR_DATA_LIMIT`] bytes of a body (what arrives before an error is kept).
async fn body_start(mut response: reqwest::Response) -> Bytes {
    let mut collected = Vec::new();
    while collected.len() < ERROR_DATA_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => collected.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    collected.truncate(ERROR_DATA_LIMIT);
    Bytes::from(collected)
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::Status {
            code,
            retry_after: None,
            body: Bytes::new(),
        }
    }

    #[test]
    fn knatives_retry_rule_408_included() {
        for code in [404, 408, 409, 429, 500, 503, 599] {
            assert!(status(code).retryable(), "{code}");
        }
        for code in [300, 400, 401, 403, 413, 422] {
            assert!(!status(code).retryable(), "{code}");
        }
        assert!(Failure::Transport("connection refused".into()).retryable());
    }
}
