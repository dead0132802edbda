//! StartBuild and DescribeBuilds.
//!
//! StartBuild checks, in order: destination name, description, client token, fulfillment
//! options (existence, region, visibility, restriction), source image (existence, visibility,
//! state, encryption, product codes), platform match, SNS topic; then one atomic store call
//! replays or rejects a reused token, enforces the concurrent-build limit and inserts the
//! build with its first notification.
//!
//! Depends on: ops (Ctx, OpError, paging, logs), domain, store (trait), world.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::page_cache::PageKey;
use super::paging::{self, Binding};
use super::{Caller, Ctx, OpError};
use crate::domain::{Build, BuildStage, BuildStatus, Notification, ProductRef};
use crate::store::{BuildQuery, CreateOutcome, TokenClaim};
use crate::world::{self, Image, OptionDenial};

/// Most build ids one DescribeBuilds call may name.
pub const MAX_BUILD_IDS: usize = 50;
/// Longest accepted build id or filter value (store keys stay far below DynamoDB's limits).
pub const MAX_ID_LEN: usize = 256;
/// Most values one filter may carry (each is one index walk).
pub const MAX_FILTER_VALUES: usize = 50;
/// Longest accepted client token.
pub const MAX_CLIENT_TOKEN: usize = 64;
/// Longest accepted destination image description.
pub const MAX_DESCRIPTION: usize = 255;

/// StartBuild input (model `StartBuildRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartBuildInput {
    /// Idempotency token.
    pub client_token: Option<String>,
    /// Fulfillment options to install.
    pub fulfillment_option_ids: Option<Vec<String>>,
    /// Image to install onto.
    pub source_image_id: Option<String>,
    /// Name of the new image.
    pub destination_image_name: Option<String>,
    /// Description of the new image.
    pub destination_image_description: Option<String>,
    /// Topic to notify.
    pub sns_topic_arn: Option<String>,
}

/// A product in a response (model `Product`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductOut {
    /// Product id.
    pub id: String,
    /// Version title.
    pub version: String,
    /// Product title.
    pub title: String,
}

impl From<&ProductRef> for ProductOut {
    fn from(p: &ProductRef) -> Self {
        Self {
            id: p.id.clone(),
            version: p.version.clone(),
            title: p.title.clone(),
        }
    }
}

/// StartBuild output (model `StartBuildResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartBuildOutput {
    /// The build's id.
    pub build_id: String,
    /// Products installed.
    pub products: Vec<ProductOut>,
}

/// A DescribeBuilds filter (model `Filter`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterIn {
    /// Filter name.
    pub name: Option<String>,
    /// Filter values.
    pub values: Option<Vec<String>>,
}

/// DescribeBuilds input (model `DescribeBuildsRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeBuildsInput {
    /// Only these builds.
    pub build_ids: Option<Vec<String>>,
    /// Continue after this token.
    pub next_token: Option<String>,
    /// Page size.
    pub max_results: Option<i64>,
    /// Filters.
    pub filters: Option<Vec<FilterIn>>,
}

/// DescribeBuilds output (model `DescribeBuildsResult`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeBuildsOutput {
    /// The page of builds, newest first.
    pub builds: Vec<DescribedBuild>,
    /// Where the next page starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

fn valid_image_name(name: &str) -> bool {
    let n = name.chars().count();
    (3..=128).contains(&n)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c))
}

