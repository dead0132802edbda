//! The background worker: advances in-progress builds through their stages as the world
//! decides, and delivers queued notifications. `tick(now)` does one pass and reports when to
//! come back; `run` is the thin loop around it.
//!
//! Every advance is a conditional write on the build's version, with its notification and any
//! created image in the same transaction, so two workers (or a restarted one) never advance a
//! build twice, and a crash between stages just resumes at the stage it was in.
//!
//! Depends on: ops (Ctx, config), domain, store (trait), world.

pub mod catalog;
pub mod notify;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    Build, BuildError, BuildStage, BuildStatus, CreatedImage, InstallerLogs, Notification,
};
use crate::ops::{Ctx, OpsConfig};
use crate::scan::{checks, Scan, ScanError, ScanStatus, ScriptedOutcome, Severity};
use crate::store::{Effects, StoreError};
use crate::world::{Image, Tag, World};

/// What one tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickReport {
    /// Builds advanced by one stage.
    pub advanced: usize,
    /// Earliest due time still pending after the tick.
    pub next_due_ms: Option<i64>,
}

/// The next state of a build and what it produced on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    /// The build, one stage further.
    pub build: Build,
    /// The image it created, if it just succeeded.
    pub image: Option<CreatedImage>,
    /// What its installers printed, if they just ran.
    pub logs: Option<InstallerLogs>,
}

/// Computes the next state of a due build (pure apart from the new image id).
#[must_use]
pub fn advance(
    b: &Build,
    world: &World,
    source: Option<&Image>,
    cfg: &OpsConfig,
    due: &dyn Fn(BuildStage) -> i64,
    image_id: String,
    now: i64,
) -> Advance {
    let mut next = b.clone();
    next.version = b.version + 1;
    next.updated_ms = now;
    let mut image = None;
    let mut logs = None;
    let fail = |n: &mut Build, status: BuildStatus, error: Option<BuildError>| {
        n.status = status;
        n.stage = BuildStage::Done;
        n.due_ms = None;
        n.error = error;
    };
    match b.stage {
        BuildStage::Provisioning => match source {
            None => fail(&mut next, BuildStatus::InternalError, None),
            Some(img) if !img.ssm_agent => fail(
                &mut next,
                BuildStatus::Failed,
                Some(BuildError {
                    code: "SSMAgentNotFound".into(),
                    message: format!(
                        "The SSM agent was not running on the build instance launched from {} or was unreachable. Use a source image with the SSM agent installed and running.",
                        b.source_image_id
                    ),
                }),
            ),
            Some(_) => {
                next.stage = BuildStage::Installing;
                next.due_ms = Some(due(BuildStage::Installing));
            }
        },
        BuildStage::Installing => {
            let mut stdout = String::new();
            let mut stderr = String::new();
            let mut outcome: Option<(BuildStatus, Option<BuildError>)> = None;
            for fo in &b.fulfillment_option_ids {
                let Some((product, version)) = world.fulfillment_option(fo) else {
                    outcome = Some((BuildStatus::InternalError, None));
                    break;
                };
                let inst = &version.installer;
                stdout.push_str(&format!("==> {} {} ({fo})\n{}", product.title, version.version, inst.stdout));
                stderr.push_str(&inst.stderr);
                if let Some(o) = install_outcome(inst, fo, cfg) {
                    outcome = Some(o);
                    break;
                }
            }
            next.has_logs = true;
            logs = Some(InstallerLogs { stdout, stderr });
            match outcome {
                Some((status, error)) => fail(&mut next, status, error),
                None => {
                    next.stage = BuildStage::CreatingImage;
                    next.due_ms = Some(due(BuildStage::CreatingImage));
                }
            }
        }
        BuildStage::CreatingImage => {
            let Some(src) = source else {
                fail(&mut next, BuildStatus::InternalError, None);
                return Advance { build: next, image: None, logs: None };
            };
            let id = image_id;
            let mut img = src.clone();
            img.image_id.clone_from(&id);
            img.name = Some(b.destination_image_name.clone());
            img.description.clone_from(&b.destination_image_description);
            img.owner_id.clone_from(&b.account);
            img.public = false;
            img.shared_with.clear();
            img.region.clone_from(&b.region);
            img.state = "available".into();
            img.product_codes = b
                .fulfillment_option_ids
                .iter()
                .filter_map(|fo| world.fulfillment_option(fo).map(|(p, _)| p.product_code.clone()))
                .collect();
            img.tags.push(Tag { key: "AWSMarketplaceFulfillmentID".into(), value: b.fulfillment_option_ids.join(",") });
            for (i, s) in img.snapshots.iter_mut().enumerate() {
                s.snapshot_id = format!("snap-{}{i}", &id[4..20]);
            }
            image = Some(CreatedImage { image_id: id.clone(), region: b.region.clone(), image: img });
            next.destination_image_id = Some(id);
            next.status = BuildStatus::Succeeded;
            next.stage = BuildStage::Done;
            next.due_ms = None;
        }
        BuildStage::Done => {
            next.due_ms = None;
        }
    }
    Advance {
        build: next,
        image,
        logs,
    }
}

