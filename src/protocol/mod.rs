//! awsJson1_1 over HTTP: routing on `X-Amz-Target`, the request pipeline, and error bodies.
//!
//! Depends on: auth, model, ops, control.

pub mod rest;
pub mod router;
pub mod service;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// The protocol's media type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An error as it goes on the wire: `{"__type": …, "Message"|"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `__type`.
    pub type_name: String,
    /// Message, if any.
    pub message: Option<String>,
    /// HTTP status.
    pub status: StatusCode,
    /// Modeled shapes carry `Message`; AWS framework errors use `message`.
    pub modeled: bool,
}

impl ApiError {
    /// An AWS framework error (lowercase `message`).
    #[must_use]
    pub fn framework(type_name: &str, status: StatusCode, message: Option<String>) -> Self {
        Self {
            type_name: type_name.into(),
            message,
            status,
            modeled: false,
        }
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert("__type".into(), self.type_name.clone().into());
        if let Some(msg) = &self.message {
            m.insert(
                if self.modeled { "Message" } else { "message" }.into(),
                msg.clone().into(),
            );
        }
        serde_json::Value::Object(m).to_string()
    }

    /// The full HTTP response.
    #[must_use]
    pub fn into_response(self, request_id: &str) -> Response<Full<Bytes>> {
        let body = self.body();
        let mut resp = json_response(self.status, body, request_id);
        if let Ok(v) = hyper::header::HeaderValue::from_str(&self.type_name) {
            resp.headers_mut().insert("x-amzn-errortype", v);
        }
        resp
    }
}

impl From<crate::ops::OpError> for ApiError {
    fn from(e: crate::ops::OpError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            type_name: e.type_name().into(),
            modeled: e.is_modeled(),
            message: Some(e.to_string()),
            status,
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        Self::framework(e.code(), StatusCode::BAD_REQUEST, Some(e.to_string()))
    }
}

/// What one request's access-log line says beyond its status and sizes, filled in as the
/// pipeline learns it (never a credential, a signature or a token).
#[derive(Debug, Default)]
pub struct RequestLog {
    /// `AWSMPImageBuilding`, `AWSMPAmiScanning`, `marketplace-catalog`, `control`, `console`.
    pub service: &'static str,
    /// The operation (or the control-plane path).
    pub operation: std::borrow::Cow<'static, str>,
    /// The authenticated account.
    pub account: String,
    /// The region of the credential scope.
    pub region: String,
}

/// The caller of an operation: the authenticated principal, and the scheme and host it reached
/// the service at (for URLs handed back).
#[must_use]
pub fn caller_of(
    principal: crate::auth::Principal,
    headers: &hyper::HeaderMap,
) -> crate::ops::Caller {
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    crate::ops::Caller {
        account: principal.account,
        region: principal.region,
        base_url: format!("http://{host}"),
    }
}

/// A JSON response with the protocol's headers.
#[must_use]
pub fn json_response(
    status: StatusCode,
    body: impl Into<Bytes>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modeled_errors_use_capital_message_and_framework_errors_lowercase() {
        let e: ApiError = crate::ops::OpError::InvalidFilterException("bad".into()).into();
        assert_eq!(
            e.body(),
            r#"{"__type":"InvalidFilterException","Message":"bad"}"#
        );
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e: ApiError = crate::ops::OpError::InternalServerErrorException("x".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        let e: ApiError = crate::auth::AuthError::MissingAuthenticationToken.into();
        assert_eq!(
            e.body(),
            r#"{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}"#
        );
    }
}
