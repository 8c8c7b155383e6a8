//! An HTTP CloudEvents sink on loopback that records what it accepts.
//!
//! [`RecordingSink`] receives CloudEvents in HTTP binary mode (`ce-*` headers + body) or
//! structured mode (`application/cloudevents+json`), records each accepted one as a
//! [`ReceivedEvent`], counts answers per status, and behaves as told at run time: accept all
//! (optionally cycling through several 2xx statuses), reject a seeded deterministic ratio,
//! answer a status for chosen events, add `Retry-After` to rejections, answer late, or go down
//! for real (refuse connections and close open keep-alive ones) and come back on the same
//! port. Tests await conditions on the received events ([`RecordingSink::wait_for`]); every
//! receipt wakes the waiters, nothing polls.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::sync::watch;

use crate::server::{CloseConnection, Handler, Server, response};
use crate::util::{chance, fnv1a64, percent_decode};

/// The largest request body the sinks read.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// One CloudEvent as the sink received it.
#[derive(Clone, Debug)]
pub struct ReceivedEvent {
    /// `id`.
    pub id: String,
    /// `source`.
    pub source: String,
    /// `type`.
    pub ty: String,
    /// `specversion`.
    pub specversion: String,
    /// `subject`.
    pub subject: Option<String>,
    /// `time`.
    pub time: Option<String>,
    /// `datacontenttype` (binary mode: the `Content-Type` header).
    pub datacontenttype: Option<String>,
    /// Every other attribute (binary mode: other `ce-` headers, percent-decoded, without the
    /// prefix; structured mode: other members, strings as is, others as JSON text).
    pub extensions: BTreeMap<String, String>,
    /// The data, as bytes (structured mode: `data_base64` decoded, or `data` as JSON text,
    /// or a string `data` as is for non-JSON content types).
    pub data: Bytes,
    /// True for structured mode.
    pub structured: bool,
    /// When it arrived.
    pub received_at: Instant,
}

impl ReceivedEvent {
    /// The data parsed as JSON.
    pub fn data_json(&self) -> Result<Value> {
        serde_json::from_slice(&self.data)
            .with_context(|| format!("event {}: data is not JSON", self.id))
    }
}

type Predicate = Arc<dyn Fn(&ReceivedEvent) -> bool + Send + Sync>;

struct Rule {
    matches: Predicate,
    status: u16,
}

struct Behaviour {
    accept_statuses: Vec<u16>,
    reject_ratio: f64,
    reject_status: u16,
    seed: u64,
    rules: Vec<Rule>,
    retry_after: Option<String>,
    /// The body of rejections.
    reject_body: String,
    delay: Option<Duration>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            accept_statuses: vec![200],
            reject_ratio: 0.0,
            reject_status: 503,
            seed: 0x5eed,
            rules: Vec::new(),
            retry_after: None,
            reject_body: String::new(),
            delay: None,
        }
    }
}

#[derive(Default)]
struct Recorded {
    events: Vec<ReceivedEvent>,
    rejected: Vec<ReceivedEvent>,
    status_counts: BTreeMap<u16, u64>,
    requests: u64,
    /// Deliveries seen per event id (the ratio decision is a function of seed, id and attempt,
    /// so it does not depend on how concurrent deliveries interleave).
    attempts: HashMap<String, u64>,
    accepted: u64,
}

struct SinkState {
    behaviour: Mutex<Behaviour>,
    recorded: Mutex<Recorded>,
    /// Bumped after every answered request.
    changes: watch::Sender<u64>,
}

/// The sink handle (cheap to clone). The server stops when the last handle is dropped.
#[derive(Clone)]
pub struct RecordingSink {
    state: Arc<SinkState>,
    server: Arc<Server>,
}

impl std::fmt::Debug for RecordingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingSink")
            .field("url", &self.url())
            .finish()
    }
}

