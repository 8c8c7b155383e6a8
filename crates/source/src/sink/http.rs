//! The HTTP sink: CloudEvents HTTP binary mode over a keep-alive pool.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::{SendError, Sink};
use crate::event::{CloudEvent, DATA_CONTENT_TYPE};

/// How much of an error answer's body is kept for logs.
const BODY_EXCERPT: usize = 512;

#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
}

/// Why `K_SINK` cannot be used. Never echoes a password in the URL.
#[derive(Debug, thiserror::Error)]
#[error("K_SINK {shown}is not usable: {reason}")]
pub struct SinkUrlError {
    shown: String,
    reason: String,
}

/// Accepts absolute `http`/`https` URLs with a host.
pub fn parse_sink_url(s: &str) -> Result<reqwest::Url, SinkUrlError> {
    let fail = |shown: String, reason: &str| SinkUrlError {
        shown,
        reason: reason.to_owned(),
    };
    // An unparsable URL cannot be redacted reliably: it is not shown.
    let url =
        reqwest::Url::parse(s).map_err(|e| fail(String::new(), &format!("not a URL ({e})")))?;
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
pub fn redact(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("REDACTED"));
    }
    shown.to_string()
}

impl HttpSink {
    pub fn new(url: reqwest::Url, timeout: Duration) -> Result<Self, SendError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| SendError::Transport(e.without_url().to_string()))?;
        Ok(HttpSink { client, url })
    }

    fn headers(event: &CloudEvent) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(10);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(DATA_CONTENT_TYPE));
        for (name, value) in event.attributes() {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(format!("ce-{name}")),
                HeaderValue::from_str(&percent_encode(value)),
            ) else {
                continue; // cannot happen: names are validated, values encoded
            };
            headers.insert(name, value);
        }
        headers
    }
}

/// The CloudEvents HTTP binding's header encoding: space, `"`, `%` and
/// everything outside printable ASCII are percent-encoded (UTF-8 bytes).
fn percent_encode(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = |b: u8| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%';
    if value.bytes().all(plain) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}

fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let s = value.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP date: `Sun, 06 Nov 1994 08:49:37 GMT`.
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(s, format).ok()?.assume_utc();
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[async_trait]
impl Sink for HttpSink {
    async fn send(&self, event: &CloudEvent) -> Result<(), SendError> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(Self::headers(event))
            .body(event.data.clone())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(parse_retry_after);
        let body = excerpt(response).await;
        Err(SendError::Status {
            status: status.as_u16(),
            retry_after,
            body,
        })
    }
}

/// The start of an error answer's body; the rest is not read.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < BODY_EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(BODY_EXCERPT);
    String::from_utf8_lossy(&body)
        .trim()
        .replace(['\n', '\r'], " ")
}

fn transport_error(e: reqwest::Error) -> SendError {
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    // Without the URL: it may carry credentials.
    let e = e.without_url();
    let message = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    if timeout {
        SendError::Timeout
    } else if connect {
        SendError::Connect(message)
    } else {
        SendError::Transport(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_percent_encoded_as_the_binding_says() {
        assert_eq!(percent_encode("arn:aws:dynamodb:x"), "arn:aws:dynamodb:x");
        assert_eq!(percent_encode("a b\"c%d"), "a%20b%22c%25d");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn sink_urls_are_checked_and_passwords_never_shown() {
        assert!(parse_sink_url("http://127.0.0.1:8080/x").is_ok());
        assert!(parse_sink_url("https://broker.example/").is_ok());
        for bad in [
            "",
            "not a url",
            "ftp://host/",
            "http://",
            "/relative/path",
            "unix:/tmp/sock",
        ] {
            let err = parse_sink_url(bad).expect_err(bad).to_string();
            assert!(err.starts_with("K_SINK"), "{err}");
        }
        let err = parse_sink_url("ftp://user:hunter2@host/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_sink_url("http://user:hunter2@[::1/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn retry_after_as_seconds_or_date() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }
}
