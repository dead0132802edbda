//! What a test harness can set through the control plane and the service consults: stage
//! transitions (`immediate`, `time`, `manual`), scripted outcomes, a seed for deterministic ids,
//! and injected faults.
//!
//! Depends on: domain, ops (config, error).

use std::sync::{Mutex, RwLock};

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{OpError, OpsConfig};
use crate::domain::{Build, BuildStage};
use crate::scan::{Scan, ScanStatus, ScriptedOutcome, Severity};
use crate::world::Image;

/// A due time far in the future (13 digits, so it still sorts as a key): "never", for manual
/// transitions.
pub const MANUAL_DUE_MS: i64 = 9_999_999_999_999;

/// How builds move between stages (moto's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Mode")]
pub enum Transition {
    /// Every stage completes at once.
    #[serde(rename = "immediate")]
    Immediate,
    /// Every stage takes `Seconds`.
    #[serde(rename = "time")]
    Time {
        /// Seconds per stage.
        #[serde(rename = "Seconds")]
        seconds: u64,
    },
    /// Stages move only through `POST /_imagebuild/advance`.
    #[serde(rename = "manual")]
    Manual,
}

/// The kinds of resource the harness drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Resource {
    /// Image builds (`StartBuild`).
    #[default]
    #[serde(rename = "build")]
    Build,
    /// AMI scans (`StartScans`, `ResubmitScan`).
    #[serde(rename = "scan")]
    Scan,
    /// Catalog change sets (`StartChangeSet`): each step, PREPARING → APPLYING → end.
    #[serde(rename = "changeset")]
    ChangeSet,
}

impl Resource {
    /// Both kinds.
    pub const ALL: [Resource; 3] = [Resource::Build, Resource::Scan, Resource::ChangeSet];

    fn index(self) -> usize {
        match self {
            Resource::Build => 0,
            Resource::Scan => 1,
            Resource::ChangeSet => 2,
        }
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Build => "build",
            Resource::Scan => "scan",
            Resource::ChangeSet => "changeset",
        }
    }
}

/// How the Seller Operations review of `UpdateVisibility` ends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "Outcome")]
pub enum Review {
    /// Approved once the review delay (`--review-seconds`) has passed.
    #[default]
    Approve,
    /// Rejected: the change fails with `AUDIT_ERROR` and this message.
    Reject {
        /// The reviewer's message.
        #[serde(rename = "Message", default = "default_audit_message")]
        message: String,
    },
    /// Held until the control plane decides (`advance` with the ChangeSetId after a new outcome).
    Hold,
}

fn default_audit_message() -> String {
    "The product did not pass the AWS Marketplace Seller Operations review.".into()
}

/// Matches an image tag: `Key` present (and equal to `Value` when given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagMatch {
    /// Tag key.
    pub key: String,
    /// Tag value (absent: any value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl TagMatch {
    fn matches(&self, image: Option<&Image>) -> bool {
        image.is_some_and(|i| {
            i.tags
                .iter()
                .any(|t| t.key == self.key && self.value.as_ref().is_none_or(|v| *v == t.value))
        })
    }
}

/// A scripted outcome: builds or scans matching every given criterion end as `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OutcomeRule {
    /// `build` (the default) or `scan`.
    #[serde(default)]
    pub resource: Resource,
    /// Match the source image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Builds: match one of the build's fulfillment option ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_option_id: Option<String>,
    /// Match one of the build's product ids, or the scan's product id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Scans: match the access role ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_role_arn: Option<String>,
    /// Match a tag of the source image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagMatch>,
    /// Builds: `Succeeded`, `Failed` or `InternalError`. Scans: `Succeeded`, `IssuesFound`,
    /// `IngestionFailed`, `Failed` or `InternalError`.
    pub status: String,
    /// Builds' `Failed`: `SSMAgentNotFound` or `InstallFailed`. Scans: the `ScanErrorCode` of
    /// `IngestionFailed`, `Failed` (`InternalError`: `InternalFailure`, the default); for
    /// `IssuesFound` the control that fails (default `KNOWN_VULNERABILITY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The error message (scans' `IssuesFound`: the finding's description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Scans' `IssuesFound`: the finding's severity (default `HIGH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Applies once, then is removed (else it stays).
    #[serde(default)]
    pub once: bool,
}