/// SHA-256 over the request's parameters in a fixed order, without the token.
fn param_hash(input: &StartBuildInput) -> String {
    let canonical = json!([
        input.fulfillment_option_ids,
        input.source_image_id,
        input.destination_image_name,
        input.destination_image_description,
        input.sns_topic_arn,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// The topic must exist in the caller's region (in the SNS endpoint when one is configured,
/// else in the world).
pub(crate) async fn check_sns_topic(
    ctx: &Ctx,
    world: &world::World,
    caller: &Caller,
    arn: &str,
) -> Result<(), OpError> {
    let same_region =
        world::parse_sns_topic_arn(arn).is_some_and(|(region, _, _)| region == caller.region);
    let exists = match (&ctx.topics, same_region) {
        (_, false) => false,
        (None, true) => world.topic_exists(arn),
        (Some(dir), true) => dir.topic_exists(arn).await.map_err(|e| {
            tracing::error!(error = %e, "SNS endpoint failed to answer");
            OpError::InternalServerErrorException(
                "An internal error occurred. Please retry your request.".into(),
            )
        })?,
    };
    if exists {
        Ok(())
    } else {
        Err(OpError::InvalidSnsTopicArnException(format!(
            "The SNS topic ARN '{arn}' does not exist."
        )))
    }
}

/// Checks a `ClientToken`'s length and characters.
pub(crate) fn check_client_token(token: Option<&String>) -> Result<(), OpError> {
    if let Some(t) = token {
        if t.is_empty()
            || t.chars().count() > MAX_CLIENT_TOKEN
            || !t.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(OpError::ValidationException(format!(
                "1 validation error detected: Value '{t}' at 'clientToken' failed to satisfy constraint: Member must have length between 1 and {MAX_CLIENT_TOKEN} and contain only printable ASCII characters"
            )));
        }
    }
    Ok(())
}

/// An image of the world or one a build created.
///
/// # Errors
/// The store failed.
pub async fn find_image(
    ctx: &Ctx,
    world: &world::World,
    region: &str,
    id: &str,
) -> Result<Option<Image>, OpError> {
    if let Some(img) = world.image(region, id) {
        return Ok(Some(img.clone()));
    }
    Ok(ctx.store.created_image(region, id).await?.map(|c| c.image))
}

/// Starts a build (StartBuild).
///
/// # Errors
/// The modeled StartBuild errors.
pub async fn start_build(
    ctx: &Ctx,
    caller: &Caller,
    input: StartBuildInput,
) -> Result<StartBuildOutput, OpError> {
    let name = input.destination_image_name.clone().unwrap_or_default();
    if !valid_image_name(&name) {
        return Err(OpError::InvalidDestinationImageNameException(format!(
            "The destination image name '{name}' is not valid. It must be 3-128 characters long and contain only letters, numbers, parentheses (()), square brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('), at-signs (@), or underscores (_)."
        )));
    }
    if let Some(d) = &input.destination_image_description {
        if d.chars().count() > MAX_DESCRIPTION {
            return Err(OpError::ValidationException(format!(
                "1 validation error detected: Value at 'destinationImageDescription' failed to satisfy constraint: Member must have length less than or equal to {MAX_DESCRIPTION}"
            )));
        }
    }
    check_client_token(input.client_token.as_ref())?;

    let option_ids = input.fulfillment_option_ids.clone().unwrap_or_default();
    let world =
        super::catalog::world_for_caller(ctx, &option_ids, Some((&caller.account, &caller.region)))
            .await?;
    if option_ids.is_empty() {
        return Err(OpError::InvalidFulfillmentOptionIdException(
            "At least one fulfillment option id must be specified.".into(),
        ));
    }
    let mut options = Vec::with_capacity(option_ids.len());
    for (i, id) in option_ids.iter().enumerate() {
        if option_ids[..i].contains(id) {
            return Err(OpError::InvalidFulfillmentOptionIdException(format!(
                "The fulfillment option id '{id}' is specified more than once."
            )));
        }
        match world.usable_option(id, &caller.account, &caller.region) {
            Ok((product, version)) => options.push((product.clone(), version.clone())),
            Err(OptionDenial::NotFound | OptionDenial::NotVisible) => {
                if super::catalog::is_launch_option(ctx, id, &caller.account).await? {
                    return Err(OpError::InvalidFulfillmentOptionIdException(format!(
                        "The delivery option '{id}' is an Amazon Machine Image: buyers launch it, it cannot be installed into another image. Use a software package delivery option (fo-…) with StartBuild."
                    )));
                }
                return Err(OpError::InvalidFulfillmentOptionIdException(format!(
                    "The fulfillment option id '{id}' does not exist."
                )));
            }
            Err(OptionDenial::NotInRegion) => {
                return Err(OpError::InvalidFulfillmentOptionIdException(format!(
                    "The fulfillment option id '{id}' is not valid in region {}.",
                    caller.region
                )));
            }
            Err(OptionDenial::RestrictedVersion) => {
                return Err(OpError::InvalidFulfillmentOptionIdException(format!(
                    "The fulfillment option id '{id}' belongs to a restricted version that is available to existing subscribers only."
                )));
            }
        }
    }

    let image_id = input.source_image_id.clone().unwrap_or_default();
    let image = find_image(ctx, &world, &caller.region, &image_id)
        .await?
        .filter(|img| img.visible_to(&caller.account))
        .ok_or_else(|| {
            OpError::InvalidSourceImageIdException(format!(
                "The source image id '{image_id}' does not exist."
            ))
        })?;
    if image.state != "available" {
        return Err(OpError::InvalidSourceImageIdException(format!(
            "The source image '{image_id}' is not available (state: {}).",
            image.state
        )));
    }
    if image.encrypted() {
        return Err(OpError::InvalidSourceImageIdException(format!(
            "The source image '{image_id}' has encrypted snapshots. Use an image that isn't encrypted."
        )));
    }
    if let Some(code) = image.product_codes.first() {
        return Err(OpError::InvalidSourceImageIdException(format!(
            "The source image '{image_id}' already has AWS Marketplace software installed (product code {code})."
        )));
    }
    for (_, version) in &options {
        if version.platform != image.platform {
            return Err(OpError::InstallerMismatchException(format!(
                "The fulfillment option '{}' installs on {} but the source image '{image_id}' runs {}.",
                version.fulfillment_option_id,
                version.platform.as_str(),
                image.platform.as_str()
            )));
        }
    }
    if let Some(arn) = &input.sns_topic_arn {
        check_sns_topic(ctx, &world, caller, arn).await?;
    }

    let now = ctx.clock.now_ms();
    let products: Vec<ProductRef> = options
        .iter()
        .map(|(p, v)| ProductRef {
            id: p.product_id.clone(),
            version: v.version.clone(),
            title: p.title.clone(),
        })
        .collect();
    let build = Build {
        // Time-ordered UUIDv7 (monotonic within the process), so builds started in the same
        // millisecond still list newest first; a harness seed makes them deterministic instead.
        build_id: ctx.harness.new_build_id(),
        account: caller.account.clone(),
        region: caller.region.clone(),
        created_ms: now,
        updated_ms: now,
        status: BuildStatus::InProgress,
        stage: BuildStage::Provisioning,
        due_ms: Some(ctx.harness.due(&ctx.config, BuildStage::Provisioning, now)),
        version: 1,
        fulfillment_option_ids: option_ids,
        products,
        source_image_id: image_id,
        source_image_name: image.name.clone(),
        destination_image_name: name,
        destination_image_description: input.destination_image_description.clone(),
        destination_image_id: None,
        sns_topic_arn: input.sns_topic_arn.clone(),
        error: None,
        has_logs: false,
        rendered: crate::domain::RenderMemo::default(),
    };
    let token = input.client_token.as_ref().map(|t| TokenClaim {
        token: t.clone(),
        param_hash: param_hash(&input),
    });
    let notification = Notification::for_build(&build, None, now);
    let outcome = ctx
        .store
        .create_build(
            &build,
            token.as_ref(),
            ctx.config.max_in_progress_builds,
            notification.as_ref(),
        )
        .await?;
    let stored = match outcome {
        CreateOutcome::Created => {
            ctx.worker.wake();
            ctx.metrics
                .transition("build", "new", build.status.as_str());
            tracing::info!(build_id = %build.build_id, account = %build.account, region = %build.region, "build started");
            build
        }
        CreateOutcome::Replayed(original) => *original,
        CreateOutcome::TokenMismatch => {
            return Err(OpError::IdempotentParameterMismatchException(
                "The client token you have provided is associated with a request that had different parameters. Use a new client token or repeat the original request.".into(),
            ));
        }
        CreateOutcome::LimitExceeded { limit } => {
            return Err(OpError::BuildLimitExceededException(format!(
                "You have reached the maximum number of concurrent builds ({limit}). Wait until one or more of your builds has completed, then try again."
            )));
        }
    };
    Ok(StartBuildOutput {
        build_id: stored.build_id.clone(),
        products: stored.products.iter().map(ProductOut::from).collect(),
    })
}

/// Checks a `Filters` list against the names an operation knows: each name once, with 1 to
/// `MAX_FILTER_VALUES` values of at most `MAX_ID_LEN` characters. Returns `(name, values)`.
pub(crate) fn checked_filters<'a>(
    list: Option<&'a Vec<FilterIn>>,
    allowed: &[&str],
) -> Result<Vec<(&'a str, Vec<String>)>, OpError> {
    let mut out: Vec<(&str, Vec<String>)> = Vec::new();
    for f in list.into_iter().flatten() {
        let name = f.name.as_deref().unwrap_or_default();
        if !allowed.contains(&name) {
            return Err(OpError::InvalidFilterException(format!(
                "The filter '{name}' is not valid. Valid filters are: {}.",
                allowed.join(", ")
            )));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(OpError::InvalidFilterException(format!(
                "The filter '{name}' is specified more than once."
            )));
        }
        let values = f.values.clone().unwrap_or_default();
        if values.is_empty() {
            return Err(OpError::InvalidFilterException(format!(
                "The filter '{name}' requires at least one value."
            )));
        }
        if values.len() > MAX_FILTER_VALUES {
            return Err(OpError::InvalidFilterException(format!(
                "The filter '{name}' has more than {MAX_FILTER_VALUES} values."
            )));
        }
        if let Some(v) = values.iter().find(|v| v.chars().count() > MAX_ID_LEN) {
            return Err(OpError::InvalidFilterException(format!(
                "The value '{}...' is not valid for filter '{name}': values are at most {MAX_ID_LEN} characters.",
                v.chars().take(32).collect::<String>()
            )));
        }
        out.push((name, values));
    }
    Ok(out)
}

const FILTER_NAMES: [&str; 4] = ["build-id", "fulfillment-option-id", "product-id", "status"];

/// Turns the request's BuildIds and filters into a store query, validating them.
fn build_query(caller: &Caller, input: &DescribeBuildsInput) -> Result<BuildQuery, OpError> {
    let mut q = BuildQuery {
        account: caller.account.clone(),
        region: caller.region.clone(),
        ..BuildQuery::default()
    };
    if let Some(ids) = input.build_ids.as_ref().filter(|ids| !ids.is_empty()) {
        if ids.len() > MAX_BUILD_IDS {
            return Err(OpError::ValidationException(format!(
                "1 validation error detected: Value at 'buildIds' failed to satisfy constraint: Member must have length less than or equal to {MAX_BUILD_IDS}"
            )));
        }
        if let Some(bad) = ids.iter().find(|i| i.chars().count() > MAX_ID_LEN) {
            return Err(OpError::ValidationException(format!(
                "1 validation error detected: Value '{}...' at 'buildIds' failed to satisfy constraint: Member must have length less than or equal to {MAX_ID_LEN}",
                bad.chars().take(32).collect::<String>()
            )));
        }
        q.build_ids = Some(ids.clone());
    }
    for (name, values) in checked_filters(input.filters.as_ref(), &FILTER_NAMES)? {
        match name {
            "build-id" => {
                q.build_ids = Some(match q.build_ids.take() {
                    Some(ids) => ids.into_iter().filter(|i| values.contains(i)).collect(),
                    None => values,
                });
            }
            "fulfillment-option-id" => q.fulfillment_option_ids = Some(values),
            "product-id" => q.product_ids = Some(values),
            _ => {
                let mut statuses = Vec::new();
                for v in &values {
                    let s = BuildStatus::from_filter_value(v).ok_or_else(|| {
                        OpError::InvalidFilterException(format!(
                            "The value '{v}' is not valid for filter 'status'. Valid values are: in-progress, internal-error, failed, succeeded."
                        ))
                    })?;
                    statuses.push(s);
                }
                q.statuses = Some(statuses);
            }
        }
    }
    Ok(q)
}

fn query_hash(q: &BuildQuery) -> String {
    let statuses: Option<Vec<&str>> = q
        .statuses
        .as_ref()
        .map(|s| s.iter().map(|x| x.as_str()).collect());
    paging::query_hash(&json!([
        paging::value_set(q.build_ids.as_deref()),
        paging::value_set(statuses.as_deref()),
        paging::value_set(q.fulfillment_option_ids.as_deref()),
        paging::value_set(q.product_ids.as_deref())
    ]))
}

/// Epoch milliseconds as an awsJson timestamp: epoch seconds, millisecond precision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timestamp(pub(crate) i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            #[allow(clippy::cast_precision_loss)] // epoch ms fit in f64's 53-bit mantissa
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationImageOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SourceImageOut<'a> {
    pub(crate) id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProductView<'a> {
    id: &'a str,
    version: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ErrorDetailOut<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
}

