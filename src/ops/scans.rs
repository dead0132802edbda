//! The AMI scanning companion service (`AWSMPAmiScanning`): StartScans, DescribeScans,
//! DescribeScanFindings and ResubmitScan.
//!
//! StartScans validates the whole request before anything is written (all or nothing, each
//! message naming `Images[i]` and the offending value): client token, image count, then per
//! image the AMI id (format, duplicates, existence in the caller's region), the access role
//! ARN (format, caller's account), the OS user name (Linux), the scanning port and the product;
//! then the SNS topic. One atomic store call then refuses an AMI with a scan in progress,
//! enforces the in-progress quota, replays or rejects a reused token, and inserts every scan.
//! What needs the role (ownership, image attributes, permissions) is found asynchronously, as
//! `IngestionFailed` codes, as in AWS.
//!
//! Depends on: ops (Ctx, OpError, paging, builds helpers), scan, store (trait), world.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::builds::{
    check_client_token, check_sns_topic, checked_filters, find_image, ErrorDetailOut, FilterIn,
    SourceImageOut, Timestamp, MAX_ID_LEN,
};
use super::paging::{self, Binding};
use super::{Caller, Ctx, OpError};
use crate::scan::{ControlResult, Finding, Scan, ScanStatus, Severity, MAX_IMAGES_PER_REQUEST};
use crate::store::{Cursor, ScanCreateOutcome, ScanQuery, TokenClaim};
use crate::world::{self, Platform};

/// Most scan ids one DescribeScans call may name.
pub const MAX_SCAN_IDS: usize = 50;
/// Default and largest page of DescribeScanFindings.
pub const MAX_FINDINGS_PAGE: usize = 100;

/// One AMI of a StartScans request (model `ImageScanRequest`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageScanIn {
    /// The AMI.
    pub source_image_id: Option<String>,
    /// The role Marketplace assumes.
    pub access_role_arn: Option<String>,
    /// OS user (Linux).
    pub os_user_name: Option<String>,
    /// SSH/RDP port.
    pub scanning_port: Option<i64>,
    /// Product whose exceptions apply.
    pub product_id: Option<String>,
}

/// StartScans input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartScansInput {
    /// Idempotency token.
    pub client_token: Option<String>,
    /// The AMIs.
    pub images: Option<Vec<ImageScanIn>>,
    /// Topic to notify.
    pub sns_topic_arn: Option<String>,
}

/// One started scan (model `ScanSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScanSummaryOut {
    /// Scan id.
    pub scan_id: String,
    /// AMI.
    pub source_image_id: String,
    /// Status.
    pub status: &'static str,
}

/// StartScans output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartScansOutput {
    /// One per requested AMI, in request order.
    pub scans: Vec<ScanSummaryOut>,
}

/// DescribeScans input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScansInput {
    /// Only these scans.
    pub scan_ids: Option<Vec<String>>,
    /// Filters.
    pub filters: Option<Vec<FilterIn>>,
    /// Page size.
    pub max_results: Option<i64>,
    /// Continue after this token.
    pub next_token: Option<String>,
}

/// DescribeScans output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScansOutput {
    /// Newest first.
    pub scans: Vec<ScanView>,
    /// Next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// DescribeScanFindings input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScanFindingsInput {
    /// The scan.
    pub scan_id: Option<String>,
    /// Also return exempted findings.
    pub include_exempted: Option<bool>,
    /// Filters.
    pub filters: Option<Vec<FilterIn>>,
    /// Page size.
    pub max_results: Option<i64>,
    /// Continue after this token.
    pub next_token: Option<String>,
}

/// ResubmitScan input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResubmitScanInput {
    /// The latest, finished scan of the AMI.
    pub scan_id: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
    /// Override.
    pub access_role_arn: Option<String>,
    /// Override.
    pub os_user_name: Option<String>,
    /// Override.
    pub scanning_port: Option<i64>,
    /// Override.
    pub product_id: Option<String>,
    /// Override.
    pub sns_topic_arn: Option<String>,
}

/// ResubmitScan output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResubmitScanOutput {
    /// The new scan.
    pub scan_id: String,
    /// The scan it follows.
    pub previous_scan_id: String,
    /// The AMI.
    pub source_image_id: String,
    /// Attempt number.
    pub attempt: u32,
    /// Status.
    pub status: &'static str,
}