/// What running one installer does to a build: `None` when it installed, else the status and
/// error it ends with. The build engine's rule, shared by builds and the Catalog's test builds.
#[must_use]
pub fn install_outcome(
    inst: &crate::world::Installer,
    what: &str,
    cfg: &OpsConfig,
) -> Option<(BuildStatus, Option<BuildError>)> {
    if inst.internal_error {
        return Some((BuildStatus::InternalError, None));
    }
    let message = if inst.duration_seconds > cfg.install_timeout_seconds {
        format!(
            "The installer for {what} timed out after {} seconds.",
            cfg.install_timeout_seconds
        )
    } else if inst.exit_code != 0 {
        format!(
            "The installer for {what} exited with a non-zero return value ({}).",
            inst.exit_code
        )
    } else {
        return None;
    };
    Some((
        BuildStatus::Failed,
        Some(BuildError {
            code: "InstallFailed".into(),
            message,
        }),
    ))
}

/// A scripted outcome: the build ends now as the rule says (Succeeded creates its image).
fn scripted(
    b: &Build,
    rule: &crate::ops::harness::OutcomeRule,
    world: &World,
    source: Option<&Image>,
    ctx: &Ctx,
    now: i64,
) -> Advance {
    if rule.status == "Succeeded" {
        let mut at_end = b.clone();
        at_end.stage = BuildStage::CreatingImage;
        return advance(
            &at_end,
            world,
            source,
            &ctx.config,
            &|_| now,
            ctx.harness.new_image_id(),
            now,
        );
    }
    let mut next = b.clone();
    next.version = b.version + 1;
    next.updated_ms = now;
    next.stage = BuildStage::Done;
    next.due_ms = None;
    next.status = if rule.status == "Failed" {
        BuildStatus::Failed
    } else {
        BuildStatus::InternalError
    };
    next.error = rule.error_code.as_ref().map(|code| BuildError {
        code: code.clone(),
        message: rule
            .message
            .clone()
            .unwrap_or_else(|| format!("Scripted outcome: {code}")),
    });
    Advance {
        build: next,
        image: None,
        logs: None,
    }
}

/// Computes the next state of a due scan: Ingesting → Scanning | IngestionFailed;
/// Scanning → Succeeded | IssuesFound | Failed | InternalError.
#[must_use]
pub fn advance_scan(
    s: &Scan,
    world: &World,
    image: Option<&Image>,
    cfg: &OpsConfig,
    due: &dyn Fn(ScanStatus) -> i64,
    now: i64,
) -> Scan {
    let mut next = s.clone();
    next.version = s.version + 1;
    next.updated_ms = now;
    let finish = |n: &mut Scan, status: ScanStatus, error: Option<ScanError>| {
        n.status = status;
        n.error = error;
        n.due_ms = None;
        n.ended_ms = Some(now);
    };
    match s.status {
        ScanStatus::Ingesting => {
            let role = world.role(&s.access_role_arn);
            match checks::ingest(
                &s.account,
                &s.access_role_arn,
                role,
                image,
                &s.source_image_id,
                &cfg.scan,
            ) {
                Err(e) => finish(&mut next, ScanStatus::IngestionFailed, Some(e)),
                Ok(()) => {
                    next.status = ScanStatus::Scanning;
                    next.due_ms = Some(due(ScanStatus::Scanning));
                }
            }
        }
        ScanStatus::Scanning => {
            let Some(image) = image else {
                let e = ScanError {
                    code: crate::scan::INTERNAL_CODE.into(),
                    message: format!("The copy of {} was lost during the scan. Resubmit the scan; if the issue persists, contact AWS Marketplace Seller Operations.", s.source_image_id),
                };
                next.report = Some(checks::not_executed(s.platform));
                finish(&mut next, ScanStatus::InternalError, Some(e));
                return next;
            };
            match checks::execute(image, s.scanning_port, s.os_user_name.as_deref(), &cfg.scan) {
                Err((status, e)) => {
                    next.report = Some(checks::not_executed(s.platform));
                    finish(&mut next, status, Some(e));
                }
                Ok(()) => {
                    let report =
                        checks::evaluate(image, world, &s.account, s.product_id.as_deref());
                    let status = if report.has_failures() {
                        ScanStatus::IssuesFound
                    } else {
                        ScanStatus::Succeeded
                    };
                    next.report = Some(report);
                    finish(&mut next, status, None);
                }
            }
        }
        _ => next.due_ms = None,
    }
    next
}