/// The wire shape of one build (model `Build`); absent members are omitted. The members
/// before and after the log URLs are structs of their own so that `render_build` can write the
/// URLs between them itself.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BuildOut<'a> {
    #[serde(flatten)]
    head: BuildHead<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    standard_output_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    standard_error_url: Option<&'a str>,
    #[serde(flatten)]
    tail: BuildTail<'a>,
}

/// `Build`'s members before the log URLs.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BuildHead<'a> {
    build_id: &'a str,
    destination_image: DestinationImageOut<'a>,
    fulfillment_option_ids: &'a [String],
    products: Vec<ProductView<'a>>,
    source_image: SourceImageOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sns_topic_arn: Option<&'a str>,
    status: &'static str,
}

/// `Build`'s members after the log URLs (never empty: the times are always there).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BuildTail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error_detail: Option<ErrorDetailOut<'a>>,
    start_time: Timestamp,
    last_update_time: Timestamp,
}

impl<'a> BuildHead<'a> {
    fn of(b: &'a Build) -> Self {
        BuildHead {
            build_id: &b.build_id,
            destination_image: DestinationImageOut {
                id: b.destination_image_id.as_deref(),
                description: b.destination_image_description.as_deref(),
                name: &b.destination_image_name,
            },
            fulfillment_option_ids: &b.fulfillment_option_ids,
            products: b
                .products
                .iter()
                .map(|p| ProductView {
                    id: &p.id,
                    version: &p.version,
                    title: &p.title,
                })
                .collect(),
            source_image: SourceImageOut {
                id: &b.source_image_id,
                name: b.source_image_name.as_deref(),
            },
            sns_topic_arn: b.sns_topic_arn.as_deref(),
            status: b.status.as_str(),
        }
    }
}