/// `^arn:aws:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+$` (the Catalog API's pattern); returns
/// the account.
fn role_arn_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, name) = rest.split_once(":role/")?;
    let ok = world::is_account_id(account)
        && !name.is_empty()
        && arn.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c));
    ok.then_some(account)
}

/// `^[a-zA-Z][a-zA-Z0-9_-]{0,31}$`.
fn valid_os_user(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_role(caller: &Caller, field: &str, arn: &str) -> Result<(), OpError> {
    match role_arn_account(arn) {
        None => Err(OpError::InvalidAccessRoleArnException(format!(
            "{field}: '{}' is not a valid IAM role ARN. Use the format arn:aws:iam::123456789012:role/RoleName.",
            clip(arn)
        ))),
        Some(a) if a != caller.account => Err(OpError::InvalidAccessRoleArnException(format!(
            "{field}: the role {arn} belongs to account {a}. The access role must exist in your AWS Marketplace seller account {}.",
            caller.account
        ))),
        Some(_) => Ok(()),
    }
}

fn check_os_user(field: &str, user: Option<&str>, platform: Platform) -> Result<(), OpError> {
    match (user, platform) {
        (None, Platform::Linux) => Err(OpError::InvalidOsUserNameException(format!(
            "{field}: an OS user name is required for Linux AMIs (for example ec2-user or ubuntu)."
        ))),
        (Some(u), _) if !valid_os_user(u) => Err(OpError::InvalidOsUserNameException(format!(
            "{field}: '{}' is not a valid OS user name. It must start with a letter and contain at most 32 letters, digits, underscores (_) or dashes (-).",
            clip(u)
        ))),
        _ => Ok(()),
    }
}

fn check_port(field: &str, port: i64) -> Result<u16, OpError> {
    u16::try_from(port).ok().filter(|p| *p >= 1).ok_or_else(|| {
        OpError::InvalidScanningPortException(format!(
            "{field}: {port} is not a valid port. The scanning port must be from 1 to 65535."
        ))
    })
}

fn check_product(
    world: &world::World,
    caller: &Caller,
    field: &str,
    id: &str,
) -> Result<(), OpError> {
    if !world::is_product_id(id) {
        return Err(OpError::InvalidProductIdException(format!(
            "{field}: '{}' is not a valid product ID (prod- followed by lowercase letters and digits).",
            clip(id)
        )));
    }
    match world.product(id) {
        Some(p) if p.seller_account_id == caller.account => Ok(()),
        _ => Err(OpError::InvalidProductIdException(format!(
            "{field}: the product {id} does not exist in your seller account {}.",
            caller.account
        ))),
    }
}

pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}...", s.chars().take(64).collect::<String>())
    } else {
        s.to_string()
    }
}

fn default_port(platform: Platform) -> u16 {
    match platform {
        Platform::Linux => 22,
        Platform::Windows => 3389,
    }
}

