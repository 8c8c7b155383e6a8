//! `/health`, `/livez` and `/metrics` over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use awsdynamodb_source::Health;
use awsdynamodbsource_api::vars::{HEALTH_PORT, METRICS_PROMETHEUS_PORT};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    registry: Arc<Registry>,
}

/// 204 when capturing, 200 with a note when healthy and idle (a replica
/// holding no shard lease), else 503 with the one-line reason.
async fn health(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.check() {
        Ok(()) => match s.health.note() {
            Some(note) => (StatusCode::OK, note).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

/// Liveness: 200 as long as the runtime that runs the engine serves this
/// request, with no verdict on delivery. Unlike `/health`, this is what
/// may restart the process: a restart while the sink or the stream fails
/// would only send again what was delivered since the last checkpoint and
/// meet the same failure, so those make the adapter unready (`/health`),
/// never dead. A runtime that no longer answers is what a restart fixes.
async fn live() -> StatusCode {
    StatusCode::OK
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Binds both ports (one listener when they are the same) and serves them
/// in the background. Fails at once when a port is taken.
pub async fn start(
    health_port: u16,
    metrics_port: u16,
    h: Arc<Health>,
    registry: Arc<Registry>,
) -> Result<(), String> {
    let state = AppState {
        health: h,
        registry,
    };
    let health_routes = Router::new()
        .route("/health", get(health))
        .route("/livez", get(live));
    let metrics_routes = Router::new().route("/metrics", get(metrics));
    let bind = |port: u16, var: &'static str| async move {
        TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
            .await
            .map_err(|e| format!("cannot listen on {var} {port}: {e}"))
    };
    if health_port == metrics_port {
        let listener = bind(health_port, HEALTH_PORT).await?;
        serve(
            listener,
            health_routes.merge(metrics_routes).with_state(state),
        );
    } else {
        let h = bind(health_port, HEALTH_PORT).await?;
        let m = bind(metrics_port, METRICS_PROMETHEUS_PORT).await?;
        serve(h, health_routes.with_state(state.clone()));
        serve(m, metrics_routes.with_state(state));
    }
    Ok(())
}

fn serve(listener: TcpListener, app: Router) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health/metrics server stopped");
        }
    });
}