impl<'a> BuildTail<'a> {
    fn of(b: &'a Build) -> Self {
        BuildTail {
            error_detail: b.error.as_ref().map(|e| ErrorDetailOut {
                code: &e.code,
                message: &e.message,
            }),
            start_time: Timestamp(b.created_ms),
            last_update_time: Timestamp(b.updated_ms),
        }
    }
}

/// One build's JSON, byte for byte what `serde_json::to_vec(&describe(…))` gives.
#[cfg(test)]
fn render_build(
    ctx: &Ctx,
    caller: &Caller,
    b: &Build,
    now_ms: i64,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    write_build(&mut out, ctx, &escaped(&caller.base_url)?, b, now_ms)?;
    Ok(out)
}

/// Appends one build's JSON to `out`, with the log URLs written straight into the buffer:
/// only their caller-given part (the base URL, given here already escaped) and the build id go
/// through JSON escaping, when they need it; the rest is known to need none.
fn write_build(
    out: &mut Vec<u8>,
    ctx: &Ctx,
    base_url: &[u8],
    b: &Build,
    now_ms: i64,
) -> Result<(), serde_json::Error> {
    let (head, tail) = match b.rendered.get() {
        Some(parts) => parts,
        None => b.rendered.keep(render_parts(b)?),
    };
    out.extend_from_slice(head);
    if b.has_logs {
        let expires = now_ms / 1000 + ctx.config.log_url_ttl_seconds;
        let sig = ctx
            .url_signer
            .sign(&b.account, &b.region, &b.build_id, expires);
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(expires);
        let id = escaped(&b.build_id)?;
        for (member, stream) in [
            ("StandardOutputUrl", super::logs::Stream::Stdout),
            ("StandardErrorUrl", super::logs::Stream::Stderr),
        ] {
            for part in [",\"", member, "\":\""] {
                out.extend_from_slice(part.as_bytes());
            }
            out.extend_from_slice(base_url);
            out.extend_from_slice(super::logs::LOGS_PATH.as_bytes());
            out.extend_from_slice(&id);
            for part in [
                "/",
                stream.as_str(),
                "?Expires=",
                digits,
                "&Signature=",
                sig.as_str(),
                "\"",
            ] {
                out.extend_from_slice(part.as_bytes());
            }
        }
    }
    out.extend_from_slice(tail);
    Ok(())
}

