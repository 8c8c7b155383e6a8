//! GetRecords without the SDK's per-call machinery: the call every shard
//! makes every few seconds, signed with `aws-sigv4` and sent on a
//! keep-alive [`Pool`]. Profiled on an empty shard, the SDK spent about
//! 200 µs of CPU per call (orchestrator, interceptors, a new user agent and
//! config bag each time) and this path about 50 µs. The other three actions
//! stay on the SDK.
//!
//! Owns that one call: the endpoint (the scheme and host of the SDK's own
//! requests, so that overrides, FIPS and dual-stack resolve as the SDK
//! does; an endpoint URL with a path keeps GetRecords on the SDK), the
//! credentials (the SDK's provider, cached until shortly before they
//! expire), signing (with the clock skew seen in answers, as the SDK
//! does), and reading the answer. It never retries: the shard
//! reader does, as for every call.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_dynamodbstreams::config::Intercept;
use aws_sdk_dynamodbstreams::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodbstreams::config::{ConfigBag, RuntimeComponents};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use http::HeaderValue;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http_body_util::Full;
use tokio::sync::Semaphore;

use super::api::{ApiError, RecordsPage};
use super::aws::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, classify_service_error};
use super::records_json::records_page;
use crate::error_chain;
use crate::http_pool::{Answer, Exchange, Pool, Sender};

const TARGET: HeaderValue = HeaderValue::from_static("DynamoDBStreams_20120810.GetRecords");
const JSON_1_0: HeaderValue = HeaderValue::from_static("application/x-amz-json-1.0");
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("awsdynamodbsource/", env!("CARGO_PKG_VERSION")));
/// Credentials this close to their expiry are renewed before use.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Credentials without an expiry are fetched again after this long.
const KEEP_WITHOUT_EXPIRY: Duration = Duration::from_secs(900);
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// Notes the scheme and authority of the SDK's requests: the endpoint the
/// SDK resolved.
#[derive(Debug, Clone, Default)]
pub(super) struct EndpointSeen(pub(super) Arc<OnceLock<http::Uri>>);

impl Intercept for EndpointSeen {
    fn name(&self) -> &'static str {
        "EndpointSeen"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.get().is_none()
            && let Ok(uri) = context.request().uri().parse::<http::Uri>()
            && uri.path() == "/"
            && let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority())
            && let Ok(origin) = http::Uri::builder()
                .scheme(scheme.clone())
                .authority(authority.clone())
                .path_and_query("/")
                .build()
        {
            let _ = self.0.set(origin);
        }
        Ok(())
    }
}

impl std::fmt::Debug for SignedGetRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedGetRecords")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

pub(super) struct SignedGetRecords {
    pool: Pool,
    origin: http::Uri,
    host: HeaderValue,
    region: String,
    signing_name: &'static str,
    credentials: SharedCredentialsProvider,
    /// The credentials in use, and when they were fetched.
    cached: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
    /// The calls to DynamoDB Streams in flight, shared with the SDK path.
    calls: Arc<Semaphore>,
    /// The server's clock minus ours, in milliseconds, from the last
    /// answer's `Date`: signatures use the server's time, as the SDK's do.
    skew_ms: AtomicI64,
}

impl SignedGetRecords {
    /// `None` when the origin cannot be used for a connection pool.
    pub(super) fn new(
        origin: http::Uri,
        region: String,
        signing_name: &'static str,
        credentials: SharedCredentialsProvider,
        calls: Arc<Semaphore>,
        max_calls: usize,
    ) -> Option<Self> {
        let host = HeaderValue::from_str(origin.authority()?.as_str()).ok()?;
        let pool = Pool::new(
            origin.clone(),
            (CONNECT_TIMEOUT, "the DynamoDB Streams connect timeout"),
            max_calls,
        )
        .ok()?;
        Some(SignedGetRecords {
            pool,
            origin,
            host,
            region,
            signing_name,
            credentials,
            cached: tokio::sync::Mutex::new(None),
            calls,
            skew_ms: AtomicI64::new(0),
        })
    }

