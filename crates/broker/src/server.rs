//! The HTTP API on the listen address: ingest (`POST /`), `GET /health`, `GET /-/watch`,
//! `POST /-/reload` and `GET /-/status`.
//!
//! Owns status codes and response bodies. It never delivers and never waits on a target;
//! ingest only stores. Event data is never logged.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::broker::Shared;
use crate::event_log::AppendError;
use awsdynamodbsource_cloudevents::CloudEvent;
use awsdynamodbsource_cloudevents::http::event_from_request;

/// Larger ingest bodies are answered 413.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(ingest))
        .route("/health", get(health))
        .route("/-/watch", get(watch))
        .route("/-/reload", post(reload))
        .route("/-/status", get(status))
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES))
        .with_state(shared)
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unavailable(message: String) -> Response {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn ingest(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !shared.log.accepting() {
        return unavailable("the broker is shutting down".into());
    }
    let event = match event_from_request(&headers, body) {
        Ok(event) => Arc::new(event),
        Err(e) => return text(StatusCode::BAD_REQUEST, e.0),
    };
    match shared.log.append(event.clone()) {
        Ok(seq) => {
            debug!(id = event.id.as_str(), seq, "ingested");
            // No watcher is fine; a slow one lags, it never blocks this.
            let _ = shared.watchers.send(event);
            StatusCode::OK.into_response()
        }
        Err(AppendError::Full) => unavailable(format!(
            "the broker is full: it holds {} events not yet delivered",
            shared.log.capacity()
        )),
        Err(AppendError::Draining) => unavailable("the broker is shutting down".into()),
    }
}

async fn health() -> Response {
    text(StatusCode::OK, "ok")
}

/// Streams every event ingested from now on, one structured-mode JSON per line. Ends when
/// the broker stops serving.
async fn watch(State(shared): State<Arc<Shared>>) -> Response {
    // Subscribed before answering, so every event ingested after the request is in it.
    let lines = watch_lines(shared.watchers.subscribe(), shared.stop_serving.clone());
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

/// The lines of one watcher. A watcher that falls behind the broadcast buffer gets
/// `{"watchLagged": N}` (N events it missed) and goes on; it never slows ingest.
fn watch_lines(
    receiver: broadcast::Receiver<Arc<CloudEvent>>,
    stop: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold((receiver, stop), |(mut receiver, stop)| async move {
        let line = tokio::select! {
            _ = stop.cancelled() => return None,
            received = receiver.recv() => match received {
                Ok(event) => event.to_structured_line(),
                Err(RecvError::Lagged(missed)) => format!("{{\"watchLagged\":{missed}}}"),
                Err(RecvError::Closed) => return None,
            },
        };
        Some((Ok(Bytes::from(line + "\n")), (receiver, stop)))
    })
}

#[derive(Serialize)]
struct ReloadSummary {
    triggers: Vec<String>,
}

async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    match shared.reload().await {
        Ok(triggers) => json(StatusCode::OK, &ReloadSummary { triggers }),
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &shared.status())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn event(id: &str) -> Arc<CloudEvent> {
        crate::test_event(id, Some(Bytes::from_static(b"{\"k\":1}")))
    }

    async fn next_line(
        lines: &mut (impl Stream<Item = Result<Bytes, Infallible>> + Unpin),
    ) -> String {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), lines.next())
            .await
            .expect("a line within 5 s")
            .expect("the stream goes on")
            .unwrap();
        String::from_utf8(chunk.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_lagging_watcher_is_told_how_many_it_missed_and_goes_on() {
        let (sender, receiver) = broadcast::channel(2);
        let stop = CancellationToken::new();
        let mut lines = Box::pin(watch_lines(receiver, stop.clone()));
        for id in ["1", "2", "3", "4", "5"] {
            sender.send(event(id)).unwrap();
        }
        assert_eq!(next_line(&mut lines).await, "{\"watchLagged\":3}\n");
        let line = next_line(&mut lines).await;
        assert!(
            line.contains("\"id\":\"4\"") && line.ends_with('\n'),
            "{line}"
        );
        assert!(line.contains("\"data\":{\"k\":1}"), "{line}");
        assert!(next_line(&mut lines).await.contains("\"id\":\"5\""));
        sender.send(event("6")).unwrap();
        assert!(next_line(&mut lines).await.contains("\"id\":\"6\""));
        stop.cancel();
        assert!(
            lines.next().await.is_none(),
            "the stream ends when the broker stops"
        );
    }
}
