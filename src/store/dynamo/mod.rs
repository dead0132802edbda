//! The scale-out store: one DynamoDB table (`aws-sdk-dynamodb`) shared by any number of
//! stateless instances.
//!
//! Single-table layout (`PK`, `SK` strings; `CK` = `{created_ms:013}#{build_id}` sorts newest
//! last, queried backwards):
//!
//! | item | PK | SK | indexes |
//! | --- | --- | --- | --- |
//! | build | `B#{id}` | `B` | GSI1 `A#{acct}#{region}` / CK (all builds); GSI2 `…#S#{status}` / CK; GSI4 `DUE` / `{due:013}#{id}` while in progress |
//! | option / product link | `B#{id}` | `F#{fo}` / `P#{prod}` | GSI3 `A#{acct}#{region}#F#{fo}` (or `#P#`) / CK |
//! | client token | `T#{acct}#{region}#StartBuild#{token}` | `T` | |
//! | in-progress counter | `C#{acct}#{region}` | `C` | |
//! | created image | `I#{region}#{image}` | `I` | |
//! | installer logs | `B#{id}` | `L` | |
//! | notification | `N#{created:013}#{uuid}` | `N` | GSI3 `N#{topic}` / same; GSI4 `PENDING` / same while undelivered |
//! | signing key | `K#{purpose}` | `{id:08}` | |
//! | scan | `S#{id}` | `S` | GSI1 `SA#{acct}#{region}` / CK; GSI2 `…#S#{status}` / CK; GSI3 `…#I#{image}` / CK; GSI4 `SDUE` / `{due:013}#{id}` while in progress |
//! | AMI marker (latest scan, in progress or not) | `L#{acct}#{region}#{image}` | `L` | GSI1 `SL#{acct}#{region}` / CK of the latest scan |
//! | scans in progress counter | `SC#{acct}#{region}` | `C` | |
//! | scan client token | `T#{acct}#{region}#{StartScans or ResubmitScan}#{token}` | `T` | |
//! | catalog document (entity, change set, lock, token, tags, policy) | `D#{kind}#{id}` | `D` | GSI1 `DO#{kind}#{owner}` / sort; GSI4 `DDUE#{kind}` / `{due:013}#{id}` while due |
//!
//! Races are settled by DynamoDB, not by the instances: StartBuild is one `TransactWriteItems`
//! (token put-if-absent, counter `ADD` under `n < limit`, build put-if-absent, links, outbox);
//! updates are conditional on the build's version. Cancellation reasons tell a replayed token
//! from a mismatch from the limit. StartScans reads the token and the AMIs' markers, decides,
//! and writes token, counter (`ADD` under the quota), scans, markers and notifications in one
//! transaction conditioned on what it read; a concurrent writer fails it and it reads again.
//! A scan's `latest` is its AMI's marker pointing at it.
//!
//! Depends on: store (trait), domain.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use rand::RngCore;

use super::metrics::StoreMetrics;
use super::{
    BuildQuery, CreateOutcome, Cursor, Doc, DocWrite, Effects, OutboxEntry, Page,
    ScanCreateOutcome, ScanPage, ScanQuery, SigningKey, StatusCount, Store, StoreError, TokenClaim,
};
use crate::domain::{Build, BuildStatus, CreatedImage, InstallerLogs, Notification};
use crate::scan::Scan;

mod observe;
mod sweep;

type Item = HashMap<String, AttributeValue>;

const GSI: [(&str, &str, &str); 4] = [
    ("GSI1", "G1PK", "G1SK"),
    ("GSI2", "G2PK", "G2SK"),
    ("GSI3", "G3PK", "G3SK"),
    ("GSI4", "G4PK", "G4SK"),
];

/// How long a client token is remembered (DynamoDB TTL attribute `expires_at`, epoch seconds;
/// an expired token not yet swept counts as absent).
const TOKEN_TTL_S: i64 = 7 * 24 * 3600;

/// How long a worker holds a build it is advancing.
const LEASE_MS: i64 = 30_000;

/// How many index rows one listing may read looking for matches before it returns a short page.
const SCAN_BUDGET_FACTOR: usize = 10;

/// The DynamoDB-backed store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    metrics: StoreMetrics,
}

/// One TLS stack (rustls + ring) for every AWS client of the service.
fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|x| x.parse().ok())
}

fn ck(created_ms: i64, id: &str) -> String {
    format!("{created_ms:013}#{id}")
}

fn owner(account: &str, region: &str) -> String {
    format!("A#{account}#{region}")
}

fn unavailable<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    match &e {
        SdkError::ServiceError(se) => match se.err().code() {
            Some(code) => StoreError::Unavailable(format!(
                "dynamodb {code}: {}",
                se.err().message().unwrap_or_default()
            )),
            // No error code: say what did come back (e.g. an HTML 500 page).
            None => {
                let raw: String = format!("{:?}", se.raw()).chars().take(400).collect();
                StoreError::Unavailable(format!("dynamodb answered without an error code: {raw}"))
            }
        },
        other => StoreError::Unavailable(format!("dynamodb unreachable: {other:?}")),
    }
}

/// True when a single-item write lost its condition (`ConditionalCheckFailedException`).
fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("dynamodb request: {e}"))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encoding record: {e}")))
}

fn decode_build(item: &Item) -> Result<Build, StoreError> {
    let body =
        get_s(item, "body").ok_or_else(|| StoreError::Corrupt("build item without body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("build record: {e}")))
}

/// The build item with every index attribute its state calls for.
fn build_item(b: &Build) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert("PK".into(), s(format!("B#{}", b.build_id)));
    item.insert("SK".into(), s("B"));
    item.insert("body".into(), s(encode(b)?));
    item.insert(
        "version".into(),
        n(i64::try_from(b.version).unwrap_or(i64::MAX)),
    );
    item.insert("status".into(), s(b.status.as_str()));
    let key = ck(b.created_ms, &b.build_id);
    item.insert("G1PK".into(), s(owner(&b.account, &b.region)));
    item.insert("G1SK".into(), s(key.clone()));
    item.insert(
        "G2PK".into(),
        s(format!(
            "{}#S#{}",
            owner(&b.account, &b.region),
            b.status.as_str()
        )),
    );
    item.insert("G2SK".into(), s(key));
    if let Some(due) = b.due_ms {
        item.insert("G4PK".into(), s("DUE"));
        item.insert("G4SK".into(), s(format!("{due:013}#{}", b.build_id)));
    }
    Ok(item)
}

fn link_items(b: &Build) -> Vec<Item> {
    let mut links = Vec::new();
    let mut push = |kind: &str, value: &str| {
        let mut item = Item::new();
        item.insert("PK".into(), s(format!("B#{}", b.build_id)));
        item.insert("SK".into(), s(format!("{kind}#{value}")));
        item.insert(
            "G3PK".into(),
            s(format!("{}#{kind}#{value}", owner(&b.account, &b.region))),
        );
        item.insert("G3SK".into(), s(ck(b.created_ms, &b.build_id)));
        item.insert("build_id".into(), s(b.build_id.clone()));
        links.push(item);
    };
    let mut fos = b.fulfillment_option_ids.clone();
    fos.sort();
    fos.dedup();
    for fo in &fos {
        push("F", fo);
    }
    let mut prods: Vec<&str> = b.products.iter().map(|p| p.id.as_str()).collect();
    prods.sort_unstable();
    prods.dedup();
    for p in prods {
        push("P", p);
    }
    links
}

fn notification_item(n_: &Notification) -> Result<Item, StoreError> {
    let key = format!("{:013}#{}", n_.created_ms, uuid::Uuid::now_v7());
    let mut item = Item::new();
    item.insert("PK".into(), s(format!("N#{key}")));
    item.insert("SK".into(), s("N"));
    item.insert("body".into(), s(encode(n_)?));
    item.insert("G3PK".into(), s(format!("N#{}", n_.topic_arn)));
    item.insert("G3SK".into(), s(key.clone()));
    item.insert("G4PK".into(), s("PENDING"));
    item.insert("G4SK".into(), s(key));
    Ok(item)
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let mut p = Put::builder().table_name(table).set_item(Some(item));
    if let Some(c) = condition {
        p = p
            .condition_expression(c)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    }
    Ok(TransactWriteItem::builder()
        .put(p.build().map_err(build_error)?)
        .build())
}

/// A notification item as an outbox entry; its id is the item's key (`N#{created_ms}#{uuid}`),
/// which sorts in queueing order.
fn outbox_entry(item: &Item) -> Result<OutboxEntry, StoreError> {
    let pk = get_s(item, "PK").unwrap_or_default().to_string();
    let body = get_s(item, "body")
        .ok_or_else(|| StoreError::Corrupt("notification without body".into()))?;
    let notification: Notification = serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("notification: {e}")))?;
    Ok(OutboxEntry {
        id: pk,
        notification,
        delivered_ms: get_n(item, "delivered_ms"),
    })
}

