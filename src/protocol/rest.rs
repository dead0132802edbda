//! restJson1 for the Marketplace Catalog API (`marketplace-catalog`, 2018-09-17): one path per
//! operation, query-string members for GET/PATCH/DELETE, JSON bodies for POST, SigV4 as for the
//! awsJson services, and errors as restJson1 clients parse them (`X-Amzn-ErrorType` and a
//! `Message` member, with the model's statuses).
//!
//! Depends on: protocol (Service, ApiError), auth, ops (catalog).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::service::{unsigned_principal, Service};
use super::ApiError;
use crate::auth::sigv4::{percent_decode, SignedRequest};
use crate::auth::Principal;
use crate::ops::catalog::{self, CatalogError};
use crate::ops::Caller;

/// A Catalog operation: its name, method, and the query-string members it takes
/// (`(wire name, member name)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Operation name (also the path, after `/`).
    pub name: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Query-string bindings: `(location name, member)`; all required.
    pub query: &'static [(&'static str, &'static str)],
}

const CS_QUERY: &[(&str, &str)] = &[("catalog", "Catalog"), ("changeSetId", "ChangeSetId")];
const ARN_QUERY: &[(&str, &str)] = &[("resourceArn", "ResourceArn")];

/// Every Catalog operation served, as the botocore model binds it.
pub const ROUTES: [Route; 13] = [
    Route {
        name: "StartChangeSet",
        method: "POST",
        query: &[],
    },
    Route {
        name: "DescribeChangeSet",
        method: "GET",
        query: CS_QUERY,
    },
    Route {
        name: "ListChangeSets",
        method: "POST",
        query: &[],
    },
    Route {
        name: "CancelChangeSet",
        method: "PATCH",
        query: CS_QUERY,
    },
    Route {
        name: "DescribeEntity",
        method: "GET",
        query: &[("catalog", "Catalog"), ("entityId", "EntityId")],
    },
    Route {
        name: "ListEntities",
        method: "POST",
        query: &[],
    },
    Route {
        name: "BatchDescribeEntities",
        method: "POST",
        query: &[],
    },
    Route {
        name: "TagResource",
        method: "POST",
        query: &[],
    },
    Route {
        name: "UntagResource",
        method: "POST",
        query: &[],
    },
    Route {
        name: "ListTagsForResource",
        method: "POST",
        query: &[],
    },
    Route {
        name: "PutResourcePolicy",
        method: "POST",
        query: &[],
    },
    Route {
        name: "GetResourcePolicy",
        method: "GET",
        query: ARN_QUERY,
    },
    Route {
        name: "DeleteResourcePolicy",
        method: "DELETE",
        query: ARN_QUERY,
    },
];

/// The Catalog operation a path names, if any.
#[must_use]
pub fn route(path: &str) -> Option<Route> {
    let name = path.strip_prefix('/')?;
    ROUTES.into_iter().find(|r| r.name == name)
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        Self {
            type_name: e.type_name().into(),
            message: Some(e.to_string()),
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            modeled: true,
        }
    }
}

/// The restJson1 answer: `application/json`, the request id, and for errors the error type.
fn json(status: StatusCode, body: String, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = super::json_response(status, body, request_id);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(e: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    let mut m = Map::new();
    m.insert("__type".into(), Value::String(e.type_name.clone()));
    m.insert(
        "Message".into(),
        Value::String(e.message.clone().unwrap_or_default()),
    );
    let mut r = json(e.status, Value::Object(m).to_string(), request_id);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&e.type_name) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// The operation's input: the JSON body of a POST and the query-string members.
fn input_of(
    route: Route,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    let mut input = if parts.method == Method::POST && !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ApiError::framework(
                    "SerializationException",
                    StatusCode::BAD_REQUEST,
                    Some("The request body is not a JSON object.".into()),
                ))
            }
        }
    } else {
        Map::new()
    };
    input.extend(query_members(route, parts.uri.query().unwrap_or(""))?);
    Ok(input)
}

/// Query-string members of `route`, each present exactly once; unknown parameters are ignored.
fn query_members(route: Route, query: &str) -> Result<Map<String, Value>, CatalogError> {
    let mut out = Map::new();
    for (wire, member) in route.query {
        let values: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .filter(|(k, _)| percent_decode(k) == *wire)
            .map(|(_, v)| percent_decode(&v.replace('+', " ")))
            .collect();
        match values.as_slice() {
            [] => return Err(CatalogError::ValidationException(format!("1 validation error detected: Value null at '{wire}' failed to satisfy constraint: Member must not be null"))),
            [one] => {
                out.insert((*member).into(), Value::String(one.clone()));
            }
            _ => return Err(CatalogError::ValidationException(format!("The query parameter '{wire}' is given more than once."))),
        }
    }
    Ok(out)
}

