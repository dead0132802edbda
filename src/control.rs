//! Non-AWS endpoints under `/_imagebuild/`, never reachable through `X-Amz-Target`, for
//! operators and test harnesses (README, "Control plane"):
//! reads — `health`, `logs/…` (the installer log URLs of DescribeBuilds), `notifications`,
//! `world`, `clock`; mutations (token in `X-Imagebuild-Control-Token`, loopback only unless
//! enabled) — `reset`, `world` (PUT replace / PATCH merge), `clock` (advance), `advance` (one
//! build by one stage).
//!
//! Depends on: ops (Ctx, logs), store (trait), world, worker (tick).

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::ops::harness::Resource;
use crate::ops::logs::Stream;
use crate::ops::Ctx;
use crate::protocol::router::Operation;
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

/// The `Expires` and `Signature` of a signed URL (log or findings), or what S3 says without them.
fn url_signature(query: Option<&str>) -> Result<(i64, String), &'static str> {
    let q = query_map(query);
    match (
        q.get("Expires").and_then(|e| e.parse::<i64>().ok()),
        q.get("Signature"),
    ) {
        (Some(expires), Some(sig)) => Ok((expires, sig.clone())),
        _ => Err("Query-string authentication requires the Signature and Expires parameters"),
    }
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
    let (expires, sig) = match url_signature(query) {
        Ok(s) => s,
        Err(m) => return denied(m),
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
        .verify(&build.account, &build.region, build_id, expires, &sig)
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

/// Moves a change set up to `steps` steps now (it stops at its end): each step makes the set
/// due and runs it, so a manual transition or a held review moves only when told.
async fn advance_change_set(
    ctx: &Ctx,
    id: &str,
    steps: u64,
    request_id: &str,
) -> Response<Full<Bytes>> {
    use crate::catalog::kind;
    let mut status = String::new();
    for _ in 0..steps {
        let doc = match ctx.store.get_doc(kind::CHANGE_SET, id).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return control_error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFoundException",
                    format!("No change set {id}"),
                    request_id,
                )
            }
            Err(e) => return store_failure(&e, request_id),
        };
        let cs = match crate::ops::catalog::decode_change_set(&doc) {
            Ok(cs) => cs,
            Err(e) => return store_failure(&e, request_id),
        };
        status = cs.status.as_str().to_string();
        if cs.status.is_terminal() {
            if steps == 1 {
                return control_error(
                    StatusCode::CONFLICT,
                    "ConflictException",
                    format!("Change set {id} has ended ({status})"),
                    request_id,
                );
            }
            break;
        }
        let stepped = {
            let _pass = ctx.worker.pass().await;
            crate::worker::catalog::step(ctx, &doc, ctx.clock.now_ms()).await
        };
        match stepped {
            Ok(_) | Err(crate::store::StoreError::ConditionFailed) => {}
            Err(e) => return store_failure(&e, request_id),
        }
        if let Ok(Some(d)) = ctx.store.get_doc(kind::CHANGE_SET, id).await {
            if let Ok(cs) = crate::ops::catalog::decode_change_set(&d) {
                status = cs.status.as_str().to_string();
            }
        }
    }
    json_response(
        StatusCode::OK,
        json!({"ChangeSetId": id, "Status": status}).to_string(),
        request_id,
    )
}

/// Readiness, for load balancers: 200 once the store answers (the world is loaded before the
/// listener opens), 503 while it does not or while the service drains at shutdown. `health`
/// stays liveness.
async fn ready(ctx: &Ctx, request_id: &str) -> Response<Full<Bytes>> {
    let reason = if ctx.draining.load(std::sync::atomic::Ordering::SeqCst) {
        Some("draining")
    } else if ctx.store.next_due_ms().await.is_err() {
        Some("store unavailable")
    } else {
        None
    };
    match reason {
        None => json_response(
            StatusCode::OK,
            json!({"Ready": true}).to_string(),
            request_id,
        ),
        Some(r) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"Ready": false, "Reason": r}).to_string(),
            request_id,
        ),
    }
}

