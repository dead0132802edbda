//! Change sets in the background: PREPARING runs each AMI version's scan (through the scanning
//! service) and each package version's test build and scan, then checks every change against
//! working copies of its entities; APPLYING waits for a review where one is due, then writes
//! every changed entity, its option links and the set's end in one transaction, so no entity
//! is ever half-changed and every set ends exactly once.
//!
//! Depends on: ops (Ctx, catalog, scans), catalog, store (documents), scan (checks).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::catalog::changes::{self, Env, Prepared};
use crate::catalog::{self, kind, ChangeSet, Entity, ErrorDetail, Status};
use crate::ops::catalog::{decode_change_set, finish_writes, load_entity};
use crate::ops::harness::Review;
use crate::ops::{Caller, Ctx, OpError};
use crate::scan::ScanStatus;
use crate::store::{Doc, DocWrite, StoreError};

/// How often a PREPARING set looks at its scans again.
const POLL_MS: i64 = 1000;

/// Advances every due change set by one step; the number advanced.
///
/// # Errors
/// The store failed.
pub async fn tick(ctx: &Ctx, now: i64) -> Result<usize, StoreError> {
    let due = ctx.store.due_docs(kind::CHANGE_SET, now, 32).await?;
    super::count_due(ctx, kind::CHANGE_SET, due.len());
    let mut n = 0;
    for doc in due {
        match step(ctx, &doc, now).await {
            Ok(_) => n += 1,
            Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One step of one change set (fenced on the document's version); its status after the step.
/// Counted in the metrics here, whoever steps it (the worker or the control plane's advance).
///
/// # Errors
/// The store failed, or another worker moved the set first (`ConditionFailed`).
pub async fn step(ctx: &Ctx, doc: &Doc, now: i64) -> Result<Status, StoreError> {
    let timing = super::Step::start(ctx, kind::CHANGE_SET);
    let cs = decode_change_set(doc)?;
    let from = cs.status;
    let stepped = match from {
        Status::Preparing => prepare(ctx, doc, cs, now).await,
        Status::Applying => apply(ctx, doc, cs, now).await,
        _ => save(ctx, doc, &cs, None).await,
    };
    match &stepped {
        Ok(to) => timing.done(from.as_str(), to.as_str()),
        Err(StoreError::ConditionFailed) => timing.lost(),
        Err(_) => {}
    }
    stepped
}

fn base_url(doc: &Doc) -> String {
    serde_json::from_str::<Value>(&doc.body)
        .ok()
        .and_then(|v| v["BaseUrl"].as_str().map(str::to_string))
        .unwrap_or_else(|| "http://localhost".into())
}

async fn save(
    ctx: &Ctx,
    doc: &Doc,
    cs: &ChangeSet,
    due: Option<i64>,
) -> Result<Status, StoreError> {
    let body = json!({"ChangeSet": cs, "BaseUrl": base_url(doc)}).to_string();
    let write = DocWrite::Put {
        doc: Doc {
            version: doc.version + 1,
            due_ms: due,
            body,
            ..doc.clone()
        },
        expected: Some(doc.version),
    };
    ctx.store.write_docs(&[write]).await?;
    Ok(cs.status)
}

async fn end(
    ctx: &Ctx,
    doc: &Doc,
    mut cs: ChangeSet,
    now: i64,
    extra: Vec<DocWrite>,
) -> Result<Status, StoreError> {
    cs.end_ms = Some(now);
    if cs.status == Status::Failed && cs.failure_code.is_none() {
        cs.failure_code = Some("CLIENT_ERROR".into());
        cs.failure_description =
            Some("Change set preparation has failed. For details see 'ErrorDetailList'.".into());
    }
    let mut writes = extra;
    writes.extend(finish_writes(ctx, doc, &cs).await?);
    ctx.store.write_docs(&writes).await?;
    tracing::info!(change_set = %cs.id, status = cs.status.as_str(), "change set ended");
    Ok(cs.status)
}

async fn prepare(ctx: &Ctx, doc: &Doc, mut cs: ChangeSet, now: i64) -> Result<Status, StoreError> {
    let mut waiting = false;
    let url = base_url(doc);
    for i in 0..cs.changes.len() {
        if cs.changes[i].change_type != "AddDeliveryOptions" || cs.changes[i].pending.done {
            continue;
        }
        let details = cs.changes[i].details["DeliveryOptions"][0]["Details"].clone();
        if let Some(a) = details.get("AmiDeliveryOptionDetails") {
            waiting |= !ami_scan(ctx, &cs, i, a, &url)
                .await
                .map(|p| {
                    if let Some(p) = p {
                        cs.changes[i].pending = p;
                    }
                })
                .map(|()| cs.changes[i].pending.done)?;
        } else if let Some(p) = details.get("PackageDeliveryOptionDetails") {
            cs.changes[i].pending = test_build(ctx, &cs.owner, p);
        }
    }
    if waiting {
        return save(ctx, doc, &cs, Some(now + POLL_MS)).await;
    }
    for (i, c) in cs.changes.iter_mut().enumerate() {
        if c.pending
            .errors
            .iter()
            .any(|e| e.error_code == "SCAN_ERROR")
            && !c.pending.findings.is_empty()
        {
            let expires = now / 1000 + 60 * 24 * 3600;
            let id = format!("{}/{i}", cs.id);
            let sig = ctx
                .url_signer
                .sign(&cs.owner, catalog::CATALOG_REGION, &id, expires);
            let link = format!("{url}{FINDINGS_PATH}{id}?Expires={expires}&Signature={sig}");
            c.pending.errors = vec![ErrorDetail::new("SCAN_ERROR", link)];
        }
    }
    if let Some(reason) = cs
        .changes
        .iter()
        .find(|c| c.pending.server_fault)
        .map(|c| c.pending.fault.clone())
    {
        cs.status = Status::Failed;
        cs.failure_code = Some("SERVER_FAULT".into());
        cs.failure_description = Some(format!(
            "Change set preparation has failed because of an internal error: {reason} Start the change set again."
        ));
        return end(ctx, doc, cs, now, Vec::new()).await;
    }
    let (errors, _) = run_changes(ctx, &cs, now).await?;
    let failed = errors.iter().any(|e| !e.is_empty());
    for (c, e) in cs.changes.iter_mut().zip(errors) {
        c.errors = e;
    }
    if failed {
        cs.status = Status::Failed;
        return end(ctx, doc, cs, now, Vec::new()).await;
    }
    cs.status = Status::Applying;
    let review = cs
        .changes
        .iter()
        .any(|c| c.change_type == "UpdateVisibility")
        && cs.intent == "APPLY";
    let due = if review {
        ctx.harness.review_due(&ctx.config, now)
    } else {
        ctx.harness.due_change_set(&ctx.config, now)
    };
    save(ctx, doc, &cs, Some(due)).await
}

/// Where the findings behind a `SCAN_ERROR` are served.
pub const FINDINGS_PATH: &str = "/_imagebuild/findings/";

/// Starts or follows the scan of an AMI version; `Some` once it has something to record.
async fn ami_scan(
    ctx: &Ctx,
    cs: &ChangeSet,
    i: usize,
    a: &Value,
    url: &str,
) -> Result<Option<catalog::Pending>, StoreError> {
    let p = cs.changes[i].pending.clone();
    let ami = a["AmiSource"]["AmiId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(scan_id) = p.scan_id.clone() else {
        return Ok(Some(
            start_ami_scan(ctx, cs, i, &a["AmiSource"], url, p).await,
        ));
    };
    let Some(scan) = ctx.store.get_scan(&scan_id).await? else {
        return Ok(None);
    };
    if !scan.status.is_terminal() {
        return Ok(None);
    }
    let world = ctx.world();
    let image = crate::ops::find_image(ctx, &world, catalog::CATALOG_REGION, &ami)
        .await
        .ok()
        .flatten();
    Ok(Some(scan_ended(p, &scan, &ami, &cs.owner, image.as_ref())))
}

/// Starts the scan of an AMI version through StartScans (its token is the change's, so a
/// retried step finds the same scan), unless the image carries a product code.
async fn start_ami_scan(
    ctx: &Ctx,
    cs: &ChangeSet,
    i: usize,
    src: &Value,
    url: &str,
    mut p: catalog::Pending,
) -> catalog::Pending {
    let ami = src["AmiId"].as_str().unwrap_or_default().to_string();
    let world = ctx.world();
    let image = crate::ops::find_image(ctx, &world, catalog::CATALOG_REGION, &ami)
        .await
        .ok()
        .flatten()
        .filter(|i| i.owner_id == cs.owner);
    if let Some(code) = image.as_ref().and_then(|i| i.product_codes.first()) {
        p.done = true;
        p.errors = vec![ErrorDetail::new(
            "EXISTING_AMI_PRODUCT_CODE",
            format!("Remove product code {code} attached to image {ami}."),
        )];
        return p;
    }
    let input = crate::ops::scans::StartScansInput {
        client_token: Some(format!("{}-{i}", cs.id)),
        images: Some(vec![crate::ops::scans::ImageScanIn {
            source_image_id: Some(ami.clone()),
            access_role_arn: src["AccessRoleArn"].as_str().map(str::to_string),
            os_user_name: src["UserName"].as_str().map(str::to_string),
            scanning_port: src["ScanningPort"].as_i64(),
            product_id: Some(cs.changes[i].entity_id.clone()).filter(|id| {
                world
                    .product(id)
                    .is_some_and(|w| w.seller_account_id == cs.owner)
            }),
        }]),
        sns_topic_arn: None,
    };
    let caller = Caller {
        account: cs.owner.clone(),
        region: catalog::CATALOG_REGION.into(),
        base_url: url.into(),
    };
    match crate::ops::scans::start_scans(ctx, &caller, input).await {
        Ok(out) => p.scan_id = out.scans.first().map(|s| s.scan_id.clone()),
        Err(OpError::InternalServerErrorException(m)) => {
            p.done = true;
            p.server_fault = true;
            p.fault = m;
        }
        Err(e) => {
            p.done = true;
            let role = src["AccessRoleArn"].as_str().unwrap_or_default();
            p.errors = start_error(&e, &ami, &cs.owner, role);
        }
    }
    p
}

/// What a finished scan means for its AMI version: its errors, findings and the AMI's facts.
fn scan_ended(
    mut p: catalog::Pending,
    scan: &crate::scan::Scan,
    ami: &str,
    owner: &str,
    image: Option<&crate::world::Image>,
) -> catalog::Pending {
    p.done = true;
    p.errors = scan_errors(scan, ami, owner);
    p.server_fault = scan.status == ScanStatus::InternalError;
    if p.server_fault {
        p.fault = scan
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default();
    }
    p.findings = scan
        .report
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.result == crate::scan::ControlResult::FAIL)
        .map(|f| {
            ErrorDetail::new(
                "SCAN_ERROR",
                format!("{} on Image {ami}: {}", f.title, f.remediation),
            )
        })
        .collect();
    p.ami = image.map(|img| (img.architecture.clone(), img.virtualization_type.clone()));
    p
}

fn start_error(e: &OpError, ami: &str, owner: &str, role: &str) -> Vec<ErrorDetail> {
    let (code, message) = match e {
        OpError::InvalidSourceImageIdException(_) => ("ASSET_NOT_FOUND", format!("Check if {ami} exists in us-east-1 Region of {owner} AWS account and the AccessARN provided {role} has permissions to share this AMI with AWS Marketplace.")),
        OpError::InvalidAccessRoleArnException(_) => ("ASSET_ACCESS_EXCEPTION", format!("Unable to copy AMI {ami} into AWS Marketplace account.")),
        OpError::InvalidOsUserNameException(_) => ("SSHAuthFailedForUserAndKeypair", e.to_string()),
        OpError::InvalidScanningPortException(_) => ("INVALID_SCANNING_PORT", "Provide scanning port between 1 and 65535.".into()),
        OpError::ScanInProgressException(_) => ("ASSET_ACCESS_EXCEPTION", format!("The AMI {ami} is being scanned by another request; submit it again when that scan ends.")),
        _ => ("INTERNAL_ERROR", e.to_string()),
    };
    vec![ErrorDetail::new(code, message)]
}

/// The documented codes for a finished scan (`catalog.md` §6).
fn scan_errors(scan: &crate::scan::Scan, ami: &str, owner: &str) -> Vec<ErrorDetail> {
    let code = scan
        .error
        .as_ref()
        .map(|e| e.code.as_str())
        .unwrap_or_default();
    let detail = |c: &str, m: String| vec![ErrorDetail::new(c, m)];
    match scan.status {
        ScanStatus::Succeeded => Vec::new(),
        ScanStatus::IssuesFound => detail("SCAN_ERROR", format!("Fix the security findings on Image {ami}.")),
        ScanStatus::IngestionFailed => match code {
            "SourceImageNotOwned" | "SourceImageNotAvailable" | "SourceImageRegionNotSupported" => detail("ASSET_NOT_FOUND", format!("Check if {ami} exists in us-east-1 Region of {owner} AWS account and the AccessARN provided {} has permissions to share this AMI with AWS Marketplace.", scan.access_role_arn)),
            "UnsupportedArchitecture" => detail("INVALID_AMI_ARCHITECTURE", "Provide new AMI with architecture x86_64 or arm64.".into()),
            "UnsupportedVirtualizationType" | "UnsupportedRootDeviceType" | "UnsupportedFileSystem" => detail("INVALID_AMI_VIRTUALIZATION_TYPE", "Provide new AMI with virtualization type hvm.".into()),
            _ => detail("ASSET_ACCESS_EXCEPTION", format!("Unable to copy AMI {ami} into AWS Marketplace account.")),
        },
        ScanStatus::Failed if code == "OsLoginFailed" => detail("SSHAuthFailedForUserAndKeypair", format!("Unable to log into the instance with OS default username {}.", scan.os_user_name.clone().unwrap_or_default())),
        ScanStatus::Failed => detail("SCAN_ERROR", scan.error.as_ref().map(|e| e.message.clone()).unwrap_or_default()),
        _ => Vec::new(),
    }
}

/// A package version's test build on each supported Marketplace base AMI, then the scan checks
/// on each result: the build engine's installer rules and the scanner's controls.
fn test_build(ctx: &Ctx, owner: &str, pk: &Value) -> catalog::Pending {
    let world = ctx.world();
    let mut p = catalog::Pending {
        done: true,
        ..Default::default()
    };
    let url = pk["Installer"]["Url"].as_str().unwrap_or_default();
    let platform = pk["Platform"].as_str().unwrap_or("Linux");
    let Some(installer) = world.installer(url) else {
        p.errors = vec![ErrorDetail::new(
            "ASSET_NOT_FOUND",
            format!("Check if the installer {url} exists and AWS Marketplace can read it."),
        )];
        return p;
    };
    for os in pk["OperatingSystems"].as_array().into_iter().flatten() {
        let (name, version) = (
            os["Name"].as_str().unwrap_or_default(),
            os["Version"].as_str().unwrap_or_default(),
        );
        let base = world.images.iter().find(|i| {
            i.owner_id == catalog::MARKETPLACE_ACCOUNT
                && i.region == catalog::CATALOG_REGION
                && i.platform.as_str() == platform
                && i.os
                    .as_ref()
                    .is_some_and(|o| o.name == name && o.version == version)
        });
        let Some(base) = base else {
            p.errors.push(ErrorDetail::new("INCOMPATIBLE_OPERATING_SYSTEM", format!("Provide operating system name that is supported. No {platform} Marketplace base AMI runs {name} {version}.")));
            continue;
        };
        if let Some((status, error)) = crate::worker::install_outcome(installer, url, &ctx.config) {
            if status == crate::domain::BuildStatus::InternalError {
                p.server_fault = true;
                p.fault = format!(
                    "the test build on {name} {version} ({}) was terminated by a retryable error.",
                    base.image_id
                );
                continue;
            }
            let message = error.map_or_else(
                || "The test build failed with an internal error; retry.".into(),
                |e| e.message,
            );
            p.errors.push(ErrorDetail::new(
                "INSTALL_FAILED",
                format!(
                    "Test build on {name} {version} ({}): {message}",
                    base.image_id
                ),
            ));
            continue;
        }
        let report = crate::scan::checks::evaluate(base, &world, owner, None);
        for f in report
            .findings
            .iter()
            .filter(|f| f.result == crate::scan::ControlResult::FAIL)
        {
            p.findings.push(ErrorDetail::new(
                "SCAN_ERROR",
                format!(
                    "{} on the test build of {name} {version}: {}",
                    f.title, f.remediation
                ),
            ));
        }
    }
    if p.errors.is_empty() && !p.findings.is_empty() {
        p.errors = vec![ErrorDetail::new(
            "SCAN_ERROR",
            "Fix the security findings of the test builds.",
        )];
    }
    p
}

/// The working entities of a set: stored ones, world products, and none yet for new ones.
async fn working_set(
    ctx: &Ctx,
    cs: &ChangeSet,
) -> Result<BTreeMap<String, (Entity, Option<u64>, bool)>, StoreError> {
    let mut out = BTreeMap::new();
    for id in &cs.entity_ids {
        if let Some((e, v)) = load_entity(ctx, id)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
        {
            let stored = v.is_some();
            out.insert(id.clone(), (e, v, stored));
        }
    }
    Ok(out)
}

/// Runs every change in order on working copies: each change's errors, and the entities after.
async fn run_changes(
    ctx: &Ctx,
    cs: &ChangeSet,
    now: i64,
) -> Result<(Vec<Vec<ErrorDetail>>, BTreeMap<String, Entity>), StoreError> {
    let loaded = working_set(ctx, cs).await?;
    let mut ents: BTreeMap<String, Entity> = loaded
        .iter()
        .map(|(k, (e, _, _))| (k.clone(), e.clone()))
        .collect();
    let world = ctx.world();
    let mut groups = Vec::new();
    for d in ctx.store.list_docs(kind::PACKAGE_GROUP, &cs.owner).await? {
        groups.push(
            d.id.split_once('#')
                .map(|(_, g)| g.to_string())
                .unwrap_or_default(),
        );
    }
    let harness = &ctx.harness;
    let mut new_id = || uuid::Uuid::new_v4().to_string();
    let mut new_fo = || format!("fo-{}", &harness.new_build_id().replace('-', "")[..12]);
    let mut new_code = || harness.new_build_id().replace('-', "")[..25].to_string();
    let mut env = Env {
        now_ms: now,
        owner: &cs.owner,
        world: &world,
        new_id: &mut new_id,
        new_fo: &mut new_fo,
        new_code: &mut new_code,
        used_groups: &groups,
        seller_profile: true,
    };
    let mut errors = Vec::new();
    for c in &cs.changes {
        let prepared = Prepared {
            errors: c.pending.errors.clone(),
            ami: c.pending.ami.clone(),
        };
        errors.push(changes::apply(
            &c.change_type,
            &c.entity_type,
            &c.entity_id,
            &c.details,
            &prepared,
            &mut ents,
            &mut env,
        ));
    }
    Ok((errors, ents))
}

async fn apply(ctx: &Ctx, doc: &Doc, mut cs: ChangeSet, now: i64) -> Result<Status, StoreError> {
    if let Some(i) = cs
        .changes
        .iter()
        .position(|c| c.change_type == "UpdateVisibility")
        .filter(|_| cs.intent == "APPLY")
    {
        match ctx.harness.review() {
            Review::Hold => return save(ctx, doc, &cs, None).await,
            Review::Reject { message } => {
                cs.changes[i].errors = vec![ErrorDetail::new("AUDIT_ERROR", message)];
                cs.status = Status::Failed;
                return end(ctx, doc, cs, now, Vec::new()).await;
            }
            Review::Approve => cs.review = Some("APPROVED".into()),
        }
    }
    if cs.intent == "VALIDATE" {
        cs.status = Status::Succeeded;
        return end(ctx, doc, cs, now, Vec::new()).await;
    }
    let loaded = working_set(ctx, &cs).await?;
    let (errors, ents) = run_changes(ctx, &cs, now).await?;
    if errors.iter().any(|e| !e.is_empty()) {
        for (c, e) in cs.changes.iter_mut().zip(errors) {
            c.errors = e;
        }
        cs.status = Status::Failed;
        return end(ctx, doc, cs, now, Vec::new()).await;
    }
    let writes = entity_writes(ctx, &cs, &loaded, ents, now).await?;
    cs.status = Status::Succeeded;
    end(ctx, doc, cs, now, writes).await
}

/// New links of a product's delivery options (`fo-…` or UUID → product) and the package group
/// names it used, so StartBuild finds options and a seller never reuses a group name.
async fn link_writes(ctx: &Ctx, p: &catalog::Product) -> Result<Vec<DocWrite>, StoreError> {
    let mut writes = Vec::new();
    let new = |kind: &str, id: &str| DocWrite::Put {
        doc: Doc::new(kind, id, &p.owner, None, p.id.clone()),
        expected: None,
    };
    for v in &p.versions {
        for o in &v.delivery_options {
            if ctx.store.get_doc(kind::OPTION, &o.id).await?.is_none() {
                writes.push(new(kind::OPTION, &o.id));
            }
        }
        for s in &v.sources {
            let catalog::Source::SoftwarePackage {
                package_group_name, ..
            } = s
            else {
                continue;
            };
            let key = format!("{}#{package_group_name}", p.owner);
            if !p.from_world
                && ctx
                    .store
                    .get_doc(kind::PACKAGE_GROUP, &key)
                    .await?
                    .is_none()
            {
                writes.push(new(kind::PACKAGE_GROUP, &key));
            }
        }
    }
    Ok(writes)
}

/// Entity documents (fenced on what was read), option links, package groups and new tags.
async fn entity_writes(
    ctx: &Ctx,
    cs: &ChangeSet,
    loaded: &BTreeMap<String, (Entity, Option<u64>, bool)>,
    ents: BTreeMap<String, Entity>,
    now: i64,
) -> Result<Vec<DocWrite>, StoreError> {
    let mut writes = Vec::new();
    for (id, mut e) in ents {
        let before = loaded.get(id.as_str());
        if before.is_some_and(|(b, _, _)| *b == e) {
            continue;
        }
        e.touch(now);
        let version = before.and_then(|(_, v, _)| *v);
        if let Entity::AmiProduct(p) = &e {
            writes.extend(link_writes(ctx, p).await?);
        }
        let tags: Vec<&catalog::Tag> = cs
            .changes
            .iter()
            .filter(|c| c.entity_id == id && changes::creates(&c.change_type))
            .flat_map(|c| &c.entity_tags)
            .collect();
        if !tags.is_empty() {
            let body = serde_json::to_string(&tags).unwrap_or_default();
            writes.push(DocWrite::Put {
                doc: Doc::new(kind::TAGS, &e.arn(), e.owner(), None, body),
                expected: None,
            });
        }
        let body = serde_json::to_string(&e).map_err(|x| StoreError::Corrupt(x.to_string()))?;
        let next = version.map_or(1, |v| v + 1);
        let sort = crate::ops::catalog::entity_sort(&e);
        // The entity, its DescribeEntity answer and its ListEntities summary move together, so
        // reads serve the rendered bytes and never see one without the others.
        let ty = if matches!(e, Entity::AmiProduct(_)) {
            changes::AMI_PRODUCT
        } else {
            changes::OFFER
        };
        let rendered = crate::ops::catalog::render::describe_entity(&e, ty).to_string();
        let summary = crate::ops::catalog::render::entity_summary(&e).to_string();
        for (k, b) in [
            (kind::RENDERED, rendered),
            (kind::summary(e.short_type()), summary),
        ] {
            let d = Doc {
                version: next,
                ..Doc::new(k, &id, e.owner(), None, b)
            }
            .sorted(sort.clone());
            writes.push(DocWrite::Put {
                doc: d,
                expected: version,
            });
        }
        let doc = Doc {
            version: next,
            ..Doc::new(kind::ENTITY, &id, e.owner(), None, body)
        }
        .sorted(sort);
        writes.push(DocWrite::Put {
            doc,
            expected: version,
        });
    }
    Ok(writes)
}
