//! The control plane (`/_imagebuild/…`) through HTTP: token, reset, world replace/merge,
//! virtual clock, explicit advance — every build status reached without sleeping.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use imagebuild::clock::Clock;
use imagebuild::config::ServeConfig;
use serde_json::{json, Value};

const TOKEN: &str = "test-control-token";

async fn control(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{}/_imagebuild/{path}", app.addr));
    if let Some(t) = token {
        req = req.header("x-imagebuild-control-token", t);
    }
    let resp = app
        .client
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn slow() -> ServeConfig {
    ServeConfig {
        provision_seconds: 3600,
        install_seconds: 3600,
        imaging_seconds: 3600,
        ..ServeConfig::for_test()
    }
}

#[tokio::test]
async fn mutations_need_the_token_and_bad_requests_change_nothing() {
    let app = spawn(slow()).await;
    app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    for token in [None, Some("wrong")] {
        let (status, body) = control(&app, "POST", "reset", token, "{}").await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (403, Some("AccessDeniedException"))
        );
    }
    assert_eq!(app.builds().await.len(), 1);
    let (status, body) = control(&app, "POST", "reset", Some(TOKEN), "{not json").await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    let (status, body) = control(
        &app,
        "POST",
        "reset",
        Some(TOKEN),
        r#"{"AccountId": "nope"}"#,
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    let (status, _) = control(&app, "POST", "nothing-here", Some(TOKEN), "{}").await;
    assert_eq!(status, 404);
    assert_eq!(app.builds().await.len(), 1);
    let (status, _) = control(
        &app,
        "POST",
        "reset",
        Some(TOKEN),
        r#"{"AccountId": "123456789012"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.builds().await.len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn mutations_are_off_beyond_loopback_unless_enabled() {
    let app = spawn(ServeConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..ServeConfig::for_test()
    })
    .await;
    let mut local = app;
    local.addr = format!("127.0.0.1:{}", local.addr.port()).parse().unwrap();
    let (status, body) = control(&local, "POST", "reset", Some(TOKEN), "{}").await;
    assert_eq!(status, 403);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("--control-plane-on-public-address"));
    local.stop().await;
}

