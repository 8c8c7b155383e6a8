//! The HTTP sink: CloudEvents HTTP binary mode over keep-alive connections.

use std::time::Duration;

use async_trait::async_trait;
use awsdynamodbsource_cloudevents::http::{
    STRUCTURED_CONTENT_TYPE, retry_after, write_binary_headers,
};
use awsdynamodbsource_vars as vars;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, RETRY_AFTER};
use http_body_util::Full;
use url::Url;

use super::{SendError, Sink};
use crate::error_chain;
use crate::event::CloudEvent;
use crate::http_pool::{Exchange, Pool, Sender};

/// How much of an error answer's body is kept for logs.
const BODY_EXCERPT: usize = 512;

/// How an event travels in a request (the CloudEvents HTTP binding's
/// content modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentMode {
    /// Attributes as `ce-` headers, the data as the body.
    #[default]
    Binary,
    /// The whole event as one JSON object (`application/cloudevents+json`).
    Structured,
}

impl std::str::FromStr for ContentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "binary" | "" => Ok(ContentMode::Binary),
            "structured" => Ok(ContentMode::Structured),
            other => Err(format!("{other:?} is not one of binary, structured")),
        }
    }
}

/// How the sink is used: timeouts and the cap on requests at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkLimits {
    /// One request's answer (K_SINK_TIMEOUT).
    pub response_timeout: Duration,
    /// Establishing a connection (SINK_CONNECT_TIMEOUT).
    pub connect_timeout: Duration,
    /// Requests at once across all shards, and so connections at most
    /// (SINK_MAX_CONNECTIONS).
    pub max_connections: usize,
}

impl Default for SinkLimits {
    fn default() -> Self {
        SinkLimits {
            response_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            max_connections: 64,
        }
    }
}

static STRUCTURED: HeaderValue = HeaderValue::from_static(STRUCTURED_CONTENT_TYPE);

pub struct HttpSink {
    pool: Pool,
    mode: ContentMode,
    /// The URL as logs and dead letters may show it.
    shown: String,
    timeout: Duration,
    /// The request target (origin-form: path and query).
    target: http::Uri,
    host: HeaderValue,
    /// Basic credentials from the URL's user info, as reqwest sent them.
    authorization: Option<HeaderValue>,
}

/// Why a sink's URL (`K_SINK`, or the variable named) cannot be used.
/// Never echoes a password in the URL.
#[derive(Debug, thiserror::Error)]
#[error("{var} {shown}is not usable: {reason}")]
pub struct SinkUrlError {
    var: &'static str,
    shown: String,
    reason: String,
}

/// Accepts absolute `http`/`https` URLs with a host.
pub fn parse_sink_url(s: &str) -> Result<Url, SinkUrlError> {
    parse_sink_url_of(vars::K_SINK, s)
}

/// [`parse_sink_url`] for the sink URL given by variable `var`, which the
/// error names.
pub fn parse_sink_url_of(var: &'static str, s: &str) -> Result<Url, SinkUrlError> {
    let fail = |shown: String, reason: &str| SinkUrlError {
        var,
        shown,
        reason: reason.to_owned(),
    };
    // A URL without a scheme ("127.0.0.1:9999", "localhost:8080", which
    // would parse with the scheme "localhost") is the common slip.
    // An unparsable URL cannot be redacted reliably: shown only without a
    // user part.
    let has_user = s.contains('@');
    let unparsed = || {
        if has_user {
            String::new()
        } else {
            format!("{s:?} ")
        }
    };
    if !s.contains("://") {
        let hint = if has_user {
            "it has no scheme: start it with http:// or https://".to_owned()
        } else {
            format!(
                "it has no scheme: write http://{} (or https://)",
                s.escape_debug()
            )
        };
        return Err(fail(unparsed(), &hint));
    }
    let url = Url::parse(s).map_err(|e| fail(unparsed(), &format!("not a URL ({e})")))?;
    let shown = format!("{:?} ", redact(&url));
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail(shown, "the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail(shown, "it has no host"));
    }
    Ok(url)
}

/// The URL with its password replaced, for logs.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("REDACTED"));
    }
    shown.to_string()
}