impl RecordingSink {
    /// Starts a sink on 127.0.0.1 (free port) that accepts everything with 200.
    pub async fn start() -> Result<RecordingSink> {
        let (changes, _) = watch::channel(0);
        let state = Arc::new(SinkState {
            behaviour: Mutex::new(Behaviour::default()),
            recorded: Mutex::new(Recorded::default()),
            changes,
        });
        let for_handler = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let state = for_handler.clone();
            Box::pin(async move { state.handle(req).await })
        });
        let server = Server::start(handler).context("starting the sink's listener")?;
        Ok(RecordingSink {
            state,
            server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.server.addr())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Accept everything again: removes rejection ratio, rules and delay (keeps the accept
    /// statuses and Retry-After setting).
    pub fn accept_all(&self) {
        let mut b = self.state.behaviour.lock().unwrap();
        b.reject_ratio = 0.0;
        b.rules.clear();
        b.delay = None;
    }

    /// Statuses for accepted events, used in turn (e.g. `[200, 202, 204]`).
    pub fn set_accept_statuses(&self, statuses: &[u16]) {
        assert!(
            !statuses.is_empty() && statuses.iter().all(|s| (200..300).contains(s)),
            "accept statuses must be 2xx"
        );
        self.state.behaviour.lock().unwrap().accept_statuses = statuses.to_vec();
    }

    /// Rejects about `ratio` of the deliveries of valid events with `status`. Each decision is
    /// a function of the seed, the event id and which delivery of that id it is, so a run
    /// rejects the same deliveries whatever the concurrency, and a redelivered event gets a
    /// fresh decision. Rejected events are not recorded as received (see
    /// [`RecordingSink::rejected`]).
    pub fn reject_ratio(&self, ratio: f64, status: u16) {
        let mut b = self.state.behaviour.lock().unwrap();
        b.reject_ratio = ratio;
        b.reject_status = status;
    }

    /// The seed of the ratio decisions (default 0x5eed).
    pub fn set_seed(&self, seed: u64) {
        self.state.behaviour.lock().unwrap().seed = seed;
    }

    /// Answers `status` for events matching `predicate` (checked before the ratio; the first
    /// matching rule wins). A 2xx status counts as accepted.
    pub fn status_for(
        &self,
        predicate: impl Fn(&ReceivedEvent) -> bool + Send + Sync + 'static,
        status: u16,
    ) {
        self.state.behaviour.lock().unwrap().rules.push(Rule {
            matches: Arc::new(predicate),
            status,
        });
    }

    /// Answers `status` for the events with these ids.
    pub fn status_for_ids(&self, ids: impl IntoIterator<Item = String>, status: u16) {
        let ids: HashSet<String> = ids.into_iter().collect();
        self.status_for(move |e| ids.contains(&e.id), status);
    }

    /// Adds `Retry-After: <seconds>` to every rejection (`None`: no header).
    pub fn set_retry_after(&self, after: Option<Duration>) {
        self.state.behaviour.lock().unwrap().retry_after = after.map(|d| d.as_secs().to_string());
    }

    /// Rejections answer with this body (default: none).
    pub fn set_reject_body(&self, body: &str) {
        self.state.behaviour.lock().unwrap().reject_body = body.to_owned();
    }

    /// Answers every request only after `delay` (`None`: at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.state.behaviour.lock().unwrap().delay = delay;
    }

    /// Down: the port refuses connections and open connections are closed. Up: listens
    /// again on the same port. Returns once done.
    pub async fn set_down(&self, down: bool) -> Result<()> {
        self.server
            .set_down(down)
            .await
            .with_context(|| format!("sink {}: set_down({down})", self.url()))
    }

    /// The accepted events so far, in arrival order.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.state.recorded.lock().unwrap().events.clone()
    }

    /// The valid events answered with a non-2xx status, in arrival order.
    pub fn rejected(&self) -> Vec<ReceivedEvent> {
        self.state.recorded.lock().unwrap().rejected.clone()
    }

    /// Requests answered per status.
    pub fn status_counts(&self) -> BTreeMap<u16, u64> {
        self.state.recorded.lock().unwrap().status_counts.clone()
    }

    /// Requests answered with `status`.
    pub fn count_status(&self, status: u16) -> u64 {
        self.status_counts().get(&status).copied().unwrap_or(0)
    }

    /// All requests answered.
    pub fn requests(&self) -> u64 {
        self.state.recorded.lock().unwrap().requests
    }

    /// Forgets everything recorded (behaviour stays).
    pub fn clear(&self) {
        *self.state.recorded.lock().unwrap() = Recorded::default();
    }

    /// Waits until `condition` holds for the accepted events; returns them then. Errors after
    /// `timeout` with how many events had arrived.
    pub async fn wait_for(
        &self,
        condition: impl Fn(&[ReceivedEvent]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<ReceivedEvent>> {
        let mut changes = self.state.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            // The condition runs without the lock held, so it may use the
            // sink's other accessors (`rejected`, `status_counts`...).
            let events = self.events();
            if condition(&events) {
                return Ok(events);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => bail!("sink {} stopped", self.url()),
                Err(_) => {
                    let recorded = self.state.recorded.lock().unwrap();
                    bail!(
                        "sink {}: condition not met within {timeout:?} ({} events accepted, {} rejected, statuses {:?})",
                        self.url(),
                        recorded.events.len(),
                        recorded.rejected.len(),
                        recorded.status_counts
                    );
                }
            }
        }
    }

    /// Waits until at least `n` events were accepted.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedEvent>> {
        self.wait_for(|events| events.len() >= n, timeout).await
    }
}

