//! Keep-alive HTTP/1.1 connections to one origin, on hyper's connection
//! API: the sink's, and DynamoDB Streams' for GetRecords.
//!
//! Profiling showed the general-purpose clients (reqwest over hyper-util's
//! pool, and the AWS SDK's per-call machinery) spending more per request
//! than the request itself: URL handling, pool bookkeeping, clones. One
//! origin needs no more than a stack of idle connections: take one (or
//! connect), send, put it back once its answer is read ([`Pool::exchange`]).
//! TLS comes from hyper-rustls's connector.
//!
//! The pool is gentle with its server. Requests at once are capped across
//! all shards ([`Pool::request_slot`]), so connections never outnumber that
//! cap. New connections are opened one at a time: the next only once the
//! last new one has answered a request or [`RAMP_STEP`] has passed. A burst
//! of connections (64 at once after a restart) overflows a small accept
//! queue, and then requests hang on connections the sink never accepted.
//! A connection not established within the connect timeout is abandoned.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tower_service::Service;

use crate::error_chain;

pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// How long a new connection may go unanswered before the next one may be
/// opened: a slow sink still gets 20 new connections a second.
pub(crate) const RAMP_STEP: Duration = Duration::from_millis(50);

pub(crate) struct Pool {
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
    /// The setting that holds `connect_timeout`, named when it passes.
    connect_timeout_setting: &'static str,
}

/// A connection for one request.
enum Connection<'a> {
    /// Kept alive from an earlier request.
    Idle(Sender),
    /// Just opened; holds the pool's one opening until it answers (or for
    /// [`RAMP_STEP`]).
    New(Sender, SemaphorePermit<'a>),
}

/// Connecting failed; the message names no credential.
#[derive(Debug)]
pub(crate) struct ConnectError(pub String);

/// How one request on a connection failed.
pub(crate) enum Exchange<E> {
    /// The request never left: the connection was closed before. Another
    /// connection gets it at once; that is no failure of the server.
    NotSent(E),
    Failed(E),
}

impl<E> Exchange<E> {
    pub(crate) fn map<F>(self, f: impl FnOnce(E) -> F) -> Exchange<F> {
        match self {
            Exchange::NotSent(e) => Exchange::NotSent(f(e)),
            Exchange::Failed(e) => Exchange::Failed(f(e)),
        }
    }
}

/// An answer read to its end.
pub(crate) struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    /// As much of the body as the caller kept.
    pub body: Bytes,
}

impl Pool {
    pub(crate) fn new(
        origin: http::Uri,
        (connect_timeout, connect_timeout_setting): (Duration, &'static str),
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
            connect_timeout_setting,
        })
    }

    /// Runs one request: `exchange` on a kept-alive connection if there is
    /// one, else on one that comes back or a new one when it is this
    /// request's turn to open one. `exchange` puts the connection back once
    /// it has read the answer to its end.
    pub(crate) async fn exchange<T, E, F>(
        &self,
        exchange: impl Fn(Sender) -> F,
        connect_failed: impl Fn(String) -> E,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, Exchange<E>>>,
    {
        while let Some(sender) = self.take_idle() {
            match exchange(sender).await {
                Err(Exchange::NotSent(_)) => continue,
                Err(Exchange::Failed(e)) => return Err(e),
                Ok(answer) => return Ok(answer),
            }
        }
        // Rare once connections exist: boxed, so that the future of every
        // request stays small.
        Box::pin(self.exchange_without_idle(exchange, connect_failed)).await
    }

    async fn exchange_without_idle<T, E, F>(
        &self,
        exchange: impl Fn(Sender) -> F,
        connect_failed: impl Fn(String) -> E,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, Exchange<E>>>,
    {
        loop {
            let connection = match self.connection().await {
                Ok(connection) => connection,
                // One that came back while connecting is tried instead.
                Err(ConnectError(e)) => match self.take_idle() {
                    Some(sender) => Connection::Idle(sender),
                    None => return Err(connect_failed(e)),
                },
            };
            match connection {
                Connection::Idle(sender) => match exchange(sender).await {
                    Err(Exchange::NotSent(_)) => continue,
                    Err(Exchange::Failed(e)) => return Err(e),
                    Ok(answer) => return Ok(answer),
                },
                Connection::New(sender, turn) => {
                    // The next new connection waits for this one's first
                    // answer, or for RAMP_STEP.
                    let exchange = exchange(sender);
                    tokio::pin!(exchange);
                    let mut turn = Some(turn);
                    let result = loop {
                        tokio::select! {
                            result = &mut exchange => break result,
                            _ = tokio::time::sleep(RAMP_STEP), if turn.is_some() => turn = None,
                        }
                    };
                    drop(turn);
                    return result.map_err(|e| match e {
                        Exchange::NotSent(e) | Exchange::Failed(e) => e,
                    });
                }
            }
        }
    }

    /// Waits for one of the request slots (the cap across all shards).
    pub(crate) async fn request_slot(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed.
        self.requests.acquire().await.ok()
    }

    /// A connection: an idle one, else a new one when it is this request's
    /// turn to open one (an idle one coming back first is taken instead).
    async fn connection(&self) -> Result<Connection<'_>, ConnectError> {
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
                    self.connect_timeout, self.connect_timeout_setting
                ))),
            };
        }
    }

    /// An idle connection that is still open, if any.
    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Sends `request` on `sender` and reads the answer to its end, keeping
    /// at most `keep(status)` bytes of its body; then the connection goes
    /// back to the pool (it is reusable only once its answer is read).
    pub(crate) async fn send(
        &self,
        mut sender: Sender,
        request: http::Request<Full<Bytes>>,
        keep: impl FnOnce(http::StatusCode) -> usize,
    ) -> Result<Answer, Exchange<hyper::Error>> {
        if let Err(e) = sender.ready().await {
            return Err(Exchange::NotSent(e));
        }
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(e) if e.is_canceled() => return Err(Exchange::NotSent(e)),
            Err(e) => return Err(Exchange::Failed(e)),
        };
        let (parts, mut body) = response.into_parts();
        let keep = keep(parts.status);
        // The frames themselves, not copies: a body of one frame is kept
        // as it came.
        let (mut kept, mut len) = (Vec::<Bytes>::new(), 0);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Exchange::Failed)?;
            if let Ok(data) = frame.into_data()
                && len < keep
            {
                let part = data.slice(..data.len().min(keep - len));
                len += part.len();
                kept.push(part);
            }
        }
        self.put_back(sender);
        let body = match kept.len() {
            0 => Bytes::new(),
            1 => kept.swap_remove(0),
            _ => Bytes::from(kept.concat()),
        };
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Returns a connection whose answer was read completely.
    fn put_back(&self, sender: Sender) {
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
