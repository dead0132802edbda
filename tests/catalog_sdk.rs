//! The Rust SDK's own `aws-sdk-marketplacecatalog` client against the service: one change set to
//! SUCCEEDED, the entity it made described, and a modeled error as the SDK's typed variant.

mod common;

use aws_sdk_marketplacecatalog::error::ProvideErrorMetadata;
use aws_sdk_marketplacecatalog::types::{Change, Entity};
use aws_smithy_types::Document;
use imagebuild::config::ServeConfig;

async fn client(addr: std::net::SocketAddr) -> aws_sdk_marketplacecatalog::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let creds = aws_credential_types::Credentials::new(
        common::ACCESS_KEY,
        common::SECRET_KEY,
        None,
        None,
        "test",
    );
    let conf = aws_sdk_marketplacecatalog::Config::builder()
        .behavior_version(aws_sdk_marketplacecatalog::config::BehaviorVersion::latest())
        .region(aws_sdk_marketplacecatalog::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(format!("http://{addr}"))
        .http_client(http)
        .build();
    aws_sdk_marketplacecatalog::Client::from_conf(conf)
}

fn doc(pairs: &[(&str, Document)]) -> Document {
    Document::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_runs_a_change_set_and_describes_the_entity() {
    let app = common::spawn(ServeConfig::for_test()).await;
    let c = client(app.addr).await;
    let create = Change::builder()
        .change_type("CreateProduct")
        .change_name("Create")
        .entity(Entity::builder().r#type("AmiProduct@1.0").build().unwrap())
        .details_document(doc(&[(
            "ProductTitle",
            Document::String("Rust product".into()),
        )]))
        .build()
        .unwrap();
    let regions = Change::builder()
        .change_type("AddRegions")
        .entity(
            Entity::builder()
                .r#type("AmiProduct@1.0")
                .identifier("$Create.Entity.Identifier")
                .build()
                .unwrap(),
        )
        .details(r#"{"Regions": ["us-west-2"]}"#)
        .build()
        .unwrap();
    let started = c
        .start_change_set()
        .catalog("AWSMarketplace")
        .change_set(create)
        .change_set(regions)
        .client_request_token("rust-sdk-1")
        .send()
        .await
        .unwrap();
    let id = started.change_set_id().unwrap().to_string();
    let mut d = None;
    for _ in 0..200 {
        let got = c
            .describe_change_set()
            .catalog("AWSMarketplace")
            .change_set_id(&id)
            .send()
            .await
            .unwrap();
        if got.status().map(|s| s.as_str()) == Some("SUCCEEDED") {
            d = Some(got);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let d = d.expect("the change set succeeds");
    assert_eq!(d.start_time().map(str::len), Some(20));
    let product = d.change_set()[0]
        .entity()
        .and_then(|e| e.identifier())
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let e = c
        .describe_entity()
        .catalog("AWSMarketplace")
        .entity_id(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(e.entity_type(), Some("AmiProduct@1.0"));
    assert_eq!(e.entity_identifier(), Some(format!("{product}@1").as_str()));
    let details: serde_json::Value = serde_json::from_str(e.details().unwrap()).unwrap();
    assert_eq!(details["Description"]["ProductTitle"], "Rust product");
    assert_eq!(details["RegionAvailability"]["Regions"][0], "us-west-2");
    let missing = c
        .describe_entity()
        .catalog("AWSMarketplace")
        .entity_id("prod-nothere000001")
        .send()
        .await
        .unwrap_err();
    assert!(missing
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
    app.stop().await;
}
