//! Keep-alive HTTP/1.1 connections to the sink, on hyper's connection API.
//!
//! Profiling showed the general-purpose clients (reqwest over hyper-util's
//! pool) spending more per event than the request itself: URL handling,
//! pool bookkeeping, clones. The sink is one origin, so the pool is a stack
//! of idle connections: take one (or connect), send, put it back once its
//! answer is read. TLS (https sinks) comes from hyper-rustls's connector.
//!
//! The pool is gentle with the sink. Requests at once are capped across
//! all shards ([`Pool::request_slot`]), so connections never outnumber that
//! cap. New connections are opened one at a time: the next only once the
//! last new one has answered a request or [`RAMP_STEP`] has passed. A burst
//! of connections (64 at once after a restart) overflows a small accept
//! queue, and then requests hang on connections the sink never accepted.
//! A connection not established within the connect timeout is abandoned.

use std::sync::Mutex;
use std::time::Duration;

use awsdynamodbsource_vars as vars;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tower_service::Service;

use crate::error_chain;

pub(super) type Sender = SendRequest<Full<Bytes>>;

/// How long a new connection may go unanswered before the next one may be
/// opened: a slow sink still gets 20 new connections a second.
pub(super) const RAMP_STEP: Duration = Duration::from_millis(50);

pub(super) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Scheme and authority to connect to.
    origin: http::Uri,
    idle: Mutex<Vec<Sender>>,
    /// Requests at once; each holds one connection.
    requests: Semaphore,
    /// The one new connection allowed at a time (see the module doc).
    opening: Semaphore,
    /// Signalled when a connection goes back to `idle`.
    returned: Notify,
    connect_timeout: Duration,
}

/// A connection for one request.
pub(super) enum Connection<'a> {
    /// Kept alive from an earlier request.
    Idle(Sender),
    /// Just opened; holds the pool's one opening until it answers (or for
    /// [`RAMP_STEP`]).
    New(Sender, SemaphorePermit<'a>),
}

/// Connecting failed; the message names no credential.
#[derive(Debug)]
pub(super) struct ConnectError(pub String);

impl Pool {
    pub(super) fn new(
        origin: http::Uri,
        connect_timeout: Duration,
        max_requests: usize,
    ) -> Result<Self, ConnectError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
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
            requests: Semaphore::new(max_requests.max(1)),
            opening: Semaphore::new(1),
            returned: Notify::new(),
            connect_timeout,
        })
    }

    /// Waits for one of the request slots (the cap across all shards).
    pub(super) async fn request_slot(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed.
        self.requests.acquire().await.ok()
    }

    /// A connection: an idle one, else a new one when it is this request's
    /// turn to open one (an idle one coming back first is taken instead).
    pub(super) async fn connection(&self) -> Result<Connection<'_>, ConnectError> {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Some(sender) = self.take_idle() {
                return Ok(Connection::Idle(sender));
            }
            let turn = tokio::select! {
                turn = self.opening.acquire() => turn,
                _ = returned => continue,
            };
            let Ok(turn) = turn else { continue };
            return match tokio::time::timeout(self.connect_timeout, self.connect()).await {
                Ok(Ok(sender)) => Ok(Connection::New(sender, turn)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ConnectError(format!(
                    "no connection within {:?} ({})",
                    self.connect_timeout,
                    vars::SINK_CONNECT_TIMEOUT
                ))),
            };
        }
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
            self.returned.notify_one();
        }
    }

    /// A new connection; its driver runs in its own task until it closes.
    async fn connect(&self) -> Result<Sender, ConnectError> {
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