/// Computes the next state of a due scan whose outcome a harness scripted: ingestion passes (or
/// fails with the scripted code) without looking at the role or image; the scan phase ends with
/// the scripted status.
#[must_use]
pub fn scripted_scan(
    s: &Scan,
    outcome: &ScriptedOutcome,
    due: &dyn Fn(ScanStatus) -> i64,
    now: i64,
) -> Scan {
    let mut next = s.clone();
    next.version = s.version + 1;
    next.updated_ms = now;
    next.scripted = None;
    let error = |default: &str| {
        let code = outcome.code.clone().unwrap_or_else(|| default.to_string());
        ScanError {
            message: outcome
                .message
                .clone()
                .unwrap_or_else(|| format!("Scripted outcome: {code}")),
            code,
        }
    };
    let (status, error, report) = match (s.status, outcome.status) {
        (ScanStatus::Ingesting, ScanStatus::IngestionFailed) => {
            (ScanStatus::IngestionFailed, Some(error("")), None)
        }
        (ScanStatus::Ingesting, _) => {
            next.status = ScanStatus::Scanning;
            next.due_ms = Some(due(ScanStatus::Scanning));
            next.scripted = Some(outcome.clone());
            return next;
        }
        (_, ScanStatus::Succeeded) => (
            ScanStatus::Succeeded,
            None,
            Some(checks::scripted_report(
                &s.source_image_id,
                s.platform,
                None,
            )),
        ),
        (_, ScanStatus::IssuesFound) => {
            let control = outcome.code.as_deref().unwrap_or("KNOWN_VULNERABILITY");
            let description = outcome.message.clone().unwrap_or_else(|| {
                format!("A finding of {control} scripted through the control plane.")
            });
            let severity = outcome.severity.unwrap_or(Severity::HIGH);
            (
                ScanStatus::IssuesFound,
                None,
                Some(checks::scripted_report(
                    &s.source_image_id,
                    s.platform,
                    Some((control, severity, &description)),
                )),
            )
        }
        (_, status) => (
            status,
            Some(error(crate::scan::INTERNAL_CODE)),
            Some(checks::not_executed(s.platform)),
        ),
    };
    next.status = status;
    next.error = error;
    next.report = report;
    next.due_ms = None;
    next.ended_ms = Some(now);
    next
}

/// An image of the world, or one a build created.
async fn image_of(
    ctx: &Ctx,
    world: &World,
    region: &str,
    image_id: &str,
) -> Result<Option<Image>, StoreError> {
    if let Some(i) = world.image(region, image_id) {
        return Ok(Some(i.clone()));
    }
    Ok(ctx
        .store
        .created_image(region, image_id)
        .await?
        .map(|c| c.image))
}

/// Advances every due scan by one step.
async fn tick_scans(ctx: &Ctx, now: i64) -> Result<usize, StoreError> {
    let due = ctx.store.due_scans(now, 64).await?;
    count_due(ctx, "scan", due.len());
    if due.is_empty() {
        return Ok(0);
    }
    let world = ctx.world();
    let mut advanced = 0;
    for s in due {
        let step = Step::start(ctx, "scan");
        let image = image_of(ctx, &world, &s.region, &s.source_image_id).await?;
        let due = |st| ctx.harness.due_scan(&ctx.config, st, now);
        let rule = match &s.scripted {
            Some(_) => None,
            None => ctx.harness.take_scan_outcome(&s, image.as_ref()),
        };
        let outcome = s.scripted.clone().or_else(|| {
            rule.as_ref()
                .and_then(crate::ops::harness::OutcomeRule::scan_outcome)
        });
        let next = match &outcome {
            Some(o) => scripted_scan(&s, o, &due, now),
            None => advance_scan(&s, &world, image.as_ref(), &ctx.config, &due, now),
        };
        let notification = if next.status == s.status {
            None
        } else {
            next.notification(Some(s.status), now)
        };
        match ctx
            .store
            .update_scan(&next, s.version, notification.as_ref())
            .await
        {
            Ok(()) => {
                advanced += 1;
                step.done(s.status.as_str(), next.status.as_str());
                tracing::info!(scan_id = %next.scan_id, status = next.status.as_str(), "scan advanced");
            }
            Err(e) => {
                // Not applied: a once-only scripted outcome stays for the next attempt.
                if let Some(r) = rule {
                    ctx.harness.return_outcome(r);
                }
                if !matches!(e, StoreError::ConditionFailed) {
                    return Err(e);
                }
                step.lost();
                tracing::debug!(scan_id = %s.scan_id, "scan advanced elsewhere");
            }
        }
    }
    Ok(advanced)
}