impl OutcomeRule {
    fn matches_build(&self, b: &Build, image: Option<&Image>) -> bool {
        self.resource == Resource::Build
            && self
                .image_id
                .as_ref()
                .is_none_or(|i| *i == b.source_image_id)
            && self
                .fulfillment_option_id
                .as_ref()
                .is_none_or(|f| b.fulfillment_option_ids.contains(f))
            && self.product_id.as_ref().is_none_or(|p| b.has_product(p))
            && self.tag.as_ref().is_none_or(|t| t.matches(image))
    }

    /// True when the rule applies to `s` at its current step: an `IngestionFailed` rule only
    /// while it is ingesting, the others at either step.
    fn matches_scan(&self, s: &Scan, image: Option<&Image>) -> bool {
        self.resource == Resource::Scan
            && (s.status == ScanStatus::Ingesting || self.status != "IngestionFailed")
            && self
                .image_id
                .as_ref()
                .is_none_or(|i| *i == s.source_image_id)
            && self
                .product_id
                .as_ref()
                .is_none_or(|p| s.product_id.as_ref() == Some(p))
            && self
                .access_role_arn
                .as_ref()
                .is_none_or(|r| *r == s.access_role_arn)
            && self.tag.as_ref().is_none_or(|t| t.matches(image))
    }

    /// The scan outcome this rule forces.
    #[must_use]
    pub fn scan_outcome(&self) -> Option<ScriptedOutcome> {
        Some(ScriptedOutcome {
            status: ScanStatus::from_wire(&self.status)?,
            code: self.error_code.clone(),
            message: self.message.clone(),
            severity: self.severity,
        })
    }

    /// Checks the rule's own consistency.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self.resource {
            Resource::Build => self.validate_build(),
            Resource::Scan => self.validate_scan(),
            Resource::ChangeSet => Err("Scripted outcomes are for builds and scans; a change set ends as its checks, scans and review decide (see PUT /_imagebuild/review).".into()),
        }
    }

    fn validate_build(&self) -> Result<(), String> {
        if self.access_role_arn.is_some() || self.severity.is_some() {
            return Err("AccessRoleArn and Severity apply to scan rules only".into());
        }
        match (self.status.as_str(), self.error_code.as_deref()) {
            ("Succeeded" | "InternalError", None) => Ok(()),
            ("Failed", Some("SSMAgentNotFound" | "InstallFailed")) => Ok(()),
            ("Failed", other) => Err(format!(
                "Failed needs ErrorCode SSMAgentNotFound or InstallFailed, not {other:?}"
            )),
            ("Succeeded" | "InternalError", Some(_)) => {
                Err("only Failed takes an ErrorCode".into())
            }
            (s, _) => Err(format!(
                "Status must be Succeeded, Failed or InternalError, not '{s}'"
            )),
        }
    }

    fn validate_scan(&self) -> Result<(), String> {
        use crate::scan::{EXECUTION_CODES, INGESTION_CODES, INTERNAL_CODE};
        if self.fulfillment_option_id.is_some() {
            return Err("FulfillmentOptionId applies to build rules only".into());
        }
        let code = self.error_code.as_deref();
        if self.severity.is_some() && self.status != "IssuesFound" {
            return Err("only IssuesFound takes a Severity".into());
        }
        match (self.status.as_str(), code) {
            ("Succeeded", None)
            | ("InternalError", None | Some(INTERNAL_CODE))
            | ("IssuesFound", None) => Ok(()),
            ("IssuesFound", Some(c)) if crate::world::CONTROL_IDS.contains(&c) => Ok(()),
            ("IssuesFound", Some(c)) => Err(format!(
                "IssuesFound takes a control id as ErrorCode ({}), not '{c}'",
                crate::world::CONTROL_IDS.join(", ")
            )),
            ("IngestionFailed", Some(c)) if INGESTION_CODES.contains(&c) => Ok(()),
            ("IngestionFailed", other) => Err(format!(
                "IngestionFailed needs an ErrorCode of {}, not {other:?}",
                INGESTION_CODES.join(", ")
            )),
            ("Failed", Some(c)) if EXECUTION_CODES.contains(&c) => Ok(()),
            ("Failed", other) => Err(format!(
                "Failed needs an ErrorCode of {}, not {other:?}",
                EXECUTION_CODES.join(", ")
            )),
            ("Succeeded" | "InternalError", Some(c)) => Err(format!(
                "{} takes no ErrorCode other than {INTERNAL_CODE}, not '{c}'",
                self.status
            )),
            (s, _) => Err(format!(
                "Status must be Succeeded, IssuesFound, IngestionFailed, Failed or InternalError, not '{s}'"
            )),
        }
    }
}

