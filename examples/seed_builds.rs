//! Bulk-loads N finished builds for the development account into a data directory, for
//! benchmarks: `cargo run --release --example seed_builds -- DIR N`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: failing loudly is right

use imagebuild::domain::{Build, BuildStage, BuildStatus, ProductRef};
use imagebuild::store::sqlite::SqliteStore;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("data dir");
    let n: usize = args.next().expect("count").parse().expect("a number");
    let store = SqliteStore::open(std::path::Path::new(&dir)).expect("open store");
    let base = 1_700_000_000_000_i64;
    let statuses = [
        BuildStatus::Succeeded,
        BuildStatus::Failed,
        BuildStatus::InternalError,
    ];
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..n {
        let fo = format!("fo-bench{}", i % 20);
        let created = base + i64::try_from(i).unwrap() * 10;
        batch.push(Build {
            build_id: uuid::Uuid::now_v7().to_string(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            created_ms: created,
            updated_ms: created,
            status: statuses[i % 3],
            stage: BuildStage::Done,
            due_ms: None,
            version: 3,
            fulfillment_option_ids: vec![fo],
            products: vec![ProductRef {
                id: format!("prod-bench{}", i % 7),
                version: "1.0.0".into(),
                title: "Bench".into(),
            }],
            source_image_id: "ami-0a1b2c3d4e5f60718".into(),
            source_image_name: Some("Ubuntu 22.04 base".into()),
            destination_image_name: format!("bench image {i}"),
            destination_image_description: None,
            destination_image_id: Some(format!("ami-{:017x}", i)),
            sns_topic_arn: None,
            error: None,
            has_logs: true,
            rendered: imagebuild::domain::RenderMemo::default(),
        });
        if batch.len() == 50_000 {
            store
                .import_builds(std::mem::take(&mut batch))
                .await
                .expect("import");
        }
    }
    store.import_builds(batch).await.expect("import");
    eprintln!("seeded {n} builds into {dir}");
}