/// One pass: advances every due build by one stage and every due scan by one step.
///
/// # Errors
/// A store failure (the caller backs off and retries).
pub async fn tick(ctx: &Ctx, now: i64) -> Result<TickReport, StoreError> {
    let _pass = ctx.worker.pass().await;
    let scans_advanced = tick_scans(ctx, now).await?;
    let change_sets_advanced = catalog::tick(ctx, now).await?;
    let due = ctx.store.due_builds(now, 64).await?;
    count_due(ctx, "build", due.len());
    let mut advanced = 0;
    for b in due {
        let step = Step::start(ctx, "build");
        let world = crate::ops::catalog::world_for(ctx, &b.fulfillment_option_ids).await?;
        let source = image_of(ctx, &world, &b.region, &b.source_image_id).await?;
        let rule = ctx.harness.take_outcome(&b, source.as_ref());
        let Advance {
            build: next,
            image,
            logs,
        } = match &rule {
            Some(rule) => scripted(&b, rule, &world, source.as_ref(), ctx, now),
            None => advance(
                &b,
                &world,
                source.as_ref(),
                &ctx.config,
                &|st| ctx.harness.due(&ctx.config, st, now),
                ctx.harness.new_image_id(),
                now,
            ),
        };
        let notification = if next.status == b.status {
            None
        } else {
            Notification::for_build(&next, Some(b.status), now)
        };
        let effects = Effects {
            notification,
            image,
            logs,
        };
        match ctx.store.update_build(&next, b.version, &effects).await {
            Ok(()) => {
                advanced += 1;
                step.done(b.status.as_str(), next.status.as_str());
                if next.status != b.status {
                    tracing::info!(build_id = %next.build_id, status = next.status.as_str(), "build finished");
                }
            }
            Err(e) => {
                // Not applied: a once-only scripted outcome stays for the next attempt.
                if let Some(r) = rule {
                    ctx.harness.return_outcome(r);
                }
                if !matches!(e, StoreError::ConditionFailed) {
                    return Err(e);
                }
                step.lost();
                tracing::debug!(build_id = %b.build_id, "build advanced elsewhere");
            }
        }
    }
    Ok(TickReport {
        advanced: advanced + scans_advanced + change_sets_advanced,
        next_due_ms: next_due(ctx).await?,
    })
}

/// Sets `imagebuild_worker_due` for `resource`.
pub(crate) fn count_due(ctx: &Ctx, resource: &'static str, n: usize) {
    ctx.metrics
        .work
        .due
        .get_or_create(&crate::metrics::ResourceLabels { resource })
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// One worker step of one record, as the metrics see it.
pub(crate) struct Step<'a> {
    ctx: &'a Ctx,
    resource: &'static str,
    started: std::time::Instant,
}

impl<'a> Step<'a> {
    pub(crate) fn start(ctx: &'a Ctx, resource: &'static str) -> Self {
        Self {
            ctx,
            resource,
            started: std::time::Instant::now(),
        }
    }

    fn labels(&self) -> crate::metrics::ResourceLabels {
        crate::metrics::ResourceLabels {
            resource: self.resource,
        }
    }

    /// The step was written: its latency, and the transition if the status changed.
    pub(crate) fn done(&self, from: &'static str, to: &'static str) {
        let m = &self.ctx.metrics;
        m.work
            .step
            .get_or_create(&self.labels())
            .observe(self.started.elapsed().as_secs_f64());
        if from != to {
            m.transition(self.resource, from, to);
        }
    }

    /// The step's version-fenced write lost to another writer.
    pub(crate) fn lost(&self) {
        self.ctx
            .metrics
            .work
            .fenced_writes_lost
            .get_or_create(&self.labels())
            .inc();
    }
}