fn hash_json(v: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

pub(crate) fn summary(s: &Scan) -> ScanSummaryOut {
    ScanSummaryOut {
        scan_id: s.scan_id.clone(),
        source_image_id: s.source_image_id.clone(),
        status: s.status.as_str(),
    }
}

fn token_claim(token: Option<&String>, params: &serde_json::Value) -> Option<TokenClaim> {
    token.map(|t| TokenClaim {
        token: t.clone(),
        param_hash: hash_json(params),
    })
}

fn in_progress_error(image_id: &str, scan_id: &str) -> OpError {
    OpError::ScanInProgressException(format!(
        "The AMI {image_id} already has a scan in progress ({scan_id}). Wait until it finishes, then submit the AMI again."
    ))
}

fn limit_error(limit: u32) -> OpError {
    OpError::ScanLimitExceededException(format!(
        "You can have at most {limit} scans in progress. Wait until some of your scans finish, then try again."
    ))
}

fn mismatch_error() -> OpError {
    OpError::IdempotentParameterMismatchException(
        "The client token you have provided is associated with a request that had different parameters. Use a new client token or repeat the original request.".into(),
    )
}

/// Shares AMIs with Marketplace and starts their scans (StartScans).
///
/// # Errors
/// The modeled StartScans errors.
pub async fn start_scans(
    ctx: &Ctx,
    caller: &Caller,
    input: StartScansInput,
) -> Result<StartScansOutput, OpError> {
    check_client_token(input.client_token.as_ref())?;
    let images = input.images.clone().unwrap_or_default();
    if images.is_empty() {
        return Err(OpError::InvalidSourceImageIdException(
            "Images: at least one AMI must be specified.".into(),
        ));
    }
    if images.len() > MAX_IMAGES_PER_REQUEST {
        return Err(OpError::ImageLimitExceededException(format!(
            "Images: you can submit at most {MAX_IMAGES_PER_REQUEST} AMIs in one request; this request has {}.",
            images.len()
        )));
    }
    let world = ctx.world();
    let now = ctx.clock.now_ms();
    let mut scans = Vec::with_capacity(images.len());
    for (i, img) in images.iter().enumerate() {
        let field = format!("Images[{i}]");
        let image_id = img.source_image_id.clone().unwrap_or_default();
        if !world::is_image_id(&image_id) {
            return Err(OpError::InvalidSourceImageIdException(format!(
                "{field}.SourceImageId: '{}' is not a valid AMI ID (ami- followed by 8 or 17 lowercase hexadecimal characters).",
                clip(&image_id)
            )));
        }
        if let Some(j) = images[..i]
            .iter()
            .position(|o| o.source_image_id.as_deref() == Some(image_id.as_str()))
        {
            return Err(OpError::InvalidSourceImageIdException(format!(
                "{field}.SourceImageId: the AMI {image_id} is already in Images[{j}]. Each AMI can appear once per request."
            )));
        }
        let image = find_image(ctx, &world, &caller.region, &image_id)
            .await?
            .filter(|m| m.visible_to(&caller.account))
            .ok_or_else(|| {
                OpError::InvalidSourceImageIdException(format!(
                    "{field}.SourceImageId: the AMI {image_id} does not exist in {}.",
                    caller.region
                ))
            })?;
        let role = img.access_role_arn.clone().unwrap_or_default();
        check_role(caller, &format!("{field}.AccessRoleArn"), &role)?;
        check_os_user(
            &format!("{field}.OsUserName"),
            img.os_user_name.as_deref(),
            image.platform,
        )?;
        let port = match img.scanning_port {
            Some(p) => check_port(&format!("{field}.ScanningPort"), p)?,
            None => default_port(image.platform),
        };
        if let Some(p) = &img.product_id {
            check_product(&world, caller, &format!("{field}.ProductId"), p)?;
        }
        scans.push(Scan {
            scan_id: ctx.harness.new_build_id(),
            account: caller.account.clone(),
            region: caller.region.clone(),
            created_ms: now,
            updated_ms: now,
            ended_ms: None,
            status: ScanStatus::Ingesting,
            due_ms: Some(
                ctx.harness
                    .due_scan(&ctx.config, ScanStatus::Ingesting, now),
            ),
            version: 1,
            source_image_id: image_id,
            source_image_name: image.name.clone(),
            platform: image.platform,
            access_role_arn: role,
            os_user_name: match image.platform {
                Platform::Linux => img.os_user_name.clone(),
                Platform::Windows => None,
            },
            scanning_port: port,
            product_id: img.product_id.clone(),
            sns_topic_arn: input.sns_topic_arn.clone(),
            error: None,
            attempt: 1,
            previous_scan_id: None,
            latest: true,
            report: None,
            scripted: None,
        });
    }
    if let Some(arn) = &input.sns_topic_arn {
        check_sns_topic(ctx, &world, caller, arn).await?;
    }
    let token = token_claim(
        input.client_token.as_ref(),
        &json!([images, input.sns_topic_arn]),
    );
    let notifications: Vec<_> = scans
        .iter()
        .filter_map(|s| s.notification(None, now))
        .collect();
    let outcome = ctx
        .store
        .create_scans(
            "StartScans",
            &scans,
            token.as_ref(),
            ctx.config.max_in_progress_scans,
            &notifications,
        )
        .await?;
    let stored = match outcome {
        ScanCreateOutcome::Created => {
            ctx.worker.wake();
            count_new(ctx, &scans);
            tracing::info!(count = scans.len(), account = %caller.account, "scans started");
            scans
        }
        ScanCreateOutcome::Replayed(original) => original,
        ScanCreateOutcome::TokenMismatch => return Err(mismatch_error()),
        ScanCreateOutcome::LimitExceeded { limit } => return Err(limit_error(limit)),
        ScanCreateOutcome::InProgress { image_id, scan_id } => {
            let i = images
                .iter()
                .position(|m| m.source_image_id.as_deref() == Some(image_id.as_str()))
                .unwrap_or_default();
            return Err(OpError::ScanInProgressException(format!(
                "Images[{i}].SourceImageId: the AMI {image_id} already has a scan in progress ({scan_id}). Wait until it finishes, then submit the AMI again."
            )));
        }
        ScanCreateOutcome::NotLatest { scan_id, .. } => {
            return Err(OpError::InvalidScanIdException(format!(
                "The scan {scan_id} is not the latest scan of its AMI."
            )));
        }
    };
    Ok(StartScansOutput {
        scans: stored.iter().map(summary).collect(),
    })
}

/// Starts a new attempt for the AMI of a finished scan (ResubmitScan).
///
/// # Errors
/// The modeled ResubmitScan errors.
pub async fn resubmit_scan(
    ctx: &Ctx,
    caller: &Caller,
    input: ResubmitScanInput,
) -> Result<ResubmitScanOutput, OpError> {
    check_client_token(input.client_token.as_ref())?;
    let id = input.scan_id.clone().unwrap_or_default();
    let previous = own_scan(ctx, caller, &id).await?;
    let world = ctx.world();
    let role = input
        .access_role_arn
        .clone()
        .unwrap_or_else(|| previous.access_role_arn.clone());
    if input.access_role_arn.is_some() {
        check_role(caller, "AccessRoleArn", &role)?;
    }
    let os_user = input
        .os_user_name
        .clone()
        .or_else(|| previous.os_user_name.clone());
    if input.os_user_name.is_some() {
        check_os_user("OsUserName", os_user.as_deref(), previous.platform)?;
    }
    let port = match input.scanning_port {
        Some(p) => check_port("ScanningPort", p)?,
        None => previous.scanning_port,
    };
    let product = input
        .product_id
        .clone()
        .or_else(|| previous.product_id.clone());
    if let Some(p) = &input.product_id {
        check_product(&world, caller, "ProductId", p)?;
    }
    let topic = input
        .sns_topic_arn
        .clone()
        .or_else(|| previous.sns_topic_arn.clone());
    if let Some(arn) = &input.sns_topic_arn {
        check_sns_topic(ctx, &world, caller, arn).await?;
    }
    let now = ctx.clock.now_ms();
    let scan = Scan {
        scan_id: ctx.harness.new_build_id(),
        created_ms: now,
        updated_ms: now,
        ended_ms: None,
        status: ScanStatus::Ingesting,
        due_ms: Some(
            ctx.harness
                .due_scan(&ctx.config, ScanStatus::Ingesting, now),
        ),
        version: 1,
        access_role_arn: role,
        os_user_name: match previous.platform {
            Platform::Linux => os_user,
            Platform::Windows => None,
        },
        scanning_port: port,
        product_id: product,
        sns_topic_arn: topic,
        error: None,
        attempt: previous.attempt + 1,
        previous_scan_id: Some(previous.scan_id.clone()),
        latest: true,
        report: None,
        scripted: None,
        ..previous.clone()
    };
    let token = token_claim(
        input.client_token.as_ref(),
        &json!([
            id,
            input.access_role_arn,
            input.os_user_name,
            input.scanning_port,
            input.product_id,
            input.sns_topic_arn
        ]),
    );
    let notifications: Vec<_> = scan.notification(None, now).into_iter().collect();
    let outcome = ctx
        .store
        .create_scans(
            "ResubmitScan",
            std::slice::from_ref(&scan),
            token.as_ref(),
            ctx.config.max_in_progress_scans,
            &notifications,
        )
        .await?;
    let stored = match outcome {
        ScanCreateOutcome::Created => {
            ctx.worker.wake();
            count_new(ctx, std::slice::from_ref(&scan));
            tracing::info!(scan_id = %scan.scan_id, previous = %previous.scan_id, "scan resubmitted");
            scan
        }
        ScanCreateOutcome::Replayed(mut original) => original.pop().ok_or_else(|| {
            OpError::InternalServerErrorException(
                "An internal error occurred. Please retry your request.".into(),
            )
        })?,
        ScanCreateOutcome::TokenMismatch => return Err(mismatch_error()),
        ScanCreateOutcome::LimitExceeded { limit } => return Err(limit_error(limit)),
        ScanCreateOutcome::InProgress { image_id, scan_id } => {
            return Err(in_progress_error(&image_id, &scan_id))
        }
        ScanCreateOutcome::NotLatest {
            scan_id,
            latest_scan_id,
        } => {
            return Err(OpError::InvalidScanIdException(format!(
                "The scan {scan_id} is not the latest scan of {}. Resubmit its latest scan, {latest_scan_id}.",
                previous.source_image_id
            )));
        }
    };
    Ok(ResubmitScanOutput {
        scan_id: stored.scan_id.clone(),
        previous_scan_id: stored.previous_scan_id.clone().unwrap_or_default(),
        source_image_id: stored.source_image_id.clone(),
        attempt: stored.attempt,
        status: stored.status.as_str(),
    })
}

/// The caller's scan, or `InvalidScanIdException`.
async fn own_scan(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Scan, OpError> {
    let missing = || {
        OpError::InvalidScanIdException(format!("ScanId: the scan '{}' does not exist.", clip(id)))
    };
    if id.is_empty() || id.chars().count() > MAX_ID_LEN {
        return Err(missing());
    }
    ctx.store
        .get_scan(id)
        .await?
        .filter(|s| s.account == caller.account && s.region == caller.region)
        .ok_or_else(missing)
}

const SCAN_FILTERS: [&str; 5] = ["scan-id", "image-id", "product-id", "status", "latest-only"];

fn scan_query(caller: &Caller, input: &DescribeScansInput) -> Result<ScanQuery, OpError> {
    let mut q = ScanQuery {
        account: caller.account.clone(),
        region: caller.region.clone(),
        ..ScanQuery::default()
    };
    if let Some(ids) = input.scan_ids.as_ref().filter(|ids| !ids.is_empty()) {
        if ids.len() > MAX_SCAN_IDS {
            return Err(OpError::InvalidScanIdException(format!(
                "ScanIds: at most {MAX_SCAN_IDS} scan ids can be given; this request has {}.",
                ids.len()
            )));
        }
        if let Some(bad) = ids
            .iter()
            .find(|i| i.is_empty() || i.chars().count() > MAX_ID_LEN)
        {
            return Err(OpError::InvalidScanIdException(format!(
                "ScanIds: '{}' is not a valid scan id.",
                clip(bad)
            )));
        }
        q.scan_ids = Some(ids.clone());
    }
    for (name, values) in checked_filters(input.filters.as_ref(), &SCAN_FILTERS)? {
        match name {
            "scan-id" => {
                q.scan_ids = Some(match q.scan_ids.take() {
                    Some(ids) => ids.into_iter().filter(|i| values.contains(i)).collect(),
                    None => values,
                });
            }
            "image-id" => q.image_ids = Some(values),
            "product-id" => q.product_ids = Some(values),
            "latest-only" => {
                q.latest_only = match values.as_slice() {
                    [v] if v == "true" => true,
                    [v] if v == "false" => false,
                    _ => {
                        return Err(OpError::InvalidFilterException(
                            "The filter 'latest-only' takes one value: true or false.".into(),
                        ))
                    }
                };
            }
            _ => {
                let mut statuses = Vec::new();
                for v in &values {
                    statuses.push(ScanStatus::from_filter_value(v).ok_or_else(|| {
                        OpError::InvalidFilterException(format!(
                            "The value '{}' is not valid for filter 'status'. Valid values are: {}.",
                            clip(v),
                            ScanStatus::ALL.map(ScanStatus::filter_value).join(", ")
                        ))
                    })?);
                }
                q.statuses = Some(statuses);
            }
        }
    }
    Ok(q)
}

fn scan_query_hash(q: &ScanQuery) -> String {
    let statuses: Option<Vec<&str>> = q
        .statuses
        .as_ref()
        .map(|s| s.iter().map(|x| x.as_str()).collect());
    paging::query_hash(&json!([
        paging::value_set(q.scan_ids.as_deref()),
        paging::value_set(q.image_ids.as_deref()),
        paging::value_set(q.product_ids.as_deref()),
        paging::value_set(statuses.as_deref()),
        q.latest_only
    ]))
}

pub(crate) fn page_size(
    max_results: Option<i64>,
    default: usize,
    max: i64,
) -> Result<usize, OpError> {
    match max_results {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(usize::try_from(n).unwrap_or(default)),
        Some(n) => Err(OpError::InvalidMaxResultsException(format!(
            "The value {n} for MaxResults is not valid. MaxResults must be between 1 and {max}."
        ))),
    }
}

pub(crate) fn bad_token() -> OpError {
    OpError::InvalidNextTokenException("The specified next token is not valid.".into())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct FindingCountsOut {
    critical: u32,
    high: u32,
    medium: u32,
    low: u32,
    informational: u32,
    exempted: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScanOut<'a> {
    scan_id: &'a str,
    source_image: SourceImageOut<'a>,
    platform: &'static str,
    access_role_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_user_name: Option<&'a str>,
    scanning_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sns_topic_arn: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_detail: Option<ErrorDetailOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finding_counts: Option<FindingCountsOut>,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_scan_id: Option<&'a str>,
    latest: bool,
    start_time: Timestamp,
    last_update_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<Timestamp>,
}

/// A scan as DescribeScans shows it (model `Scan`).
#[derive(Debug, Clone)]
pub struct ScanView(pub Scan);

impl Serialize for ScanView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = &self.0;
        ScanOut {
            scan_id: &x.scan_id,
            source_image: SourceImageOut {
                id: &x.source_image_id,
                name: x.source_image_name.as_deref(),
            },
            platform: x.platform.as_str(),
            access_role_arn: &x.access_role_arn,
            os_user_name: x.os_user_name.as_deref(),
            scanning_port: x.scanning_port,
            product_id: x.product_id.as_deref(),
            sns_topic_arn: x.sns_topic_arn.as_deref(),
            status: x.status.as_str(),
            error_detail: x.error.as_ref().map(|e| ErrorDetailOut {
                code: &e.code,
                message: &e.message,
            }),
            finding_counts: x.report.as_ref().map(|r| {
                let c = r.counts();
                FindingCountsOut {
                    critical: c.critical,
                    high: c.high,
                    medium: c.medium,
                    low: c.low,
                    informational: c.informational,
                    exempted: c.exempted,
                }
            }),
            attempt: x.attempt,
            previous_scan_id: x.previous_scan_id.as_deref(),
            latest: x.latest,
            start_time: Timestamp(x.created_ms),
            last_update_time: Timestamp(x.updated_ms),
            end_time: x.ended_ms.map(Timestamp),
        }
        .serialize(s)
    }
}

/// Lists the caller's scans (DescribeScans).
///
/// # Errors
/// The modeled DescribeScans errors.
pub async fn describe_scans(
    ctx: &Ctx,
    caller: &Caller,
    input: DescribeScansInput,
) -> Result<DescribeScansOutput, OpError> {
    let limit = page_size(input.max_results, ctx.config.default_page_size, 256)?;
    let query = scan_query(caller, &input)?;
    let qh = scan_query_hash(&query);
    let binding = Binding {
        operation: "DescribeScans",
        account: &caller.account,
        region: &caller.region,
        query_hash: &qh,
    };
    let now = ctx.clock.now_ms();
    let after = match &input.next_token {
        None => None,
        Some(t) => Some(paging::decode(&ctx.paging_keys, &binding, t, now).ok_or_else(bad_token)?),
    };
    let page = ctx.store.list_scans(&query, after.as_ref(), limit).await?;
    Ok(DescribeScansOutput {
        next_token: page
            .next
            .as_ref()
            .map(|c| paging::encode(&ctx.paging_keys, &binding, c, now)),
        scans: page.scans.into_iter().map(ScanView).collect(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ControlOut<'a> {
    control_id: &'a str,
    title: &'static str,
    result: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScopeOut<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VulnerabilityOut<'a> {
    cve_id: &'a str,
    package_name: &'a str,
    installed_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_version: Option<&'a str>,
    cvss: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct FindingOut<'a> {
    finding_id: &'a str,
    control_id: &'a str,
    result: &'static str,
    severity: &'static str,
    code: &'a str,
    title: &'a str,
    description: &'a str,
    remediation: &'a str,
    scope: Vec<ScopeOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vulnerability: Option<VulnerabilityOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exemption_id: Option<&'a str>,
}

/// DescribeScanFindings output.
#[derive(Debug, Clone)]
pub struct DescribeScanFindingsOutput {
    scan: Scan,
    findings: Vec<Finding>,
    next_token: Option<String>,
}

/// What each control checks (the `Title` of `Control`).
#[must_use]
pub fn control_title(id: &str) -> &'static str {
    match id {
        "KNOWN_VULNERABILITY" => "No package has a known vulnerability (CVE)",
        "MALWARE" => "No malware or virus is present",
        "UNSUPPORTED_OS" => "The operating system and packages are supported (not end of life)",
        "SSH_PASSWORD_AUTHENTICATION" => "SSH password authentication is disabled",
        "ROOT_PASSWORD" => "The root password is locked",
        "ROOT_REMOTE_LOGIN" => "Remote root login is disabled",
        "AUTHORIZED_KEYS" => "No SSH authorized keys are baked into the image",
        "HARDCODED_CREDENTIALS" => "No passwords, private keys or AWS keys are stored in the image",
        "WINDOWS_GUEST_ACCOUNTS" => "No guest accounts or leftover Remote Desktop users",
        "WINDOWS_LAUNCH_AGENT" => "EC2Launch sets a random administrator password",
        _ => "",
    }
}

impl Serialize for DescribeScanFindingsOutput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let controls: Vec<ControlOut<'_>> = self
            .scan
            .report
            .iter()
            .flat_map(|r| r.controls.iter())
            .map(|c| ControlOut {
                control_id: &c.control_id,
                title: control_title(&c.control_id),
                result: c.result.as_str(),
            })
            .collect();
        let findings: Vec<FindingOut<'_>> = self
            .findings
            .iter()
            .map(|f| FindingOut {
                finding_id: &f.finding_id,
                control_id: &f.control_id,
                result: f.result.as_str(),
                severity: f.severity.as_str(),
                code: &f.code,
                title: &f.title,
                description: &f.description,
                remediation: &f.remediation,
                scope: f
                    .scope
                    .iter()
                    .map(|(n, v)| ScopeOut { name: n, value: v })
                    .collect(),
                vulnerability: f.vulnerability.as_ref().map(|v| VulnerabilityOut {
                    cve_id: &v.cve_id,
                    package_name: &v.package_name,
                    installed_version: &v.installed_version,
                    fixed_version: v.fixed_version.as_deref(),
                    cvss: v.cvss,
                }),
                exemption_id: f.exemption_id.as_deref(),
            })
            .collect();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ScanId", &self.scan.scan_id)?;
        m.serialize_entry("Status", self.scan.status.as_str())?;
        m.serialize_entry("Controls", &controls)?;
        m.serialize_entry("Findings", &findings)?;
        if let Some(t) = &self.next_token {
            m.serialize_entry("NextToken", t)?;
        }
        m.end()
    }
}

const FINDING_FILTERS: [&str; 3] = ["severity", "control-id", "result"];

/// One scan's controls and findings (DescribeScanFindings).
///
/// # Errors
/// The modeled DescribeScanFindings errors.
pub async fn describe_scan_findings(
    ctx: &Ctx,
    caller: &Caller,
    input: DescribeScanFindingsInput,
) -> Result<DescribeScanFindingsOutput, OpError> {
    let limit = page_size(input.max_results, MAX_FINDINGS_PAGE, 100)?;
    let mut severities: Option<Vec<Severity>> = None;
    let mut controls: Option<Vec<String>> = None;
    let mut results: Option<Vec<ControlResult>> = None;
    for (name, values) in checked_filters(input.filters.as_ref(), &FINDING_FILTERS)? {
        let invalid = |v: &str, valid: &str| {
            OpError::InvalidFilterException(format!(
                "The value '{}' is not valid for filter '{name}'. Valid values are: {valid}.",
                clip(v)
            ))
        };
        match name {
            "severity" => {
                let mut out = Vec::new();
                for v in &values {
                    out.push(
                        Severity::ALL
                            .into_iter()
                            .find(|s| s.as_str().to_ascii_lowercase() == *v)
                            .ok_or_else(|| {
                                invalid(v, "critical, high, medium, low, informational")
                            })?,
                    );
                }
                severities = Some(out);
            }
            "control-id" => {
                if let Some(v) = values
                    .iter()
                    .find(|v| !world::CONTROL_IDS.contains(&v.as_str()))
                {
                    return Err(invalid(v, &world::CONTROL_IDS.join(", ")));
                }
                controls = Some(values);
            }
            _ => {
                let mut out = Vec::new();
                for v in &values {
                    out.push(match v.as_str() {
                        "fail" => ControlResult::FAIL,
                        "exemption-pass" => ControlResult::EXEMPTION_PASS,
                        _ => return Err(invalid(v, "fail, exemption-pass")),
                    });
                }
                results = Some(out);
            }
        }
    }
    let id = input.scan_id.clone().unwrap_or_default();
    let scan = own_scan(ctx, caller, &id).await?;
    let include_exempted = input.include_exempted.unwrap_or(false);
    let canonical = json!([
        id,
        include_exempted,
        severities
            .as_ref()
            .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        controls,
        results
            .as_ref()
            .map(|v| v.iter().map(|r| r.as_str()).collect::<Vec<_>>())
    ]);
    let qh = hash_json(&canonical);
    let binding = Binding {
        operation: "DescribeScanFindings",
        account: &caller.account,
        region: &caller.region,
        query_hash: &qh,
    };
    let now = ctx.clock.now_ms();
    let offset = match &input.next_token {
        None => 0,
        Some(t) => {
            let c = paging::decode(&ctx.paging_keys, &binding, t, now).ok_or_else(bad_token)?;
            if c.build_id != scan.scan_id {
                return Err(bad_token());
            }
            usize::try_from(c.created_ms).map_err(|_| bad_token())?
        }
    };
    let matching: Vec<Finding> = scan
        .report
        .iter()
        .flat_map(|r| r.findings.iter())
        .filter(|f| include_exempted || f.result != ControlResult::EXEMPTION_PASS)
        .filter(|f| severities.as_ref().is_none_or(|s| s.contains(&f.severity)))
        .filter(|f| controls.as_ref().is_none_or(|c| c.contains(&f.control_id)))
        .filter(|f| results.as_ref().is_none_or(|r| r.contains(&f.result)))
        .cloned()
        .collect();
    let end = (offset + limit).min(matching.len());
    let findings = matching.get(offset..end).unwrap_or_default().to_vec();
    let next_token = (end < matching.len()).then(|| {
        paging::encode(
            &ctx.paging_keys,
            &binding,
            &Cursor {
                created_ms: i64::try_from(end).unwrap_or(i64::MAX),
                build_id: scan.scan_id.clone(),
            },
            now,
        )
    });
    Ok(DescribeScanFindingsOutput {
        scan,
        findings,
        next_token,
    })
}

/// Counts new scans in `imagebuild_transitions_total`.
fn count_new(ctx: &Ctx, scans: &[Scan]) {
    for s in scans {
        ctx.metrics.transition("scan", "new", s.status.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_follow_the_catalog_pattern() {
        assert_eq!(
            role_arn_account("arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"),
            Some("123456789012")
        );
        assert_eq!(
            role_arn_account("arn:aws:iam::123456789012:role/path/to/R_1+=,.@-"),
            Some("123456789012")
        );
        for bad in [
            "",
            "arn:aws:iam::12345678901:role/R",
            "arn:aws:iam::123456789012:user/R",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
            "arn:aws-cn:iam::123456789012:role/R",
        ] {
            assert_eq!(role_arn_account(bad), None, "{bad}");
        }
    }

    #[test]
    fn os_user_names_follow_the_documented_pattern() {
        for ok in ["ec2-user", "ubuntu", "a", "A_b-9", &"a".repeat(32)] {
            assert!(valid_os_user(ok), "{ok}");
        }
        for bad in ["", "1abc", "-x", "root!", &"a".repeat(33), "user name", "ü"] {
            assert!(!valid_os_user(bad), "{bad}");
        }
    }

    #[test]
    fn ports_are_1_to_65535() {
        assert_eq!(check_port("p", 22).unwrap(), 22);
        assert_eq!(check_port("p", 65535).unwrap(), 65535);
        for bad in [0, -1, 65536, i64::MAX] {
            assert_eq!(
                check_port("Images[0].ScanningPort", bad)
                    .unwrap_err()
                    .type_name(),
                "InvalidScanningPortException"
            );
        }
    }
}
