//! ListImages (`AWSMPAmiScanning.ListImages`): the AMIs a seller can submit for scanning — the
//! world's images the caller owns in the region, plus the images the caller's builds created —
//! in ascending order of image id, each with its latest scan. This is the AMI picker of the Add
//! AMI workflow (seed 000, step 1) and what the console lists.
//!
//! Paging is keyset on the image id (an HMAC-bound token holding the last id returned), so
//! images added between pages never shift or repeat a page.
//!
//! Depends on: ops (Ctx, OpError, paging, builds and scans helpers), store (trait), world.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::builds::{checked_filters, FilterIn};
use super::paging::{self, Binding};
use super::scans::{bad_token, clip, page_size, summary, ScanSummaryOut};
use super::{Caller, Ctx, OpError};
use crate::domain::BuildStatus;
use crate::scan::{Scan, ScanStatus};
use crate::store::{BuildQuery, Cursor, ScanQuery};
use crate::world::{Image, Platform};

/// Default and largest page of ListImages.
pub const MAX_IMAGES_PAGE: usize = 100;

const IMAGE_FILTERS: [&str; 3] = ["image-id", "platform", "scan-status"];

/// The `scan-status` value of an AMI that was never submitted.
pub const NOT_SCANNED: &str = "not-scanned";

/// ListImages input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListImagesInput {
    /// Filters.
    pub filters: Option<Vec<FilterIn>>,
    /// Page size.
    pub max_results: Option<i64>,
    /// Continue after this token.
    pub next_token: Option<String>,
}