/// The findings behind a Catalog `SCAN_ERROR` URL: `findings/<changeSetId>/<change>`, signed
/// and expiring like the log URLs; a JSON array of `{ErrorCode, ErrorMessage}`.
async fn serve_findings(
    ctx: &Ctx,
    rest: &str,
    query: Option<&str>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let denied = |m: &str| s3_style_error(StatusCode::FORBIDDEN, "AccessDenied", m, request_id);
    let Some((cs_id, index)) = rest.split_once('/') else {
        return denied("Invalid URL");
    };
    let (expires, sig) = match url_signature(query) {
        Ok(s) => s,
        Err(m) => return denied(m),
    };
    let doc = match ctx
        .store
        .get_doc(crate::catalog::kind::CHANGE_SET, cs_id)
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => return denied("Access Denied"),
        Err(e) => return store_failure(&e, request_id),
    };
    if !ctx.url_signer.verify(
        &doc.owner,
        crate::catalog::CATALOG_REGION,
        rest,
        expires,
        &sig,
    ) {
        return denied(
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if ctx.clock.now_ms() / 1000 > expires {
        return denied("Request has expired");
    }
    let findings = crate::ops::catalog::decode_change_set(&doc)
        .ok()
        .and_then(|cs| {
            index
                .parse::<usize>()
                .ok()
                .and_then(|i| cs.changes.get(i).map(|c| c.pending.findings.clone()))
        })
        .unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(
        serde_json::to_string(&findings).unwrap_or_default(),
    )));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A store failure while serving a control request (logged once, here).
fn store_failure(e: &crate::store::StoreError, request_id: &str) -> Response<Full<Bytes>> {
    tracing::error!(error = %e, "store failure in the control plane");
    control_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalFailure",
        e.to_string(),
        request_id,
    )
}

/// Largest control-plane request body (world documents can be large).
const MAX_CONTROL_BODY: usize = 16 * 1024 * 1024;

fn control_error(
    status: StatusCode,
    ty: &str,
    message: impl Into<String>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    ApiError::framework(ty, status, Some(message.into())).into_response(request_id)
}

async fn read_json(req: Request<hyper::body::Incoming>) -> Result<Value, String> {
    use http_body_util::BodyExt;
    let body = http_body_util::Limited::new(req.into_body(), MAX_CONTROL_BODY)
        .collect()
        .await
        .map_err(|e| format!("cannot read the body: {e}"))?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the body is not valid JSON: {e}"))
}

/// The identity of a world entry, for merging: entries with the same identity are replaced.
fn entry_id(list: &str, v: &Value) -> Option<String> {
    let f = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match list {
        "Images" => Some(format!("{}#{}", f("Region"), f("ImageId"))),
        "Products" => Some(f("ProductId")),
        "Subscriptions" => Some(format!("{}#{}", f("AccountId"), f("ProductId"))),
        "SnsTopics" => v.as_str().map(str::to_string),
        "Roles" => Some(f("Arn")),
        "Exemptions" => Some(f("ExemptionId")),
        _ => None,
    }
}

