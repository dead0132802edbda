//! The Catalog API over HTTP in-process: answers rendered when an entity is written are the
//! answers a fresh render gives; restJson error framing; SigV4 on GET/PATCH/DELETE.

mod common;

use common::*;
use imagebuild::config::ServeConfig;
use serde_json::{json, Value};

async fn wait_set(app: &TestApp, id: &str) -> Value {
    for _ in 0..200 {
        let d = app
            .catalog(
                "GET",
                "DescribeChangeSet",
                &format!("catalog=AWSMarketplace&changeSetId={id}"),
                json!({}),
            )
            .await;
        if !matches!(d.body["Status"].as_str(), Some("PREPARING" | "APPLYING")) {
            return d.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("change set {id} did not end");
}

fn config() -> ServeConfig {
    ServeConfig::for_test()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_answers_equal_fresh_renders() {
    let app = spawn(config()).await;
    let body = json!({"Catalog": "AWSMarketplace", "ChangeSet": [
        {"ChangeType": "CreateProduct", "ChangeName": "C", "Entity": {"Type": "AmiProduct@1.0"}, "DetailsDocument": {"ProductTitle": "Rendered \"quoted\" ü"}},
        {"ChangeType": "AddRegions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": "$C.Entity.Identifier"}, "DetailsDocument": {"Regions": ["us-east-1", "eu-west-1"]}}]});
    let r = app.catalog("POST", "StartChangeSet", "", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = wait_set(&app, r.body["ChangeSetId"].as_str().unwrap()).await;
    assert_eq!(d["Status"], "SUCCEEDED", "{d:?}");
    let id = d["ChangeSet"][0]["Entity"]["Identifier"]
        .as_str()
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let described = app
        .catalog(
            "GET",
            "DescribeEntity",
            &format!("catalog=AWSMarketplace&entityId={id}"),
            json!({}),
        )
        .await;
    assert_eq!(described.status, 200);
    assert_eq!(described.headers["content-type"], "application/json");
    // BatchDescribeEntities renders from the decoded entity on every call
    let batch = app
        .catalog(
            "POST",
            "BatchDescribeEntities",
            "",
            json!({"EntityRequestList": [{"Catalog": "AWSMarketplace", "EntityId": id}]}),
        )
        .await;
    let fresh = &batch.body["EntityDetails"][&id];
    for k in [
        "EntityType",
        "EntityArn",
        "EntityIdentifier",
        "LastModifiedDate",
        "DetailsDocument",
    ] {
        assert_eq!(described.body[k], fresh[k], "{k}");
    }
    assert_eq!(
        described.body["Details"]
            .as_str()
            .map(|s| serde_json::from_str::<Value>(s).unwrap()),
        Some(fresh["DetailsDocument"].clone())
    );
    // the listing's rendered summary equals a filtered (freshly rendered) listing's
    let keyset = app
        .catalog(
            "POST",
            "ListEntities",
            "",
            json!({"Catalog": "AWSMarketplace", "EntityType": "AmiProduct"}),
        )
        .await;
    let filtered = app
        .catalog(
            "POST",
            "ListEntities",
            "",
            json!({"Catalog": "AWSMarketplace", "EntityType": "AmiProduct",
        "FilterList": [{"Name": "EntityId", "ValueList": [id]}]}),
        )
        .await;
    let from_index = keyset.body["EntitySummaryList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["EntityId"] == json!(id))
        .cloned();
    assert_eq!(
        from_index.as_ref(),
        filtered.body["EntitySummaryList"].get(0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_errors_carry_the_type_header_and_the_models_status() {
    let app = spawn(config()).await;
    let r = app
        .catalog(
            "GET",
            "DescribeEntity",
            "catalog=AWSMarketplace&entityId=prod-nothere000001",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["x-amzn-errortype"], "ResourceNotFoundException");
    assert_eq!(
        r.body,
        json!({"__type": "ResourceNotFoundException", "Message": "Entity prod-nothere000001 not found."})
    );
    let r = app
        .catalog(
            "PATCH",
            "CancelChangeSet",
            "catalog=AWSMarketplace",
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.error_type()), (422, "ValidationException"));
    assert!(r.message().contains("changeSetId"), "{}", r.message());
    let r = app
        .catalog("DELETE", "DeleteResourcePolicy", "resourceArn=arn%3Aaws%3Aaws-marketplace%3Aus-east-1%3A123456789012%3AAWSMarketplace%2FAmiProduct%2Fprod-x", json!({}))
        .await;
    assert_eq!(
        (r.status, r.error_type()),
        (404, "ResourceNotFoundException")
    );
    // a signature over other query parameters does not verify
    let mut req = app.signed_rest(
        "GET",
        "/DescribeEntity?catalog=AWSMarketplace&entityId=prod-a",
        "",
    );
    *req.uri_mut() = format!(
        "http://{}/DescribeEntity?catalog=AWSMarketplace&entityId=prod-b",
        app.addr
    )
    .parse()
    .unwrap();
    let r = app.raw(req).await;
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );
    // a body that is not JSON
    let r = app
        .raw(app.signed_rest("POST", "/ListEntities", "{not json"))
        .await;
    assert_eq!((r.status, r.error_type()), (400, "SerializationException"));
    // nothing was written by any of it
    let r = app
        .catalog(
            "POST",
            "ListChangeSets",
            "",
            json!({"Catalog": "AWSMarketplace"}),
        )
        .await;
    assert_eq!(r.body, json!({"ChangeSetSummaryList": []}));
    app.stop().await;
}
