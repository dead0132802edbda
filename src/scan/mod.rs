//! AMI scans: the record, its status machine and the findings it produces. The checks that
//! decide a scan's outcome from the world are in `checks`.
//!
//! Pure data and pure functions: no HTTP, no JSON wire shapes, no storage.
//!
//! Depends on: world.

pub mod checks;

use serde::{Deserialize, Serialize};

use crate::world::Platform;

/// Most AMIs one StartScans call may name.
pub const MAX_IMAGES_PER_REQUEST: usize = 25;

/// The status of a scan (`ScanStatus` in the companion model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScanStatus {
    /// Marketplace assumes the access role and copies the AMI.
    Ingesting,
    /// An instance of the AMI is being scanned.
    Scanning,
    /// No issue found (or every issue is covered by a granted exception).
    Succeeded,
    /// The scan found issues that must be fixed before the AMI can be listed.
    IssuesFound,
    /// The AMI could not be ingested (role, ownership, image attributes).
    IngestionFailed,
    /// The scan could not run (port, login, timeout).
    Failed,
    /// Something broke on the Marketplace side; resubmit.
    InternalError,
}

impl ScanStatus {
    /// Every status, in model order.
    pub const ALL: [ScanStatus; 7] = [
        ScanStatus::Ingesting,
        ScanStatus::Scanning,
        ScanStatus::Succeeded,
        ScanStatus::IssuesFound,
        ScanStatus::IngestionFailed,
        ScanStatus::Failed,
        ScanStatus::InternalError,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Ingesting => "Ingesting",
            ScanStatus::Scanning => "Scanning",
            ScanStatus::Succeeded => "Succeeded",
            ScanStatus::IssuesFound => "IssuesFound",
            ScanStatus::IngestionFailed => "IngestionFailed",
            ScanStatus::Failed => "Failed",
            ScanStatus::InternalError => "InternalError",
        }
    }

    /// The `status` filter value (`issues-found`, …).
    #[must_use]
    pub fn filter_value(self) -> &'static str {
        match self {
            ScanStatus::Ingesting => "ingesting",
            ScanStatus::Scanning => "scanning",
            ScanStatus::Succeeded => "succeeded",
            ScanStatus::IssuesFound => "issues-found",
            ScanStatus::IngestionFailed => "ingestion-failed",
            ScanStatus::Failed => "failed",
            ScanStatus::InternalError => "internal-error",
        }
    }

    /// Parses a `status` filter value (case-sensitive).
    #[must_use]
    pub fn from_filter_value(v: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.filter_value() == v)
    }

    /// Parses the wire name.
    #[must_use]
    pub fn from_wire(v: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == v)
    }

    /// True once the scan will not change any more.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        !matches!(self, ScanStatus::Ingesting | ScanStatus::Scanning)
    }
}

/// Why a scan ended in `IngestionFailed`, `Failed` or `InternalError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanError {
    /// A `ScanErrorCode` of the model.
    pub code: String,
    /// What happened and what to change.
    pub message: String,
}

/// Every `ErrorDetail.Code` a scan can carry, by the status it leads to.
pub const INGESTION_CODES: [&str; 11] = [
    "AccessRoleNotFound",
    "AccessRoleTrustPolicyInvalid",
    "AccessRolePermissionsInsufficient",
    "SourceImageNotOwned",
    "SourceImageNotAvailable",
    "SourceImageRegionNotSupported",
    "EncryptedSnapshot",
    "UnsupportedRootDeviceType",
    "UnsupportedVirtualizationType",
    "UnsupportedArchitecture",
    "UnsupportedFileSystem",
];

/// Codes of scans that could not run (`Failed`).
pub const EXECUTION_CODES: [&str; 3] = ["ScanningPortUnreachable", "OsLoginFailed", "ScanTimedOut"];

/// Code of `InternalError`.
pub const INTERNAL_CODE: &str = "InternalFailure";

/// A per-control result (`ControlResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types)] // the wire values
pub enum ControlResult {
    /// No finding.
    PASS,
    /// At least one finding not covered by an exception.
    FAIL,
    /// The control did not run.
    NOT_EXECUTED,
    /// Every finding is covered by an exception granted to the product.
    EXEMPTION_PASS,
}

