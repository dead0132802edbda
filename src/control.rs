//! Non-AWS endpoints under `/_imagebuild/`, never reachable through `X-Amz-Target`:
//! `health`, the installer log URLs handed out by DescribeBuilds, and the captured
//! notifications.
//!
//! Depends on: ops (Ctx, logs), store (trait).

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::ops::logs::Stream;
use crate::ops::Ctx;
use crate::protocol::{json_response, ApiError};

/// Path prefix of the control plane.
pub const PREFIX: &str = "/_imagebuild/";

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%3a", ":")))
        .collect()
}

fn s3_style_error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    resp
}

async fn serve_log(
    ctx: &Ctx,
    rest: &str,
    query: Option<&str>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let denied = |m: &str| s3_style_error(StatusCode::FORBIDDEN, "AccessDenied", m, request_id);
    let Some((build_id, stream)) = rest.split_once('/') else {
        return denied("Invalid URL");
    };
    let Some(stream) = Stream::parse(stream) else {
        return denied("Invalid URL");
    };
    let q = query_map(query);
    let (Some(expires), Some(sig)) = (
        q.get("Expires").and_then(|e| e.parse::<i64>().ok()),
        q.get("Signature"),
    ) else {
        return denied("Query-string authentication requires the Signature and Expires parameters");
    };
    let internal = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "store failure serving log");
        s3_style_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
            request_id,
        )
    };
    let build = match ctx.store.get_build(build_id).await {
        Ok(Some(b)) => b,
        Ok(None) => return denied("Access Denied"),
        Err(e) => return internal(e),
    };
    if !ctx
        .url_signer
        .verify(&build.account, &build.region, build_id, expires, sig)
    {
        return denied(
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if ctx.clock.now_ms() / 1000 > expires {
        return denied("Request has expired");
    }
    let logs = match ctx.store.installer_logs(build_id).await {
        Ok(l) => l.unwrap_or_default(),
        Err(e) => return internal(e),
    };
    let text = match stream {
        Stream::Stdout => logs.stdout,
        Stream::Stderr => logs.stderr,
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Handles a request under `PREFIX`.
pub async fn handle(
    ctx: &Ctx,
    req: Request<hyper::body::Incoming>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_start_matches(PREFIX).to_string();
    let query = req.uri().query().map(str::to_string);
    let not_found = || {
        ApiError::framework(
            "ResourceNotFoundException",
            StatusCode::NOT_FOUND,
            Some(format!("No control endpoint {PREFIX}{path}")),
        )
        .into_response(request_id)
    };
    if req.method() != Method::GET {
        return ApiError::framework(
            "MethodNotAllowedException",
            StatusCode::METHOD_NOT_ALLOWED,
            Some("Only GET is supported here".into()),
        )
        .into_response(request_id);
    }
    if let Some(rest) = path.strip_prefix("logs/") {
        return serve_log(ctx, rest, query.as_deref(), request_id).await;
    }
    match path.as_str() {
        "health" => {
            let world = ctx.world();
            let (status, store) = match ctx.store.next_due_ms().await {
                Ok(_) => (StatusCode::OK, "ok"),
                Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            };
            let body = json!({
                "Status": if status == StatusCode::OK { "ok" } else { "degraded" },
                "Store": store,
                "World": {"Images": world.images.len(), "Products": world.products.len(), "SnsTopics": world.sns_topics.len()},
                "Worker": "running",
            });
            json_response(status, body.to_string(), request_id)
        }
        "notifications" => {
            let q = query_map(query.as_deref());
            match ctx
                .store
                .notifications(q.get("TopicArn").map(String::as_str))
                .await
            {
                Ok(entries) => {
                    let list: Vec<_> = entries
                        .into_iter()
                        .map(|e| {
                            json!({
                                "TopicArn": e.notification.topic_arn,
                                "Subject": e.notification.subject,
                                "Message": e.notification.message,
                                "Delivered": e.delivered_ms.is_some(),
                            })
                        })
                        .collect();
                    json_response(
                        StatusCode::OK,
                        json!({ "Notifications": list }).to_string(),
                        request_id,
                    )
                }
                Err(_) => ApiError::framework(
                    "InternalFailure",
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some("store unavailable".into()),
                )
                .into_response(request_id),
            }
        }
        _ => not_found(),
    }
}
