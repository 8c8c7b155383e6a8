//! Keep-alive HTTP/1.1 connections to the sink, on hyper's connection API.
//!
//! Profiling showed the general-purpose clients (reqwest over hyper-util's
//! pool) spending more per event than the request itself: URL handling,
//! pool bookkeeping, clones. The sink is one origin, so the pool is a stack
//! of idle connections: take one (or connect), send, put it back once its
//! answer is read. TLS (https sinks) comes from hyper-rustls's connector.

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use crate::error_chain;

pub(super) type Sender = SendRequest<Full<Bytes>>;

pub(super) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Scheme and authority to connect to.
    origin: http::Uri,
    idle: Mutex<Vec<Sender>>,
}

/// Connecting failed; the message names no credential.
#[derive(Debug)]
pub(super) struct ConnectError(pub String);

impl Pool {
    pub(super) fn new(
        origin: http::Uri,
        connect_timeout: std::time::Duration,
    ) -> Result<Self, ConnectError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ConnectError(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Pool {
            connector,
            origin,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle connection that is still open, if any.
    pub(super) fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Returns a connection whose answer was read completely.
    pub(super) fn put_back(&self, sender: Sender) {
        if !sender.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sender);
        }
    }

    /// A new connection; its driver runs in its own task until it closes.
    pub(super) async fn connect(&self) -> Result<Sender, ConnectError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| ConnectError(e.to_string()))?;
        let io = connector
            .call(self.origin.clone())
            .await
            .map_err(|e| ConnectError(error_chain(e.as_ref())))?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| ConnectError(error_chain(&e)))?;
        tokio::spawn(async move {
            // Ends when the sink or we close the connection; errors show on
            // the request that meets them.
            let _ = connection.await;
        });
        Ok(sender)
    }
}