/// A build's JSON before its log URLs (without the closing `}`) and after them (from the `,`
/// that follows them): what depends on the stored record only, so it is made once per record.
fn render_parts(b: &Build) -> Result<crate::domain::Rendered, serde_json::Error> {
    let mut head = serde_json::to_vec(&BuildHead::of(b))?;
    head.pop(); // the head's '}'
    let mut tail = serde_json::to_vec(&BuildTail::of(b))?;
    if let Some(first) = tail.first_mut() {
        *first = b','; // the tail's '{'
    }
    Ok((head.into_boxed_slice(), tail.into_boxed_slice()))
}

/// `s` as it appears inside a JSON string literal (borrowed when it needs no escaping).
fn escaped(s: &str) -> Result<std::borrow::Cow<'_, [u8]>, serde_json::Error> {
    if s.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\') {
        let quoted = serde_json::to_vec(s)?;
        Ok(std::borrow::Cow::Owned(
            quoted[1..quoted.len() - 1].to_vec(),
        ))
    } else {
        Ok(std::borrow::Cow::Borrowed(s.as_bytes()))
    }
}

/// A build with the log URLs handed out with it.
#[derive(Debug, Clone)]
pub struct DescribedBuild {
    /// The stored build.
    pub build: std::sync::Arc<Build>,
    /// Signed URL of the installer's standard output.
    pub stdout_url: Option<String>,
    /// Signed URL of the installer's standard error.
    pub stderr_url: Option<String>,
}

impl Serialize for DescribedBuild {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = &self.build;
        BuildOut {
            head: BuildHead::of(b),
            standard_output_url: self.stdout_url.as_deref(),
            standard_error_url: self.stderr_url.as_deref(),
            tail: BuildTail::of(b),
        }
        .serialize(s)
    }
}

fn describe(
    ctx: &Ctx,
    caller: &Caller,
    build: std::sync::Arc<Build>,
    now_ms: i64,
) -> DescribedBuild {
    let expires = now_ms / 1000 + ctx.config.log_url_ttl_seconds;
    let (stdout_url, stderr_url) = if build.has_logs {
        let (out, err) = ctx.url_signer.urls(
            &caller.base_url,
            &build.account,
            &build.region,
            &build.build_id,
            expires,
        );
        (Some(out), Some(err))
    } else {
        (None, None)
    };
    DescribedBuild {
        build,
        stdout_url,
        stderr_url,
    }
}

/// Lists the caller's builds (DescribeBuilds).
///
/// # Errors
/// The modeled DescribeBuilds errors.
pub async fn describe_builds(
    ctx: &Ctx,
    caller: &Caller,
    input: DescribeBuildsInput,
) -> Result<DescribeBuildsOutput, OpError> {
    describe_builds_at(ctx, caller, input, ctx.clock.now_ms()).await
}