/// Merges `patch` into `base`: each list's entries replace entries with the same identity
/// (image id + region, product id, …) or are appended.
fn merge_world(base: &mut Value, patch: &Value) -> Result<(), String> {
    let Some(patch) = patch.as_object() else {
        return Err("a world patch must be a JSON object".into());
    };
    for (list, entries) in patch {
        let Some(entries) = entries.as_array() else {
            return Err(format!("{list} must be a list"));
        };
        let target = base
            .as_object_mut()
            .ok_or("the current world is not an object")?
            .entry(list.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(target) = target.as_array_mut() else {
            return Err(format!("{list} must be a list"));
        };
        for e in entries {
            let id = entry_id(list, e);
            match target
                .iter()
                .position(|x| id.is_some() && entry_id(list, x) == id)
            {
                Some(i) => target[i] = e.clone(),
                None => target.push(e.clone()),
            }
        }
    }
    Ok(())
}

fn install_world(ctx: &Ctx, doc: &Value, request_id: &str) -> Response<Full<Bytes>> {
    match crate::world::World::from_json(&doc.to_string()) {
        Ok(w) => {
            let summary = json!({"Images": w.images.len(), "Products": w.products.len(), "SnsTopics": w.sns_topics.len()});
            match ctx.world.write() {
                Ok(mut cur) => *cur = std::sync::Arc::new(w),
                Err(p) => *p.into_inner() = std::sync::Arc::new(w),
            }
            ctx.worker.wake();
            json_response(
                StatusCode::OK,
                json!({"World": summary}).to_string(),
                request_id,
            )
        }
        Err(e) => control_error(
            StatusCode::BAD_REQUEST,
            "InvalidWorldException",
            e.to_string(),
            request_id,
        ),
    }
}

/// Replaces a rule list (`{"Rules": [...]}`) after checking it; answers the list in force.
fn put_rules<T: serde::de::DeserializeOwned + serde::Serialize>(
    body: &Value,
    check: impl Fn(&[T]) -> Option<String>,
    set: impl Fn(Vec<T>),
    current: impl Fn() -> Vec<T>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let bad = |m: String| {
        control_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            m,
            request_id,
        )
    };
    match serde_json::from_value::<Vec<T>>(body.get("Rules").cloned().unwrap_or(json!([]))) {
        Ok(rules) => {
            if let Some(e) = check(&rules) {
                return bad(e);
            }
            set(rules);
            json_response(
                StatusCode::OK,
                json!({"Rules": current()}).to_string(),
                request_id,
            )
        }
        Err(e) => bad(format!("Rules: {e}")),
    }
}