#[tokio::test]
async fn world_can_be_read_replaced_and_merged_and_is_validated() {
    let app = spawn(ServeConfig::for_test()).await;
    let (_, before) = control(&app, "GET", "world", None, "").await;
    assert!(before["Images"].as_array().unwrap().len() >= 5);
    // an invalid world is refused with the field, and nothing changes
    let (status, body) = control(&app, "PATCH", "world", Some(TOKEN), r#"{"Images": [{"ImageId": "ami-12345678", "OwnerId": "123456789012", "Region": "us-east-1", "Platform": "BeOS"}]}"#).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidWorldException"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("Images["),
        "{body}"
    );
    let (_, after) = control(&app, "GET", "world", None, "").await;
    assert_eq!(after, before);
    // merge a new product and image in; then build with them
    let patch = json!({
        "Images": [{"ImageId": "ami-0abcdef0123456789", "OwnerId": "123456789012", "Region": "us-east-1", "Platform": "Linux"}],
        "Products": [{"ProductId": "prod-harness1", "ProductCode": "code1", "SellerAccountId": "999988887777", "Title": "Harness", "Visibility": "Public",
                      "Versions": [{"Version": "1", "FulfillmentOptionId": "fo-harness1", "Platform": "Linux", "Regions": ["us-east-1"]}]}]
    });
    let (status, body) = control(&app, "PATCH", "world", Some(TOKEN), &patch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["World"]["Images"].as_u64().unwrap() as usize,
        before["Images"].as_array().unwrap().len() + 1
    );
    let r = app
        .call(
            "StartBuild",
            start_body("fo-harness1", "ami-0abcdef0123456789"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // replace the whole world: the demo option is gone
    let (status, _) = control(&app, "PUT", "world", Some(TOKEN), &patch.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
            .await
            .error_type(),
        "InvalidFulfillmentOptionIdException"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_build_status_is_reached_by_advancing_without_sleeping() {
    let app = spawn(slow()).await;
    for (fo, ami, steps, status, code) in [
        (GOOD_FO, LINUX_AMI, 3, "Succeeded", None),
        (
            "fo-demofailinstall",
            LINUX_AMI,
            2,
            "Failed",
            Some("InstallFailed"),
        ),
        (
            GOOD_FO,
            "ami-0c1b2c3d4e5f60718",
            1,
            "Failed",
            Some("SSMAgentNotFound"),
        ),
        ("fo-demointernal01", LINUX_AMI, 2, "InternalError", None),
    ] {
        let id = app.call("StartBuild", start_body(fo, ami)).await.body["BuildId"]
            .as_str()
            .unwrap()
            .to_string();
        for step in 0..steps {
            let b = app
                .call("DescribeBuilds", json!({"BuildIds": [id]}))
                .await
                .body["Builds"][0]
                .clone();
            assert_eq!(b["Status"], "InProgress", "{fo} before step {step}");
            let (s, body) = control(
                &app,
                "POST",
                "advance",
                Some(TOKEN),
                &json!({"BuildId": id}).to_string(),
            )
            .await;
            assert_eq!(s, 200, "{body}");
        }
        let b = app
            .call("DescribeBuilds", json!({"BuildIds": [id]}))
            .await
            .body["Builds"][0]
            .clone();
        assert_eq!(b["Status"], status, "{fo} {ami}");
        assert_eq!(b["ErrorDetail"]["Code"].as_str(), code);
        let (s, body) = control(
            &app,
            "POST",
            "advance",
            Some(TOKEN),
            &json!({"BuildId": id}).to_string(),
        )
        .await;
        assert_eq!(
            (s, body["__type"].as_str()),
            (409, Some("InvalidStateException"))
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_virtual_clock_moves_timestamps_expiry_and_the_sigv4_window() {
    let app = spawn(ServeConfig {
        provision_seconds: 60,
        install_seconds: 0,
        imaging_seconds: 0,
        ..ServeConfig::for_test()
    })
    .await;
    let id = app
        .call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
        .await
        .body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    let real_now = imagebuild::clock::SystemClock.now_ms();
    // 61 s later (virtually) the build is done: the worker follows the clock
    let (s, body) = control(
        &app,
        "POST",
        "clock",
        Some(TOKEN),
        r#"{"AdvanceSeconds": 61}"#,
    )
    .await;
    assert_eq!((s, body["ShiftSeconds"].as_i64()), (200, Some(61)));
    let b = app.wait_terminal(&id).await;
    assert_eq!(b["Status"], "Succeeded");
    assert!(b["LastUpdateTime"].as_f64().unwrap() * 1000.0 >= (real_now + 60_000) as f64);
    let url = b["StandardOutputUrl"].as_str().unwrap().to_string();
    assert_eq!(app.get(&url).await.0, 200);
    // an hour later the log URL has expired, and requests signed with the real time are stale
    control(
        &app,
        "POST",
        "clock",
        Some(TOKEN),
        r#"{"AdvanceSeconds": 3700}"#,
    )
    .await;
    assert_eq!(app.get(&url).await.0, 403);
    let stale = app
        .raw(app.signed_at(
            "AWSMPImageBuilding.DescribeBuilds",
            "{}",
            imagebuild::clock::SystemClock.now_ms(),
        ))
        .await;
    assert_eq!(stale.error_type(), "InvalidSignatureException");
    let (_, clock) = control(&app, "GET", "clock", None, "").await;
    let virtual_now = clock["NowEpochMs"].as_i64().unwrap();
    let fresh = app
        .raw(app.signed_at("AWSMPImageBuilding.DescribeBuilds", "{}", virtual_now))
        .await;
    assert_eq!(fresh.status, 200);
    let (s, _) = control(
        &app,
        "POST",
        "clock",
        Some(TOKEN),
        r#"{"AdvanceSeconds": -5}"#,
    )
    .await;
    assert_eq!(s, 400);
    app.stop().await;
}

/// One StartBuild run to its end: the build id and the image id it created.
async fn build_and_image(app: &TestApp) -> (String, String) {
    let id = app
        .call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
        .await
        .body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    let ami = app.wait_terminal(&id).await["DestinationImage"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, ami)
}

#[tokio::test]
async fn transitions_outcomes_seed_and_faults() {
    let app = spawn(ServeConfig::for_test()).await;
    // manual: even with zero-length stages nothing moves until advanced
    let (s, _) = control(
        &app,
        "POST",
        "transitions",
        Some(TOKEN),
        r#"{"Resource": "build", "Mode": "manual"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let id = app
        .call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
        .await
        .body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::task::yield_now().await;
    let (_, body) = control(
        &app,
        "POST",
        "advance",
        Some(TOKEN),
        &json!({"BuildId": id, "Steps": 2}).to_string(),
    )
    .await;
    assert_eq!(body["Status"], "InProgress");
    assert_eq!(
        app.call("DescribeBuilds", json!({"BuildIds": [id]}))
            .await
            .body["Builds"][0]["Status"],
        "InProgress"
    );
    let (_, body) = control(
        &app,
        "POST",
        "advance",
        Some(TOKEN),
        &json!({"BuildId": id}).to_string(),
    )
    .await;
    assert_eq!(body["Status"], "Succeeded");
    let (s, body) = control(
        &app,
        "POST",
        "transitions",
        Some(TOKEN),
        r#"{"Mode": "sometimes"}"#,
    )
    .await;
    assert_eq!(
        (s, body["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    // immediate again, with a scripted outcome that applies once
    control(
        &app,
        "POST",
        "transitions",
        Some(TOKEN),
        r#"{"Mode": "immediate"}"#,
    )
    .await;
    let rules = json!({"Rules": [{"ImageId": LINUX_AMI, "Status": "Failed", "ErrorCode": "SSMAgentNotFound", "Message": "scripted", "Once": true}]});
    let (s, _) = control(&app, "PUT", "outcomes", Some(TOKEN), &rules.to_string()).await;
    assert_eq!(s, 200);
    let first = app
        .wait_terminal(
            app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
                .await
                .body["BuildId"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert_eq!(
        (
            first["Status"].as_str(),
            first["ErrorDetail"]["Message"].as_str()
        ),
        (Some("Failed"), Some("scripted"))
    );
    let second = app
        .wait_terminal(
            app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
                .await
                .body["BuildId"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert_eq!(second["Status"], "Succeeded");
    let (s, _) = control(
        &app,
        "PUT",
        "outcomes",
        Some(TOKEN),
        r#"{"Rules": [{"Status": "Failed"}]}"#,
    )
    .await;
    assert_eq!(s, 400, "Failed needs an ErrorCode");
    // a scripted success on an image without SSM agent, sticky
    control(
        &app,
        "PUT",
        "outcomes",
        Some(TOKEN),
        &json!({"Rules": [{"FulfillmentOptionId": "fo-demointernal01", "Status": "Succeeded"}]})
            .to_string(),
    )
    .await;
    for _ in 0..2 {
        let b = app
            .wait_terminal(
                app.call("StartBuild", start_body("fo-demointernal01", LINUX_AMI))
                    .await
                    .body["BuildId"]
                    .as_str()
                    .unwrap(),
            )
            .await;
        assert_eq!(b["Status"], "Succeeded");
        assert!(b["DestinationImage"]["Id"].is_string());
    }
    // seeded ids repeat
    let mut runs = Vec::new();
    for _ in 0..2 {
        control(&app, "POST", "reset", Some(TOKEN), "{}").await;
        control(&app, "POST", "seed", Some(TOKEN), r#"{"Seed": 42}"#).await;
        runs.push(build_and_image(&app).await);
    }
    assert_eq!(runs[0], runs[1]);
    // a reset alone restarts the seeded sequence: the same ids again, without seeding anew
    control(&app, "POST", "reset", Some(TOKEN), "{}").await;
    assert_eq!(
        build_and_image(&app).await,
        runs[0],
        "reset must rewind the seeded ids"
    );
    // faults: two throttles, then normal service; a 503; latency only
    let faults = json!({"Rules": [{"Operation": "StartBuild", "Exception": "ThrottlingException", "Count": 2}]});
    control(&app, "PUT", "faults", Some(TOKEN), &faults.to_string()).await;
    for _ in 0..2 {
        let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
        assert_eq!((r.status, r.error_type()), (400, "ThrottlingException"));
    }
    assert_eq!(
        app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
            .await
            .status,
        200
    );
    control(&app, "PUT", "faults", Some(TOKEN), r#"{"Rules": [{"Operation": "DescribeBuilds", "Exception": "ServiceUnavailableException", "Count": 1}, {"Operation": "StartBuild", "Exception": "InstallerMismatchException", "Count": 1}]}"#).await;
    assert_eq!(app.call("DescribeBuilds", json!({})).await.status, 503);
    let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    assert_eq!(
        (r.status, r.error_type(), r.message()),
        (400, "InstallerMismatchException", "Injected fault")
    );
    control(
        &app,
        "PUT",
        "faults",
        Some(TOKEN),
        r#"{"Rules": [{"Operation": "DescribeBuilds", "LatencyMs": 300, "Count": 1}]}"#,
    )
    .await;
    let t = std::time::Instant::now();
    assert_eq!(app.call("DescribeBuilds", json!({})).await.status, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    let (s, _) = control(
        &app,
        "PUT",
        "faults",
        Some(TOKEN),
        r#"{"Rules": [{"Operation": "DeleteBuild"}]}"#,
    )
    .await;
    assert_eq!(s, 400);
    let (_, state) = control(&app, "GET", "harness", None, "").await;
    assert_eq!(state["Transitions"]["build"]["Mode"], "immediate");
    app.stop().await;
}

#[tokio::test]
async fn every_modeled_error_can_be_injected() {
    let app = spawn(ServeConfig::for_test()).await;
    for (text, scanning) in [
        (imagebuild::model::IMAGE_BUILD_MODEL, false),
        (imagebuild::model::AMI_SCANNING_MODEL, true),
    ] {
        let model = imagebuild::model::Model::parse(text).unwrap();
        for (op, info) in &model.operations {
            for err in &info.errors {
                let rules = json!({"Rules": [{"Operation": op, "Exception": err, "Count": 1}]});
                assert_eq!(
                    control(&app, "PUT", "faults", Some(TOKEN), &rules.to_string())
                        .await
                        .0,
                    200
                );
                let body = match op.as_str() {
                    "StartBuild" => start_body(GOOD_FO, LINUX_AMI),
                    "StartScans" => scan_body(LINUX_AMI),
                    "DescribeScanFindings" | "ResubmitScan" => {
                        json!({"ScanId": "00000000-0000-0000-0000-000000000000"})
                    }
                    _ => json!({}),
                };
                let r = if scanning {
                    app.scan_call(op, body).await
                } else {
                    app.call(op, body).await
                };
                assert_eq!(r.error_type(), err, "{op}");
                assert_eq!(
                    r.status,
                    if err == "InternalServerErrorException" {
                        500
                    } else {
                        400
                    },
                    "{op} {err}"
                );
                assert_eq!(r.body["Message"], "Injected fault");
            }
        }
    }
    let r = app.scan_call("DescribeScans", json!({})).await;
    assert_eq!(r.body["Scans"], json!([]), "injected faults write nothing");
    assert!(
        app.builds().await.is_empty(),
        "injected faults write nothing"
    );
    // captured notifications can be cleared
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["SnsTopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:image-build-events");
    app.call("StartBuild", b).await;
    let (s, _) = control(&app, "DELETE", "notifications", Some(TOKEN), "{}").await;
    assert_eq!(s, 200);
    let (_, list) = control(&app, "GET", "notifications", None, "").await;
    assert!(
        list["Notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["Message"].as_str().unwrap().contains("Succeeded")),
        "{list}"
    );
    app.stop().await;
}

fn scan_body(image: &str) -> Value {
    json!({"Images": [{"SourceImageId": image, "OsUserName": "ubuntu",
        "AccessRoleArn": "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"}],
        "SnsTopicArn": "arn:aws:sns:us-east-1:123456789012:ami-scan-events"})
}

async fn scan_state(app: &TestApp, id: &str) -> Value {
    let r = app
        .scan_call("DescribeScans", json!({"ScanIds": [id]}))
        .await;
    r.body["Scans"][0].clone()
}

/// `POST /_imagebuild/advance` with `body`.
async fn advance(app: &TestApp, body: Value) -> (u16, Value) {
    control(app, "POST", "advance", Some(TOKEN), &body.to_string()).await
}

#[tokio::test]
async fn scans_follow_their_own_transitions_advance_and_scripted_outcomes() {
    let app = spawn(ServeConfig::for_test()).await;
    // scans manual, builds immediate: one kind does not move the other
    let (s, t) = control(
        &app,
        "POST",
        "transitions",
        Some(TOKEN),
        r#"{"Resource": "scan", "Mode": "manual"}"#,
    )
    .await;
    assert_eq!(
        (s, t["Transitions"]["scan"]["Mode"].as_str()),
        (200, Some("manual"))
    );
    assert_eq!(t["Transitions"]["build"], Value::Null);
    let id = app.scan_call("StartScans", scan_body(LINUX_AMI)).await.body["Scans"][0]["ScanId"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    assert_eq!(b.status, 200);
    let b = app.wait_terminal(b.body["BuildId"].as_str().unwrap()).await;
    assert_eq!(b["Status"], "Succeeded");
    assert_eq!(scan_state(&app, &id).await["Status"], "Ingesting");
    let (s, out) = advance(&app, json!({"ScanId": id})).await;
    assert_eq!((s, out["Status"].as_str()), (200, Some("Scanning")));
    assert_eq!(scan_state(&app, &id).await["Status"], "Scanning");
    let (_, out) = advance(&app, json!({"ScanId": id})).await;
    assert_eq!(out["Status"], "Succeeded");
    let (s, out) = advance(&app, json!({"ScanId": id})).await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (409, Some("InvalidStateException"))
    );
    for bad in [json!({}), json!({"ScanId": id, "BuildId": "x"})] {
        let (s, out) = advance(&app, bad.clone()).await;
        assert_eq!(
            (s, out["__type"].as_str()),
            (400, Some("ValidationException")),
            "{bad}"
        );
    }
    let (s, _) = advance(&app, json!({"ScanId": "nope"})).await;
    assert_eq!(s, 404);
    let (s, out) = control(
        &app,
        "POST",
        "transitions",
        Some(TOKEN),
        r#"{"Resource": "volume", "Mode": "manual"}"#,
    )
    .await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("ValidationException"))
    );

    // scripted outcomes for every terminal status, matched by image, role, product and tag
    let (s, out) = control(&app, "PUT", "outcomes", Some(TOKEN), r#"{"Rules": [{"Resource": "scan", "Status": "Failed", "ErrorCode": "EncryptedSnapshot"}]}"#).await;
    assert_eq!(
        (s, out["__type"].as_str()),
        (400, Some("ValidationException")),
        "{out}"
    );
    let role = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion";
    let rules = json!({"Rules": [
        {"Resource": "scan", "Tag": {"Key": "Name", "Value": "clean"}, "Status": "IngestionFailed", "ErrorCode": "UnsupportedFileSystem", "Message": "scripted fs", "Once": true},
        {"Resource": "scan", "AccessRoleArn": role, "ProductId": "prod-demoseller1", "Status": "IssuesFound", "ErrorCode": "MALWARE", "Severity": "CRITICAL", "Once": true},
        {"Resource": "scan", "ImageId": LINUX_AMI, "Status": "Failed", "ErrorCode": "OsLoginFailed", "Once": true},
        {"Resource": "scan", "ImageId": LINUX_AMI, "Status": "InternalError", "Once": true},
    ]});
    let (s, out) = control(&app, "PUT", "outcomes", Some(TOKEN), &rules.to_string()).await;
    assert_eq!(s, 200, "{out}");
    let (_, world) = control(&app, "GET", "world", None, "").await;
    let mut img = world["Images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["ImageId"] == LINUX_AMI && i["Region"] == "us-east-1")
        .unwrap()
        .clone();
    img["Tags"] = json!([{"Key": "Name", "Value": "clean"}]);
    let (s, out) = control(
        &app,
        "PATCH",
        "world",
        Some(TOKEN),
        &json!({"Images": [img]}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    let mut seen = vec![];
    for product in [None, Some("prod-demoseller1"), None, None] {
        let mut body = scan_body(LINUX_AMI);
        if let Some(p) = product {
            body["Images"][0]["ProductId"] = json!(p);
        }
        let r = app.scan_call("StartScans", body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let id = r.body["Scans"][0]["ScanId"].as_str().unwrap().to_string();
        let (_, out) = advance(&app, json!({"ScanId": id, "Steps": 2})).await;
        let scan = scan_state(&app, &id).await;
        assert_eq!(out["Status"], scan["Status"]);
        seen.push((
            scan["Status"].as_str().unwrap().to_string(),
            scan["ErrorDetail"]["Code"].as_str().map(str::to_string),
        ));
        if scan["Status"] == "IssuesFound" {
            let f = app
                .scan_call("DescribeScanFindings", json!({"ScanId": id}))
                .await
                .body;
            assert_eq!(f["Findings"][0]["ControlId"], "MALWARE");
            assert_eq!(f["Findings"][0]["Severity"], "CRITICAL");
            assert_eq!(scan["FindingCounts"]["Critical"], 1);
        }
        if scan["Status"] == "IngestionFailed" {
            assert_eq!(scan["ErrorDetail"]["Message"], "scripted fs");
        }
    }
    assert_eq!(
        seen,
        vec![
            (
                "IngestionFailed".into(),
                Some("UnsupportedFileSystem".into())
            ),
            ("IssuesFound".into(), None),
            ("Failed".into(), Some("OsLoginFailed".into())),
            ("InternalError".into(), Some("InternalFailure".into())),
        ]
    );
    let (_, state) = control(&app, "GET", "harness", None, "").await;
    assert_eq!(state["Outcomes"], json!([]), "once-only rules are consumed");
    // DELETE with a Resource clears that kind only
    control(
        &app,
        "POST",
        "transitions",
        Some(TOKEN),
        r#"{"Mode": "immediate"}"#,
    )
    .await;
    let (s, t) = control(
        &app,
        "DELETE",
        "transitions",
        Some(TOKEN),
        r#"{"Resource": "build"}"#,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(t["Transitions"]["build"], Value::Null);
    assert_eq!(t["Transitions"]["scan"]["Mode"], "immediate");
    // every transition cleared: scans take the configured (zero) stage lengths again
    control(&app, "DELETE", "transitions", Some(TOKEN), "{}").await;
    let (_, state) = control(&app, "GET", "harness", None, "").await;
    assert_eq!(
        state["Transitions"],
        json!({"build": null, "scan": null, "changeset": null})
    );
    // faults on scan operations
    control(&app, "PUT", "faults", Some(TOKEN), r#"{"Rules": [{"Operation": "DescribeScans", "Exception": "ThrottlingException", "Count": 1}]}"#).await;
    let r = app.scan_call("DescribeScans", json!({})).await;
    assert_eq!((r.status, r.error_type()), (400, "ThrottlingException"));
    assert_eq!(app.scan_call("DescribeScans", json!({})).await.status, 200);
    app.stop().await;
}