/// DescribeBuilds rendered as its JSON answer, reusing the answer to the same request `body`
/// when the store has not been written since and the clock is in the same second (see
/// `page_cache`): the bytes are then exactly those a fresh render would give.
///
/// # Errors
/// The modeled DescribeBuilds errors.
pub async fn describe_builds_json(
    ctx: &Ctx,
    caller: &Caller,
    body: &bytes::Bytes,
    input: DescribeBuildsInput,
) -> Result<bytes::Bytes, OpError> {
    // The generation is read before the listing: a write committed after this point gives
    // the next reader another generation, so this render is never reused past it.
    let generation = ctx.store.generation().filter(|_| ctx.pages.enabled());
    let now = ctx.clock.now_ms();
    let second = now / 1000;
    let key = generation
        .and_then(|_| PageKey::new(&caller.account, &caller.region, &caller.base_url, body));
    if let (Some(g), Some(k)) = (generation, &key) {
        if let Some(hit) = ctx.pages.get(k, g, second) {
            return Ok(hit);
        }
    }
    let (builds, next_token) = list_page(ctx, caller, input, now).await?;
    let answer = render_page(
        ctx,
        caller,
        builds,
        next_token.as_deref(),
        now,
        generation.is_some(),
    )?;
    if let (Some(g), Some(k)) = (generation, key) {
        ctx.pages.put(k, g, second, answer.clone());
    }
    Ok(answer)
}

async fn describe_builds_at(
    ctx: &Ctx,
    caller: &Caller,
    input: DescribeBuildsInput,
    now: i64,
) -> Result<DescribeBuildsOutput, OpError> {
    let (builds, next_token) = list_page(ctx, caller, input, now).await?;
    let builds = builds
        .into_iter()
        .map(|b| describe(ctx, caller, b, now))
        .collect();
    Ok(DescribeBuildsOutput { builds, next_token })
}

/// The page of builds DescribeBuilds answers with, and its NextToken.
async fn list_page(
    ctx: &Ctx,
    caller: &Caller,
    input: DescribeBuildsInput,
    now: i64,
) -> Result<(Vec<std::sync::Arc<Build>>, Option<String>), OpError> {
    let limit = match input.max_results {
        None => ctx.config.default_page_size,
        Some(n) if (1..=256).contains(&n) => usize::try_from(n).unwrap_or(256),
        Some(n) => {
            return Err(OpError::InvalidMaxResultsException(format!(
                "The value {n} for MaxResults is not valid. MaxResults must be between 1 and 256."
            )));
        }
    };
    let query = build_query(caller, &input)?;
    let qh = query_hash(&query);
    let binding = Binding {
        operation: "DescribeBuilds",
        account: &caller.account,
        region: &caller.region,
        query_hash: &qh,
    };
    let after = match &input.next_token {
        None => None,
        Some(t) => Some(
            paging::decode(&ctx.paging_keys, &binding, t, now).ok_or_else(|| {
                OpError::InvalidNextTokenException("The specified next token is not valid.".into())
            })?,
        ),
    };
    let page = ctx.store.list_builds(&query, after.as_ref(), limit).await?;
    let next_token = page
        .next
        .as_ref()
        .map(|c| paging::encode(&ctx.paging_keys, &binding, c, now));
    Ok((page.builds, next_token))
}

/// What a `DescribeBuildsOutput` page opens with, and what comes before its `NextToken`.
const PAGE_OPEN: &[u8] = b"{\"Builds\":[";
const PAGE_TOKEN: &[u8] = b",\"NextToken\":";

/// Renders a page as `DescribeBuildsOutput` JSON, each build's object reused from the
/// fragment cache when it was rendered from the very same stored build (the same decoded
/// record), for the same base URL and log-URL expiry (whole seconds), so the bytes are the
/// ones `serde_json` would write for the whole output.
fn render_page(
    ctx: &Ctx,
    caller: &Caller,
    builds: Vec<std::sync::Arc<Build>>,
    next_token: Option<&str>,
    now: i64,
    reuse: bool,
) -> Result<bytes::Bytes, OpError> {
    let internal = |e: serde_json::Error| OpError::InternalServerErrorException(e.to_string());
    let base_url = escaped(&caller.base_url).map_err(internal)?;
    let mut out = Vec::with_capacity(builds.len() * 1024 + 256);
    out.extend_from_slice(PAGE_OPEN);
    if reuse {
        let fragments = reused_fragments(ctx, caller, &base_url, &builds, now).map_err(internal)?;
        for (i, f) in fragments.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(f);
        }
    } else {
        // Nothing kept: each build is written straight into the answer.
        for (i, b) in builds.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_build(&mut out, ctx, &base_url, b, now).map_err(internal)?;
        }
    }
    out.push(b']');
    if let Some(t) = next_token {
        out.extend_from_slice(PAGE_TOKEN);
        serde_json::to_writer(&mut out, t).map_err(internal)?;
    }
    out.push(b'}');
    Ok(bytes::Bytes::from(out))
}

