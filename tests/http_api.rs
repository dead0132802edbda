//! Behaviour through HTTP against the real server on port 0 (embedded store, in memory unless
#![allow(clippy::unwrap_used)] // helpers in tests: a failed unwrap is a failed test
//! a test needs a data dir). Every error case also checks that nothing was written.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use imagebuild::clock::Clock;
use imagebuild::config::ServeConfig;
use serde_json::{json, Value};

fn cfg() -> ServeConfig {
    ServeConfig::for_test()
}

async fn expect_error(app: &TestApp, op: &str, body: Value, ty: &str, msg_prefix: &str) {
    let before = app.builds().await.len();
    let r = app.call(op, body.clone()).await;
    assert_eq!(r.error_type(), ty, "body {body} -> {:?}", r.body);
    assert!(
        r.message().starts_with(msg_prefix),
        "message {:?} does not start with {msg_prefix:?}",
        r.message()
    );
    assert_eq!(
        r.status,
        if ty == "InternalServerErrorException" {
            500
        } else {
            400
        }
    );
    assert!(r.headers.contains_key("x-amzn-requestid"));
    assert_eq!(r.headers.get("x-amzn-errortype").unwrap(), ty);
    assert_eq!(
        app.builds().await.len(),
        before,
        "an error must not write anything"
    );
}

#[tokio::test]
async fn start_build_returns_id_and_products_and_build_succeeds() {
    let app = spawn(cfg()).await;
    let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/x-amz-json-1.1"
    );
    assert!(r.headers.contains_key("date"));
    let id = r.body["BuildId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(
        r.body["Products"],
        json!([{"Id": "prod-abcd1234efgh5", "Version": "1.0.0", "Title": "Example Agent"}])
    );
    let b = app.wait_terminal(&id).await;
    assert_eq!(b["Status"], "Succeeded");
    let ami = b["DestinationImage"]["Id"].as_str().unwrap();
    assert!(
        ami.starts_with("ami-")
            && ami.len() == 21
            && ami[4..].bytes().all(|c| c.is_ascii_hexdigit())
    );
    assert_eq!(
        b["SourceImage"],
        json!({"Id": LINUX_AMI, "Name": "Ubuntu 22.04 base"})
    );
    assert!(b["StartTime"].is_number() && b["LastUpdateTime"].is_number());
    assert!(b["LastUpdateTime"].as_f64() >= b["StartTime"].as_f64());
    assert!(b.get("ErrorDetail").is_none() && b.get("SnsTopicArn").is_none());
    assert!(!r.raw.windows(4).any(|w| w == b"null"));
    // The stdout URL is served by the service itself.
    let (status, text) = app.get(b["StandardOutputUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("Example Agent 1.0.0") && text.contains("installed"),
        "{text}"
    );
    // The new image is usable as a source by its owner (it has a product code, so it is refused
    // as already carrying Marketplace software - proving it joined the world).
    let again = app.call("StartBuild", start_body(GOOD_FO, ami)).await;
    assert_eq!(again.error_type(), "InvalidSourceImageIdException");
    assert!(again
        .message()
        .contains("already has AWS Marketplace software"));
    app.stop().await;
}