fn scan_owner(account: &str, region: &str) -> String {
    format!("SA#{account}#{region}")
}

/// The AMI's marker: which scan is its latest and whether that scan is still in progress.
fn marker_pk(account: &str, region: &str, image: &str) -> String {
    format!("L#{account}#{region}#{image}")
}

fn decode_scan(item: &Item) -> Result<Scan, StoreError> {
    let body =
        get_s(item, "body").ok_or_else(|| StoreError::Corrupt("scan item without body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("scan record: {e}")))
}

/// The scan item with every index attribute its state calls for (`latest` is not stored on
/// it: the AMI's marker says which scan is latest).
fn scan_item(x: &Scan) -> Result<Item, StoreError> {
    let base = scan_owner(&x.account, &x.region);
    let key = ck(x.created_ms, &x.scan_id);
    let mut item = Item::from([
        ("PK".to_string(), s(format!("S#{}", x.scan_id))),
        ("SK".to_string(), s("S")),
        ("body".to_string(), s(encode(x)?)),
        (
            "version".to_string(),
            n(i64::try_from(x.version).unwrap_or(i64::MAX)),
        ),
        ("status".to_string(), s(x.status.as_str())),
        ("G1PK".to_string(), s(base.clone())),
        ("G1SK".to_string(), s(key.clone())),
        (
            "G2PK".to_string(),
            s(format!("{base}#S#{}", x.status.as_str())),
        ),
        ("G2SK".to_string(), s(key.clone())),
        (
            "G3PK".to_string(),
            s(format!("{base}#I#{}", x.source_image_id)),
        ),
        ("G3SK".to_string(), s(key)),
    ]);
    if let Some(due) = x.due_ms {
        item.insert("G4PK".into(), s("SDUE"));
        item.insert("G4SK".into(), s(format!("{due:013}#{}", x.scan_id)));
    }
    Ok(item)
}

/// The marker naming `x` the latest scan of its AMI, in progress; indexed newest first per
/// owner so that "latest only" listings walk markers, not every scan.
fn marker_item(x: &Scan) -> Item {
    Item::from([
        (
            "PK".to_string(),
            s(marker_pk(&x.account, &x.region, &x.source_image_id)),
        ),
        ("SK".to_string(), s("L")),
        ("image".to_string(), s(x.source_image_id.clone())),
        ("scan_id".to_string(), s(x.scan_id.clone())),
        ("active".to_string(), n(i64::from(!x.status.is_terminal()))),
        (
            "G1PK".to_string(),
            s(format!("SL#{}#{}", x.account, x.region)),
        ),
        ("G1SK".to_string(), s(ck(x.created_ms, &x.scan_id))),
    ])
}

/// The (resource, status) an item counts under in `status_counts`, if any.
fn status_of(item: &Item, doc_kinds: &[&str]) -> Option<(String, String)> {
    let pk = get_s(item, "PK")?;
    match get_s(item, "SK")? {
        "B" if pk.starts_with("B#") => Some(("build".into(), get_s(item, "status")?.into())),
        "S" if pk.starts_with("S#") => Some(("scan".into(), get_s(item, "status")?.into())),
        "D" => {
            let kind = pk.strip_prefix("D#")?.split('#').next()?;
            if !doc_kinds.contains(&kind) {
                return None;
            }
            let body: serde_json::Value = serde_json::from_str(get_s(item, "body")?).ok()?;
            Some((kind.into(), body.get("Status")?.as_str()?.into()))
        }
        _ => None,
    }
}

fn newest_first(v: &mut [Scan]) {
    v.sort_by(|x, y| (y.created_ms, &y.scan_id).cmp(&(x.created_ms, &x.scan_id)));
}

impl DynamoStore {
    /// Wraps a client and a table name (tests, and `from_endpoint`).
    #[must_use]
    pub fn new(client: Client, table: &str) -> Self {
        let metrics = StoreMetrics::default();
        let observed = client
            .config()
            .to_builder()
            .interceptor(observe::Observer::new(metrics.clone()))
            .build();
        Self {
            client: Client::from_conf(observed),
            table: Arc::from(table),
            metrics,
        }
    }

    /// This store's instruments (shared: clones record into the same series).
    #[must_use]
    pub fn metrics(&self) -> StoreMetrics {
        self.metrics.clone()
    }

    /// A client for an explicit endpoint with static credentials (tests, local servers).
    #[must_use]
    pub fn static_client(endpoint: &str, region: &str, access_key: &str, secret: &str) -> Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_credential_types::Credentials::new(
                access_key, secret, None, None, "static",
            ))
            .endpoint_url(endpoint)
            .http_client(http_client())
            .build();
        Client::from_conf(conf)
    }

    /// Builds a client from the standard AWS SDK chain (region, credentials), with an optional
    /// endpoint (`--dynamodb-endpoint`, or `AWS_ENDPOINT_URL_DYNAMODB` through the chain).
    pub async fn connect(table: &str, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
        let conf = loader.load().await;
        Self::new(Client::new(&conf), table)
    }

    /// Creates the table and its indexes if it does not exist (idempotent), and waits until it
    /// is active.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when DynamoDB refuses.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        if self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(build_error)
        };
        let mut req = self
            .client
            .create_table()
            .table_name(&*self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("PK", KeyType::Hash)?)
            .key_schema(key("SK", KeyType::Range)?)
            .attribute_definitions(attr("PK")?)
            .attribute_definitions(attr("SK")?);
        for (index, pk, sk) in GSI {
            req = req
                .attribute_definitions(attr(pk)?)
                .attribute_definitions(attr(sk)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .key_schema(key(pk, KeyType::Hash)?)
                        .key_schema(key(sk, KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(build_error)?,
                );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(unavailable(e)),
        }
        for _ in 0..100 {
            let d = self
                .client
                .describe_table()
                .table_name(&*self.table)
                .send()
                .await
                .map_err(unavailable)?;
            if d.table()
                .and_then(|t| t.table_status())
                .is_some_and(|st| st.as_str() == "ACTIVE")
            {
                let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(build_error)?;
                self.client
                    .update_time_to_live()
                    .table_name(&*self.table)
                    .time_to_live_specification(ttl)
                    .send()
                    .await
                    .map_err(unavailable)?;
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(StoreError::Unavailable(
            "table did not become ACTIVE".into(),
        ))
    }

    /// Refuses a table whose keys or indexes are not the ones this store writes.
    ///
    /// # Errors
    /// `StoreError::Unavailable` naming the missing table, key or index.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let d = self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("table '{}' cannot be described ({}); create it with `imagebuild dynamodb create-table`", self.table, unavailable(e))))?;
        let t = d
            .table()
            .ok_or_else(|| StoreError::Unavailable("empty DescribeTable answer".into()))?;
        let keys = |ks: &[KeySchemaElement]| {
            ks.iter()
                .map(|k| {
                    (
                        k.attribute_name().to_string(),
                        k.key_type().as_str().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let want = |pk: &str, sk: &str| {
            vec![
                (pk.to_string(), "HASH".to_string()),
                (sk.to_string(), "RANGE".to_string()),
            ]
        };
        if keys(t.key_schema()) != want("PK", "SK") {
            return Err(StoreError::Unavailable(format!(
                "table '{}' must have the key schema PK (HASH, S), SK (RANGE, S)",
                self.table
            )));
        }
        for (index, pk, sk) in GSI {
            let found = t
                .global_secondary_indexes()
                .iter()
                .find(|g| g.index_name() == Some(index));
            match found {
                Some(g) if keys(g.key_schema()) == want(pk, sk) => {}
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "table '{}' lacks global secondary index {index} on {pk} (HASH), {sk} (RANGE) with projection ALL",
                        self.table
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every item of one partition of an index, all pages.
    async fn partition(
        &self,
        index: &str,
        key: &str,
        value: String,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(index)
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key)
                .expression_attribute_values(":v", s(value.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            out.extend(r.items().iter().cloned());
            match r.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(out),
            }
        }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let r = self
            .client
            .get_item()
            .table_name(&*self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(r.item().cloned())
    }

    async fn batch_builds(&self, ids: &[String]) -> Result<Vec<Build>, StoreError> {
        let pks = ids.iter().map(|id| format!("B#{id}")).collect();
        self.batch_get(pks, "B")
            .await?
            .iter()
            .map(decode_build)
            .collect()
    }

    /// Consistent reads of the items `(pk, sk)` for each distinct pk, in no particular order;
    /// missing items are left out.
    async fn batch_get(&self, mut pks: Vec<String>, sk: &str) -> Result<Vec<Item>, StoreError> {
        pks.sort();
        pks.dedup();
        let mut out = Vec::new();
        for chunk in pks.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|pk| {
                    Item::from([("PK".to_string(), s(pk.clone())), ("SK".to_string(), s(sk))])
                })
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            for _ in 0..10 {
                let Some(req) = pending.take() else { break };
                let r = self
                    .client
                    .batch_get_item()
                    .request_items(&*self.table, req)
                    .send()
                    .await
                    .map_err(unavailable)?;
                out.extend(
                    r.responses()
                        .and_then(|m| m.get(&*self.table))
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .cloned(),
                );
                pending = r
                    .unprocessed_keys()
                    .and_then(|m| m.get(&*self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
        }
        Ok(out)
    }

    /// One backwards query page of an index: `(items, more)`.
    async fn query_page(
        &self,
        (index, pk_attr, sk_attr): (&str, &str, &str),
        pk: &str,
        before: Option<&str>,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start);
        q = match before {
            Some(b) => q
                .key_condition_expression("#pk = :pk AND #sk < :sk")
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":sk", s(b)),
            None => q.key_condition_expression("#pk = :pk"),
        };
        let r = q.send().await.map_err(unavailable)?;
        Ok((r.items().to_vec(), r.last_evaluated_key().cloned()))
    }

    /// Walks one index partition newest first from `after`, keeping builds that match `q`,
    /// until `fetch` are found or the scan budget is spent.
    async fn walk(
        &self,
        index: usize,
        partition: String,
        links: bool,
        q: &BuildQuery,
        after: Option<&Cursor>,
        fetch: usize,
    ) -> Result<Vec<Build>, StoreError> {
        let idx = GSI[index];
        let before = after.map(|c| ck(c.created_ms, &c.build_id));
        let mut found = Vec::new();
        let mut start = None;
        let mut scanned = 0;
        loop {
            let want = fetch - found.len();
            let (items, next) = self
                .query_page(
                    idx,
                    &partition,
                    before.as_deref(),
                    (want * 2).max(25),
                    start,
                )
                .await?;
            scanned += items.len();
            let builds = if links {
                let ids: Vec<String> = items
                    .iter()
                    .filter_map(|i| get_s(i, "build_id").map(str::to_string))
                    .collect();
                let mut b = self.batch_builds(&ids).await?;
                b.sort_by(|x, y| (y.created_ms, &y.build_id).cmp(&(x.created_ms, &x.build_id)));
                b
            } else {
                items
                    .iter()
                    .map(decode_build)
                    .collect::<Result<Vec<_>, _>>()?
            };
            found.extend(builds.into_iter().filter(|b| q.matches(b)));
            if found.len() >= fetch || next.is_none() || scanned >= fetch * SCAN_BUDGET_FACTOR {
                break;
            }
            start = next;
        }
        found.truncate(fetch);
        Ok(found)
    }
}

impl DynamoStore {
    /// Sets each scan's `latest` from its AMI's marker.
    async fn mark_latest(&self, scans: &mut [Scan]) -> Result<(), StoreError> {
        let pks = scans
            .iter()
            .map(|x| marker_pk(&x.account, &x.region, &x.source_image_id))
            .collect();
        let markers = self.batch_get(pks, "L").await?;
        let latest: std::collections::HashSet<&str> =
            markers.iter().filter_map(|m| get_s(m, "scan_id")).collect();
        for x in scans.iter_mut() {
            x.latest = latest.contains(x.scan_id.as_str());
        }
        Ok(())
    }

    /// Scans by id, newest first, with `latest` set.
    async fn batch_scans(&self, ids: &[String]) -> Result<Vec<Scan>, StoreError> {
        let pks = ids.iter().map(|id| format!("S#{id}")).collect();
        let mut scans = self
            .batch_get(pks, "S")
            .await?
            .iter()
            .map(decode_scan)
            .collect::<Result<Vec<_>, _>>()?;
        self.mark_latest(&mut scans).await?;
        newest_first(&mut scans);
        Ok(scans)
    }

    /// Walks one index partition (of scans, or of markers when `markers`) newest first from
    /// `after`, keeping scans that match `q`, until `fetch` are found or the budget is spent.
    async fn walk_scans(
        &self,
        partition: (usize, String, bool),
        q: &ScanQuery,
        after: Option<&Cursor>,
        fetch: usize,
    ) -> Result<Vec<Scan>, StoreError> {
        let (index, partition, markers) = partition;
        let before = after.map(|c| ck(c.created_ms, &c.build_id));
        let mut found = Vec::new();
        let mut start = None;
        let mut scanned = 0;
        loop {
            let want = fetch - found.len();
            let (items, next) = self
                .query_page(
                    GSI[index],
                    &partition,
                    before.as_deref(),
                    (want * 2).max(25),
                    start,
                )
                .await?;
            scanned += items.len();
            let scans = if markers {
                let ids: Vec<String> = items
                    .iter()
                    .filter_map(|i| get_s(i, "scan_id").map(str::to_string))
                    .collect();
                self.batch_scans(&ids).await?
            } else {
                let mut v = items
                    .iter()
                    .map(decode_scan)
                    .collect::<Result<Vec<_>, _>>()?;
                self.mark_latest(&mut v).await?;
                v
            };
            found.extend(scans.into_iter().filter(|x| q.matches(x)));
            if found.len() >= fetch || next.is_none() || scanned >= fetch * SCAN_BUDGET_FACTOR {
                break;
            }
            start = next;
        }
        found.truncate(fetch);
        Ok(found)
    }

    /// The earliest due time in a GSI4 partition (`DUE` for builds, `SDUE` for scans).
    async fn first_due(&self, partition: &str) -> Result<Option<i64>, StoreError> {
        let r = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name("GSI4")
            .key_condition_expression("G4PK = :pk")
            .expression_attribute_values(":pk", s(partition))
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(r.items()
            .first()
            .and_then(|i| get_s(i, "G4SK"))
            .and_then(|k| k.split('#').next())
            .and_then(|d| d.parse().ok()))
    }

    /// One attempt of `create_scans`: decides from consistent reads, then writes everything in
    /// one transaction conditioned on what was read. `None`: the reads went stale, try again.
    async fn try_create_scans(
        &self,
        operation: &str,
        scans: &[Scan],
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notifications: &[Notification],
    ) -> Result<Option<ScanCreateOutcome>, StoreError> {
        let table = &*self.table;
        let first = &scans[0];
        let (account, region) = (&first.account, &first.region);
        let now_s = first.created_ms / 1000;
        let token_pk = token.map(|t| format!("T#{account}#{region}#{operation}#{}", t.token));
        if let (Some(t), Some(pk)) = (token, &token_pk) {
            if let Some(prior) = self.get(pk.clone(), "T").await? {
                if get_n(&prior, "expires_at").is_none_or(|e| e >= now_s) {
                    if get_s(&prior, "hash") != Some(t.param_hash.as_str()) {
                        return Ok(Some(ScanCreateOutcome::TokenMismatch));
                    }
                    let ids: Vec<String> = get_s(&prior, "scan_ids")
                        .unwrap_or_default()
                        .split(',')
                        .map(str::to_string)
                        .collect();
                    let mut original = self.batch_scans(&ids).await?;
                    original.sort_by_key(|x| ids.iter().position(|id| *id == x.scan_id));
                    return Ok(Some(ScanCreateOutcome::Replayed(original)));
                }
            }
        }
        let markers: HashMap<String, Item> = self
            .batch_get(
                scans
                    .iter()
                    .map(|x| marker_pk(account, region, &x.source_image_id))
                    .collect(),
                "L",
            )
            .await?
            .into_iter()
            .filter_map(|m| Some((get_s(&m, "image")?.to_string(), m)))
            .collect();
        for x in scans {
            let marker = markers.get(&x.source_image_id);
            let latest_id = marker.and_then(|m| get_s(m, "scan_id")).unwrap_or_default();
            if marker.is_some_and(|m| get_n(m, "active") != Some(0)) {
                return Ok(Some(ScanCreateOutcome::InProgress {
                    image_id: x.source_image_id.clone(),
                    scan_id: latest_id.to_string(),
                }));
            }
            if let Some(prev) = &x.previous_scan_id {
                if latest_id != prev {
                    return Ok(Some(ScanCreateOutcome::NotLatest {
                        scan_id: prev.clone(),
                        latest_scan_id: latest_id.to_string(),
                    }));
                }
            }
        }
        let wanted = i64::try_from(scans.len()).unwrap_or(i64::MAX);
        let mut items = Vec::new();
        if let (Some(t), Some(pk)) = (token, &token_pk) {
            let ids: Vec<&str> = scans.iter().map(|x| x.scan_id.as_str()).collect();
            let item = Item::from([
                ("PK".to_string(), s(pk.clone())),
                ("SK".to_string(), s("T")),
                ("hash".to_string(), s(t.param_hash.clone())),
                ("scan_ids".to_string(), s(ids.join(","))),
                ("expires_at".to_string(), n(now_s + TOKEN_TTL_S)),
            ]);
            let p = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR expires_at < :now")
                .expression_attribute_values(":now", n(now_s))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(p).build());
        }
        let counter_at = items.len();
        let counter = Update::builder()
            .table_name(table)
            .key("PK", s(format!("SC#{account}#{region}")))
            .key("SK", s("C"))
            .update_expression("ADD n :w")
            .condition_expression("attribute_not_exists(n) OR n <= :cap")
            .expression_attribute_values(":w", n(wanted))
            .expression_attribute_values(":cap", n(i64::from(max_in_progress) - wanted))
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().update(counter).build());
        for x in scans {
            items.push(put(table, scan_item(x)?, Some("attribute_not_exists(PK)"))?);
            let mut p = Put::builder()
                .table_name(table)
                .set_item(Some(marker_item(x)));
            p = match markers
                .get(&x.source_image_id)
                .and_then(|m| get_s(m, "scan_id"))
            {
                Some(old) => p
                    .condition_expression("scan_id = :old AND active = :zero")
                    .expression_attribute_values(":old", s(old))
                    .expression_attribute_values(":zero", n(0)),
                None => p.condition_expression("attribute_not_exists(PK)"),
            };
            items.push(
                TransactWriteItem::builder()
                    .put(p.build().map_err(build_error)?)
                    .build(),
            );
        }
        for nt in notifications {
            items.push(put(table, notification_item(nt)?, None)?);
        }
        match self.transact(items).await {
            Ok(_) => Ok(Some(ScanCreateOutcome::Created)),
            Err(e) => {
                let Some(reasons) = cancellation(&e) else {
                    return Err(unavailable(e));
                };
                let failed = |i: usize| {
                    reasons.get(i).and_then(|r| r.0.as_deref()) == Some("ConditionalCheckFailed")
                };
                let others_failed = (0..reasons.len()).any(|i| i != counter_at && failed(i));
                if failed(counter_at) && !others_failed {
                    return Ok(Some(ScanCreateOutcome::LimitExceeded {
                        limit: max_in_progress,
                    }));
                }
                if reasons.iter().any(|r| {
                    matches!(
                        r.0.as_deref(),
                        Some("ConditionalCheckFailed" | "TransactionConflict")
                    )
                }) {
                    return Ok(None);
                }
                Err(unavailable(e))
            }
        }
    }
}

fn cancellation<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<(Option<String>, Option<Item>)>> {
    let se = e.as_service_error()?;
    match se {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => Some(
            t.cancellation_reasons().iter().map(|r| (r.code().map(str::to_string), r.item().cloned())).collect(),
        ),
        _ => None,
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_build(
        &self,
        build: &Build,
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notification: Option<&Notification>,
    ) -> Result<CreateOutcome, StoreError> {
        // Contended checks are single-item conditional writes (a claim on the token, then the
        // counter); the transaction that follows only writes what the claims already decided,
        // so it does not fail under contention (emulators roll back failed transactions
        // coarsely; real DynamoDB would not mind either way).
        let token_pk = token.map(|t| {
            format!(
                "T#{}#{}#StartBuild#{}",
                build.account, build.region, t.token
            )
        });
        if let (Some(t), Some(pk)) = (token, &token_pk) {
            match self.claim_token(pk, t, build).await? {
                Claim::Won => {}
                Claim::Outcome(o) => return Ok(o),
            }
        }
        let release = |this: &Self| {
            let pk = token_pk.clone();
            let id = build.build_id.clone();
            let table = this.table.clone();
            let client = this.client.clone();
            async move {
                if let Some(pk) = pk {
                    let _ = client
                        .delete_item()
                        .table_name(&*table)
                        .key("PK", s(pk))
                        .key("SK", s("T"))
                        .condition_expression("build_id = :id")
                        .expression_attribute_values(":id", s(id))
                        .send()
                        .await;
                }
            }
        };
        let counter_pk = format!("C#{}#{}", build.account, build.region);
        // The slot is reserved under the build's name (see `sweep`): should this instance die
        // before the transaction below, the sweep gives the slot back.
        let reservation = sweep::reservation(build);
        if build.status == BuildStatus::InProgress {
            let reserved = self
                .reserve_slot(&counter_pk, &reservation, max_in_progress)
                .await;
            if !matches!(reserved, Ok(true)) {
                release(self).await;
            }
            if !reserved? {
                return Ok(CreateOutcome::LimitExceeded {
                    limit: max_in_progress,
                });
            }
        }
        let table = &*self.table;
        let mut items = vec![put(
            table,
            build_item(build)?,
            Some("attribute_not_exists(PK)"),
        )?];
        for link in link_items(build) {
            items.push(put(table, link, None)?);
        }
        if let Some(nt) = notification {
            items.push(put(table, notification_item(nt)?, None)?);
        }
        if build.status == BuildStatus::InProgress {
            // The reservation becomes the build: gone in the same transaction that writes it, and
            // the transaction fails if the sweep has given the slot back meanwhile.
            items.push(sweep::settle_in_transaction(
                table,
                &counter_pk,
                &reservation,
            )?);
        }
        if let Some(pk) = &token_pk {
            let u = Update::builder()
                .table_name(table)
                .key("PK", s(pk.clone()))
                .key("SK", s("T"))
                .update_expression("SET #state = :done")
                .condition_expression("build_id = :id")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":done", s("done"))
                .expression_attribute_values(":id", s(build.build_id.clone()))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        if let Err(e) = self.transact(items).await {
            // Undo the claims so a retry can proceed (the slot only if the sweep has not
            // given it back already).
            if build.status == BuildStatus::InProgress {
                let _ = self.release_slot(&counter_pk, &reservation).await;
            }
            release(self).await;
            return Err(unavailable(e));
        }
        Ok(CreateOutcome::Created)
    }

    async fn list_builds(
        &self,
        query: &BuildQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let fetch = limit + 1;
        let base = owner(&query.account, &query.region);
        let mut builds = if let Some(ids) = &query.build_ids {
            let mut b: Vec<Build> = self
                .batch_builds(ids)
                .await?
                .into_iter()
                .filter(|b| query.matches(b) && after.is_none_or(|c| c.precedes(b)))
                .collect();
            b.sort_by(|x, y| (y.created_ms, &y.build_id).cmp(&(x.created_ms, &x.build_id)));
            b.truncate(fetch);
            b
        } else {
            // One index walk per value of the driving filter, merged newest first.
            let partitions: Vec<(usize, String, bool)> =
                if let Some(f) = &query.fulfillment_option_ids {
                    f.iter()
                        .map(|v| (2, format!("{base}#F#{v}"), true))
                        .collect()
                } else if let Some(p) = &query.product_ids {
                    p.iter()
                        .map(|v| (2, format!("{base}#P#{v}"), true))
                        .collect()
                } else if let Some(st) = &query.statuses {
                    st.iter()
                        .map(|v| (1, format!("{base}#S#{}", v.as_str()), false))
                        .collect()
                } else {
                    vec![(0, base.clone(), false)]
                };
            let mut merged = Vec::new();
            for (index, partition, links) in partitions {
                merged.extend(
                    self.walk(index, partition, links, query, after, fetch)
                        .await?,
                );
            }
            merged.sort_by(|x, y| (y.created_ms, &y.build_id).cmp(&(x.created_ms, &x.build_id)));
            merged.dedup_by(|a, b| a.build_id == b.build_id);
            merged.truncate(fetch);
            merged
        };
        let next = if builds.len() > limit {
            builds.truncate(limit);
            builds.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page {
            builds: builds.into_iter().map(Arc::new).collect(),
            next,
        })
    }

    async fn get_build(&self, build_id: &str) -> Result<Option<Build>, StoreError> {
        self.get(format!("B#{build_id}"), "B")
            .await?
            .as_ref()
            .map(decode_build)
            .transpose()
    }

    async fn due_builds(&self, now_ms: i64, limit: usize) -> Result<Vec<Build>, StoreError> {
        self.due_items("DUE", now_ms, limit)
            .await?
            .iter()
            .map(decode_build)
            .collect()
    }

    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        let builds = self.first_due("DUE").await?;
        let scans = self.first_due("SDUE").await?;
        Ok(builds.into_iter().chain(scans).min())
    }

    async fn update_build(
        &self,
        build: &Build,
        expected_version: u64,
        effects: &Effects,
    ) -> Result<(), StoreError> {
        let table = &*self.table;
        let current = self.get(format!("B#{}", build.build_id), "B").await?;
        let Some(current) = current else {
            return Err(StoreError::ConditionFailed);
        };
        let expected = i64::try_from(expected_version).unwrap_or(i64::MAX);
        if get_n(&current, "version") != Some(expected) {
            return Err(StoreError::ConditionFailed);
        }
        // Lease first (a single-item conditional write): of several instances advancing the same
        // build, one wins here and the others stop before writing anything; a lease left by a
        // crashed instance expires and the build is taken over.
        let leased = self
            .client
            .update_item()
            .table_name(table)
            .key("PK", s(format!("B#{}", build.build_id)))
            .key("SK", s("B"))
            .update_expression("SET lease_until = :until")
            .condition_expression(
                "version = :v AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_values(":until", n(build.updated_ms + LEASE_MS))
            .expression_attribute_values(":now", n(build.updated_ms))
            .expression_attribute_values(":v", n(expected))
            .send()
            .await;
        match leased {
            Ok(_) if current.contains_key("lease_until") => {
                // A lease left by an instance that died between its lease and its write.
                self.metrics
                    .lease_takeovers
                    .get_or_create(&super::metrics::LeaseLabels { lease: "build" })
                    .inc();
            }
            Ok(_) => {}
            Err(e) if condition_failed(&e) => {
                return Err(StoreError::ConditionFailed);
            }
            Err(e) => return Err(unavailable(e)),
        }
        let was_in_progress = get_s(&current, "status") == Some(BuildStatus::InProgress.as_str());
        let mut items = vec![{
            let p = Put::builder()
                .table_name(table)
                .set_item(Some(build_item(build)?))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(expected))
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().put(p).build()
        }];
        let is_in_progress = build.status == BuildStatus::InProgress;
        if was_in_progress != is_in_progress {
            let u = Update::builder()
                .table_name(table)
                .key("PK", s(format!("C#{}#{}", build.account, build.region)))
                .key("SK", s("C"))
                .update_expression("ADD n :d")
                .expression_attribute_values(":d", n(if is_in_progress { 1 } else { -1 }))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(u).build());
        }
        if let Some(img) = &effects.image {
            let item = Item::from([
                (
                    "PK".to_string(),
                    s(format!("I#{}#{}", img.region, img.image_id)),
                ),
                ("SK".to_string(), s("I")),
                ("body".to_string(), s(encode(img)?)),
            ]);
            items.push(put(table, item, None)?);
        }
        if let Some(logs) = &effects.logs {
            let item = Item::from([
                ("PK".to_string(), s(format!("B#{}", build.build_id))),
                ("SK".to_string(), s("L")),
                ("stdout".to_string(), s(logs.stdout.clone())),
                ("stderr".to_string(), s(logs.stderr.clone())),
            ]);
            items.push(put(table, item, None)?);
        }
        if let Some(nt) = &effects.notification {
            items.push(put(table, notification_item(nt)?, None)?);
        }
        self.transact_fenced(items).await
    }

    async fn create_scans(
        &self,
        operation: &str,
        scans: &[Scan],
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notifications: &[Notification],
    ) -> Result<ScanCreateOutcome, StoreError> {
        if scans.is_empty() {
            return Ok(ScanCreateOutcome::Created);
        }
        if scans.len() > usize::try_from(max_in_progress).unwrap_or(usize::MAX) {
            return Ok(ScanCreateOutcome::LimitExceeded {
                limit: max_in_progress,
            });
        }
        // Optimistic: each attempt reads, decides, and writes conditioned on what it read;
        // a concurrent writer makes the transaction fail and the next attempt reads again.
        for attempt in 0..20u64 {
            if let Some(outcome) = self
                .try_create_scans(operation, scans, token, max_in_progress, notifications)
                .await?
            {
                return Ok(outcome);
            }
            let jitter = u64::from(rand::thread_rng().next_u32() % 20);
            tokio::time::sleep(std::time::Duration::from_millis(5 * attempt + jitter)).await;
        }
        Err(StoreError::Unavailable(
            "StartScans kept racing with other writers of the same AMIs".into(),
        ))
    }

    async fn list_scans(
        &self,
        query: &ScanQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let fetch = limit + 1;
        let base = scan_owner(&query.account, &query.region);
        let mut scans = if let Some(ids) = &query.scan_ids {
            let mut v: Vec<Scan> = self
                .batch_scans(ids)
                .await?
                .into_iter()
                .filter(|x| query.matches(x) && after.is_none_or(|c| c.precedes_scan(x)))
                .collect();
            v.truncate(fetch);
            v
        } else {
            // One walk per value of the driving filter (image, else latest, else status, else
            // every scan of the owner), merged newest first.
            let partitions: Vec<(usize, String, bool)> = if let Some(images) = &query.image_ids {
                images
                    .iter()
                    .map(|i| (2, format!("{base}#I#{i}"), false))
                    .collect()
            } else if query.latest_only {
                vec![(0, format!("SL#{}#{}", query.account, query.region), true)]
            } else if let Some(st) = &query.statuses {
                st.iter()
                    .map(|v| (1, format!("{base}#S#{}", v.as_str()), false))
                    .collect()
            } else {
                vec![(0, base, false)]
            };
            let mut merged = Vec::new();
            for p in partitions {
                merged.extend(self.walk_scans(p, query, after, fetch).await?);
            }
            newest_first(&mut merged);
            merged.dedup_by(|a, b| a.scan_id == b.scan_id);
            merged.truncate(fetch);
            merged
        };
        let next = if scans.len() > limit {
            scans.truncate(limit);
            scans.last().map(Cursor::after_scan)
        } else {
            None
        };
        Ok(ScanPage { scans, next })
    }

    async fn get_scan(&self, scan_id: &str) -> Result<Option<Scan>, StoreError> {
        let Some(item) = self.get(format!("S#{scan_id}"), "S").await? else {
            return Ok(None);
        };
        let mut one = [decode_scan(&item)?];
        self.mark_latest(&mut one).await?;
        let [scan] = one;
        Ok(Some(scan))
    }

    async fn due_scans(&self, now_ms: i64, limit: usize) -> Result<Vec<Scan>, StoreError> {
        let mut scans = self
            .due_items("SDUE", now_ms, limit)
            .await?
            .iter()
            .map(decode_scan)
            .collect::<Result<Vec<_>, _>>()?;
        self.mark_latest(&mut scans).await?;
        Ok(scans)
    }

    async fn update_scan(
        &self,
        scan: &Scan,
        expected_version: u64,
        notification: Option<&Notification>,
    ) -> Result<(), StoreError> {
        let table = &*self.table;
        let expected = i64::try_from(expected_version).unwrap_or(i64::MAX);
        let ends = scan.status.is_terminal();
        let mut p = Put::builder()
            .table_name(table)
            .set_item(Some(scan_item(scan)?))
            .expression_attribute_values(":v", n(expected));
        p = if ends {
            // Only the step that ends a scan in progress releases its AMI and its quota slot.
            p.condition_expression("version = :v AND #st IN (:ing, :scn)")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":ing", s(crate::scan::ScanStatus::Ingesting.as_str()))
                .expression_attribute_values(":scn", s(crate::scan::ScanStatus::Scanning.as_str()))
        } else {
            p.condition_expression("version = :v")
        };
        let mut items = vec![TransactWriteItem::builder()
            .put(p.build().map_err(build_error)?)
            .build()];
        if ends {
            let marker = Update::builder()
                .table_name(table)
                .key(
                    "PK",
                    s(marker_pk(
                        &scan.account,
                        &scan.region,
                        &scan.source_image_id,
                    )),
                )
                .key("SK", s("L"))
                .update_expression("SET active = :zero")
                .condition_expression("scan_id = :id")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":id", s(scan.scan_id.clone()))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(marker).build());
            let counter = Update::builder()
                .table_name(table)
                .key("PK", s(format!("SC#{}#{}", scan.account, scan.region)))
                .key("SK", s("C"))
                .update_expression("ADD n :d")
                .expression_attribute_values(":d", n(-1))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(counter).build());
        }
        if let Some(nt) = notification {
            items.push(put(table, notification_item(nt)?, None)?);
        }
        self.transact_fenced(items).await
    }

    async fn created_image(
        &self,
        region: &str,
        image_id: &str,
    ) -> Result<Option<CreatedImage>, StoreError> {
        let Some(item) = self.get(format!("I#{region}#{image_id}"), "I").await? else {
            return Ok(None);
        };
        let body = get_s(&item, "body").unwrap_or_default();
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("image record: {e}")))
    }

    async fn pending_notifications(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let r = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name("GSI4")
            .key_condition_expression("G4PK = :pk")
            .expression_attribute_values(":pk", s("PENDING"))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(unavailable)?;
        r.items().iter().map(outbox_entry).collect()
    }

    async fn mark_delivered(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        for pk in ids {
            let r = self
                .client
                .update_item()
                .table_name(&*self.table)
                .key("PK", s(pk.clone()))
                .key("SK", s("N"))
                .update_expression("SET delivered_ms = :t REMOVE G4PK, G4SK")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":t", n(now_ms))
                .send()
                .await;
            match r {
                // cleared meanwhile: nothing left to mark
                Err(e) if condition_failed(&e) => {}
                other => {
                    other.map_err(unavailable)?;
                }
            }
        }
        Ok(())
    }

    async fn notifications(&self, topic: Option<&str>) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = self
            .notification_items(topic)
            .await?
            .iter()
            .map(outbox_entry)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn clear_notifications(&self, topic: Option<&str>) -> Result<(), StoreError> {
        for item in self.notification_items(topic).await? {
            if let Some(pk) = item.get("PK") {
                self.client
                    .delete_item()
                    .table_name(&*self.table)
                    .key("PK", pk.clone())
                    .key("SK", s("N"))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn get_doc(&self, kind: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        self.get(format!("D#{kind}#{id}"), "D")
            .await?
            .as_ref()
            .map(decode_doc)
            .transpose()
    }

    async fn list_docs(&self, kind: &str, owner: &str) -> Result<Vec<Doc>, StoreError> {
        self.partition("GSI1", "G1PK", format!("DO#{kind}#{owner}"))
            .await?
            .iter()
            .map(decode_doc)
            .collect()
    }

    async fn page_docs(
        &self,
        kind: &str,
        owner: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name("GSI1")
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .expression_attribute_values(":pk", s(format!("DO#{kind}#{owner}")));
        q = match before {
            Some(b) => q
                .key_condition_expression("G1PK = :pk AND G1SK < :before")
                .expression_attribute_values(":before", s(b)),
            None => q.key_condition_expression("G1PK = :pk"),
        };
        let r = q.send().await.map_err(unavailable)?;
        r.items().iter().map(decode_doc).collect()
    }

    async fn due_docs(
        &self,
        kind: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        self.due_items(&format!("DDUE#{kind}"), now_ms, limit)
            .await?
            .iter()
            .map(decode_doc)
            .collect()
    }

    async fn write_docs(&self, writes: &[DocWrite]) -> Result<(), StoreError> {
        let items = writes
            .iter()
            .map(|w| doc_write_item(&self.table, w))
            .collect::<Result<Vec<_>, _>>()?;
        self.transact_fenced(items).await
    }

    async fn status_counts(&self, doc_kinds: &[&str]) -> Result<Vec<StatusCount>, StoreError> {
        // A scan of the whole table: the metrics refresh caches it (`--metrics-status-seconds`).
        let mut tally: std::collections::BTreeMap<(String, String), u64> = Default::default();
        let mut start = None;
        loop {
            let r = self
                .client
                .scan()
                .table_name(&*self.table)
                .projection_expression("PK, SK, #st, body")
                .expression_attribute_names("#st", "status")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in r.items() {
                if let Some(key) = status_of(item, doc_kinds) {
                    *tally.entry(key).or_default() += 1;
                }
            }
            match r.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        Ok(tally
            .into_iter()
            .map(|((resource, status), count)| StatusCount {
                resource,
                status,
                count,
            })
            .collect())
    }

    async fn sweep_reservations(
        &self,
        owner: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<super::Sweep, StoreError> {
        self.sweep(owner, now_ms, grace_ms).await
    }

    async fn reset(&self, account: Option<&str>) -> Result<(), StoreError> {
        // A scan of the whole table: a harness operation, not a request path.
        let mut start = None;
        let mut doomed: Vec<(AttributeValue, AttributeValue)> = Vec::new();
        let mut owned_by_account: Vec<String> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        loop {
            let r = self
                .client
                .scan()
                .table_name(&*self.table)
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(r.items().iter().cloned());
            match r.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        if let Some(a) = account {
            for item in &items {
                let owned = match get_s(item, "SK") {
                    Some("B") => decode_build(item).is_ok_and(|b| b.account == a),
                    Some("S") => decode_scan(item).is_ok_and(|x| x.account == a),
                    _ => false,
                };
                if owned {
                    owned_by_account.push(get_s(item, "PK").unwrap_or_default().to_string());
                }
            }
        }
        for item in items {
            let pk = get_s(&item, "PK").unwrap_or_default().to_string();
            let keep = match account {
                None => pk.starts_with("K#"),
                Some(a) => {
                    !(owned_by_account.contains(&pk)
                        || pk.starts_with(&format!("T#{a}#"))
                        || pk.starts_with(&format!("C#{a}#"))
                        || pk.starts_with(&format!("SC#{a}#"))
                        || pk.starts_with(&format!("L#{a}#"))
                        || (pk.starts_with("D#") && get_s(&item, "owner") == Some(a)))
                }
            };
            if !keep {
                if let (Some(p), Some(sk)) = (item.get("PK"), item.get("SK")) {
                    doomed.push((p.clone(), sk.clone()));
                }
            }
        }
        for (pk, sk) in doomed {
            self.client
                .delete_item()
                .table_name(&*self.table)
                .key("PK", pk)
                .key("SK", sk)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn installer_logs(&self, build_id: &str) -> Result<Option<InstallerLogs>, StoreError> {
        Ok(self
            .get(format!("B#{build_id}"), "L")
            .await?
            .map(|i| InstallerLogs {
                stdout: get_s(&i, "stdout").unwrap_or_default().to_string(),
                stderr: get_s(&i, "stderr").unwrap_or_default().to_string(),
            }))
    }

    async fn signing_keys(
        &self,
        purpose: &str,
        now_ms: i64,
    ) -> Result<Vec<SigningKey>, StoreError> {
        let load = || async {
            let r = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(format!("K#{purpose}")))
                .scan_index_forward(false)
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)?;
            Ok::<_, StoreError>(
                r.items()
                    .iter()
                    .filter_map(|i| {
                        Some(SigningKey {
                            id: get_s(i, "SK")?.parse().ok()?,
                            key: i.get("value")?.as_b().ok()?.as_ref().to_vec(),
                            created_ms: get_n(i, "created_ms")?,
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let keys = load().await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        // First use: every instance races to create key 1; exactly one wins, all read it.
        let _ = self.add_key(purpose, 1, now_ms).await;
        load().await
    }

    async fn rotate_key(&self, purpose: &str, now_ms: i64) -> Result<SigningKey, StoreError> {
        let next = self
            .signing_keys(purpose, now_ms)
            .await?
            .first()
            .map_or(1, |k| k.id + 1);
        self.add_key(purpose, next, now_ms).await
    }
}

fn doc_item(d: &Doc) -> Item {
    let mut item: Item = HashMap::from([
        ("PK".to_string(), s(format!("D#{}#{}", d.kind, d.id))),
        ("SK".to_string(), s("D")),
        ("kind".to_string(), s(&d.kind)),
        ("id".to_string(), s(&d.id)),
        ("owner".to_string(), s(&d.owner)),
        (
            "version".to_string(),
            n(i64::try_from(d.version).unwrap_or(i64::MAX)),
        ),
        ("body".to_string(), s(&d.body)),
        ("G1PK".to_string(), s(format!("DO#{}#{}", d.kind, d.owner))),
        ("G1SK".to_string(), s(&d.sort)),
        ("sort".to_string(), s(&d.sort)),
    ]);
    if let Some(due) = d.due_ms {
        item.insert("due_ms".into(), n(due));
        item.insert("G4PK".into(), s(format!("DDUE#{}", d.kind)));
        item.insert("G4SK".into(), s(format!("{due:013}#{}", d.id)));
    }
    item
}

fn decode_doc(item: &Item) -> Result<Doc, StoreError> {
    let field = |k: &str| {
        get_s(item, k)
            .map(str::to_string)
            .ok_or_else(|| StoreError::Corrupt(format!("catalog document without {k}")))
    };
    Ok(Doc {
        kind: field("kind")?,
        id: field("id")?,
        owner: field("owner")?,
        version: u64::try_from(get_n(item, "version").unwrap_or_default()).unwrap_or_default(),
        due_ms: get_n(item, "due_ms"),
        sort: field("sort")?,
        body: field("body")?,
    })
}

fn doc_write_item(table: &str, w: &DocWrite) -> Result<TransactWriteItem, StoreError> {
    let built = match w {
        DocWrite::Put { doc, expected } => {
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(doc_item(doc)));
            let put = match expected {
                None => put.condition_expression("attribute_not_exists(PK)"),
                Some(v) => put
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(i64::try_from(*v).unwrap_or(i64::MAX))),
            };
            TransactWriteItem::builder().put(put.build().map_err(unavailable_build)?)
        }
        DocWrite::Count {
            kind,
            id,
            owner,
            delta,
            max,
        } => {
            let mut u = Update::builder()
                .table_name(table)
                .key("PK", s(format!("D#{kind}#{id}")))
                .key("SK", s("D"))
                .update_expression("ADD #v :d SET #k = :k, #i = :i, #o = :o, #b = :b, #s = :i")
                .expression_attribute_names("#v", "version")
                .expression_attribute_names("#k", "kind")
                .expression_attribute_names("#i", "id")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_names("#b", "body")
                .expression_attribute_names("#s", "sort")
                .expression_attribute_values(":d", n(*delta))
                .expression_attribute_values(":k", s(kind))
                .expression_attribute_values(":i", s(id))
                .expression_attribute_values(":o", s(owner))
                .expression_attribute_values(":b", s(""));
            // Only an increment is bounded; a release cannot push the quota over.
            if *delta > 0 {
                u = u
                    .condition_expression("attribute_not_exists(#v) OR #v <= :bound")
                    .expression_attribute_values(":bound", n(max - delta));
            }
            TransactWriteItem::builder().update(u.build().map_err(unavailable_build)?)
        }
        DocWrite::Delete { kind, id, expected } => TransactWriteItem::builder().delete(
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(table)
                .key("PK", s(format!("D#{kind}#{id}")))
                .key("SK", s("D"))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(i64::try_from(*expected).unwrap_or(i64::MAX)))
                .build()
                .map_err(unavailable_build)?,
        ),
    };
    Ok(built.build())
}

fn unavailable_build(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("cannot build a DynamoDB request: {e}"))
}

/// What claiming a client token decided.
enum Claim {
    /// This request owns the token and goes on to create the build.
    Won,
    /// The token was settled by another request.
    Outcome(CreateOutcome),
}

/// A claim older than this is taken to belong to a crashed instance and may be taken over.
const STALE_CLAIM_MS: i64 = 30_000;

impl DynamoStore {
    /// Every notification item of `topic` (a GSI3 query), or of all topics (a scan).
    async fn notification_items(&self, topic: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = match topic {
                Some(t) => self
                    .client
                    .query()
                    .table_name(&*self.table)
                    .index_name("GSI3")
                    .key_condition_expression("G3PK = :pk")
                    .expression_attribute_values(":pk", s(format!("N#{t}")))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map(|r| (r.items().to_vec(), r.last_evaluated_key().cloned()))
                    .map_err(unavailable)?,
                None => self
                    .client
                    .scan()
                    .table_name(&*self.table)
                    .filter_expression("SK = :n")
                    .expression_attribute_values(":n", s("N"))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map(|r| (r.items().to_vec(), r.last_evaluated_key().cloned()))
                    .map_err(unavailable)?,
            };
            out.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// One `TransactWriteItems`, retried with jitter while DynamoDB reports a
    /// `TransactionConflict` (the SDK does not retry those).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
        SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    > {
        let mut attempt = 0;
        loop {
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let conflict = r
                .as_ref()
                .err()
                .and_then(cancellation)
                .is_some_and(|reasons| {
                    reasons
                        .iter()
                        .any(|x| x.0.as_deref() == Some("TransactionConflict"))
                        && !reasons
                            .iter()
                            .any(|x| x.0.as_deref() == Some("ConditionalCheckFailed"))
                });
            if !conflict || attempt >= 4 {
                return r;
            }
            attempt += 1;
            let jitter = u64::from(rand::thread_rng().next_u32() % 25);
            tokio::time::sleep(std::time::Duration::from_millis(10 * attempt + jitter)).await;
        }
    }

    /// A version-fenced transaction: a lost condition (or a conflict that outlasted the
    /// retries) is `ConditionFailed`, anything else is unavailability.
    async fn transact_fenced(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        match self.transact(items).await {
            Ok(_) => Ok(()),
            Err(e) => match cancellation(&e) {
                Some(reasons)
                    if reasons.iter().any(|r| {
                        matches!(
                            r.0.as_deref(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        )
                    }) =>
                {
                    Err(StoreError::ConditionFailed)
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    /// Items of a GSI4 partition (`DUE` for builds, `SDUE` for scans) due at or before
    /// `now_ms`, earliest first, at most `limit`.
    async fn due_items(
        &self,
        partition: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let r = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name("GSI4")
            .key_condition_expression("G4PK = :pk AND G4SK <= :sk")
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":sk", s(format!("{now_ms:013}~")))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(r.items().to_vec())
    }

    async fn claim_token(
        &self,
        pk: &str,
        t: &TokenClaim,
        build: &Build,
    ) -> Result<Claim, StoreError> {
        for _ in 0..500 {
            let r = self
                .client
                .put_item()
                .table_name(&*self.table)
                .item("PK", s(pk))
                .item("SK", s("T"))
                .item("hash", s(t.param_hash.clone()))
                .item("build_id", s(build.build_id.clone()))
                .item("state", s("pending"))
                .item("claimed_ms", n(build.created_ms))
                .item("expires_at", n(build.created_ms / 1000 + TOKEN_TTL_S))
                .condition_expression("attribute_not_exists(PK) OR expires_at < :now")
                .expression_attribute_values(":now", n(build.created_ms / 1000))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match r {
                Ok(_) => return Ok(Claim::Won),
                Err(SdkError::ServiceError(se)) => match se.into_err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item().cloned().unwrap_or_default(),
                    other => return Err(StoreError::Unavailable(format!("dynamodb {}: {}", other.code().unwrap_or("error"), other.message().unwrap_or_default()))),
                },
                Err(e) => return Err(unavailable(e)),
            };
            if old.is_empty() {
                continue; // released between our write and the answer
            }
            if get_s(&old, "hash") != Some(t.param_hash.as_str()) {
                return Ok(Claim::Outcome(CreateOutcome::TokenMismatch));
            }
            let owner_id = get_s(&old, "build_id").unwrap_or_default().to_string();
            if get_s(&old, "state") == Some("done") {
                let b = self
                    .get(format!("B#{owner_id}"), "B")
                    .await?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("token names missing build {owner_id}"))
                    })?;
                return Ok(Claim::Outcome(CreateOutcome::Replayed(Box::new(
                    decode_build(&b)?,
                ))));
            }
            let claimed = get_n(&old, "claimed_ms").unwrap_or(0);
            if claimed < build.created_ms - STALE_CLAIM_MS {
                let taken = self
                    .client
                    .update_item()
                    .table_name(&*self.table)
                    .key("PK", s(pk))
                    .key("SK", s("T"))
                    .update_expression("SET build_id = :id, claimed_ms = :now")
                    .condition_expression("#state = :pending AND claimed_ms = :old")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":id", s(build.build_id.clone()))
                    .expression_attribute_values(":now", n(build.created_ms))
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":old", n(claimed))
                    .send()
                    .await;
                if taken.is_ok() {
                    return Ok(Claim::Won);
                }
                continue;
            }
            // Another request is creating this token's build right now: wait for it.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(StoreError::Unavailable(
            "client token stayed claimed by another request".into(),
        ))
    }

    async fn add_key(&self, purpose: &str, id: i64, now_ms: i64) -> Result<SigningKey, StoreError> {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        self.client
            .put_item()
            .table_name(&*self.table)
            .item("PK", s(format!("K#{purpose}")))
            .item("SK", s(format!("{id:08}")))
            .item("value", AttributeValue::B(key.clone().into()))
            .item("created_ms", n(now_ms))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(SigningKey {
            id,
            key,
            created_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh table on the DynamoDB-compatible server named by `IMAGEBUILD_TEST_DYNAMODB_ENDPOINT`
    /// (`./scripts/test` starts `moto_server` and sets it).
    struct MotoFactory;
    impl crate::store::conformance::StoreFactory for MotoFactory {
        async fn create() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
            let endpoint = std::env::var("IMAGEBUILD_TEST_DYNAMODB_ENDPOINT")
                .expect("IMAGEBUILD_TEST_DYNAMODB_ENDPOINT must name a DynamoDB-compatible server (./scripts/test starts moto_server)");
            let client = DynamoStore::static_client(&endpoint, "us-east-1", "testing", "testing");
            let store = DynamoStore::new(client, &format!("t-{}", uuid::Uuid::new_v4()));
            assert!(store.create_table().await.unwrap());
            assert!(
                !store.create_table().await.unwrap(),
                "create_table is idempotent"
            );
            store.check_schema().await.unwrap();
            (Arc::new(store), None)
        }
    }

    mod moto {
        crate::store_conformance_suite!(super::MotoFactory, #[ignore = "needs IMAGEBUILD_TEST_DYNAMODB_ENDPOINT (./scripts/test runs it against moto_server)"]);
        crate::scan_store_conformance_suite!(super::MotoFactory, #[ignore = "needs IMAGEBUILD_TEST_DYNAMODB_ENDPOINT (./scripts/test runs it against moto_server)"]);
        crate::doc_store_conformance_suite!(super::MotoFactory, #[ignore = "needs IMAGEBUILD_TEST_DYNAMODB_ENDPOINT (./scripts/test runs it against moto_server)"]);
    }
}