/// Each build's JSON, from the fragment cache when it was rendered from the very same stored
/// build for the same base URL and log-URL expiry, else written now and kept there.
fn reused_fragments(
    ctx: &Ctx,
    caller: &Caller,
    base_url: &[u8],
    builds: &[std::sync::Arc<Build>],
    now: i64,
) -> Result<Vec<bytes::Bytes>, serde_json::Error> {
    let expires = now / 1000 + ctx.config.log_url_ttl_seconds;
    let mut got = ctx.fragments.get_all(builds, &caller.base_url, expires);
    let mut fresh = Vec::new();
    for (slot, b) in got.iter_mut().zip(builds) {
        if slot.is_none() {
            let mut json = Vec::with_capacity(1024);
            write_build(&mut json, ctx, base_url, b, now)?;
            let json = bytes::Bytes::from(json);
            *slot = Some(json.clone());
            fresh.push((b.clone(), json));
        }
    }
    if !fresh.is_empty() {
        ctx.fragments.put_all(fresh, &caller.base_url, expires);
    }
    Ok(got.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_names_follow_the_documented_set() {
        for ok in ["abc", "My image (v1) [x] 2.0/a-b'c@d_e", &"a".repeat(128)] {
            assert!(valid_image_name(ok), "{ok}");
        }
        for bad in ["ab", "", &"a".repeat(129), "name!", "tab\there", "ünï"] {
            assert!(!valid_image_name(bad), "{bad}");
        }
    }

    #[test]
    fn param_hash_ignores_the_token_but_not_parameters() {
        let a = StartBuildInput {
            client_token: Some("1".into()),
            source_image_id: Some("ami-1".into()),
            ..Default::default()
        };
        let b = StartBuildInput {
            client_token: Some("2".into()),
            ..a.clone()
        };
        let c = StartBuildInput {
            source_image_id: Some("ami-2".into()),
            ..a.clone()
        };
        assert_eq!(param_hash(&a), param_hash(&b));
        assert_ne!(param_hash(&a), param_hash(&c));
    }

    #[test]
    fn query_hash_is_order_insensitive() {
        let caller = Caller {
            account: "1".into(),
            region: "r".into(),
            base_url: String::new(),
        };
        let f = |vals: Vec<&str>| DescribeBuildsInput {
            filters: Some(vec![FilterIn {
                name: Some("status".into()),
                values: Some(vals.into_iter().map(String::from).collect()),
            }]),
            ..Default::default()
        };
        let a = build_query(&caller, &f(vec!["failed", "succeeded"])).unwrap();
        let b = build_query(&caller, &f(vec!["succeeded", "failed"])).unwrap();
        assert_eq!(query_hash(&a), query_hash(&b));
        assert_ne!(
            query_hash(&a),
            query_hash(&build_query(&caller, &f(vec!["failed"])).unwrap())
        );
    }

    fn failing_ctx() -> Ctx {
        Ctx {
            store: std::sync::Arc::new(crate::store::conformance::FailingStore),
            world: std::sync::RwLock::new(std::sync::Arc::new(
                crate::world::World::demo().unwrap(),
            )),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            clock_shift: std::sync::Arc::new(crate::clock::ShiftableClock::new(
                std::sync::Arc::new(crate::clock::SystemClock),
            )),
            control: crate::ops::ControlSettings::default(),
            harness: crate::ops::harness::Harness::default(),
            config: crate::ops::OpsConfig::default(),
            worker: crate::ops::WorkerHandle::default(),
            paging_keys: vec![vec![1; 32]],
            url_signer: crate::ops::logs::UrlSigner::new(&[vec![2; 32]]),
            topics: None,
            pages: crate::ops::page_cache::PageCache::new(0),
            fragments: crate::ops::page_cache::FragmentCache::new(0),
            draining: std::sync::atomic::AtomicBool::new(false),
            metrics: std::sync::Arc::new(crate::metrics::Metrics::new(
                crate::store::metrics::StoreMetrics::default(),
                std::time::Duration::ZERO,
            )),
        }
    }

    #[tokio::test]
    async fn store_outage_is_the_modeled_retryable_fault() {
        let ctx = failing_ctx();
        let caller = Caller {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            base_url: String::new(),
        };
        let input = StartBuildInput {
            fulfillment_option_ids: Some(vec!["fo-ids4xf7qagwyc".into()]),
            source_image_id: Some("ami-0a1b2c3d4e5f60718".into()),
            destination_image_name: Some("name".into()),
            ..Default::default()
        };
        let err = start_build(&ctx, &caller, input).await.unwrap_err();
        assert_eq!(
            (err.type_name(), err.status()),
            ("InternalServerErrorException", 500)
        );
        let err = describe_builds(&ctx, &caller, DescribeBuildsInput::default())
            .await
            .unwrap_err();
        assert_eq!(err.type_name(), "InternalServerErrorException");
        let api: crate::protocol::ApiError = err.into();
        assert_eq!(api.status, hyper::StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_page_assembled_from_reused_build_objects_is_the_serde_answer_byte_for_byte() {
        let store = crate::store::sqlite::SqliteStore::in_memory().unwrap();
        let builds: Vec<Build> = (0..5)
            .map(|i| {
                let mut b =
                    crate::store::conformance::sample_build("123456789012", i, &format!("b{i}"));
                b.has_logs = i % 2 == 0;
                b
            })
            .collect();
        store.import_builds(builds).await.unwrap();
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new(1_800_000_000_000));
        let ctx = Ctx {
            store: std::sync::Arc::new(store),
            clock: clock.clone(),
            pages: crate::ops::page_cache::PageCache::new(4),
            fragments: crate::ops::page_cache::FragmentCache::new(64),
            draining: std::sync::atomic::AtomicBool::new(false),
            ..failing_ctx()
        };
        let caller = Caller {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            base_url: "http://127.0.0.1:4580".into(),
        };
        let input = || DescribeBuildsInput {
            max_results: Some(3),
            ..Default::default()
        };
        let serde =
            serde_json::to_vec(&describe_builds(&ctx, &caller, input()).await.unwrap()).unwrap();
        // First render (fresh objects), then other request bytes (no whole-answer reuse, every
        // object reused), then the same bytes again (whole-answer reuse).
        for body in [
            &b"{\"MaxResults\":3}"[..],
            b"{\"MaxResults\": 3}",
            b"{\"MaxResults\": 3}",
        ] {
            let got =
                describe_builds_json(&ctx, &caller, &bytes::Bytes::copy_from_slice(body), input())
                    .await
                    .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&serde)
            );
        }
        assert!(serde.windows(11).any(|w| w == b"\"NextToken\""));
        // With reuse off every build is written straight into the answer: the same bytes.
        let off = Ctx {
            store: ctx.store.clone(),
            clock: clock.clone(),
            pages: crate::ops::page_cache::PageCache::new(0),
            fragments: crate::ops::page_cache::FragmentCache::new(0),
            draining: std::sync::atomic::AtomicBool::new(false),
            ..failing_ctx()
        };
        let body = bytes::Bytes::from_static(b"{\"MaxResults\":3}");
        for _ in 0..2 {
            let got = describe_builds_json(&off, &caller, &body, input())
                .await
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&serde)
            );
        }
    }

    #[test]
    fn a_build_written_directly_is_the_serde_rendering_byte_for_byte() {
        let ctx = failing_ctx();
        let now = 1_800_000_000_123;
        let mut builds = Vec::new();
        for i in 0..8_i64 {
            let mut b = crate::store::conformance::sample_build(
                "123456789012",
                1_700_000_000_000 + i * 7,
                &format!("b{i}"),
            );
            b.has_logs = i % 2 == 0;
            if i % 3 == 0 {
                b.error = Some(crate::domain::BuildError {
                    code: "InstallFailed".into(),
                    message: "exit \"1\"\n\u{1}é".into(),
                });
                b.sns_topic_arn = Some("arn:aws:sns:us-east-1:123456789012:t".into());
                b.destination_image_description = Some("tab\there".into());
            }
            builds.push(b);
        }
        let mut odd = builds[0].clone();
        odd.build_id = "quote\"and\\slash".into();
        builds.push(odd);
        for base_url in [
            "http://127.0.0.1:4580",
            "http://h\"x\\y\u{7}:1",
            "https://é.example",
        ] {
            let caller = Caller {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                base_url: base_url.into(),
            };
            for b in &builds {
                let serde = serde_json::to_vec(&describe(
                    &ctx,
                    &caller,
                    std::sync::Arc::new(b.clone()),
                    now,
                ))
                .unwrap();
                let direct = render_build(&ctx, &caller, b, now).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&serde)
                );
            }
        }
        // Each build above was rendered three times: twice from its memo. A clone starts without
        // it, so a changed clone renders its change.
        assert!(builds.iter().all(|b| b.rendered.get().is_some()));
        let mut changed = builds[1].clone();
        assert!(changed.rendered.get().is_none());
        changed.status = crate::domain::BuildStatus::Succeeded;
        changed.destination_image_id = Some("ami-0123456789abcdef0".into());
        let caller = Caller {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            base_url: "http://127.0.0.1:4580".into(),
        };
        let serde = serde_json::to_vec(&describe(
            &ctx,
            &caller,
            std::sync::Arc::new(changed.clone()),
            now,
        ))
        .unwrap();
        assert_eq!(render_build(&ctx, &caller, &changed, now).unwrap(), serde);
        assert!(String::from_utf8_lossy(&serde).contains("\"Status\":\"Succeeded\""));
    }

    #[test]
    fn timestamps_are_epoch_seconds_with_millis() {
        assert_eq!(
            serde_json::to_string(&Timestamp(1_529_960_569_430)).unwrap(),
            "1529960569.43"
        );
        assert_eq!(
            serde_json::to_string(&Timestamp(1_529_960_569_000)).unwrap(),
            "1529960569"
        );
    }
}