#[tokio::test]
async fn lifecycle_reaches_each_terminal_status_as_the_world_decides() {
    let app = spawn(cfg()).await;
    let cases = [
        (
            GOOD_FO,
            "ami-0c1b2c3d4e5f60718",
            "Failed",
            Some("SSMAgentNotFound"),
        ),
        (
            "fo-demofailinstall",
            LINUX_AMI,
            "Failed",
            Some("InstallFailed"),
        ),
        (
            "fo-demotimeout01",
            LINUX_AMI,
            "Failed",
            Some("InstallFailed"),
        ),
        ("fo-demointernal01", LINUX_AMI, "InternalError", None),
        (GOOD_FO, "ami-01a2b3c4d5e6f7081", "Succeeded", None), // shared with the caller
        (GOOD_FO, "ami-02a2b3c4d5e6f7081", "Succeeded", None), // public
        ("fo-demowin001", "ami-0b1b2c3d4e5f60718", "Succeeded", None),
        ("fo-demorestricted1", LINUX_AMI, "Succeeded", None), // restricted version, subscriber
    ];
    for (fo, ami, status, code) in cases {
        let r = app.call("StartBuild", start_body(fo, ami)).await;
        assert_eq!(r.status, 200, "{fo} {ami}: {:?}", r.body);
        let b = app.wait_terminal(r.body["BuildId"].as_str().unwrap()).await;
        assert_eq!(b["Status"], status, "{fo} {ami}");
        assert_eq!(b["ErrorDetail"]["Code"].as_str(), code, "{fo} {ami}");
        if status == "Succeeded" {
            assert!(b["DestinationImage"]["Id"].is_string());
        } else {
            assert!(b["DestinationImage"].get("Id").is_none());
        }
    }
    // the failing installer's stderr is served
    let builds = app.builds().await;
    let failed = builds
        .iter()
        .find(|b| b["FulfillmentOptionIds"][0] == "fo-demofailinstall")
        .unwrap();
    let (status, text) = app.get(failed["StandardErrorUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(text.contains("exit status 1"));
    app.stop().await;
}

#[tokio::test]
async fn start_build_modeled_errors() {
    let app = spawn(cfg()).await;
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["DestinationImageName"] = json!("x!");
    expect_error(
        &app,
        "StartBuild",
        b.clone(),
        "InvalidDestinationImageNameException",
        "The destination image name 'x!' is not valid",
    )
    .await;
    b["DestinationImageName"] = json!("ab");
    expect_error(
        &app,
        "StartBuild",
        b.clone(),
        "InvalidDestinationImageNameException",
        "",
    )
    .await;
    b["DestinationImageName"] = json!("a".repeat(129));
    expect_error(
        &app,
        "StartBuild",
        b,
        "InvalidDestinationImageNameException",
        "",
    )
    .await;

    for (fo, msg) in [
        (
            "fo-nosuchoption",
            "The fulfillment option id 'fo-nosuchoption' does not exist.",
        ),
        (
            "fo-demostaging01",
            "The fulfillment option id 'fo-demostaging01' does not exist.",
        ),
        (
            "fo-demolimited01",
            "The fulfillment option id 'fo-demolimited01' does not exist.",
        ),
        (
            "fo-demorestrict01",
            "The fulfillment option id 'fo-demorestrict01' does not exist.",
        ),
    ] {
        expect_error(
            &app,
            "StartBuild",
            start_body(fo, LINUX_AMI),
            "InvalidFulfillmentOptionIdException",
            msg,
        )
        .await;
    }
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["FulfillmentOptionIds"] = json!([]);
    expect_error(
        &app,
        "StartBuild",
        b.clone(),
        "InvalidFulfillmentOptionIdException",
        "At least one",
    )
    .await;
    b["FulfillmentOptionIds"] = json!([GOOD_FO, GOOD_FO]);
    expect_error(
        &app,
        "StartBuild",
        b,
        "InvalidFulfillmentOptionIdException",
        "The fulfillment option id 'fo-ids4xf7qagwyc' is specified more than once",
    )
    .await;

    for (ami, msg) in [
        ("ami-00000000000000000", "The source image id 'ami-00000000000000000' does not exist."),
        ("ami-0f1b2c3d4e5f60718", "The source image id 'ami-0f1b2c3d4e5f60718' does not exist."), // not visible
        ("ami-0d1b2c3d4e5f60718", "The source image 'ami-0d1b2c3d4e5f60718' has encrypted snapshots"),
        ("ami-0e1b2c3d4e5f60718", "The source image 'ami-0e1b2c3d4e5f60718' already has AWS Marketplace software installed"),
        ("not-an-ami", "The source image id 'not-an-ami' does not exist."),
    ] {
        expect_error(&app, "StartBuild", start_body(GOOD_FO, ami), "InvalidSourceImageIdException", msg).await;
    }
    expect_error(
        &app,
        "StartBuild",
        start_body("fo-demowin001", LINUX_AMI),
        "InstallerMismatchException",
        "The fulfillment option 'fo-demowin001' installs on Windows",
    )
    .await;
    expect_error(
        &app,
        "StartBuild",
        start_body(GOOD_FO, "ami-0b1b2c3d4e5f60718"),
        "InstallerMismatchException",
        "",
    )
    .await;

    for arn in [
        "arn:aws:sns:us-east-1:123456789012:nope",
        "arn:aws:sns:us-west-2:123456789012:image-build-events",
        "not-an-arn",
    ] {
        let mut b = start_body(GOOD_FO, LINUX_AMI);
        b["SnsTopicArn"] = json!(arn);
        expect_error(
            &app,
            "StartBuild",
            b,
            "InvalidSnsTopicArnException",
            &format!("The SNS topic ARN '{arn}' does not exist."),
        )
        .await;
    }
    // required members missing: AWS's framework ValidationException
    expect_error(&app, "StartBuild", json!({}), "ValidationException", "3 validation errors detected: Value null at 'fulfillmentOptionIds' failed to satisfy constraint: Member must not be null").await;
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["DestinationImageDescription"] = json!("d".repeat(256));
    expect_error(
        &app,
        "StartBuild",
        b,
        "ValidationException",
        "1 validation error detected",
    )
    .await;
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["ClientToken"] = json!("t".repeat(65));
    expect_error(
        &app,
        "StartBuild",
        b,
        "ValidationException",
        "1 validation error detected",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn fulfillment_options_are_checked_per_region() {
    let mut app = spawn(cfg()).await;
    app.region = "ap-south-1".into();
    expect_error(
        &app,
        "StartBuild",
        start_body(GOOD_FO, LINUX_AMI),
        "InvalidFulfillmentOptionIdException",
        "The fulfillment option id 'fo-ids4xf7qagwyc' is not valid in region ap-south-1.",
    )
    .await;
    app.region = "us-west-2".into();
    // the option is offered in us-west-2 and the image exists there too
    let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // records are scoped to the region
    assert_eq!(app.builds().await.len(), 1);
    app.region = "us-east-1".into();
    assert_eq!(app.builds().await.len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn restricted_versions_need_a_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let mut world: Value = serde_json::from_str(imagebuild::world::DEMO_WORLD).unwrap();
    world["Subscriptions"] = json!([]);
    let path = dir.path().join("world.json");
    std::fs::write(&path, world.to_string()).unwrap();
    let app = spawn(ServeConfig {
        world: Some(path),
        ..cfg()
    })
    .await;
    expect_error(
        &app,
        "StartBuild",
        start_body("fo-demorestricted1", LINUX_AMI),
        "InvalidFulfillmentOptionIdException",
        "The fulfillment option id 'fo-demorestricted1' belongs to a restricted version",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn client_token_replays_and_mismatches() {
    let app = spawn(cfg()).await;
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["ClientToken"] = json!("token-1");
    let first = app.call("StartBuild", b.clone()).await;
    assert_eq!(first.status, 200);
    let again = app.call("StartBuild", b.clone()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(app.builds().await.len(), 1);
    b["DestinationImageName"] = json!("another name");
    expect_error(&app, "StartBuild", b, "IdempotentParameterMismatchException", "The client token you have provided is associated with a request that had different parameters").await;
    app.stop().await;
}

#[tokio::test]
async fn concurrent_same_token_creates_one_build() {
    let app = std::sync::Arc::new(
        spawn(ServeConfig {
            provision_seconds: 60,
            ..cfg()
        })
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = start_body(GOOD_FO, LINUX_AMI);
            b["ClientToken"] = json!("same");
            app.call("StartBuild", b).await.body["BuildId"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.builds().await.len(), 1);
}

#[tokio::test]
async fn build_limit_is_enforced_and_race_safe() {
    let app = std::sync::Arc::new(
        spawn(ServeConfig {
            max_concurrent_builds: 3,
            provision_seconds: 600,
            ..cfg()
        })
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            _ => {
                assert_eq!(r.error_type(), "BuildLimitExceededException");
                assert!(r
                    .message()
                    .contains("maximum number of concurrent builds (3)"));
            }
        }
    }
    assert_eq!(ok, 3);
    assert_eq!(app.builds().await.len(), 3);
}

#[tokio::test]
async fn describe_builds_filters_and_errors() {
    let app = spawn(cfg()).await;
    let mut ids = Vec::new();
    for (fo, ami) in [
        (GOOD_FO, LINUX_AMI),
        ("fo-demofailinstall", LINUX_AMI),
        ("fo-demowin001", "ami-0b1b2c3d4e5f60718"),
    ] {
        let r = app.call("StartBuild", start_body(fo, ami)).await;
        let id = r.body["BuildId"].as_str().unwrap().to_string();
        app.wait_terminal(&id).await;
        ids.push(id);
    }
    let list = |filters: Value| {
        let app = &app;
        async move {
            let r = app
                .call("DescribeBuilds", json!({"Filters": filters}))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["Builds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["BuildId"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // newest first
    assert_eq!(
        list(json!([])).await,
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    assert_eq!(
        list(json!([{"Name": "status", "Values": ["failed"]}])).await,
        vec![ids[1].clone()]
    );
    assert_eq!(
        list(json!([{"Name": "status", "Values": ["failed", "succeeded"]}]))
            .await
            .len(),
        3
    );
    assert_eq!(
        list(json!([{"Name": "status", "Values": ["in-progress"]}]))
            .await
            .len(),
        0
    );
    assert_eq!(
        list(json!([{"Name": "fulfillment-option-id", "Values": ["fo-demowin001", GOOD_FO]}]))
            .await,
        vec![ids[2].clone(), ids[0].clone()]
    );
    assert_eq!(
        list(json!([{"Name": "product-id", "Values": ["prod-demofail01"]}])).await,
        vec![ids[1].clone()]
    );
    assert_eq!(list(json!([{"Name": "product-id", "Values": ["prod-abcd1234efgh5"]}, {"Name": "status", "Values": ["succeeded"]}])).await, vec![ids[2].clone(), ids[0].clone()]);
    assert_eq!(
        list(json!([{"Name": "build-id", "Values": [ids[1], "nope"]}])).await,
        vec![ids[1].clone()]
    );
    let r = app.call("DescribeBuilds", json!({"BuildIds": [ids[0], ids[2]], "Filters": [{"Name": "build-id", "Values": [ids[2]]}]})).await;
    assert_eq!(r.body["Builds"].as_array().unwrap().len(), 1);

    expect_error(
        &app,
        "DescribeBuilds",
        json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}),
        "InvalidFilterException",
        "The filter 'colour' is not valid.",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"Filters": [{"Name": "Status", "Values": ["failed"]}]}),
        "InvalidFilterException",
        "The filter 'Status' is not valid.",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"Filters": [{"Name": "status", "Values": ["Failed"]}]}),
        "InvalidFilterException",
        "The value 'Failed' is not valid for filter 'status'.",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"Filters": [{"Name": "status", "Values": []}]}),
        "InvalidFilterException",
        "The filter 'status' requires at least one value.",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"Filters": [{"Values": ["x"]}]}),
        "InvalidFilterException",
        "The filter '' is not valid.",
    )
    .await;
    expect_error(&app, "DescribeBuilds", json!({"Filters": [{"Name": "status", "Values": ["failed"]}, {"Name": "status", "Values": ["succeeded"]}]}), "InvalidFilterException", "The filter 'status' is specified more than once.").await;
    for bad in [0, 257, -1] {
        expect_error(
            &app,
            "DescribeBuilds",
            json!({"MaxResults": bad}),
            "InvalidMaxResultsException",
            "",
        )
        .await;
    }
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"NextToken": "garbage"}),
        "InvalidNextTokenException",
        "The specified next token is not valid.",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"NextToken": ""}),
        "InvalidNextTokenException",
        "",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"NextToken": "x".repeat(1025)}),
        "InvalidNextTokenException",
        "",
    )
    .await;
    expect_error(&app, "DescribeBuilds", json!({"Filters": [{"Name": "fulfillment-option-id", "Values": ["f".repeat(257)]}]}), "InvalidFilterException", "The value 'ffffffffffffffffffffffffffffffff...' is not valid for filter 'fulfillment-option-id'").await;
    let values: Vec<String> = (0..51).map(|i| format!("fo-{i}")).collect();
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"Filters": [{"Name": "fulfillment-option-id", "Values": values}]}),
        "InvalidFilterException",
        "The filter 'fulfillment-option-id' has more than 50 values.",
    )
    .await;
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"BuildIds": ["b".repeat(300)]}),
        "ValidationException",
        "1 validation error detected",
    )
    .await;
    let many: Vec<String> = (0..51).map(|i| format!("id-{i}")).collect();
    expect_error(
        &app,
        "DescribeBuilds",
        json!({"BuildIds": many}),
        "ValidationException",
        "1 validation error detected",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn paging_is_full_stable_and_token_bound() {
    let app = spawn(ServeConfig {
        provision_seconds: 600,
        max_concurrent_builds: 100,
        ..cfg()
    })
    .await;
    let mut created = Vec::new();
    for _ in 0..23 {
        created.push(
            app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
                .await
                .body["BuildId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"MaxResults": 5});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let r = app.call("DescribeBuilds", body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        pages += 1;
        let page: Vec<String> = r.body["Builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["BuildId"].as_str().unwrap().to_string())
            .collect();
        match r.body.get("NextToken").and_then(Value::as_str) {
            Some(t) => {
                assert_eq!(page.len(), 5);
                token = Some(t.to_string());
            }
            None => {
                seen.extend(page);
                break;
            }
        }
        seen.extend(page);
        // A token of one query is useless for another (status filter) ...
        let r = app.call("DescribeBuilds", json!({"NextToken": token, "Filters": [{"Name": "status", "Values": ["in-progress"]}]})).await;
        assert_eq!(r.error_type(), "InvalidNextTokenException");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, created);
    app.stop().await;
}

#[tokio::test]
async fn protocol_errors_have_aws_shapes() {
    let app = spawn(cfg()).await;
    let uri = format!("http://{}/", app.addr);
    // unknown operation, signed correctly
    let r = app
        .raw(app.signed("AWSMPImageBuilding.DeleteBuild", "{}"))
        .await;
    assert_eq!(
        (r.status, r.error_type()),
        (400, "UnknownOperationException")
    );
    let r = app.raw(app.signed("Other.StartBuild", "{}")).await;
    assert_eq!(
        (r.status, r.error_type()),
        (400, "UnknownOperationException")
    );
    // missing target
    let req = hyper::Request::post(&uri)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!(
        (r.status, r.error_type()),
        (400, "UnknownOperationException")
    );
    assert!(r.headers.contains_key("x-amzn-requestid"));
    // wrong content type
    let req = hyper::Request::post(&uri)
        .header("content-type", "application/json")
        .header("x-amz-target", "AWSMPImageBuilding.DescribeBuilds")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    assert_eq!(app.raw(req).await.status, 404);
    // GET
    let req = hyper::Request::get(&uri)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!((r.status, r.error_type()), (403, "AccessDeniedException"));
    // bad JSON and wrong types
    for (body, msg) in [
        ("{not json", "The request body is not valid JSON"),
        ("[1,2]", "Start of list found where not expected."),
        (
            r#"{"MaxResults": "5"}"#,
            "STRING_VALUE can not be converted to an Integer",
        ),
        (
            r#"{"Filters": {"Name": "x"}}"#,
            "Start of structure or map found where not expected.",
        ),
        (
            r#"{"BuildIds": "b"}"#,
            "STRING_VALUE can not be converted to a List",
        ),
    ] {
        let r = app
            .raw(app.signed("AWSMPImageBuilding.DescribeBuilds", body))
            .await;
        assert_eq!(
            (r.status, r.error_type()),
            (400, "SerializationException"),
            "{body}"
        );
        assert!(r.message().starts_with(msg), "{body}: {}", r.message());
    }
    // empty body is {}; null members are absent; unknown members ignored
    for body in ["", r#"{"MaxResults": null, "Colour": 1}"#] {
        let r = app
            .raw(app.signed("AWSMPImageBuilding.DescribeBuilds", body))
            .await;
        assert_eq!(r.status, 200, "{body}: {:?}", r.body);
        assert_eq!(r.body, json!({"Builds": []}));
    }
    // oversized body
    let big = format!(
        r#"{{"Filters": [{{"Name": "build-id", "Values": ["{}"]}}]}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let r = app
        .raw(app.signed("AWSMPImageBuilding.DescribeBuilds", &big))
        .await;
    assert_eq!(r.status, 413);
    // unauthenticated and badly signed
    let req = hyper::Request::post(&uri)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSMPImageBuilding.DescribeBuilds")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!(
        (r.status, r.error_type(), r.message()),
        (
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token"
        )
    );
    let mut req = app.signed("AWSMPImageBuilding.DescribeBuilds", "{}");
    *req.body_mut() = Full::new(Bytes::from("{ }"));
    let r = app.raw(req).await;
    assert_eq!(r.error_type(), "InvalidSignatureException");
    app.stop().await;
}

#[tokio::test]
async fn auth_rejects_wrong_secret_and_skew_and_writes_nothing() {
    let clock = manual_clock();
    let mut app = spawn_with_clock(cfg(), clock.clone()).await;
    app.secret = "wrong".into();
    let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    assert_eq!(r.error_type(), "InvalidSignatureException");
    assert!(r
        .message()
        .starts_with("The request signature we calculated does not match"));
    app.secret = SECRET_KEY.into();
    app.access_key = "AKIDUNKNOWN".into();
    let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    assert_eq!(r.error_type(), "UnrecognizedClientException");
    app.access_key = ACCESS_KEY.into();
    let old = app.signed_at(
        "AWSMPImageBuilding.StartBuild",
        &start_body(GOOD_FO, LINUX_AMI).to_string(),
        clock.now_ms() - 6 * 60_000,
    );
    let r = app.raw(old).await;
    assert_eq!(r.error_type(), "InvalidSignatureException");
    assert!(
        r.message().starts_with("Signature expired:"),
        "{}",
        r.message()
    );
    assert!(app.builds().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn log_urls_expire_and_are_bound_to_the_build() {
    let clock = manual_clock();
    let app = spawn_with_clock(cfg(), clock.clone()).await;
    let id = app
        .call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
        .await
        .body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.wait_terminal(&id).await;
    let url = b["StandardOutputUrl"].as_str().unwrap().to_string();
    assert_eq!(app.get(&url).await.0, 200);
    // the signature is bound to the build: moved to another build id it is refused
    let other = app
        .call("StartBuild", start_body(GOOD_FO, LINUX_AMI))
        .await
        .body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    app.wait_terminal(&other).await;
    let tampered = url.replace(&id, &other);
    let (status, body) = app.get(&tampered).await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"));
    let (status, _) = app.get(&url.replace("Signature=", "Signature=00")).await;
    assert_eq!(status, 403);
    clock.advance_ms(3601 * 1000);
    let (status, body) = app.get(&url).await;
    assert_eq!(status, 403);
    assert!(body.contains("Request has expired"));
    app.stop().await;
}

#[tokio::test]
async fn notifications_are_written_with_each_status_change() {
    let app = spawn(cfg()).await;
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["SnsTopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:image-build-events");
    let id = app.call("StartBuild", b).await.body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    let build = app.wait_terminal(&id).await;
    assert_eq!(
        build["SnsTopicArn"],
        "arn:aws:sns:us-east-1:123456789012:image-build-events"
    );
    let mut msgs = Vec::new();
    for _ in 0..100 {
        let (_, text) = app.get(&format!("http://{}/_imagebuild/notifications?TopicArn=arn:aws:sns:us-east-1:123456789012:image-build-events", app.addr)).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        msgs = v["Notifications"].as_array().unwrap().clone();
        if msgs.len() == 2 && msgs.iter().all(|m| m["Delivered"] == true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(msgs.len(), 2);
    let first: Value = serde_json::from_str(msgs[0]["Message"].as_str().unwrap()).unwrap();
    let second: Value = serde_json::from_str(msgs[1]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            first["Type"].as_str(),
            first["Status"].as_str(),
            first["BuildId"].as_str()
        ),
        (
            Some("BuildStatusChange"),
            Some("InProgress"),
            Some(id.as_str())
        )
    );
    assert_eq!(
        (second["Status"].as_str(), second["PreviousStatus"].as_str()),
        (Some("Succeeded"), Some("InProgress"))
    );
    assert_eq!(
        second["DestinationImageId"],
        build["DestinationImage"]["Id"]
    );
    app.stop().await;
}

#[tokio::test]
async fn builds_survive_restart_and_in_progress_builds_resume() {
    let dir = tempfile::tempdir().unwrap();
    let persistent = ServeConfig {
        in_memory: false,
        data_dir: dir.path().to_path_buf(),
        ..cfg()
    };
    // First life: slow stages, so the build is InProgress when the process stops.
    let app = spawn(ServeConfig {
        provision_seconds: 3600,
        ..persistent.clone()
    })
    .await;
    let done = app
        .call(
            "StartBuild",
            start_body("fo-demowin001", "ami-0b1b2c3d4e5f60718"),
        )
        .await
        .body["BuildId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.call("DescribeBuilds", json!({"MaxResults": 1})).await;
    let token = r.body["NextToken"].as_str().map(str::to_string);
    assert!(token.is_none());
    let id = done.clone();
    assert_eq!(app.builds().await[0]["Status"], "InProgress");
    app.stop().await;
    // Second life: the stored build is due (its stage was due in an hour, so move the clock).
    let clock = manual_clock();
    clock.advance_ms(3601 * 1000);
    let app = spawn_with_clock(persistent.clone(), clock).await;
    let b = app.wait_terminal(&id).await;
    assert_eq!(b["Status"], "Succeeded");
    app.stop().await;
    // Third life: everything is still there, and a NextToken from before a restart still works.
    let app = spawn(persistent.clone()).await;
    app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    let r = app.call("DescribeBuilds", json!({"MaxResults": 1})).await;
    let token = r.body["NextToken"].as_str().unwrap().to_string();
    app.stop().await;
    let app = spawn(persistent).await;
    let r = app
        .call(
            "DescribeBuilds",
            json!({"MaxResults": 1, "NextToken": token}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["Builds"][0]["BuildId"], id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn health_endpoint_reports_ok() {
    let app = spawn(cfg()).await;
    let (status, body) = app
        .get(&format!("http://{}/_imagebuild/health", app.addr))
        .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Status"], "ok");
    let (status, _) = app
        .get(&format!("http://{}/_imagebuild/nope", app.addr))
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Hostile bodies: random JSON of random shapes in every member. Every answer is JSON with a
/// status of 200 or 400 and, for 400, an AWS error type; nothing panics.
#[tokio::test]
async fn random_bodies_get_modeled_errors_never_panics() {
    use rand::{Rng, SeedableRng};
    let app = spawn(ServeConfig {
        provision_seconds: 3600,
        max_concurrent_builds: 1000,
        ..cfg()
    })
    .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let values = |rng: &mut rand::rngs::StdRng| -> Value {
        match rng.gen_range(0..10) {
            0 => Value::Null,
            1 => json!(rng.gen::<i64>()),
            2 => json!(rng.gen::<f64>()),
            3 => json!(true),
            4 => json!("x".repeat(rng.gen_range(0..300))),
            5 => json!([]),
            6 => json!([rng.gen::<u32>(), "a", null]),
            7 => json!({"Name": "status", "Values": ["failed"]}),
            8 => json!([{"Name": "status", "Values": [1]}]),
            _ => json!(["fo-ids4xf7qagwyc", "\u{0000}\u{ffff}"]),
        }
    };
    let members = [
        "FulfillmentOptionIds",
        "SourceImageId",
        "DestinationImageName",
        "DestinationImageDescription",
        "SnsTopicArn",
        "ClientToken",
        "BuildIds",
        "NextToken",
        "MaxResults",
        "Filters",
    ];
    for i in 0..300 {
        let mut body = serde_json::Map::new();
        for m in members {
            if rng.gen_bool(0.5) {
                body.insert(m.into(), values(&mut rng));
            }
        }
        let op = if i % 2 == 0 {
            "StartBuild"
        } else {
            "DescribeBuilds"
        };
        let r = app.call(op, Value::Object(body.clone())).await;
        assert!(
            r.status == 200 || r.status == 400,
            "{op} {body:?} -> {} {:?}",
            r.status,
            r.raw
        );
        if r.status == 400 {
            assert!(r.error_type().ends_with("Exception"), "{:?}", r.body);
        }
    }
    // and raw garbage bytes
    for _ in 0..50 {
        let len = rng.gen_range(0..200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let r = app
            .raw(app.signed("AWSMPImageBuilding.DescribeBuilds", &text))
            .await;
        assert!(
            r.status == 200 || r.status == 400,
            "{} {:?}",
            r.status,
            r.raw
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn repeated_describe_builds_shows_every_write_at_once() {
    // The same request bytes within one second (the clock never moves): whatever answer the
    // service reuses, each write — a new build, the worker's status change — shows at once.
    let app = spawn_with_clock(cfg(), manual_clock()).await;
    let poll = json!({"MaxResults": 5});
    let first = app.call("DescribeBuilds", poll.clone()).await;
    assert_eq!(first.body["Builds"], json!([]));
    let mut ids = Vec::new();
    for n in 1..=3 {
        let r = app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        ids.push(r.body["BuildId"].as_str().unwrap().to_string());
        let page = app.call("DescribeBuilds", poll.clone()).await;
        let listed: Vec<&str> = page.body["Builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["BuildId"].as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), n, "{listed:?}");
        assert!(ids.iter().all(|id| listed.contains(&id.as_str())));
    }
    for id in &ids {
        assert_eq!(app.wait_terminal(id).await["Status"], "Succeeded");
    }
    let page = app.call("DescribeBuilds", poll).await;
    for b in page.body["Builds"].as_array().unwrap() {
        assert_eq!(b["Status"], "Succeeded", "{b}");
    }
}