/// The earliest due time of any build, scan or change set.
async fn next_due(ctx: &Ctx) -> Result<Option<i64>, StoreError> {
    let work = ctx.store.next_due_ms().await?;
    let sets = ctx
        .store
        .due_docs(crate::catalog::kind::CHANGE_SET, i64::MAX, 1)
        .await?
        .first()
        .and_then(|d| d.due_ms);
    Ok(match (work, sets) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Runs the worker until `shutdown` turns true.
pub async fn run(ctx: Arc<Ctx>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tracing::debug!("worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = ctx.clock.now_ms();
        let wait_ms = match tick(&ctx, now).await {
            Ok(r) if r.advanced > 0 => {
                tokio::task::yield_now().await;
                continue;
            }
            // Cap the sleep so a moved (virtual) clock is noticed within a second.
            Ok(r) => r.next_due_ms.map_or(1000, |d| (d - now).clamp(0, 1000)),
            Err(e) => {
                tracing::warn!(error = %e, "worker tick failed; retrying");
                500
            }
        };
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0))) => {}
            () = ctx.worker.woken() => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!("worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_build;

    fn world() -> World {
        World::demo().unwrap()
    }

    fn build_for(fo: &str, image: &str) -> Build {
        let mut b = sample_build("123456789012", 1000, "b1");
        b.fulfillment_option_ids = vec![fo.into()];
        b.source_image_id = image.into();
        b
    }

    /// Runs a build to its end; returns it with the image and logs it produced.
    fn run_to_end(mut b: Build) -> (Build, Option<CreatedImage>, Option<InstallerLogs>) {
        let w = world();
        let cfg = OpsConfig::default();
        let (mut created, mut logs) = (None, None);
        for step in 0..5 {
            if b.status.is_terminal() {
                break;
            }
            let src = w.image(&b.region, &b.source_image_id).cloned();
            let a = advance(
                &b,
                &w,
                src.as_ref(),
                &cfg,
                &|_| 9000,
                format!("ami-{:017x}", step),
                2000 + step,
            );
            assert_eq!(a.build.version, b.version + 1);
            created = a.image.or(created);
            logs = a.logs.or(logs);
            b = a.build;
        }
        (b, created, logs)
    }

    #[test]
    fn good_installer_succeeds_and_creates_an_owned_tagged_image() {
        let (b, img, logs) = run_to_end(build_for("fo-ids4xf7qagwyc", "ami-0a1b2c3d4e5f60718"));
        assert_eq!(b.status, BuildStatus::Succeeded);
        assert_eq!(b.due_ms, None);
        let img = img.unwrap();
        assert_eq!(Some(img.image_id.clone()), b.destination_image_id);
        assert!(crate::world::is_image_id(&img.image_id) && img.image_id.len() == 21);
        assert_eq!(b.due_ms, None);
        assert_eq!(img.image.owner_id, "123456789012");
        assert_eq!(img.image.product_codes, vec!["8a7b6c5d4e3f2g1h0i9j8k7l6"]);
        assert!(img
            .image
            .tags
            .iter()
            .any(|t| t.key == "AWSMarketplaceFulfillmentID" && t.value == "fo-ids4xf7qagwyc"));
        assert!(b.has_logs && logs.unwrap().stdout.contains("installed"));
    }

    #[test]
    fn missing_ssm_agent_fails_before_installing() {
        let (b, img, logs) = run_to_end(build_for("fo-ids4xf7qagwyc", "ami-0c1b2c3d4e5f60718"));
        assert_eq!(b.status, BuildStatus::Failed);
        assert_eq!(b.error.unwrap().code, "SSMAgentNotFound");
        assert!(img.is_none() && logs.is_none() && !b.has_logs);
    }

    #[test]
    fn failing_timing_out_and_broken_installers() {
        let (b, _, logs) = run_to_end(build_for("fo-demofailinstall", "ami-0a1b2c3d4e5f60718"));
        assert_eq!(
            (b.status, b.error.as_ref().unwrap().code.as_str()),
            (BuildStatus::Failed, "InstallFailed")
        );
        assert!(logs.unwrap().stderr.contains("exit status 1"));
        let (b, _, _) = run_to_end(build_for("fo-demotimeout01", "ami-0a1b2c3d4e5f60718"));
        assert!(b.error.unwrap().message.contains("timed out"));
        let (b, _, _) = run_to_end(build_for("fo-demointernal01", "ami-0a1b2c3d4e5f60718"));
        assert_eq!(b.status, BuildStatus::InternalError);
        assert!(b.error.is_none());
    }
}