/// One AMI (model `SellerImage`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SellerImageOut {
    /// AMI id.
    pub image_id: String,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Linux` or `Windows`.
    pub platform: &'static str,
    /// Architecture.
    pub architecture: String,
    /// State.
    pub state: String,
    /// The latest scan, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_scan: Option<ScanSummaryOut>,
}

/// ListImages output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListImagesOutput {
    /// One page, by image id.
    pub images: Vec<SellerImageOut>,
    /// Next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// What a ListImages call selects.
#[derive(Debug, Default)]
struct ImageQuery {
    image_ids: Option<Vec<String>>,
    platforms: Option<Vec<Platform>>,
    /// `None` inside: never scanned.
    scan_statuses: Option<Vec<Option<ScanStatus>>>,
}

fn image_query(input: &ListImagesInput) -> Result<ImageQuery, OpError> {
    let mut q = ImageQuery::default();
    for (name, values) in checked_filters(input.filters.as_ref(), &IMAGE_FILTERS)? {
        let invalid = |v: &str, valid: String| {
            OpError::InvalidFilterException(format!(
                "The value '{}' is not valid for filter '{name}'. Valid values are: {valid}.",
                clip(v)
            ))
        };
        match name {
            "image-id" => q.image_ids = Some(values),
            "platform" => {
                let mut out = Vec::new();
                for v in &values {
                    out.push(match v.as_str() {
                        "linux" => Platform::Linux,
                        "windows" => Platform::Windows,
                        _ => return Err(invalid(v, "linux, windows".into())),
                    });
                }
                q.platforms = Some(out);
            }
            _ => {
                let mut out = Vec::new();
                for v in &values {
                    if v == NOT_SCANNED {
                        out.push(None);
                        continue;
                    }
                    out.push(Some(ScanStatus::from_filter_value(v).ok_or_else(|| {
                        let mut valid = vec![NOT_SCANNED];
                        valid.extend(ScanStatus::ALL.map(ScanStatus::filter_value));
                        invalid(v, valid.join(", "))
                    })?));
                }
                q.scan_statuses = Some(out);
            }
        }
    }
    Ok(q)
}

/// Every AMI the caller owns in its region: the world's, then those its builds created.
async fn owned_images(ctx: &Ctx, caller: &Caller) -> Result<BTreeMap<String, Image>, OpError> {
    let world = ctx.world();
    let mut out: BTreeMap<String, Image> = world
        .images
        .iter()
        .filter(|i| i.owner_id == caller.account && i.region == caller.region)
        .map(|i| (i.image_id.clone(), i.clone()))
        .collect();
    let q = BuildQuery {
        account: caller.account.clone(),
        region: caller.region.clone(),
        build_ids: None,
        statuses: Some(vec![BuildStatus::Succeeded]),
        fulfillment_option_ids: None,
        product_ids: None,
    };
    let mut after: Option<Cursor> = None;
    loop {
        let page = ctx.store.list_builds(&q, after.as_ref(), 256).await?;
        for b in &page.builds {
            let Some(id) = &b.destination_image_id else {
                continue;
            };
            if out.contains_key(id) {
                continue;
            }
            if let Some(c) = ctx.store.created_image(&caller.region, id).await? {
                out.insert(id.clone(), c.image);
            }
        }
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// The latest scan of each of `image_ids` (all the caller's AMIs when `None`).
async fn latest_scans(
    ctx: &Ctx,
    caller: &Caller,
    image_ids: Option<Vec<String>>,
) -> Result<HashMap<String, Scan>, OpError> {
    let mut out = HashMap::new();
    if image_ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(out);
    }
    let q = ScanQuery {
        account: caller.account.clone(),
        region: caller.region.clone(),
        image_ids,
        latest_only: true,
        ..ScanQuery::default()
    };
    let mut after: Option<Cursor> = None;
    loop {
        let page = ctx.store.list_scans(&q, after.as_ref(), 256).await?;
        for s in page.scans {
            out.entry(s.source_image_id.clone()).or_insert(s);
        }
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// The AMIs the caller can submit for scanning.
///
/// # Errors
/// The modeled ListImages errors.
pub async fn list_images(
    ctx: &Ctx,
    caller: &Caller,
    input: ListImagesInput,
) -> Result<ListImagesOutput, OpError> {
    let limit = page_size(input.max_results, MAX_IMAGES_PAGE, 100)?;
    let q = image_query(&input)?;
    let platforms: Option<Vec<&str>> = q
        .platforms
        .as_ref()
        .map(|p| p.iter().map(|x| x.as_str()).collect());
    let statuses: Option<Vec<&str>> = q.scan_statuses.as_ref().map(|s| {
        s.iter()
            .map(|x| x.map_or(NOT_SCANNED, |s| s.as_str()))
            .collect()
    });
    let qh = paging::query_hash(&json!([
        paging::value_set(q.image_ids.as_deref()),
        paging::value_set(platforms.as_deref()),
        paging::value_set(statuses.as_deref()),
    ]));
    let binding = Binding {
        operation: "ListImages",
        account: &caller.account,
        region: &caller.region,
        query_hash: &qh,
    };
    let now = ctx.clock.now_ms();
    let after = match &input.next_token {
        None => None,
        Some(t) => Some(
            paging::decode(&ctx.paging_keys, &binding, t, now)
                .ok_or_else(bad_token)?
                .build_id,
        ),
    };
    let candidates: Vec<Image> = owned_images(ctx, caller)
        .await?
        .into_values()
        .filter(|i| after.as_ref().is_none_or(|a| i.image_id > *a))
        .filter(|i| {
            q.image_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&i.image_id))
        })
        .filter(|i| q.platforms.as_ref().is_none_or(|p| p.contains(&i.platform)))
        .collect();
    // With a scan-status filter every candidate's latest scan decides; without, only the page's.
    let (page, scans, more) = if let Some(wanted) = &q.scan_statuses {
        let scans = latest_scans(ctx, caller, None).await?;
        let mut matching = candidates
            .into_iter()
            .filter(|i| wanted.contains(&scans.get(&i.image_id).map(|s| s.status)));
        let page: Vec<Image> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        (page, scans, more)
    } else {
        let more = candidates.len() > limit;
        let page: Vec<Image> = candidates.into_iter().take(limit).collect();
        let ids = page.iter().map(|i| i.image_id.clone()).collect();
        let scans = latest_scans(ctx, caller, Some(ids)).await?;
        (page, scans, more)
    };
    let next_token = match (more, page.last()) {
        (true, Some(last)) => Some(paging::encode(
            &ctx.paging_keys,
            &binding,
            &Cursor {
                created_ms: 0,
                build_id: last.image_id.clone(),
            },
            now,
        )),
        _ => None,
    };
    let images = page
        .into_iter()
        .map(|i| SellerImageOut {
            latest_scan: scans.get(&i.image_id).map(summary),
            image_id: i.image_id,
            name: i.name,
            description: i.description,
            platform: i.platform.as_str(),
            architecture: i.architecture,
            state: i.state,
        })
        .collect();
    Ok(ListImagesOutput { images, next_token })
}
