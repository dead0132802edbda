//! The request pipeline, in the order AWS applies it:
//!
//! 1. request id and tracing span;
//! 2. reserved paths go elsewhere: `/_imagebuild/…` to the control plane, `/console/…` to the
//!    embedded console's files;
//! 3. method must be POST; 4. `X-Amz-Target` names a known operation;
//! 5. path `/` and `Content-Type: application/x-amz-json-1.1`;
//! 6. body read with a size cap and a time limit;
//! 7. SigV4 (raw body bytes);
//! 8. JSON parse and model validation (types → `SerializationException`, constraints → the
//!    modeled error or `ValidationException`);
//! 9. the operation; 10. JSON out with `x-amzn-RequestId` on every response.
//!
//! Depends on: protocol, auth, model, ops, control.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tracing::Instrument;

use super::router::Operation;
use super::{json_response, ApiError, CONTENT_TYPE};
use crate::auth::sigv4::{SignedRequest, Verifier};
use crate::auth::{Principal, StaticCredentials, DEV_ACCOUNT};
use crate::model::{Invalid, Model, Violation};
use crate::ops::{builds, images, scans, Caller, Ctx, OpError};

/// Limits and switches of the HTTP front end.
#[derive(Debug, Clone)]
pub struct ProtocolConfig {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time to receive a body.
    pub body_timeout: Duration,
    /// Verify SigV4 signatures (on unless explicitly disabled).
    pub verify_signatures: bool,
    /// Count every request in `imagebuild_http_*` (off only to measure what that costs).
    pub request_metrics: bool,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            verify_signatures: true,
            request_metrics: true,
        }
    }
}

/// The awsJson service: shared by every connection.
pub struct Service {
    /// Operations' context.
    pub ctx: Arc<Ctx>,
    model: Model,
    scan_model: Model,
    pub(super) verifier: Verifier<StaticCredentials>,
    pub(super) config: ProtocolConfig,
}

impl Service {
    /// Creates the service.
    #[must_use]
    pub fn new(
        ctx: Arc<Ctx>,
        model: Model,
        scan_model: Model,
        credentials: StaticCredentials,
        config: ProtocolConfig,
    ) -> Self {
        let verifier = Verifier::new(credentials, &model.signing_name);
        Self {
            ctx,
            model,
            scan_model,
            verifier,
            config,
        }
    }

