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

/// A scripted outcome: builds matching every given criterion end as `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OutcomeRule {
    /// Match the source image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Match one of the build's fulfillment option ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_option_id: Option<String>,
    /// Match one of the build's product ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// `Succeeded`, `Failed` or `InternalError`.
    pub status: String,
    /// For `Failed`: `SSMAgentNotFound` or `InstallFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// For `Failed`: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Applies once, then is removed (else it stays).
    #[serde(default)]
    pub once: bool,
}

impl OutcomeRule {
    fn matches(&self, b: &Build) -> bool {
        self.image_id
            .as_ref()
            .is_none_or(|i| *i == b.source_image_id)
            && self
                .fulfillment_option_id
                .as_ref()
                .is_none_or(|f| b.fulfillment_option_ids.contains(f))
            && self.product_id.as_ref().is_none_or(|p| b.has_product(p))
    }

    /// Checks the rule's own consistency.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
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
}

/// An injected fault: calls of `Operation` answer `Exception` (with `Count` left, or with
/// `Probability`), optionally after `LatencyMs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FaultRule {
    /// `StartBuild` or `DescribeBuilds`.
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
    transition: RwLock<Option<Transition>>,
    outcomes: Mutex<Vec<OutcomeRule>>,
    faults: Mutex<Vec<FaultRule>>,
    ids: Mutex<Option<rand::rngs::StdRng>>,
}

impl Harness {
    /// Sets the transition mode for builds.
    pub fn set_transition(&self, t: Option<Transition>) {
        if let Ok(mut g) = self.transition.write() {
            *g = t;
        }
    }

    /// The transition mode in force (`None`: the configured stage lengths).
    #[must_use]
    pub fn transition(&self) -> Option<Transition> {
        self.transition.read().ok().and_then(|g| *g)
    }

    /// When a build entering `stage` at `now` is next due.
    #[must_use]
    pub fn due(&self, cfg: &OpsConfig, stage: BuildStage, now: i64) -> i64 {
        let configured = match stage {
            BuildStage::Provisioning => cfg.provision_seconds,
            BuildStage::Installing => cfg.install_seconds,
            BuildStage::CreatingImage | BuildStage::Done => cfg.imaging_seconds,
        };
        self.due_after(configured, now)
    }

    /// `now` plus the step length the transition mode gives (`configured` when none is set).
    fn due_after(&self, configured: u64, now: i64) -> i64 {
        let secs = match self.transition() {
            Some(Transition::Manual) => return MANUAL_DUE_MS,
            Some(Transition::Immediate) => 0,
            Some(Transition::Time { seconds }) => seconds,
            None => configured,
        };
        now.saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
    }

    /// When a scan entering `status` (Ingesting or Scanning) at `now` is next due.
    #[must_use]
    pub fn due_scan(&self, cfg: &OpsConfig, status: crate::scan::ScanStatus, now: i64) -> i64 {
        let configured = match status {
            crate::scan::ScanStatus::Ingesting => cfg.ingest_seconds,
            _ => cfg.scan_seconds,
        };
        self.due_after(configured, now)
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

    /// The first outcome rule matching `b` (removed if it applies once).
    #[must_use]
    pub fn take_outcome(&self, b: &Build) -> Option<OutcomeRule> {
        let mut g = self.outcomes.lock().ok()?;
        let i = g.iter().position(|r| r.matches(b))?;
        Some(if g[i].once { g.remove(i) } else { g[i].clone() })
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
    let msg = "Injected fault".to_string();
    Ok(match name {
        "BuildLimitExceededException" => OpError::BuildLimitExceededException(msg),
        "IdempotentParameterMismatchException" => {
            OpError::IdempotentParameterMismatchException(msg)
        }
        "InstallerMismatchException" => OpError::InstallerMismatchException(msg),
        "InternalServerErrorException" => OpError::InternalServerErrorException(msg),
        "InvalidDestinationImageNameException" => {
            OpError::InvalidDestinationImageNameException(msg)
        }
        "InvalidFilterException" => OpError::InvalidFilterException(msg),
        "InvalidFulfillmentOptionIdException" => OpError::InvalidFulfillmentOptionIdException(msg),
        "InvalidMaxResultsException" => OpError::InvalidMaxResultsException(msg),
        "InvalidNextTokenException" => OpError::InvalidNextTokenException(msg),
        "InvalidSnsTopicArnException" => OpError::InvalidSnsTopicArnException(msg),
        "InvalidSourceImageIdException" => OpError::InvalidSourceImageIdException(msg),
        "UnauthorizedOperationException" => OpError::UnauthorizedOperationException(msg),
        "ValidationException" => OpError::ValidationException(msg),
        "ThrottlingException" => return Err((400, "Rate exceeded".into())),
        "ServiceUnavailableException" => return Err((503, "Service unavailable".into())),
        "InternalFailure" => return Err((500, "An internal error occurred".into())),
        other => return Err((400, format!("Injected {other}"))),
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
        h.set_transition(Some(Transition::Immediate));
        assert_eq!(h.due(&cfg, BuildStage::Installing, 1000), 1000);
        h.set_transition(Some(Transition::Time { seconds: 5 }));
        assert_eq!(h.due(&cfg, BuildStage::CreatingImage, 1000), 6000);
        h.set_transition(Some(Transition::Manual));
        assert_eq!(h.due(&cfg, BuildStage::Provisioning, 1000), MANUAL_DUE_MS);
        let t: Transition = serde_json::from_str(r#"{"Mode": "time", "Seconds": 3}"#).unwrap();
        assert_eq!(t, Transition::Time { seconds: 3 });
    }

    #[test]
    fn outcomes_match_and_once_rules_are_consumed() {
        let h = Harness::default();
        let mut b = sample_build("111111111111", 1, "b");
        b.source_image_id = "ami-1".into();
        let rule = |img: &str, once| OutcomeRule {
            image_id: Some(img.into()),
            fulfillment_option_id: None,
            product_id: None,
            status: "InternalError".into(),
            error_code: None,
            message: None,
            once,
        };
        h.set_outcomes(vec![rule("ami-2", false), rule("ami-1", true)]);
        let taken = h.take_outcome(&b).unwrap();
        assert!(h.take_outcome(&b).is_none());
        h.return_outcome(taken);
        assert!(h.take_outcome(&b).is_some());
        assert!(h.take_outcome(&b).is_none());
        assert!(rule("ami-1", false).validate().is_ok());
        assert!(OutcomeRule {
            status: "Failed".into(),
            ..rule("a", false)
        }
        .validate()
        .is_err());
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