impl HttpSink {
    pub fn new(url: Url, limits: SinkLimits) -> Result<Self, SendError> {
        let invalid = |what: &str| SendError::Transport(format!("{}: {what}", vars::K_SINK));
        let host = url.host_str().ok_or_else(|| invalid("no host"))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let origin = http::Uri::builder()
            .scheme(url.scheme())
            .authority(authority.as_str())
            .path_and_query("/")
            .build()
            .map_err(|_| invalid("not a valid origin"))?;
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let authorization = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                let credentials = format!(
                    "{}:{}",
                    decode(user),
                    password.map(decode).unwrap_or_default()
                );
                let mut value = HeaderValue::try_from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ))
                .map_err(|_| invalid("bad user info"))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(HttpSink {
            mode: ContentMode::Binary,
            shown: redact(&url),
            pool: Pool::new(
                origin,
                (limits.connect_timeout, vars::SINK_CONNECT_TIMEOUT),
                limits.max_connections,
            )
            .map_err(|e| SendError::Transport(e.0))?,
            timeout: limits.response_timeout,
            target: target.parse().map_err(|_| invalid("not a valid path"))?,
            host: HeaderValue::try_from(authority).map_err(|_| invalid("not a valid host"))?,
            authorization,
        })
    }

    /// The same sink, sending in `mode`.
    pub fn with_mode(self, mode: ContentMode) -> Self {
        HttpSink { mode, ..self }
    }

    fn request(&self, event: &CloudEvent) -> http::Request<Full<Bytes>> {
        if self.mode == ContentMode::Structured {
            let mut request = http::Request::post(self.target.clone())
                .body(Full::new(Bytes::from(event.to_structured_json())))
                .unwrap_or_default();
            let headers = request.headers_mut();
            headers.insert(HOST, self.host.clone());
            headers.insert(CONTENT_TYPE, STRUCTURED.clone());
            if let Some(auth) = &self.authorization {
                headers.insert(AUTHORIZATION, auth.clone());
            }
            return request;
        }
        let mut request = http::Request::post(self.target.clone())
            .body(Full::new(event.data.clone().unwrap_or_default()))
            .unwrap_or_default();
        let headers = request.headers_mut();
        headers.reserve(12);
        headers.insert(HOST, self.host.clone());
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        write_binary_headers(event, headers);
        request
    }

    /// One attempt: on a kept-alive connection if there is one, else a new
    /// one (see [`Pool::exchange`]). The response timeout runs from when the
    /// request has a connection.
    async fn attempt(&self, event: &CloudEvent) -> Result<(), SendError> {
        self.pool
            .exchange(
                |sender| self.exchange_in_time(sender, event),
                SendError::Connect,
            )
            .await
    }

    async fn exchange_in_time(
        &self,
        sender: Sender,
        event: &CloudEvent,
    ) -> Result<(), Exchange<SendError>> {
        tokio::time::timeout(self.timeout, self.exchange(sender, event))
            .await
            .unwrap_or(Err(Exchange::Failed(SendError::Timeout)))
    }

    async fn exchange(
        &self,
        sender: Sender,
        event: &CloudEvent,
    ) -> Result<(), Exchange<SendError>> {
        let answer = self
            .pool
            .send(sender, self.request(event), |status| {
                if status.is_success() { 0 } else { BODY_EXCERPT }
            })
            .await
            .map_err(|e| e.map(|e| transport(&e)))?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(Exchange::Failed(SendError::Status {
            status: answer.status.as_u16(),
            retry_after: answer.headers.get(RETRY_AFTER).and_then(retry_after),
            body: String::from_utf8_lossy(&answer.body)
                .trim()
                .replace(['\n', '\r'], " "),
            raw: answer.body,
        }))
    }
}

fn transport(e: &hyper::Error) -> SendError {
    SendError::Transport(error_chain(e))
}

#[async_trait]
impl Sink for HttpSink {
    async fn send(&self, event: &CloudEvent) -> Result<(), SendError> {
        let _slot = self.pool.request_slot().await;
        self.attempt(event).await
    }

    fn destination(&self) -> String {
        self.shown.clone()
    }
}

#[cfg(test)]
mod tests;

/// The sink is gentle with its receiver: requests at once are capped (and
/// so are connections), new connections are opened one at a time as the
/// sink answers, and a connection not established in time is abandoned
/// instead of holding a request for the whole response timeout. Against a
/// sink with a small, slow accept queue (Python's ThreadingHTTPServer),
/// where 64 connections opened at once leave about half their requests
/// hanging.
#[cfg(test)]
mod connections;