    /// Handles one HTTP request; never fails (errors become AWS error responses).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::debug_span!("request", request_id = %request_id, operation = tracing::field::Empty);
        let started = std::time::Instant::now();
        let bytes_in = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let mut log = super::RequestLog::default();
        let in_flight = self
            .config
            .request_metrics
            .then(|| InFlight::enter(&self.ctx.metrics));
        let resp = self
            .route(req, &request_id, &mut log)
            .instrument(span)
            .await;
        drop(in_flight);
        let done = Done::of(&resp, started, bytes_in);
        access_line(&request_id, &log, &done);
        if self.config.request_metrics {
            record(&self.ctx.metrics, &log, &done);
        }
        resp
    }

    /// The front door: control plane, console, the Catalog's restJson paths, else awsJson.
    async fn route(
        &self,
        req: Request<Incoming>,
        request_id: &str,
        log: &mut super::RequestLog,
    ) -> Response<Full<Bytes>> {
        let request_id = request_id.to_string();
        {
            let path = req.uri().path();
            if path.starts_with(crate::control::PREFIX) {
                log.service = "control";
                log.operation = path.to_string().into();
                return crate::control::handle(&self.ctx, req, &request_id).await;
            }
            if crate::console::owns(path) {
                log.service = "console";
                log.operation = path.to_string().into();
                return crate::console::handle(req.method(), path);
            }
            if let Some(route) = super::rest::route(path) {
                return self.rest(route, req, &request_id, log).await;
            }
            match self.pipeline(req, &request_id, log).await {
                Ok(resp) => resp,
                Err(e) => {
                    if e.status.is_server_error() {
                        tracing::error!(error_type = %e.type_name, message = ?e.message, "request failed");
                    } else {
                        tracing::debug!(error_type = %e.type_name, message = ?e.message, "request rejected");
                    }
                    e.into_response(&request_id)
                }
            }
        }
    }

    async fn pipeline(
        &self,
        req: Request<Incoming>,
        request_id: &str,
        log: &mut super::RequestLog,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let (parts, body) = req.into_parts();
        if parts.method != Method::POST {
            return Err(ApiError::framework(
                "AccessDeniedException",
                StatusCode::FORBIDDEN,
                Some("Unable to determine service/operation name to be authorized".into()),
            ));
        }
        let op = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(Operation::from_target)
            .ok_or_else(|| {
                ApiError::framework("UnknownOperationException", StatusCode::BAD_REQUEST, None)
            })?;
        tracing::Span::current().record("operation", op.name());
        log.service = op.prefix();
        log.operation = op.name().into();
        let media_ok = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE));
        if parts.uri.path() != "/" || !media_ok {
            return Err(ApiError::framework(
                "UnknownOperationException",
                StatusCode::NOT_FOUND,
                None,
            ));
        }
        let body = self.read_body(&parts.headers, body).await?;

        let principal = if self.config.verify_signatures {
            let signed = SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &body,
            };
            self.verifier.verify(&signed, self.ctx.clock.now_ms())?
        } else {
            unsigned_principal(&self.verifier, &parts.headers)
        };
        // Authorization right after authentication: a principal that may not call the operation
        // learns nothing about its input rules.
        if !principal.may(&op.action()) {
            let message = format!(
                "User: {} is not authorized to perform: {}",
                principal.arn,
                op.action()
            );
            return Err(match op {
                // DescribeBuilds models no authorization error: AWS's framework error.
                Operation::DescribeBuilds => ApiError::framework(
                    "AccessDeniedException",
                    StatusCode::BAD_REQUEST,
                    Some(message),
                ),
                _ => OpError::UnauthorizedOperationException(message).into(),
            });
        }
        log.account.clone_from(&principal.account);
        log.region.clone_from(&principal.region);
        let caller = super::caller_of(principal, &parts.headers);

        let value = parse_json(&body)?;
        let model = if op.prefix() == self.scan_model.target_prefix {
            &self.scan_model
        } else {
            &self.model
        };
        match model.validate_input(op.name(), &value) {
            Ok(()) => {}
            Err(Invalid::Serialization(m)) => {
                return Err(ApiError::framework(
                    "SerializationException",
                    StatusCode::BAD_REQUEST,
                    Some(m),
                ));
            }
            Err(Invalid::Constraints(v)) => return Err(map_violations(op, &v).into()),
        }
        if let Some(fault) = self.ctx.harness.take_fault(op.name()) {
            if fault.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
            }
            if let Some(name) = fault.exception {
                return Err(match crate::ops::harness::fault_error(&name) {
                    Ok(e) => e.into(),
                    Err((status, message)) => ApiError::framework(
                        &name,
                        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                        Some(message),
                    ),
                });
            }
        }
        let out = dispatch(&self.ctx, &caller, op, &body, value).await?;
        Ok(json_response(StatusCode::OK, out, request_id))
    }

    pub(super) async fn read_body(
        &self,
        headers: &hyper::HeaderMap,
        body: Incoming,
    ) -> Result<Bytes, ApiError> {
        let too_large = || {
            ApiError::framework(
                "RequestEntityTooLargeException",
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(format!(
                    "Request body must be at most {} bytes",
                    self.config.max_body_bytes
                )),
            )
        };
        let declared = headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.config.max_body_bytes as u64) {
            return Err(too_large());
        }
        let limited = Limited::new(body, self.config.max_body_bytes);
        match tokio::time::timeout(self.config.body_timeout, limited.collect()).await {
            Err(_) => Err(ApiError::framework(
                "RequestTimeoutException",
                StatusCode::REQUEST_TIMEOUT,
                Some("Request body was not received in time".into()),
            )),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(too_large())
            }
            Ok(Err(_)) => Err(ApiError::framework(
                "SerializationException",
                StatusCode::BAD_REQUEST,
                Some("The request body could not be read".into()),
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }
}

/// Counts a request in flight for as long as it lives (also when the client goes away and
/// the request is dropped unanswered).
struct InFlight<'a>(&'a crate::metrics::Metrics);

impl<'a> InFlight<'a> {
    fn enter(m: &'a crate::metrics::Metrics) -> Self {
        m.http.in_flight.inc();
        Self(m)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.http.in_flight.dec();
    }
}

/// What the access log and the metrics say of an answered request.
struct Done<'a> {
    status: u16,
    error_code: &'a str,
    elapsed: Duration,
    bytes_in: u64,
    bytes_out: u64,
}

impl<'a> Done<'a> {
    fn of(resp: &'a Response<Full<Bytes>>, started: std::time::Instant, bytes_in: u64) -> Self {
        Self {
            status: resp.status().as_u16(),
            error_code: resp
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            elapsed: started.elapsed(),
            bytes_in,
            bytes_out: hyper::body::Body::size_hint(resp.body())
                .exact()
                .unwrap_or(0),
        }
    }
}

/// The access-log line of one request (target `imagebuild::access`): request id (the one the
/// client got in `x-amzn-RequestId`), service, operation, account, region, status, error code,
/// duration and sizes. Nothing from the request's headers beyond these.
fn access_line(request_id: &str, log: &super::RequestLog, done: &Done<'_>) {
    tracing::info!(
        target: "imagebuild::access",
        request_id,
        service = log.service,
        operation = &*log.operation,
        account = log.account.as_str(),
        region = log.region.as_str(),
        status = done.status,
        error_code = done.error_code,
        duration_us = u64::try_from(done.elapsed.as_micros()).unwrap_or(u64::MAX),
        bytes_in = done.bytes_in,
        bytes_out = done.bytes_out,
        "request"
    );
}