fn strip(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

fn clock_json(ctx: &Ctx) -> String {
    let now = ctx.clock.now_ms();
    json!({"Now": crate::clock::iso8601_extended(now), "NowEpochMs": now, "ShiftSeconds": ctx.clock_shift.shift_ms() / 1000}).to_string()
}

async fn mutate(
    ctx: &Ctx,
    method: &Method,
    path: &str,
    req: Request<hyper::body::Incoming>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    if !ctx.control.mutations_enabled {
        return control_error(StatusCode::FORBIDDEN, "AccessDeniedException", "The control plane's mutating endpoints are off: the service listens beyond loopback (start it with --control-plane-on-public-address to allow them).", request_id);
    }
    let given = req
        .headers()
        .get("x-imagebuild-control-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = ctx.control.token.as_bytes();
    let ok = given.len() == expected.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected));
    if !ok {
        return control_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Missing or wrong X-Imagebuild-Control-Token.",
            request_id,
        );
    }
    let body = match read_json(req).await {
        Ok(v) => v,
        Err(e) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                e,
                request_id,
            )
        }
    };
    match (method.as_str(), path) {
        ("DELETE", "notifications") => {
            let topic = body.get("TopicArn").and_then(Value::as_str);
            match ctx.store.clear_notifications(topic).await {
                Ok(()) => json_response(
                    StatusCode::OK,
                    json!({"Cleared": topic.unwrap_or("all")}).to_string(),
                    request_id,
                ),
                Err(e) => store_failure(&e, request_id),
            }
        }
        ("POST", "reset") => {
            let account = body.get("AccountId").and_then(Value::as_str);
            let harness = body.get("Harness").and_then(Value::as_bool).unwrap_or(false);
            if harness && account.is_some() {
                return control_error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "Harness resets the whole service (records, harness settings, clock); leave out AccountId.",
                    request_id,
                );
            }
            if let Some(a) = account {
                if !crate::world::is_account_id(a) {
                    return control_error(
                        StatusCode::BAD_REQUEST,
                        "ValidationException",
                        format!("'{a}' is not a 12-digit account id"),
                        request_id,
                    );
                }
            }
            match ctx.store.reset(account).await {
                Ok(()) => {
                    if harness {
                        ctx.harness.clear();
                        ctx.clock_shift.rewind();
                    }
                    ctx.harness.rewind_seed();
                    json_response(
                        StatusCode::OK,
                        json!({"Reset": account.unwrap_or("all")}).to_string(),
                        request_id,
                    )
                }
                Err(e) => store_failure(&e, request_id),
            }
        }
        ("PUT", "world") => install_world(ctx, &body, request_id),
        ("PATCH", "world") => {
            let mut current = serde_json::to_value(&*ctx.world()).unwrap_or_else(|_| json!({}));
            if let Err(e) = merge_world(&mut current, &body) {
                return control_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidWorldException",
                    e,
                    request_id,
                );
            }
            install_world(ctx, &current, request_id)
        }
        ("POST", "clock") => {
            let Some(secs) = body
                .get("AdvanceSeconds")
                .and_then(Value::as_i64)
                .filter(|s| *s >= 0)
            else {
                return control_error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "AdvanceSeconds must be a non-negative whole number of seconds.",
                    request_id,
                );
            };
            ctx.clock_shift.advance_ms(secs.saturating_mul(1000));
            ctx.worker.wake();
            json_response(StatusCode::OK, clock_json(ctx), request_id)
        }
        ("POST", "advance") if body.get("ChangeSetId").is_some() => {
            let steps = body.get("Steps").and_then(Value::as_u64).unwrap_or(1).clamp(1, 10);
            let id = body.get("ChangeSetId").and_then(Value::as_str).unwrap_or_default();
            advance_change_set(ctx, id, steps, request_id).await
        }
        ("POST", "advance") => {
            let steps = body
                .get("Steps")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 10);
            let target = match (
                body.get("BuildId").and_then(Value::as_str),
                body.get("ScanId").and_then(Value::as_str),
            ) {
                (Some(id), None) => (Resource::Build, id),
                (None, Some(id)) => (Resource::Scan, id),
                _ => {
                    return control_error(
                        StatusCode::BAD_REQUEST,
                        "ValidationException",
                        "Give exactly one of BuildId or ScanId.",
                        request_id,
                    )
                }
            };
            // Up to `Steps` steps; stops early once the resource is terminal.
            let mut last = Value::Null;
            for _ in 0..steps {
                match advance_one(ctx, target, request_id).await {
                    Ok((out, terminal)) => {
                        last = out;
                        if terminal {
                            break;
                        }
                    }
                    Err(resp) => return resp,
                }
            }
            json_response(StatusCode::OK, last.to_string(), request_id)
        }
        ("POST", "transitions") => {
            let kind = match resource_of(&body) {
                Ok(k) => k,
                Err(e) => {
                    return control_error(
                        StatusCode::BAD_REQUEST,
                        "ValidationException",
                        e,
                        request_id,
                    )
                }
            };
            match serde_json::from_value::<crate::ops::harness::Transition>(strip(
                &body,
                &["Resource"],
            )) {
                Ok(t) => {
                    ctx.harness.set_transition(kind, Some(t));
                    ctx.worker.wake();
                    json_response(
                        StatusCode::OK,
                        transitions_json(ctx).to_string(),
                        request_id,
                    )
                }
                Err(e) => control_error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    format!("Mode must be immediate, time (with Seconds) or manual: {e}"),
                    request_id,
                ),
            }
        }
        ("DELETE", "transitions") => {
            let kind = match resource_of(&body) {
                Ok(k) => k,
                Err(e) => {
                    return control_error(
                        StatusCode::BAD_REQUEST,
                        "ValidationException",
                        e,
                        request_id,
                    )
                }
            };
            ctx.harness.set_transition(kind, None);
            json_response(
                StatusCode::OK,
                transitions_json(ctx).to_string(),
                request_id,
            )
        }
        ("PUT", "outcomes") => put_rules(
            &body,
            |rules: &[crate::ops::harness::OutcomeRule]| {
                rules.iter().find_map(|r| r.validate().err())
            },
            |rules| ctx.harness.set_outcomes(rules),
            || ctx.harness.outcomes(),
            request_id,
        ),
        ("PUT", "review") => match serde_json::from_value::<crate::ops::harness::Review>(body.clone()) {
            Ok(r) => {
                ctx.harness.set_review(r.clone());
                ctx.worker.wake();
                json_response(StatusCode::OK, json!({"Review": r}).to_string(), request_id)
            }
            Err(e) => control_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("Review: {{\"Outcome\": \"Approve\" | \"Reject\" (\"Message\"?) | \"Hold\"}}: {e}"),
                request_id,
            ),
        },
        ("PUT", "faults") => put_rules(
            &body,
            |rules: &[crate::ops::harness::FaultRule]| {
                rules
                    .iter()
                    .find(|r| {
                        let catalog_op = crate::protocol::rest::route(&format!("/{}", r.operation)).is_some();
                        !(Operation::ALL.iter().any(|o| o.name() == r.operation) || catalog_op)
                            || r.probability.is_some_and(|p| !(0.0..=1.0).contains(&p))
                    })
                    .map(|r| {
                        let ops: Vec<&str> = Operation::ALL
                            .iter()
                            .map(|o| o.name())
                            .chain(crate::protocol::rest::ROUTES.iter().map(|r| r.name))
                            .collect();
                        format!(
                            "Operation must be one of {} and Probability 0-1: {r:?}",
                            ops.join(", ")
                        )
                    })
            },
            |rules| ctx.harness.set_faults(rules),
            || ctx.harness.faults(),
            request_id,
        ),
        ("POST", "seed") => match body.get("Seed") {
            Some(Value::Null) | None => {
                ctx.harness.seed(None);
                json_response(
                    StatusCode::OK,
                    json!({"Seed": null}).to_string(),
                    request_id,
                )
            }
            Some(v) => match v.as_u64() {
                Some(seed) => {
                    ctx.harness.seed(Some(seed));
                    json_response(
                        StatusCode::OK,
                        json!({"Seed": seed}).to_string(),
                        request_id,
                    )
                }
                None => control_error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "Seed must be a non-negative integer or null.",
                    request_id,
                ),
            },
        },
        _ => control_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("No control endpoint {method} {PREFIX}{path}"),
            request_id,
        ),
    }
}