impl SinkState {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, CloseConnection> {
        let received_at = Instant::now();
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => return Ok(self.answer(400, None, format!("cannot read body: {e}"))),
        };
        let event = match parse_event(&parts.headers, body, received_at) {
            Ok(event) => event,
            Err(e) => return Ok(self.answer(400, None, format!("not a CloudEvent: {e:#}"))),
        };
        let (status, retry_after, delay, accept_statuses, reject_body) = {
            let b = self.behaviour.lock().unwrap();
            let attempt = {
                let mut r = self.recorded.lock().unwrap();
                let n = r.attempts.entry(event.id.clone()).or_insert(0);
                *n += 1;
                *n - 1
            };
            let status = if let Some(rule) = b.rules.iter().find(|r| (r.matches)(&event)) {
                Some(rule.status)
            } else if chance(
                b.seed,
                fnv1a64(event.id.as_bytes()),
                attempt,
                b.reject_ratio,
            ) {
                Some(b.reject_status)
            } else {
                None
            };
            (
                status,
                b.retry_after.clone(),
                b.delay,
                b.accept_statuses.clone(),
                b.reject_body.clone(),
            )
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let status = {
            let mut r = self.recorded.lock().unwrap();
            let status = status
                .unwrap_or_else(|| accept_statuses[(r.accepted as usize) % accept_statuses.len()]);
            if (200..300).contains(&status) {
                r.accepted += 1;
                r.events.push(event);
            } else {
                r.rejected.push(event);
            }
            status
        };
        let (retry_after, body) = if (200..300).contains(&status) {
            (None, String::new())
        } else {
            (retry_after, reject_body)
        };
        Ok(self.answer(status, retry_after, body))
    }

    /// Counts the answer, wakes waiters, builds the response.
    fn answer(
        &self,
        status: u16,
        retry_after: Option<String>,
        body: String,
    ) -> Response<Full<Bytes>> {
        {
            let mut r = self.recorded.lock().unwrap();
            r.requests += 1;
            *r.status_counts.entry(status).or_insert(0) += 1;
        }
        self.changes.send_modify(|v| *v += 1);
        let body = if status == 204 { String::new() } else { body };
        match retry_after {
            Some(after) => response(status, &[("retry-after", &after)], body),
            None => response(status, &[], body),
        }
    }
}

fn header_str(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
}

/// Turns a request's headers and body into the event it carries, in binary or structured
/// mode; shared by both sinks so they read CloudEvents alike.
pub(crate) fn parse_event(
    headers: &http::HeaderMap,
    body: Bytes,
    received_at: Instant,
) -> Result<ReceivedEvent> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let structured = content_type.as_deref().is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/cloudevents+json")
    });
    if structured {
        return parse_structured(&body, received_at);
    }
    if content_type.as_deref().is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/cloudevents-batch")
    }) {
        bail!("batch mode is not supported");
    }
    let required =
        |name: &str| header_str(headers, name).with_context(|| format!("missing header {name}"));
    let mut extensions = BTreeMap::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        if matches!(
            attr,
            "id" | "source" | "type" | "specversion" | "subject" | "time"
        ) {
            continue;
        }
        let value = value
            .to_str()
            .with_context(|| format!("header {name} is not ASCII"))?;
        extensions.insert(attr.to_string(), percent_decode(value));
    }
    Ok(ReceivedEvent {
        id: required("ce-id")?,
        source: required("ce-source")?,
        ty: required("ce-type")?,
        specversion: required("ce-specversion")?,
        subject: header_str(headers, "ce-subject"),
        time: header_str(headers, "ce-time"),
        datacontenttype: content_type,
        extensions,
        data: body,
        structured: false,
        received_at,
    })
}

fn parse_structured(body: &[u8], received_at: Instant) -> Result<ReceivedEvent> {
    let Value::Object(mut map) =
        serde_json::from_slice::<Value>(body).context("body is not JSON")?
    else {
        bail!("body is not a JSON object");
    };
    let mut take_str = |name: &str| -> Result<Option<String>> {
        match map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => bail!("attribute {name} is not a string: {other}"),
        }
    };
    let id = take_str("id")?.context("missing id")?;
    let source = take_str("source")?.context("missing source")?;
    let ty = take_str("type")?.context("missing type")?;
    let specversion = take_str("specversion")?.context("missing specversion")?;
    let subject = take_str("subject")?;
    let time = take_str("time")?;
    let datacontenttype = take_str("datacontenttype")?;
    let json_data = datacontenttype.as_deref().is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("application/json") || ct.contains("+json") || ct.starts_with("text/json")
    });
    let data = match (map.remove("data_base64"), map.remove("data")) {
        (Some(Value::String(b64)), _) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .context("data_base64 is not base64")?,
        ),
        (Some(other), _) => bail!("data_base64 is not a string: {other}"),
        (None, Some(Value::String(s))) if !json_data => Bytes::from(s),
        (None, Some(v)) => Bytes::from(serde_json::to_vec(&v)?),
        (None, None) => Bytes::new(),
    };
    let extensions = map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    Ok(ReceivedEvent {
        id,
        source,
        ty,
        specversion,
        subject,
        time,
        datacontenttype,
        extensions,
        data,
        structured: true,
        received_at,
    })
}