impl ControlResult {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ControlResult::PASS => "PASS",
            ControlResult::FAIL => "FAIL",
            ControlResult::NOT_EXECUTED => "NOT_EXECUTED",
            ControlResult::EXEMPTION_PASS => "EXEMPTION_PASS",
        }
    }
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)] // the wire values
pub enum Severity {
    /// CVSS 9.0-10, malware.
    CRITICAL,
    /// CVSS 7.0-8.9, most policy violations.
    HIGH,
    /// CVSS 4.0-6.9.
    MEDIUM,
    /// CVSS 0.1-3.9.
    LOW,
    /// CVSS 0.
    INFORMATIONAL,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::CRITICAL,
        Severity::HIGH,
        Severity::MEDIUM,
        Severity::LOW,
        Severity::INFORMATIONAL,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::CRITICAL => "CRITICAL",
            Severity::HIGH => "HIGH",
            Severity::MEDIUM => "MEDIUM",
            Severity::LOW => "LOW",
            Severity::INFORMATIONAL => "INFORMATIONAL",
        }
    }

    /// The severity of a CVSS v3 base score (NVD's bands).
    #[must_use]
    pub fn from_cvss(score: f64) -> Self {
        if score >= 9.0 {
            Severity::CRITICAL
        } else if score >= 7.0 {
            Severity::HIGH
        } else if score >= 4.0 {
            Severity::MEDIUM
        } else if score > 0.0 {
            Severity::LOW
        } else {
            Severity::INFORMATIONAL
        }
    }
}

/// CVE details of a `KNOWN_VULNERABILITY` finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// CVE id.
    pub cve_id: String,
    /// Affected package.
    pub package_name: String,
    /// Version in the AMI.
    pub installed_version: String,
    /// First fixed version, if known.
    pub fixed_version: Option<String>,
    /// CVSS v3 base score.
    pub cvss: f64,
}

/// One issue a scan found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: the same issue gets the same id in every attempt.
    pub finding_id: String,
    /// The control that found it.
    pub control_id: String,
    /// `FAIL` or `EXEMPTION_PASS`.
    pub result: ControlResult,
    /// How severe it is.
    pub severity: Severity,
    /// What was found (`UPPER_SNAKE`).
    pub code: String,
    /// One line.
    pub title: String,
    /// What and why.
    pub description: String,
    /// What to change.
    pub remediation: String,
    /// `(AMI_ID | FILE_PATH | PACKAGE_NAME, value)`.
    pub scope: Vec<(String, String)>,
    /// CVE details.
    pub vulnerability: Option<Vulnerability>,
    /// The exception covering it.
    pub exemption_id: Option<String>,
}

/// One control's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlOutcome {
    /// Control id.
    pub control_id: String,
    /// Result.
    pub result: ControlResult,
}

/// What the scan phase produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Every evaluated control.
    pub controls: Vec<ControlOutcome>,
    /// Every finding, exempted ones included, most severe first.
    pub findings: Vec<Finding>,
}

/// Findings by severity (non-exempted) and the exempted count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCounts {
    /// CRITICAL.
    pub critical: u32,
    /// HIGH.
    pub high: u32,
    /// MEDIUM.
    pub medium: u32,
    /// LOW.
    pub low: u32,
    /// INFORMATIONAL.
    pub informational: u32,
    /// Covered by exceptions.
    pub exempted: u32,
}

impl ScanReport {
    /// Counts the findings.
    #[must_use]
    pub fn counts(&self) -> FindingCounts {
        let mut c = FindingCounts::default();
        for f in &self.findings {
            if f.result == ControlResult::EXEMPTION_PASS {
                c.exempted += 1;
                continue;
            }
            match f.severity {
                Severity::CRITICAL => c.critical += 1,
                Severity::HIGH => c.high += 1,
                Severity::MEDIUM => c.medium += 1,
                Severity::LOW => c.low += 1,
                Severity::INFORMATIONAL => c.informational += 1,
            }
        }
        c
    }

    /// True when a finding is not covered by an exception.
    #[must_use]
    pub fn has_failures(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.result == ControlResult::FAIL)
    }
}

/// One scan attempt of one AMI, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    /// UUID of the scan.
    pub scan_id: String,
    /// Owning (seller) account.
    pub account: String,
    /// Region of the request.
    pub region: String,
    /// Creation time (epoch ms); the listing order.
    pub created_ms: i64,
    /// Last change (epoch ms).
    pub updated_ms: i64,
    /// When it reached its final status.
    pub ended_ms: Option<i64>,
    /// Status.
    pub status: ScanStatus,
    /// When the worker should next look at it; `None` once terminal.
    pub due_ms: Option<i64>,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// The AMI.
    pub source_image_id: String,
    /// The AMI's name.
    pub source_image_name: Option<String>,
    /// The AMI's platform.
    pub platform: Platform,
    /// The role Marketplace assumes.
    pub access_role_arn: String,
    /// The OS user to log in as (Linux).
    pub os_user_name: Option<String>,
    /// SSH or RDP port.
    pub scanning_port: u16,
    /// The product whose exceptions apply.
    pub product_id: Option<String>,
    /// Topic notified of status changes.
    pub sns_topic_arn: Option<String>,
    /// Why it failed.
    pub error: Option<ScanError>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The attempt this one resubmitted.
    pub previous_scan_id: Option<String>,
    /// True for the newest scan of its AMI (kept by the store).
    pub latest: bool,
    /// Controls and findings, once the scan phase ran.
    pub report: Option<ScanReport>,
    /// A harness-scripted outcome waiting for the scan phase (set when ingestion was forced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripted: Option<ScriptedOutcome>,
}