/// The `Resource` a transitions request names (`None`: every kind).
fn resource_of(body: &Value) -> Result<Option<Resource>, String> {
    match body.get("Resource") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|_| {
            format!("Resource must be 'build', 'scan' or 'changeset' (absent: all), not {v}")
        }),
    }
}

fn transitions_json(ctx: &Ctx) -> Value {
    let mut m = serde_json::Map::new();
    for k in Resource::ALL {
        m.insert(k.as_str().into(), json!(ctx.harness.transition(k)));
    }
    json!({ "Transitions": m })
}

type ControlResult<T> = Result<T, Response<Full<Bytes>>>;

/// A build or a scan, as `advance` sees it.
enum Record {
    Build(Box<crate::domain::Build>),
    Scan(Box<crate::scan::Scan>),
}

impl Record {
    async fn load(
        ctx: &Ctx,
        kind: Resource,
        id: &str,
    ) -> Result<Option<Self>, crate::store::StoreError> {
        Ok(match kind {
            Resource::Build => ctx
                .store
                .get_build(id)
                .await?
                .map(|b| Record::Build(Box::new(b))),
            Resource::Scan => ctx
                .store
                .get_scan(id)
                .await?
                .map(|s| Record::Scan(Box::new(s))),
            Resource::ChangeSet => None,
        })
    }