/// An injected fault: calls of `Operation` answer `Exception` (with `Count` left, or with
/// `Probability`), optionally after `LatencyMs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FaultRule {
    /// An operation of either service (`StartBuild`, `DescribeScans`, …).
    pub operation: String,
    /// The error code to answer with (any modeled one, or `ThrottlingException`,
    /// `ServiceUnavailableException`, `InternalFailure`); none: only latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// How many calls it applies to (absent: every call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Chance per call, 0–1 (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Delay before answering.
    #[serde(default)]
    pub latency_ms: u64,
}

/// An injected fault that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Error to answer with, if any.
    pub exception: Option<String>,
    /// Delay first.
    pub latency_ms: u64,
}

/// The harness settings in force.
#[derive(Debug, Default)]
pub struct Harness {
    transitions: RwLock<[Option<Transition>; 3]>,
    review: Mutex<Review>,
    outcomes: Mutex<Vec<OutcomeRule>>,
    faults: Mutex<Vec<FaultRule>>,
    ids: Mutex<Option<rand::rngs::StdRng>>,
    seed: Mutex<Option<u64>>,
}

impl Harness {
    /// Sets the transition mode of one kind of resource (`None`: both).
    pub fn set_transition(&self, kind: Option<Resource>, t: Option<Transition>) {
        if let Ok(mut g) = self.transitions.write() {
            for k in Resource::ALL {
                if kind.is_none_or(|only| only == k) {
                    g[k.index()] = t;
                }
            }
        }
    }

    /// The transition mode in force for `kind` (`None`: the configured step lengths).
    #[must_use]
    pub fn transition(&self, kind: Resource) -> Option<Transition> {
        self.transitions.read().ok().and_then(|g| g[kind.index()])
    }

    /// When a build entering `stage` at `now` is next due.
    #[must_use]
    pub fn due(&self, cfg: &OpsConfig, stage: BuildStage, now: i64) -> i64 {
        let configured = match stage {
            BuildStage::Provisioning => cfg.provision_seconds,
            BuildStage::Installing => cfg.install_seconds,
            BuildStage::CreatingImage | BuildStage::Done => cfg.imaging_seconds,
        };
        self.due_after(Resource::Build, configured, now)
    }

    /// `now` plus the step length `kind`'s transition mode gives (`configured` when none is set).
    fn due_after(&self, kind: Resource, configured: u64, now: i64) -> i64 {
        let secs = match self.transition(kind) {
            Some(Transition::Manual) => return MANUAL_DUE_MS,
            Some(Transition::Immediate) => 0,
            Some(Transition::Time { seconds }) => seconds,
            None => configured,
        };
        now.saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
    }

    /// When a change set's next step (prepare, apply) is due.
    #[must_use]
    pub fn due_change_set(&self, cfg: &OpsConfig, now: i64) -> i64 {
        self.due_after(Resource::ChangeSet, cfg.change_set_seconds, now)
    }

    /// When an UpdateVisibility review is decided (held reviews wait for the control plane).
    #[must_use]
    pub fn review_due(&self, cfg: &OpsConfig, now: i64) -> i64 {
        if self.review() == Review::Hold {
            return MANUAL_DUE_MS;
        }
        self.due_after(Resource::ChangeSet, cfg.review_seconds, now)
    }