impl Service {
    /// Serves one Catalog request; never fails (errors become restJson1 error responses).
    pub(super) async fn rest(
        &self,
        route: Route,
        req: Request<Incoming>,
        request_id: &str,
        log: &mut super::RequestLog,
    ) -> Response<Full<Bytes>> {
        log.service = "marketplace-catalog";
        log.operation = route.name.into();
        match self.rest_pipeline(route, req, log).await {
            Ok(body) => json(StatusCode::OK, body, request_id),
            Err(e) => {
                if e.status.is_server_error() {
                    tracing::error!(error_type = %e.type_name, message = ?e.message, "catalog request failed");
                }
                error(&e, request_id)
            }
        }
    }

    async fn rest_pipeline(
        &self,
        route: Route,
        req: Request<Incoming>,
        log: &mut super::RequestLog,
    ) -> Result<String, ApiError> {
        let (parts, body) = req.into_parts();
        tracing::Span::current().record("operation", route.name);
        if parts.method.as_str() != route.method {
            return Err(ApiError::framework(
                "UnknownOperationException",
                StatusCode::NOT_FOUND,
                Some(format!(
                    "{} {} is not an operation: {} takes {}.",
                    parts.method,
                    parts.uri.path(),
                    route.name,
                    route.method
                )),
            ));
        }
        let body = self.read_body(&parts.headers, body).await?;
        let principal = self.authenticate(&parts, &body)?;
        let action = format!("aws-marketplace:{}", route.name);
        if !principal.may(&action) {
            return Err(CatalogError::AccessDeniedException(format!(
                "User: {} is not authorized to perform: {action}",
                principal.arn
            ))
            .into());
        }
        let input = input_of(route, &parts, &body)?;
        self.injected_fault(route).await?;
        log.account.clone_from(&principal.account);
        log.region.clone_from(&principal.region);
        let caller = super::caller_of(principal, &parts.headers);
        Ok(dispatch(&self.ctx, &caller, route.name, Value::Object(input)).await?)
    }

    /// SigV4 over method, path, query string, headers and body (403 on failure, as AWS's
    /// restJson services answer).
    fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Result<Principal, ApiError> {
        if !self.config.verify_signatures {
            return Ok(unsigned_principal(&self.verifier, &parts.headers));
        }
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        };
        self.verifier
            .verify(&signed, self.ctx.clock.now_ms())
            .map_err(|e| ApiError::framework(e.code(), StatusCode::FORBIDDEN, Some(e.to_string())))
    }

    /// A fault the control plane injected for this operation, after its latency.
    async fn injected_fault(&self, route: Route) -> Result<(), ApiError> {
        let Some(fault) = self.ctx.harness.take_fault(route.name) else {
            return Ok(());
        };
        if fault.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
        }
        match fault.exception {
            Some(name) => Err(CatalogError::from_type_name(&name, "Injected fault".into())
                .unwrap_or(CatalogError::ThrottlingException("Rate exceeded".into()))
                .into()),
            None => Ok(()),
        }
    }
}

async fn dispatch(
    ctx: &crate::ops::Ctx,
    caller: &Caller,
    op: &str,
    input: Value,
) -> Result<String, CatalogError> {
    // The entity reads answer bytes rendered when the entity was written; the rest build JSON.
    let value = match op {
        "DescribeEntity" => return catalog::describe_entity(ctx, caller, input).await,
        "ListEntities" => return catalog::list_entities(ctx, caller, input).await,
        "StartChangeSet" => catalog::start_change_set(ctx, caller, input).await,
        "DescribeChangeSet" => catalog::describe_change_set(ctx, caller, input).await,
        "ListChangeSets" => catalog::list_change_sets(ctx, caller, input).await,
        "CancelChangeSet" => catalog::cancel_change_set(ctx, caller, input).await,
        "BatchDescribeEntities" => catalog::batch_describe_entities(ctx, caller, input).await,
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            catalog::tags(ctx, caller, op, input).await
        }
        _ => catalog::policy(ctx, caller, op, input).await,
    };
    value.map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path_and_reads_query_members_once() {
        assert_eq!(route("/DescribeEntity").map(|r| r.method), Some("GET"));
        assert!(route("/").is_none() && route("/describeentity").is_none());
        let r = route("/DescribeChangeSet").unwrap();
        let m = query_members(r, "catalog=AWSMarketplace&changeSetId=abc%2Fd").unwrap();
        assert_eq!(m["ChangeSetId"], "abc/d");
        assert!(
            matches!(query_members(r, "catalog=AWSMarketplace"), Err(CatalogError::ValidationException(m)) if m.contains("changeSetId"))
        );
        assert!(
            matches!(query_members(r, "catalog=A&catalog=B&changeSetId=x"), Err(CatalogError::ValidationException(m)) if m.contains("more than once"))
        );
    }
}