    fn status(&self) -> &'static str {
        match self {
            Record::Build(b) => b.status.as_str(),
            Record::Scan(s) => s.status.as_str(),
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Record::Build(b) => b.status.is_terminal(),
            Record::Scan(s) => s.status.is_terminal(),
        }
    }

    /// Due at `now`: a version-fenced write the worker's next step picks up.
    async fn make_due(&self, ctx: &Ctx, now: i64) -> Result<(), crate::store::StoreError> {
        match self {
            Record::Build(b) => {
                let mut due = (**b).clone();
                due.due_ms = Some(now);
                due.version = b.version + 1;
                ctx.store
                    .update_build(&due, b.version, &crate::store::Effects::default())
                    .await
            }
            Record::Scan(s) => {
                let mut due = (**s).clone();
                due.due_ms = Some(now);
                due.version = s.version + 1;
                ctx.store.update_scan(&due, s.version, None).await
            }
        }
    }

    /// The answer of `advance`.
    fn view(&self) -> Value {
        let (mut out, error) = match self {
            Record::Build(b) => (
                json!({"BuildId": b.build_id, "Status": self.status(), "Stage": format!("{:?}", b.stage)}),
                b.error.as_ref().map(|e| e.code.clone()),
            ),
            Record::Scan(s) => (
                json!({"ScanId": s.scan_id, "Status": self.status()}),
                s.error.as_ref().map(|e| e.code.clone()),
            ),
        };
        if let Some(code) = error {
            out["ErrorCode"] = json!(code);
        }
        out
    }
}

/// Advances one build or scan by one step; its state after the step, and whether that is final.
async fn advance_one(
    ctx: &Ctx,
    target: (Resource, &str),
    request_id: &str,
) -> ControlResult<(Value, bool)> {
    let internal = |e: crate::store::StoreError| store_failure(&e, request_id);
    let (kind, id) = target;
    let missing = || {
        control_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("No {} {id}", kind.as_str()),
            request_id,
        )
    };
    let record = Record::load(ctx, kind, id)
        .await
        .map_err(internal)?
        .ok_or_else(missing)?;
    if record.is_terminal() {
        return Err(control_error(
            StatusCode::CONFLICT,
            "InvalidStateException",
            format!("{} {id} is already {}", kind.as_str(), record.status()),
            request_id,
        ));
    }
    let now = ctx.clock.now_ms();
    record.make_due(ctx, now).await.map_err(internal)?;
    crate::worker::tick(ctx, now).await.map_err(internal)?;
    let after = Record::load(ctx, kind, id)
        .await
        .map_err(internal)?
        .ok_or_else(missing)?;
    Ok((after.view(), after.is_terminal()))
}

/// The Prometheus exposition of this instance (`GET /_imagebuild/metrics`, and `/metrics` on
/// `--metrics-listen`).
pub async fn metrics_response(ctx: &Ctx) -> Response<Full<Bytes>> {
    let body = ctx.metrics.render(ctx.store.as_ref()).await;
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}

/// A bare 404 (the metrics listener's answer to any other path).
#[must_use]
pub fn not_found() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"Not Found\n")));
    *resp.status_mut() = StatusCode::NOT_FOUND;
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
        let method = req.method().clone();
        return mutate(ctx, &method, &path, req, request_id).await;
    }
    if let Some(rest) = path.strip_prefix("logs/") {
        return serve_log(ctx, rest, query.as_deref(), request_id).await;
    }
    if let Some(rest) = path.strip_prefix("findings/") {
        return serve_findings(ctx, rest, query.as_deref(), request_id).await;
    }
    match path.as_str() {
        "ready" => ready(ctx, request_id).await,
        "metrics" => metrics_response(ctx).await,
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
        "world" => match serde_json::to_string(&*ctx.world()) {
            Ok(body) => json_response(StatusCode::OK, body, request_id),
            Err(e) => control_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                e.to_string(),
                request_id,
            ),
        },
        "clock" => json_response(StatusCode::OK, clock_json(ctx), request_id),
        "harness" => json_response(
            StatusCode::OK,
            {
                let mut state = transitions_json(ctx);
                state["Outcomes"] = json!(ctx.harness.outcomes());
                state["Review"] = json!(ctx.harness.review());
                state["Faults"] = json!(ctx.harness.faults());
                state.to_string()
            },
            request_id,
        ),
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
                Err(e) => store_failure(&e, request_id),
            }
        }
        _ => not_found(),
    }
}