    /// How Seller Operations decides UpdateVisibility reviews.
    #[must_use]
    pub fn review(&self) -> Review {
        self.review.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Sets how reviews are decided from now on.
    pub fn set_review(&self, r: Review) {
        if let Ok(mut g) = self.review.lock() {
            *g = r;
        }
    }

    /// When a scan entering `status` (Ingesting or Scanning) at `now` is next due.
    #[must_use]
    pub fn due_scan(&self, cfg: &OpsConfig, status: ScanStatus, now: i64) -> i64 {
        let configured = match status {
            ScanStatus::Ingesting => cfg.ingest_seconds,
            _ => cfg.scan_seconds,
        };
        self.due_after(Resource::Scan, configured, now)
    }

    /// Replaces the scripted outcomes.
    pub fn set_outcomes(&self, rules: Vec<OutcomeRule>) {
        if let Ok(mut g) = self.outcomes.lock() {
            *g = rules;
        }
    }

    /// The scripted outcomes in force.
    #[must_use]
    pub fn outcomes(&self) -> Vec<OutcomeRule> {
        self.outcomes.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The first rule `matches` accepts (removed if it applies once).
    fn take_first(&self, matches: impl Fn(&OutcomeRule) -> bool) -> Option<OutcomeRule> {
        let mut g = self.outcomes.lock().ok()?;
        let i = g.iter().position(matches)?;
        Some(if g[i].once { g.remove(i) } else { g[i].clone() })
    }

    /// The first build rule matching `b` built from `image` (removed if it applies once).
    #[must_use]
    pub fn take_outcome(&self, b: &Build, image: Option<&Image>) -> Option<OutcomeRule> {
        self.take_first(|r| r.matches_build(b, image))
    }

    /// The first scan rule matching `s` of `image` at its current step (removed if it applies
    /// once).
    #[must_use]
    pub fn take_scan_outcome(&self, s: &Scan, image: Option<&Image>) -> Option<OutcomeRule> {
        self.take_first(|r| r.matches_scan(s, image))
    }

    /// Puts back a once-only rule taken for a build whose update did not go through.
    pub fn return_outcome(&self, rule: OutcomeRule) {
        if rule.once {
            if let Ok(mut g) = self.outcomes.lock() {
                g.insert(0, rule);
            }
        }
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        if let Ok(mut g) = self.faults.lock() {
            *g = rules;
        }
    }

    /// The injected faults in force.
    #[must_use]
    pub fn faults(&self) -> Vec<FaultRule> {
        self.faults.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The fault that fires for this call of `operation`, if any.
    #[must_use]
    pub fn take_fault(&self, operation: &str) -> Option<Fault> {
        let mut g = self.faults.lock().ok()?;
        let i = g
            .iter()
            .position(|r| r.operation == operation && r.count != Some(0))?;
        let rule = &mut g[i];
        if let Some(p) = rule.probability {
            if rand::thread_rng().gen::<f64>() >= p {
                return None;
            }
        }
        if let Some(c) = rule.count.as_mut() {
            *c -= 1;
        }
        Some(Fault {
            exception: rule.exception.clone(),
            latency_ms: rule.latency_ms,
        })
    }

    /// Makes ids deterministic from now on (`None`: random again).
    pub fn seed(&self, seed: Option<u64>) {
        if let Ok(mut g) = self.seed.lock() {
            *g = seed;
        }
        if let Ok(mut g) = self.ids.lock() {
            *g = seed.map(rand::rngs::StdRng::seed_from_u64);
        }
    }

    /// Back to a fresh start: configured step lengths, no scripted outcomes, no faults, reviews
    /// approved, random ids.
    pub fn clear(&self) {
        self.set_transition(None, None);
        self.set_review(Review::default());
        self.set_outcomes(Vec::new());
        self.set_faults(Vec::new());
        self.seed(None);
    }

    /// Restarts the seeded sequence from its seed (a reset's ids repeat those after the seed);
    /// nothing when no seed is set.
    pub fn rewind_seed(&self) {
        let seed = self.seed.lock().ok().and_then(|g| *g);
        if let Ok(mut g) = self.ids.lock() {
            *g = seed.map(rand::rngs::StdRng::seed_from_u64);
        }
    }

    /// A new build id: a time-ordered UUIDv7, or with a seed a UUIDv4 from the seeded sequence.
    #[must_use]
    pub fn new_build_id(&self) -> String {
        if let Ok(mut g) = self.ids.lock() {
            if let Some(rng) = g.as_mut() {
                return uuid::Builder::from_random_bytes(rng.gen())
                    .into_uuid()
                    .to_string();
            }
        }
        uuid::Uuid::now_v7().to_string()
    }

    /// A new image id (`ami-` + 17 hex), from the seeded sequence when there is one.
    #[must_use]
    pub fn new_image_id(&self) -> String {
        let mut seeded = self.ids.lock().ok();
        let hex: String = (0..17)
            .map(|_| {
                let n = match seeded.as_mut().and_then(|g| g.as_mut()) {
                    Some(rng) => rng.gen_range(0..16),
                    None => rand::thread_rng().gen_range(0..16),
                };
                char::from(b"0123456789abcdef"[n])
            })
            .collect();
        format!("ami-{hex}")
    }
}

/// The answer for an injected exception name: a modeled error, or `(status, message)` of an
/// AWS framework error.
///
/// # Errors
/// The framework error's status and message when `name` is not modeled.
pub fn fault_error(name: &str) -> Result<OpError, (u16, String)> {
    if let Some(e) = OpError::from_type_name(name, "Injected fault".into()) {
        return Ok(e);
    }
    Err(match name {
        "ThrottlingException" => (400, "Rate exceeded".into()),
        "ServiceUnavailableException" => (503, "Service unavailable".into()),
        "InternalFailure" => (500, "An internal error occurred".into()),
        other => (400, format!("Injected {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_build;

    #[test]
    fn transitions_decide_due_times() {
        let h = Harness::default();
        let cfg = OpsConfig::default();
        assert_eq!(h.due(&cfg, BuildStage::Installing, 1000), 1000 + 2000);
        h.set_transition(None, Some(Transition::Immediate));
        assert_eq!(h.due(&cfg, BuildStage::Installing, 1000), 1000);
        assert_eq!(h.due_scan(&cfg, ScanStatus::Scanning, 1000), 1000);
        h.set_transition(Some(Resource::Build), Some(Transition::Time { seconds: 5 }));
        assert_eq!(h.due(&cfg, BuildStage::CreatingImage, 1000), 6000);
        assert_eq!(h.due_scan(&cfg, ScanStatus::Ingesting, 1000), 1000);
        h.set_transition(Some(Resource::Scan), Some(Transition::Manual));
        assert_eq!(h.due_scan(&cfg, ScanStatus::Ingesting, 1000), MANUAL_DUE_MS);
        assert_eq!(h.due(&cfg, BuildStage::Provisioning, 1000), 6000);
        h.set_transition(Some(Resource::Scan), None);
        let configured = 1000 + i64::try_from(cfg.scan_seconds).unwrap() * 1000;
        assert_eq!(h.due_scan(&cfg, ScanStatus::Scanning, 1000), configured);
        let t: Transition = serde_json::from_str(r#"{"Mode": "time", "Seconds": 3}"#).unwrap();
        assert_eq!(t, Transition::Time { seconds: 3 });
    }

    #[test]
    fn outcomes_match_and_once_rules_are_consumed() {
        let h = Harness::default();
        let mut b = sample_build("111111111111", 1, "b");
        b.source_image_id = "ami-1".into();
        let rule = |img: &str, once| OutcomeRule {
            resource: Resource::Build,
            image_id: Some(img.into()),
            fulfillment_option_id: None,
            product_id: None,
            access_role_arn: None,
            tag: None,
            status: "InternalError".into(),
            error_code: None,
            message: None,
            severity: None,
            once,
        };
        h.set_outcomes(vec![rule("ami-2", false), rule("ami-1", true)]);
        let taken = h.take_outcome(&b, None).unwrap();
        assert!(h.take_outcome(&b, None).is_none());
        h.return_outcome(taken);
        assert!(h.take_outcome(&b, None).is_some());
        assert!(h.take_outcome(&b, None).is_none());
        assert!(rule("ami-1", false).validate().is_ok());
        assert!(OutcomeRule {
            status: "Failed".into(),
            ..rule("a", false)
        }
        .validate()
        .is_err());
    }

    #[test]
    fn scan_rules_match_by_role_product_and_tag_at_their_step() {
        let h = Harness::default();
        let mut s = crate::store::conformance::sample_scan("123456789012", 1, "s", "ami-1");
        s.product_id = Some("prod-1".into());
        let mut img = crate::world::World::demo().unwrap().images[0].clone();
        img.tags = vec![crate::world::Tag {
            key: "team".into(),
            value: "blue".into(),
        }];
        let rule: OutcomeRule = serde_json::from_value(serde_json::json!({
            "Resource": "scan", "AccessRoleArn": s.access_role_arn, "ProductId": "prod-1",
            "Tag": {"Key": "team", "Value": "blue"}, "Status": "IngestionFailed",
            "ErrorCode": "EncryptedSnapshot"}))
        .unwrap();
        assert!(rule.validate().is_ok());
        h.set_outcomes(vec![rule.clone()]);
        assert!(
            h.take_scan_outcome(&s, None).is_none(),
            "the tag needs the image"
        );
        assert!(h
            .take_outcome(&sample_build("123456789012", 1, "b"), Some(&img))
            .is_none());
        assert_eq!(h.take_scan_outcome(&s, Some(&img)), Some(rule.clone()));
        s.status = ScanStatus::Scanning;
        assert!(
            h.take_scan_outcome(&s, Some(&img)).is_none(),
            "ingestion rules apply while ingesting"
        );
        let issues = OutcomeRule {
            status: "IssuesFound".into(),
            error_code: Some("MALWARE".into()),
            severity: Some(Severity::CRITICAL),
            ..rule.clone()
        };
        h.set_outcomes(vec![issues.clone()]);
        assert_eq!(
            h.take_scan_outcome(&s, Some(&img))
                .and_then(|r| r.scan_outcome())
                .map(|o| o.status),
            Some(ScanStatus::IssuesFound)
        );
        for (status, code) in [
            ("IngestionFailed", None),
            ("IngestionFailed", Some("ScanTimedOut")),
            ("Failed", Some("EncryptedSnapshot")),
            ("IssuesFound", Some("NOPE")),
            ("Succeeded", Some("InternalFailure")),
            ("Pending", None),
        ] {
            let bad = OutcomeRule {
                status: status.into(),
                error_code: code.map(Into::into),
                severity: None,
                ..rule.clone()
            };
            assert!(bad.validate().is_err(), "{status} {code:?}");
        }
        assert!(OutcomeRule {
            fulfillment_option_id: Some("fo".into()),
            ..issues.clone()
        }
        .validate()
        .is_err());
        assert!(
            OutcomeRule {
                resource: Resource::Build,
                status: "Succeeded".into(),
                error_code: None,
                severity: None,
                tag: None,
                product_id: None,
                ..issues
            }
            .validate()
            .is_err(),
            "AccessRoleArn is for scans"
        );
    }

    #[test]
    fn faults_count_down_and_seeds_repeat() {
        let h = Harness::default();
        h.set_faults(vec![FaultRule {
            operation: "StartBuild".into(),
            exception: Some("ThrottlingException".into()),
            count: Some(2),
            probability: None,
            latency_ms: 0,
        }]);
        assert!(h.take_fault("DescribeBuilds").is_none());
        assert!(h.take_fault("StartBuild").is_some());
        assert!(h.take_fault("StartBuild").is_some());
        assert!(h.take_fault("StartBuild").is_none());
        h.seed(Some(7));
        let a = (h.new_build_id(), h.new_image_id());
        h.seed(Some(7));
        assert_eq!((h.new_build_id(), h.new_image_id()), a);
        assert!(crate::world::is_image_id(&a.1));
    }
}