/// An outcome a test harness forced on a scan (`PUT /_imagebuild/outcomes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedOutcome {
    /// The terminal status to reach.
    pub status: ScanStatus,
    /// `IngestionFailed`/`Failed`/`InternalError`: the `ScanErrorCode`; `IssuesFound`: the control
    /// that fails.
    pub code: Option<String>,
    /// The error message or the finding's description.
    pub message: Option<String>,
    /// `IssuesFound`: the finding's severity.
    pub severity: Option<Severity>,
}

impl Scan {
    /// The status-change notification (documented in the README).
    #[must_use]
    pub fn notification(
        &self,
        previous: Option<ScanStatus>,
        now_ms: i64,
    ) -> Option<crate::domain::Notification> {
        let topic = self.sns_topic_arn.clone()?;
        let mut msg = serde_json::Map::new();
        msg.insert("Type".into(), "ScanStatusChange".into());
        msg.insert("ScanId".into(), self.scan_id.clone().into());
        msg.insert("AccountId".into(), self.account.clone().into());
        msg.insert("Region".into(), self.region.clone().into());
        msg.insert("SourceImageId".into(), self.source_image_id.clone().into());
        msg.insert("Status".into(), self.status.as_str().into());
        if let Some(p) = previous {
            msg.insert("PreviousStatus".into(), p.as_str().into());
        }
        msg.insert("Attempt".into(), self.attempt.into());
        if let Some(e) = &self.error {
            msg.insert(
                "ErrorDetail".into(),
                serde_json::json!({"Code": e.code, "Message": e.message}),
            );
        }
        if let Some(r) = &self.report {
            let c = r.counts();
            msg.insert(
                "FindingCounts".into(),
                serde_json::json!({"Critical": c.critical, "High": c.high, "Medium": c.medium,
                    "Low": c.low, "Informational": c.informational, "Exempted": c.exempted}),
            );
        }
        msg.insert("Time".into(), crate::clock::iso8601_extended(now_ms).into());
        Some(crate::domain::Notification {
            topic_arn: topic,
            subject: format!(
                "AWS Marketplace AMI scan {} of {} is {}",
                self.scan_id,
                self.source_image_id,
                self.status.as_str()
            ),
            message: serde_json::Value::Object(msg).to_string(),
            created_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_filter_values() {
        for s in ScanStatus::ALL {
            assert_eq!(ScanStatus::from_filter_value(s.filter_value()), Some(s));
            assert_eq!(ScanStatus::from_wire(s.as_str()), Some(s));
        }
        assert_eq!(ScanStatus::from_filter_value("IssuesFound"), None);
        let terminal: Vec<_> = ScanStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal.len(), 5);
    }

    #[test]
    fn cvss_bands() {
        assert_eq!(Severity::from_cvss(9.8), Severity::CRITICAL);
        assert_eq!(Severity::from_cvss(7.5), Severity::HIGH);
        assert_eq!(Severity::from_cvss(4.0), Severity::MEDIUM);
        assert_eq!(Severity::from_cvss(0.1), Severity::LOW);
        assert_eq!(Severity::from_cvss(0.0), Severity::INFORMATIONAL);
    }

    #[test]
    fn codes_match_the_model_enum() {
        let model: serde_json::Value =
            serde_json::from_str(crate::model::AMI_SCANNING_MODEL).unwrap();
        let codes: Vec<&str> = model["shapes"]["ScanErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut ours: Vec<&str> = INGESTION_CODES.to_vec();
        ours.extend(EXECUTION_CODES);
        ours.push(INTERNAL_CODE);
        assert_eq!(codes, ours);
        let statuses: Vec<&str> = model["shapes"]["ScanStatus"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ScanStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
        );
        let controls: Vec<&str> = model["shapes"]["ControlId"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(controls, crate::world::CONTROL_IDS);
    }
}