    /// The page; `None` when this decoder cannot read it (an attribute kind
    /// only the SDK knows, or anything else unexpected): the caller then
    /// asks the SDK with the same iterator. Credentials are fetched before
    /// a turn among the calls in flight is taken, so a slow credential
    /// source holds no turn.
    pub(super) async fn get_records(
        &self,
        iterator: &str,
    ) -> Result<Option<RecordsPage>, ApiError> {
        let credentials = self.credentials().await?;
        let body = Bytes::from(serde_json::json!({ "ShardIterator": iterator }).to_string());
        let headers = self.signed_headers(&credentials, &body)?;
        let _turn = self.calls.acquire().await;
        let answer = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            self.pool.exchange(
                |sender| self.exchange(sender, &headers, &body),
                |e| ApiError::Transient(format!("cannot reach the endpoint: {e}")),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Transient(format!(
                "request timed out after {ATTEMPT_TIMEOUT:?}"
            )))
        })?;
        self.note_server_time(&answer.headers);
        if answer.status.is_success() {
            return Ok(records_page(&answer.body).ok());
        }
        Err(service_error(answer.status, &answer.headers, &answer.body))
    }

    /// Notes how far the server's clock is from ours.
    fn note_server_time(&self, headers: &http::HeaderMap) {
        let server = headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::from_str(v, Format::HttpDate).ok())
            .and_then(|t| SystemTime::try_from(t).ok());
        if let Some(server) = server {
            let skew = match server.duration_since(SystemTime::now()) {
                Ok(ahead) => ahead.as_millis() as i64,
                Err(behind) => -(behind.duration().as_millis() as i64),
            };
            self.skew_ms.store(skew, Ordering::Relaxed);
        }
    }

    /// Our clock corrected by the last skew seen. A second's difference is
    /// the `Date` header's precision, not skew.
    fn server_now(&self) -> SystemTime {
        let skew = self.skew_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if skew.abs() < 1_000 {
            now
        } else if skew > 0 {
            now + Duration::from_millis(skew as u64)
        } else {
            now - Duration::from_millis(skew.unsigned_abs())
        }
    }

    /// The credentials to sign with: renewed when close to expiry, and
    /// every 15 minutes when they do not expire (as the SDK's cache does:
    /// rotated profile or process credentials are picked up). A source
    /// that does not answer within 5 s is an error, retried by the caller.
    async fn credentials(&self) -> Result<Credentials, ApiError> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some((credentials, fetched)) = cached.as_ref() {
            let fresh_until = credentials
                .expiry()
                .map(|at| at.checked_sub(RENEW_BEFORE_EXPIRY).unwrap_or(at))
                .unwrap_or(*fetched + KEEP_WITHOUT_EXPIRY)
                // Never more than one fetch every few seconds.
                .max(*fetched + Duration::from_secs(10));
            if now < fresh_until {
                return Ok(credentials.clone());
            }
        }
        let fresh =
            tokio::time::timeout(CREDENTIALS_TIMEOUT, self.credentials.provide_credentials())
                .await
                .map_err(|_| {
                    ApiError::Credentials(format!(
                        "no credentials from the provider chain within {CREDENTIALS_TIMEOUT:?}"
                    ))
                })?
                .map_err(|e| ApiError::Credentials(DisplayErrorContext(&e).to_string()))?;
        *cached = Some((fresh.clone(), now));
        Ok(fresh)
    }

    /// The request's headers, signature included.
    fn signed_headers(
        &self,
        credentials: &Credentials,
        body: &Bytes,
    ) -> Result<http::HeaderMap, ApiError> {
        fn signing_failed(e: &(dyn std::error::Error + 'static)) -> ApiError {
            ApiError::Credentials(format!("cannot sign the request: {}", error_chain(e)))
        }
        let mut request = http::Request::post(self.origin.clone())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, JSON_1_0)
            .header("x-amz-target", TARGET)
            .header(USER_AGENT, AGENT)
            .body(())
            .map_err(|e| signing_failed(&e))?;
        let identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.signing_name)
            .time(self.server_now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing_failed(&e))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.origin.to_string(),
            request
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
            SignableBody::Bytes(body),
        )
        .map_err(|e| signing_failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| signing_failed(&e))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request.into_parts().0.headers)
    }

    /// Sends the request on `sender` and reads the whole answer.
    async fn exchange(
        &self,
        sender: Sender,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Result<Answer, Exchange<ApiError>> {
        // Origin-form (`POST /`), as the SDK sends it.
        let mut request = http::Request::post("/")
            .body(Full::new(body.clone()))
            .unwrap_or_default();
        *request.headers_mut() = headers.clone();
        self.pool
            .send(sender, request, |_| usize::MAX)
            .await
            .map_err(|e| {
                e.map(|e| {
                    ApiError::Transient(format!("cannot reach the endpoint: {}", error_chain(&e)))
                })
            })
    }
}