/// Counts the request in `imagebuild_http_*`. Control-plane and console paths are labelled by
/// their first segment (`logs`, `advance`, …; `page`), so ids never become label values.
fn record(m: &crate::metrics::Metrics, log: &super::RequestLog, done: &Done<'_>) {
    use crate::metrics::{OperationLabels, RequestLabels, ServiceLabels};
    let service = if log.service.is_empty() {
        "unknown"
    } else {
        log.service
    };
    let operation: std::borrow::Cow<'static, str> = match service {
        "control" => log
            .operation
            .trim_start_matches(crate::control::PREFIX)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
            .into(),
        "console" => "page".into(),
        _ => log.operation.clone(),
    };
    let error_code = if done.error_code.is_empty() {
        "".into()
    } else {
        done.error_code.to_string().into()
    };
    let labels = RequestLabels {
        service,
        operation,
        status: done.status,
        error_code,
    };
    m.http.requests.get_or_create(&labels).inc();
    let op = OperationLabels {
        service,
        operation: labels.operation,
    };
    m.http
        .duration
        .get_or_create(&op)
        .observe(done.elapsed.as_secs_f64());
    let svc = ServiceLabels { service };
    m.http.bytes_in.get_or_create(&svc).inc_by(done.bytes_in);
    m.http.bytes_out.get_or_create(&svc).inc_by(done.bytes_out);
    match done.error_code {
        "RequestEntityTooLargeException" => m.rejected("body_too_large"),
        "RequestTimeoutException" => m.rejected("body_timeout"),
        _ => {}
    }
}

/// With signature checks off, the caller is still named by the credential in `Authorization`.
pub(super) fn unsigned_principal(
    verifier: &Verifier<StaticCredentials>,
    headers: &hyper::HeaderMap,
) -> Principal {
    let scope: Vec<String> = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| {
            c.split([',', ' '])
                .next()
                .unwrap_or_default()
                .split('/')
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let region = scope
        .get(2)
        .filter(|r| crate::world::is_region(r))
        .cloned()
        .unwrap_or_else(|| "us-east-1".into());
    let access_key = scope.first().cloned().unwrap_or_default();
    verifier
        .principal_unverified(&access_key, &region)
        .unwrap_or(Principal {
            account: DEV_ACCOUNT.into(),
            access_key,
            region,
            arn: format!("arn:aws:iam::{DEV_ACCOUNT}:user/developer"),
            allow: Arc::from(["*".to_string()]),
        })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Null) => Ok(Value::Object(serde_json::Map::new())),
        Ok(v) => Ok(v),
        Err(e) => Err(ApiError::framework(
            "SerializationException",
            StatusCode::BAD_REQUEST,
            Some(format!("The request body is not valid JSON: {e}")),
        )),
    }
}

/// Maps constraint violations to the modeled error for the member, else `ValidationException`.
fn map_violations(op: Operation, violations: &[Violation]) -> OpError {
    if matches!(
        op,
        Operation::DescribeBuilds
            | Operation::DescribeScans
            | Operation::DescribeScanFindings
            | Operation::ListImages
    ) {
        if let Some(v) = violations.iter().find(|v| v.member == "MaxResults") {
            return OpError::InvalidMaxResultsException(v.message.clone());
        }
        if let Some(v) = violations.iter().find(|v| v.member == "NextToken") {
            return OpError::InvalidNextTokenException(v.message.clone());
        }
    }
    let n = violations.len();
    let plural = if n == 1 { "error" } else { "errors" };
    let msgs: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
    OpError::ValidationException(format!(
        "{n} validation {plural} detected: {}",
        msgs.join("; ")
    ))
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::framework(
            "SerializationException",
            StatusCode::BAD_REQUEST,
            Some(e.to_string()),
        )
    })
}

async fn dispatch(
    ctx: &Ctx,
    caller: &Caller,
    op: Operation,
    body: &Bytes,
    value: Value,
) -> Result<Bytes, ApiError> {
    let out = match op {
        Operation::StartBuild => {
            serde_json::to_vec(&builds::start_build(ctx, caller, decode(value)?).await?)
        }
        Operation::DescribeBuilds => {
            return Ok(builds::describe_builds_json(ctx, caller, body, decode(value)?).await?);
        }
        Operation::StartScans => {
            serde_json::to_vec(&scans::start_scans(ctx, caller, decode(value)?).await?)
        }
        Operation::DescribeScans => {
            serde_json::to_vec(&scans::describe_scans(ctx, caller, decode(value)?).await?)
        }
        Operation::DescribeScanFindings => {
            serde_json::to_vec(&scans::describe_scan_findings(ctx, caller, decode(value)?).await?)
        }
        Operation::ResubmitScan => {
            serde_json::to_vec(&scans::resubmit_scan(ctx, caller, decode(value)?).await?)
        }
        Operation::ListImages => {
            serde_json::to_vec(&images::list_images(ctx, caller, decode(value)?).await?)
        }
    };
    out.map(Bytes::from)
        .map_err(|e| OpError::InternalServerErrorException(e.to_string()).into())
}
