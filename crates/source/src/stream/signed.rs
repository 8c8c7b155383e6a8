//! GetRecords without the SDK's per-call machinery: the call every shard
//! makes every few seconds, signed with `aws-sigv4` and sent on a
//! keep-alive [`Pool`]. Profiled on an empty shard, the SDK spent about
//! 200 µs of CPU per call (orchestrator, interceptors, a new user agent and
//! config bag each time) and this path about 50 µs. The other three actions
//! stay on the SDK.
//!
//! Owns that one call: the endpoint (learnt from the SDK's own requests, so
//! that overrides, FIPS and dual-stack resolve exactly as the SDK does),
//! credentials (the SDK's provider, cached until shortly before they
//! expire), signing, and reading the answer. It never retries: the shard
//! reader does, as for every call.

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
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use http::HeaderValue;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http_body_util::{BodyExt, Full};

use super::api::{ApiError, RecordsPage};
use super::aws::classify_service_error;
use super::records_json::{UNKNOWN_KIND, records_page};
use crate::error_chain;
use crate::http_pool::{Exchange, Pool, Sender};

const TARGET: HeaderValue = HeaderValue::from_static("DynamoDBStreams_20120810.GetRecords");
const JSON_1_0: HeaderValue = HeaderValue::from_static("application/x-amz-json-1.0");
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("awsdynamodbsource/", env!("CARGO_PKG_VERSION")));
/// Credentials this close to their expiry are renewed before use.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A GetRecords answer takes milliseconds; the SDK path's attempt timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

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
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl SignedGetRecords {
    /// `None` when the origin cannot be used for a connection pool.
    pub(super) fn new(
        origin: http::Uri,
        region: String,
        signing_name: &'static str,
        credentials: SharedCredentialsProvider,
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
        })
    }

    /// The page; `None` when it holds what only the SDK can represent (the
    /// caller then asks the SDK with the same iterator).
    pub(super) async fn get_records(
        &self,
        iterator: &str,
    ) -> Result<Option<RecordsPage>, ApiError> {
        let credentials = self.credentials().await?;
        let body = Bytes::from(serde_json::json!({ "ShardIterator": iterator }).to_string());
        let headers = self.signed_headers(&credentials, &body)?;
        let _slot = self.pool.request_slot().await;
        let answer = tokio::time::timeout(
            CALL_TIMEOUT,
            self.pool.exchange(
                |sender| self.exchange(sender, &headers, &body),
                |e| ApiError::Transient(format!("cannot reach the endpoint: {e}")),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Transient(format!(
                "request timed out after {CALL_TIMEOUT:?}"
            )))
        })?;
        let (status, headers, body) = answer;
        if status.is_success() {
            return match records_page(&body) {
                Ok(page) => Ok(Some(page)),
                Err(e) if e.to_string().starts_with(UNKNOWN_KIND) => Ok(None),
                Err(e) => Err(ApiError::Transient(format!("unreadable answer: {e}"))),
            };
        }
        Err(service_error(status, &headers, &body))
    }

    /// The credentials to sign with, renewed when close to expiry.
    async fn credentials(&self) -> Result<Credentials, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && credentials
                .expiry()
                .is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE_EXPIRY)
        {
            return Ok(credentials.clone());
        }
        let fresh = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| ApiError::Credentials(DisplayErrorContext(&e).to_string()))?;
        *cached = Some(fresh.clone());
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
            .time(SystemTime::now())
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
        mut sender: Sender,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Result<(http::StatusCode, http::HeaderMap, Bytes), Exchange<ApiError>> {
        let mut request = http::Request::post(self.origin.clone())
            .body(Full::new(body.clone()))
            .unwrap_or_default();
        *request.headers_mut() = headers.clone();
        let transport = |e: &hyper::Error| {
            ApiError::Transient(format!("cannot reach the endpoint: {}", error_chain(e)))
        };
        if let Err(e) = sender.ready().await {
            return Err(Exchange::NotSent(transport(&e)));
        }
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(e) if e.is_canceled() => return Err(Exchange::NotSent(transport(&e))),
            Err(e) => return Err(Exchange::Failed(transport(&e))),
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Exchange::Failed(transport(&e)))?
            .to_bytes();
        self.pool.put_back(sender);
        Ok((parts.status, parts.headers, body))
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