/// An error answer → what the engine does about it, by the same rules as
/// the SDK path: the error code from `x-amzn-errortype` or the body's
/// `__type` (or `code`), without its namespace.
fn service_error(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .or_else(|| json.get("__type").and_then(|v| v.as_str()))
        .or_else(|| json.get("code").and_then(|v| v.as_str()))
        .unwrap_or_default();
    // "aws.protocoltests#FooError:http://..." → "FooError", as the SDK does.
    let code = code.split(':').next().unwrap_or_default();
    let code = code.rsplit('#').next().unwrap_or_default();
    let message = ["message", "Message", "errorMessage"]
        .iter()
        .find_map(|k| json.get(k).and_then(|v| v.as_str()))
        .unwrap_or_default();
    classify_service_error(code, message, status.as_u16(), || {
        format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(512)])
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signatures use the server's clock, learnt from its `Date` headers, as
    /// the SDK's do: a host whose clock is off still signs valid requests.
    #[test]
    fn signing_time_follows_the_servers_clock() {
        let signed = SignedGetRecords::new(
            "http://127.0.0.1:1/".parse().unwrap(),
            "us-east-1".into(),
            "dynamodb",
            SharedCredentialsProvider::new(Credentials::new("a", "b", None, None, "t")),
            Arc::new(Semaphore::new(1)),
            1,
        )
        .unwrap();
        let ahead = SystemTime::now() + Duration::from_secs(600);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::DATE,
            DateTime::from(ahead)
                .fmt(Format::HttpDate)
                .unwrap()
                .parse()
                .unwrap(),
        );
        signed.note_server_time(&headers);
        let off = signed
            .server_now()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(
            off > Duration::from_secs(598) && off < Duration::from_secs(601),
            "{off:?}"
        );
    }

    fn error_with(code: &str, message: &str) -> ApiError {
        service_error(
            http::StatusCode::BAD_REQUEST,
            &http::HeaderMap::new(),
            serde_json::json!({ "__type": code, "message": message })
                .to_string()
                .as_bytes(),
        )
    }

    #[test]
    fn error_codes_lose_their_namespace() {
        let error = |ty: &str| {
            service_error(
                http::StatusCode::BAD_REQUEST,
                &http::HeaderMap::new(),
                format!(r#"{{"__type":"{ty}","message":"m"}}"#).as_bytes(),
            )
        };
        assert_eq!(
            error("com.amazonaws.dynamodb.v20120810#ExpiredIteratorException"),
            ApiError::ExpiredIterator
        );
        assert!(matches!(
            error("com.amazon.coral.availability#ThrottlingException"),
            ApiError::Throttled(_)
        ));
        let mismatch = error_with(
            "InvalidSignatureException",
            "The request signature we calculated does not match. The Canonical String for this request should have been 'POST\\n/\\nx-amz-security-token:SESSION-TOKEN-MARKER'",
        );
        assert!(
            matches!(&mismatch, ApiError::AccessDenied(m) if !m.contains("SESSION-TOKEN-MARKER") && m.contains("does not match")),
            "{mismatch:?}"
        );
        assert!(matches!(
            service_error(
                http::StatusCode::SERVICE_UNAVAILABLE,
                &http::HeaderMap::new(),
                b"<html>busy</html>"
            ),
            ApiError::Transient(m) if m.contains("busy")
        ));
    }
}
