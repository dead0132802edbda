//! What a scan decides, as pure functions of the world: ingestion (role, then image
//! attributes), execution (boot, port, login) and the security controls that produce findings.
//! Nothing here knows an image id: every outcome follows from the facts of the fixtures.
//!
//! Depends on: scan (records), world.

use sha2::{Digest, Sha256};

use super::{
    ControlOutcome, ControlResult, Finding, ScanError, ScanReport, Severity, Vulnerability,
};
use crate::world::{Exemption, Image, Platform, Role, World};

/// The service principal the access role must trust.
pub const MARKETPLACE_PRINCIPAL: &str = "assets.marketplace.amazonaws.com";

/// The actions of the `AWSMarketplaceAmiIngestion` managed policy, which the role needs.
pub const REQUIRED_ACTIONS: [&str; 5] = [
    "ec2:DescribeImages",
    "ec2:DescribeImageAttribute",
    "ec2:ModifyImageAttribute",
    "ec2:DescribeSnapshotAttribute",
    "ec2:ModifySnapshotAttribute",
];

/// File systems the scanner can mount.
pub const SUPPORTED_FILE_SYSTEMS: [&str; 7] =
    ["ext2", "ext3", "ext4", "xfs", "vfat", "lvm", "ntfs"];

/// Where scans can run and how long they wait for an instance.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// Regions AMIs must be in (AWS: us-east-1 only).
    pub regions: Vec<String>,
    /// Longest wait for a scan instance to become reachable.
    pub timeout_seconds: u64,
}

impl Default for ScanSettings {
    fn default() -> Self {
        Self {
            regions: vec!["us-east-1".into()],
            timeout_seconds: 1800,
        }
    }
}

fn error(code: &str, message: String) -> ScanError {
    ScanError {
        code: code.into(),
        message,
    }
}

/// IAM-style action match: exact (case-insensitive) or `*` wildcards.
fn action_matches(pattern: &str, action: &str) -> bool {
    crate::auth::wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

fn allows(patterns: &[String], action: &str) -> bool {
    patterns.iter().any(|p| action_matches(p, action))
}

/// The ingestion phase: Marketplace assumes the role, then inspects and copies the AMI.
///
/// # Errors
/// The ingestion failure, with the code and the hint the seller needs.
pub fn ingest(
    account: &str,
    role_arn: &str,
    role: Option<&Role>,
    image: Option<&Image>,
    image_id: &str,
    settings: &ScanSettings,
) -> Result<(), ScanError> {
    let Some(role) = role else {
        return Err(error(
            "AccessRoleNotFound",
            format!("AWS Marketplace could not assume the IAM role {role_arn}: it does not exist in account {account}. Create the role (IAM console: AWS Marketplace > Marketplace - AMI Assets Ingestion), attach the AWSMarketplaceAmiIngestion managed policy, then resubmit the scan with the role's ARN."),
        ));
    };
    if !role
        .trusted_principals
        .iter()
        .any(|p| p == MARKETPLACE_PRINCIPAL)
    {
        return Err(error(
            "AccessRoleTrustPolicyInvalid",
            format!("The trust policy of {role_arn} does not allow {MARKETPLACE_PRINCIPAL} to assume it. Add a statement that allows the service principal {MARKETPLACE_PRINCIPAL} the action sts:AssumeRole, then resubmit the scan."),
        ));
    }
    let granted: Vec<&str> = REQUIRED_ACTIONS
        .iter()
        .copied()
        .filter(|a| allows(&role.allowed_actions, a))
        .collect();
    let missing: Vec<&str> = REQUIRED_ACTIONS
        .iter()
        .copied()
        .filter(|a| !granted.contains(a))
        .collect();
    let bounded: Vec<&str> = match &role.permissions_boundary {
        Some(b) => granted.iter().copied().filter(|a| !allows(b, a)).collect(),
        None => Vec::new(),
    };
    if !missing.is_empty() || !bounded.is_empty() {
        let mut hints = Vec::new();
        if !missing.is_empty() {
            hints.push(format!(
                "add {} to the role's policies (the AWSMarketplaceAmiIngestion managed policy grants every action needed)",
                missing.join(", ")
            ));
        }
        if !bounded.is_empty() {
            hints.push(format!(
                "the permissions boundary is too restrictive: allow {} in it",
                bounded.join(", ")
            ));
        }
        return Err(error(
            "AccessRolePermissionsInsufficient",
            format!("The IAM role {role_arn} does not give AWS Marketplace the permissions it needs to copy the AMI: {}. Then resubmit the scan.", hints.join("; ")),
        ));
    }
    let Some(image) = image else {
        return Err(error(
            "SourceImageNotAvailable",
            format!(
                "The AMI {image_id} no longer exists or is not available. Submit an available AMI."
            ),
        ));
    };
    if image.owner_id != account {
        return Err(error(
            "SourceImageNotOwned",
            format!("The AMI {image_id} is owned by account {}, not by your AWS Marketplace seller account {account}. Copy the AMI into your seller account (ec2 copy-image) and submit the copy.", image.owner_id),
        ));
    }
    if image.state != "available" {
        return Err(error(
            "SourceImageNotAvailable",
            format!("The AMI {image_id} is in state '{}'. Wait until it is available, then resubmit the scan.", image.state),
        ));
    }
    if !settings.regions.contains(&image.region) {
        return Err(error(
            "SourceImageRegionNotSupported",
            format!("The AMI {image_id} is in {}; AMIs are scanned only in {}. Copy the AMI to {} and submit the copy.", image.region, settings.regions.join(", "), settings.regions.first().map_or("us-east-1", String::as_str)),
        ));
    }
    if let Some(s) = image.snapshots.iter().find(|s| s.encrypted) {
        return Err(error(
            "EncryptedSnapshot",
            format!("The snapshot {} of AMI {image_id} is encrypted. AWS Marketplace cannot copy encrypted snapshots: create the AMI from unencrypted volumes and submit it.", s.snapshot_id),
        ));
    }
    if image.root_device_type != "ebs" {
        return Err(error(
            "UnsupportedRootDeviceType",
            format!("The AMI {image_id} has root device type '{}'. Only EBS-backed AMIs can be listed: create an EBS-backed AMI and submit it.", image.root_device_type),
        ));
    }
    if image.virtualization_type != "hvm" {
        return Err(error(
            "UnsupportedVirtualizationType",
            format!("The AMI {image_id} uses '{}' virtualization. Only HVM AMIs can be listed: create an HVM AMI and submit it.", image.virtualization_type),
        ));
    }
    if !["x86_64", "arm64"].contains(&image.architecture.as_str()) {
        return Err(error(
            "UnsupportedArchitecture",
            format!("The AMI {image_id} has architecture '{}'. Only 64-bit (x86_64) and 64-bit ARM (arm64) AMIs can be listed.", image.architecture),
        ));
    }
    if let Some(fs) = image
        .file_systems
        .iter()
        .find(|f| !SUPPORTED_FILE_SYSTEMS.contains(&f.to_ascii_lowercase().as_str()))
    {
        return Err(error(
            "UnsupportedFileSystem",
            format!("The AMI {image_id} uses the file system '{fs}'. Supported file systems are ext2, ext3, ext4, xfs, vfat, LVM and NTFS, unencrypted."),
        ));
    }
    Ok(())
}

/// The execution phase: launch an instance, reach the scanning port, log in.
///
/// # Errors
/// `Failed` with its code, or `InternalError` (code `InternalFailure`).
pub fn execute(
    image: &Image,
    port: u16,
    os_user: Option<&str>,
    settings: &ScanSettings,
) -> Result<(), (super::ScanStatus, ScanError)> {
    let id = &image.image_id;
    if image.scan_internal_error {
        return Err((
            super::ScanStatus::InternalError,
            error(
                super::INTERNAL_CODE,
                format!("The scan of {id} stopped because of an internal error in AWS Marketplace. Resubmit the scan; if the issue persists, contact AWS Marketplace Seller Operations."),
            ),
        ));
    }
    let failed =
        |code: &str, message: String| Err((super::ScanStatus::Failed, error(code, message)));
    if image.boot_seconds > settings.timeout_seconds {
        return failed(
            "ScanTimedOut",
            format!("An instance launched from {id} did not become reachable within {} seconds. Make sure the AMI boots without manual steps and its network starts at boot, then resubmit.", settings.timeout_seconds),
        );
    }
    if !image.open_ports.contains(&port) {
        let what = match image.platform {
            Platform::Linux => "SSH",
            Platform::Windows => "RDP",
        };
        return failed(
            "ScanningPortUnreachable",
            format!("Nothing answered on port {port} of an instance launched from {id}. Make sure {what} listens on the scanning port at boot (or resubmit with the port it listens on)."),
        );
    }
    if image.platform == Platform::Linux {
        let user = os_user.unwrap_or_default();
        if !image.os_users.iter().any(|u| u == user) {
            return failed(
                "OsLoginFailed",
                format!("AWS Marketplace could not log in to an instance of {id} as '{user}' with an SSH key pair. Resubmit with the OS user name of the AMI (for example ec2-user or ubuntu) and make sure key-pair login works for it."),
            );
        }
    }
    Ok(())
}

fn finding_id(control: &str, code: &str, scope: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(control.as_bytes());
    h.update(b"\0");
    h.update(code.as_bytes());
    for (k, v) in scope {
        h.update(b"\0");
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
    }
    format!("finding-{}", &hex::encode(h.finalize())[..16])
}

struct Draft {
    control: &'static str,
    severity: Severity,
    code: &'static str,
    title: String,
    description: String,
    remediation: String,
    file: Option<String>,
    package: Option<String>,
    vulnerability: Option<Vulnerability>,
}

/// The controls evaluated for a platform, in report order.
#[must_use]
pub fn controls_for(platform: Platform) -> Vec<&'static str> {
    let mut v = vec!["KNOWN_VULNERABILITY", "MALWARE", "UNSUPPORTED_OS"];
    match platform {
        Platform::Linux => v.extend([
            "SSH_PASSWORD_AUTHENTICATION",
            "ROOT_PASSWORD",
            "ROOT_REMOTE_LOGIN",
            "AUTHORIZED_KEYS",
            "HARDCODED_CREDENTIALS",
        ]),
        Platform::Windows => v.extend([
            "HARDCODED_CREDENTIALS",
            "WINDOWS_GUEST_ACCOUNTS",
            "WINDOWS_LAUNCH_AGENT",
        ]),
    }
    v
}

#[allow(clippy::too_many_lines)] // one arm per control, read top to bottom
fn drafts(image: &Image) -> Vec<Draft> {
    let mut out = Vec::new();
    for p in &image.packages {
        for c in &p.cves {
            let cvss = c.cvss();
            let fix = c.fixed_version().map_or_else(
                || format!("Update {} to a version without {} (apply the latest patches for your operating system)", p.name, c.id()),
                |v| format!("Update {} to {v} or later", p.name),
            );
            out.push(Draft {
                control: "KNOWN_VULNERABILITY",
                severity: Severity::from_cvss(cvss),
                code: "VULNERABLE_PACKAGE",
                title: format!("{} in {} {}", c.id(), p.name, p.version),
                description: format!(
                    "The package {} {} is affected by {} (CVSS {cvss:.1}).",
                    p.name,
                    p.version,
                    c.id()
                ),
                remediation: format!("{fix}, create a new AMI and submit it."),
                file: None,
                package: Some(p.name.clone()),
                vulnerability: Some(Vulnerability {
                    cve_id: c.id().to_string(),
                    package_name: p.name.clone(),
                    installed_version: p.version.clone(),
                    fixed_version: c.fixed_version().map(str::to_string),
                    cvss,
                }),
            });
        }
    }
    for m in &image.malware {
        let sig = m.signature().map(|s| format!(" ({s})")).unwrap_or_default();
        out.push(Draft {
            control: "MALWARE",
            severity: Severity::CRITICAL,
            code: "MALWARE_DETECTED",
            title: format!("Malware detected in {}", m.path()),
            description: format!("The file {} matches a malware signature{sig}.", m.path()),
            remediation: "Remove the infected file, find how it got into the image, build a clean AMI and submit it.".into(),
            file: Some(m.path().to_string()),
            package: None,
            vulnerability: None,
        });
    }
    if let Some(os) = image.os.as_ref().filter(|o| o.end_of_life) {
        out.push(Draft {
            control: "UNSUPPORTED_OS",
            severity: Severity::HIGH,
            code: "END_OF_LIFE_OS",
            title: format!("{} {} is past its end of life", os.name, os.version),
            description: format!(
                "The operating system {} {} no longer receives security updates.",
                os.name, os.version
            ),
            remediation: "Rebuild the AMI on a supported operating system version and submit it."
                .into(),
            file: None,
            package: None,
            vulnerability: None,
        });
    }
    for p in image.packages.iter().filter(|p| p.end_of_life) {
        out.push(Draft {
            control: "UNSUPPORTED_OS",
            severity: Severity::HIGH,
            code: "END_OF_LIFE_PACKAGE",
            title: format!("{} {} is past its end of life", p.name, p.version),
            description: format!(
                "The package {} {} no longer receives security updates.",
                p.name, p.version
            ),
            remediation: format!(
                "Update {} to a supported version or remove it, create a new AMI and submit it.",
                p.name
            ),
            file: None,
            package: Some(p.name.clone()),
            vulnerability: None,
        });
    }
    match image.platform {
        Platform::Linux => linux_drafts(image, &mut out),
        Platform::Windows => windows_drafts(image, &mut out),
    }
    for path in &image.hardcoded_secrets {
        out.push(Draft {
            control: "HARDCODED_CREDENTIALS",
            severity: Severity::HIGH,
            code: "HARDCODED_SECRET",
            title: format!("Credentials stored in {path}"),
            description: format!("The file {path} holds a password, private key or AWS access key baked into the image."),
            remediation: "Remove the credentials from the image; generate them at first boot or use an IAM role, then submit a new AMI.".into(),
            file: Some(path.clone()),
            package: None,
            vulnerability: None,
        });
    }
    out
}

fn linux_drafts(image: &Image, out: &mut Vec<Draft>) {
    let sshd = image.sshd.clone().unwrap_or(crate::world::Sshd {
        password_authentication: false,
        permit_root_login: "no".into(),
    });
    if sshd.password_authentication {
        out.push(Draft {
            control: "SSH_PASSWORD_AUTHENTICATION",
            severity: Severity::HIGH,
            code: "PASSWORD_AUTHENTICATION_ENABLED",
            title: "SSH password authentication is enabled".into(),
            description: "sshd accepts passwords; AWS Marketplace AMIs must allow key-pair login only.".into(),
            remediation: "Set PasswordAuthentication no in /etc/ssh/sshd_config, create a new AMI and submit it.".into(),
            file: Some("/etc/ssh/sshd_config".into()),
            package: None,
            vulnerability: None,
        });
    }
    match image.root_password.as_str() {
        "blank" => out.push(Draft {
            control: "ROOT_PASSWORD",
            severity: Severity::CRITICAL,
            code: "ROOT_PASSWORD_BLANK",
            title: "The root password is blank".into(),
            description: "root has an empty password in /etc/shadow.".into(),
            remediation: "Lock the root password (passwd -l root), create a new AMI and submit it.".into(),
            file: Some("/etc/shadow".into()),
            package: None,
            vulnerability: None,
        }),
        "set" => out.push(Draft {
            control: "ROOT_PASSWORD",
            severity: Severity::HIGH,
            code: "ROOT_PASSWORD_SET",
            title: "The root password is set".into(),
            description: "root has a fixed password that every instance shares.".into(),
            remediation: "Lock the root password (passwd -l root) and give access through a sudo user with key-pair login, then submit a new AMI.".into(),
            file: Some("/etc/shadow".into()),
            package: None,
            vulnerability: None,
        }),
        _ => {}
    }
    if !["no", "forced-commands-only"].contains(&sshd.permit_root_login.as_str()) {
        out.push(Draft {
            control: "ROOT_REMOTE_LOGIN",
            severity: Severity::HIGH,
            code: "ROOT_LOGIN_ENABLED",
            title: format!(
                "Root can log in over SSH (PermitRootLogin {})",
                sshd.permit_root_login
            ),
            description:
                "root can log in remotely; access must go through a user account with sudo.".into(),
            remediation:
                "Set PermitRootLogin no in /etc/ssh/sshd_config, create a new AMI and submit it."
                    .into(),
            file: Some("/etc/ssh/sshd_config".into()),
            package: None,
            vulnerability: None,
        });
    }
    for path in &image.authorized_keys {
        out.push(Draft {
            control: "AUTHORIZED_KEYS",
            severity: Severity::HIGH,
            code: "AUTHORIZED_KEYS_PRESENT",
            title: format!("SSH authorized keys baked into {path}"),
            description: format!("{path} holds public keys that would let their owners into every instance."),
            remediation: format!("Delete {path} before creating the AMI (keys come from the EC2 key pair at launch), then submit a new AMI."),
            file: Some(path.clone()),
            package: None,
            vulnerability: None,
        });
    }
}

fn windows_drafts(image: &Image, out: &mut Vec<Draft>) {
    let w = image.windows.clone().unwrap_or_default();
    for a in &w.guest_accounts {
        out.push(Draft {
            control: "WINDOWS_GUEST_ACCOUNTS",
            severity: Severity::HIGH,
            code: "GUEST_ACCOUNT_ENABLED",
            title: format!("The guest account '{a}' is enabled"),
            description: format!("The account '{a}' can log in without credentials of its own."),
            remediation: format!("Disable the account '{a}' (net user {a} /active:no), create a new AMI and submit it."),
            file: None,
            package: None,
            vulnerability: None,
        });
    }
    for u in &w.remote_desktop_users {
        out.push(Draft {
            control: "WINDOWS_GUEST_ACCOUNTS",
            severity: Severity::HIGH,
            code: "REMOTE_DESKTOP_USER_PRESENT",
            title: format!("'{u}' is a member of Remote Desktop Users"),
            description: format!("The account '{u}' was left in the Remote Desktop Users group."),
            remediation: format!(
                "Remove '{u}' from Remote Desktop Users, create a new AMI and submit it."
            ),
            file: None,
            package: None,
            vulnerability: None,
        });
    }
    if w.launch_agent == "none" || !w.random_admin_password {
        out.push(Draft {
            control: "WINDOWS_LAUNCH_AGENT",
            severity: Severity::MEDIUM,
            code: "LAUNCH_AGENT_NOT_CONFIGURED",
            title: if w.launch_agent == "none" {
                "No EC2 launch agent is installed".into()
            } else {
                format!("{} does not set a random administrator password", w.launch_agent)
            },
            description: "Instances would start with a fixed administrator password.".into(),
            remediation: "Install EC2Launch v2 (or enable Ec2SetPassword and Ec2HandleUserData in EC2Config) so each instance gets a random administrator password, then submit a new AMI.".into(),
            file: None,
            package: None,
            vulnerability: None,
        });
    }
}

fn exemption_covers(e: &Exemption, d: &Draft) -> bool {
    e.control_id == d.control
        && e.r#match.iter().all(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            match k.as_str() {
                "CveId" => d.vulnerability.as_ref().is_some_and(|x| x.cve_id == v),
                "PackageName" => d.package.as_deref() == Some(v),
                "FilePath" => d.file.as_deref() == Some(v),
                _ => false,
            }
        })
}

/// The scan phase: every control of the platform evaluated against the image's facts.
/// Exceptions granted to `product_id` apply only when that product belongs to `account`.
#[must_use]
pub fn evaluate(
    image: &Image,
    world: &World,
    account: &str,
    product_id: Option<&str>,
) -> ScanReport {
    let exemptions: Vec<&Exemption> = match product_id.and_then(|p| world.product(p)) {
        Some(p) if p.seller_account_id == account => world
            .exemptions
            .iter()
            .filter(|e| e.product_id == p.product_id)
            .collect(),
        _ => Vec::new(),
    };
    let mut findings: Vec<Finding> = drafts(image)
        .into_iter()
        .map(|d| {
            let exemption = exemptions.iter().find(|e| exemption_covers(e, &d));
            let mut scope = vec![("AMI_ID".to_string(), image.image_id.clone())];
            if let Some(f) = &d.file {
                scope.push(("FILE_PATH".into(), f.clone()));
            }
            if let Some(p) = &d.package {
                scope.push(("PACKAGE_NAME".into(), p.clone()));
            }
            let id_scope: Vec<(String, String)> = scope
                .iter()
                .filter(|(k, _)| k != "AMI_ID")
                .cloned()
                .chain(
                    d.vulnerability
                        .iter()
                        .map(|v| ("CVE".into(), v.cve_id.clone())),
                )
                .collect();
            Finding {
                finding_id: finding_id(d.control, d.code, &id_scope),
                control_id: d.control.into(),
                result: if exemption.is_some() {
                    ControlResult::EXEMPTION_PASS
                } else {
                    ControlResult::FAIL
                },
                severity: d.severity,
                code: d.code.into(),
                title: d.title,
                description: d.description,
                remediation: d.remediation,
                scope,
                vulnerability: d.vulnerability,
                exemption_id: exemption.map(|e| e.exemption_id.clone()),
            }
        })
        .collect();
    findings.sort_by_key(|f| f.severity);
    let controls = controls_for(image.platform)
        .into_iter()
        .map(|c| {
            let mine: Vec<&Finding> = findings.iter().filter(|f| f.control_id == c).collect();
            let result = if mine.is_empty() {
                ControlResult::PASS
            } else if mine.iter().any(|f| f.result == ControlResult::FAIL) {
                ControlResult::FAIL
            } else {
                ControlResult::EXEMPTION_PASS
            };
            ControlOutcome {
                control_id: c.into(),
                result,
            }
        })
        .collect();
    ScanReport { controls, findings }
}

/// The report of a scan whose outcome a test harness scripted: every control of the platform
/// passes, except `failing` (with one finding) when given.
#[must_use]
pub fn scripted_report(
    image_id: &str,
    platform: Platform,
    failing: Option<(&str, Severity, &str)>,
) -> ScanReport {
    let findings: Vec<Finding> = failing
        .map(|(control, severity, description)| Finding {
            finding_id: finding_id(control, "SCRIPTED_FINDING", &[]),
            control_id: control.to_string(),
            result: ControlResult::FAIL,
            severity,
            code: "SCRIPTED_FINDING".into(),
            title: format!("Scripted finding of {control}"),
            description: description.to_string(),
            remediation: "This finding was scripted through the control plane (PUT /_imagebuild/outcomes); remove the rule to scan the AMI's facts.".into(),
            scope: vec![("AMI_ID".into(), image_id.to_string())],
            vulnerability: None,
            exemption_id: None,
        })
        .into_iter()
        .collect();
    let mut controls: Vec<&str> = controls_for(platform);
    if let Some((c, _, _)) = failing {
        if !controls.contains(&c) {
            controls.push(c);
        }
    }
    ScanReport {
        controls: controls
            .into_iter()
            .map(|c| ControlOutcome {
                control_id: c.into(),
                result: if failing.is_some_and(|(f, _, _)| f == c) {
                    ControlResult::FAIL
                } else {
                    ControlResult::PASS
                },
            })
            .collect(),
        findings,
    }
}

/// The report of a scan that failed before its controls ran: every control `NOT_EXECUTED`.
#[must_use]
pub fn not_executed(platform: Platform) -> ScanReport {
    ScanReport {
        controls: controls_for(platform)
            .into_iter()
            .map(|c| ControlOutcome {
                control_id: c.into(),
                result: ControlResult::NOT_EXECUTED,
            })
            .collect(),
        findings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ScanStatus;

    const ACCT: &str = "123456789012";
    const GOOD_ROLE: &str = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion";

    fn world() -> World {
        World::demo().unwrap()
    }

    fn image(w: &World, id: &str) -> Image {
        w.images
            .iter()
            .find(|i| i.image_id == id && i.region == "us-east-1")
            .unwrap()
            .clone()
    }

    fn ingest_code(w: &World, role: &str, img: Option<&Image>) -> Option<String> {
        ingest(
            ACCT,
            role,
            w.role(role),
            img,
            "ami-00000000",
            &ScanSettings::default(),
        )
        .err()
        .map(|e| e.code)
    }

    #[test]
    fn role_checks_come_first_and_name_the_fix() {
        let w = world();
        let img = image(&w, "ami-0a1b2c3d4e5f60718");
        assert_eq!(ingest_code(&w, GOOD_ROLE, Some(&img)), None);
        let cases = [
            (
                "arn:aws:iam::123456789012:role/Missing",
                "AccessRoleNotFound",
                "does not exist",
            ),
            (
                "arn:aws:iam::123456789012:role/NoMarketplaceTrust",
                "AccessRoleTrustPolicyInvalid",
                "sts:AssumeRole",
            ),
            (
                "arn:aws:iam::123456789012:role/DescribeOnly",
                "AccessRolePermissionsInsufficient",
                "add ec2:ModifyImageAttribute, ec2:ModifySnapshotAttribute",
            ),
            (
                "arn:aws:iam::123456789012:role/NarrowBoundary",
                "AccessRolePermissionsInsufficient",
                "permissions boundary is too restrictive: allow ec2:ModifySnapshotAttribute",
            ),
        ];
        for (role, code, hint) in cases {
            let e = ingest(
                ACCT,
                role,
                w.role(role),
                Some(&img),
                &img.image_id,
                &ScanSettings::default(),
            )
            .unwrap_err();
            assert_eq!(e.code, code, "{role}");
            assert!(e.message.contains(hint), "{role}: {}", e.message);
        }
    }

    #[test]
    fn every_image_attribute_check() {
        let w = world();
        let cases = [
            ("ami-01a2b3c4d5e6f7081", "SourceImageNotOwned"),
            ("ami-0d1b2c3d4e5f60718", "EncryptedSnapshot"),
            ("ami-0a5ca0000000000a8", "UnsupportedRootDeviceType"),
            ("ami-0a5ca0000000000a9", "UnsupportedVirtualizationType"),
            ("ami-0a5ca0000000000aa", "UnsupportedArchitecture"),
            ("ami-0a5ca0000000000ab", "UnsupportedFileSystem"),
            ("ami-0a5ca0000000000ac", "SourceImageNotAvailable"),
        ];
        for (id, code) in cases {
            let img = image(&w, id);
            assert_eq!(
                ingest_code(&w, GOOD_ROLE, Some(&img)).as_deref(),
                Some(code),
                "{id}"
            );
        }
        assert_eq!(
            ingest_code(&w, GOOD_ROLE, None).as_deref(),
            Some("SourceImageNotAvailable")
        );
        let west = w.images.iter().find(|i| i.region == "us-west-2").unwrap();
        assert_eq!(
            ingest_code(&w, GOOD_ROLE, Some(west)).as_deref(),
            Some("SourceImageRegionNotSupported")
        );
        let everywhere = ScanSettings {
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            ..ScanSettings::default()
        };
        assert!(ingest(
            ACCT,
            GOOD_ROLE,
            w.role(GOOD_ROLE),
            Some(west),
            "x",
            &everywhere
        )
        .is_ok());
    }

    #[test]
    fn wildcard_permissions_are_understood() {
        let mut role = world().role(GOOD_ROLE).unwrap().clone();
        role.allowed_actions = vec!["ec2:*".into()];
        assert!(ingest(
            ACCT,
            GOOD_ROLE,
            Some(&role),
            None,
            "x",
            &ScanSettings::default()
        )
        .is_err_and(|e| e.code == "SourceImageNotAvailable"));
        role.allowed_actions = vec!["*".into()];
        role.permissions_boundary = Some(vec!["ec2:Describe*".into(), "ec2:Modify*".into()]);
        assert!(ingest(
            ACCT,
            GOOD_ROLE,
            Some(&role),
            None,
            "x",
            &ScanSettings::default()
        )
        .is_err_and(|e| e.code == "SourceImageNotAvailable"));
    }

    #[test]
    fn execution_checks() {
        let w = world();
        let s = ScanSettings::default();
        let code = |id: &str, port: u16, user: Option<&str>| {
            execute(&image(&w, id), port, user, &s)
                .err()
                .map(|(st, e)| (st, e.code))
        };
        assert_eq!(code("ami-0a1b2c3d4e5f60718", 22, Some("ubuntu")), None);
        assert_eq!(
            code("ami-0a1b2c3d4e5f60718", 22, Some("ec2-user")),
            Some((ScanStatus::Failed, "OsLoginFailed".into()))
        );
        assert_eq!(
            code("ami-0a5ca0000000000a5", 22, Some("ec2-user")),
            Some((ScanStatus::Failed, "ScanningPortUnreachable".into()))
        );
        assert_eq!(code("ami-0a5ca0000000000a5", 2222, Some("ec2-user")), None);
        assert_eq!(
            code("ami-0a5ca0000000000a6", 22, Some("ec2-user")),
            Some((ScanStatus::Failed, "ScanTimedOut".into()))
        );
        assert_eq!(
            code("ami-0a5ca0000000000a7", 22, Some("ec2-user")),
            Some((ScanStatus::InternalError, "InternalFailure".into()))
        );
        // Windows: RDP port, no OS user
        assert_eq!(code("ami-0b1b2c3d4e5f60718", 3389, None), None);
        assert_eq!(
            code("ami-0b1b2c3d4e5f60718", 22, None),
            Some((ScanStatus::Failed, "ScanningPortUnreachable".into()))
        );
    }

    fn failing(report: &ScanReport) -> Vec<(&str, &str)> {
        report
            .findings
            .iter()
            .filter(|f| f.result == ControlResult::FAIL)
            .map(|f| (f.control_id.as_str(), f.code.as_str()))
            .collect()
    }

    fn control(report: &ScanReport, id: &str) -> ControlResult {
        report
            .controls
            .iter()
            .find(|c| c.control_id == id)
            .unwrap()
            .result
    }

    #[test]
    fn a_clean_image_passes_every_control() {
        let w = world();
        for id in ["ami-0a1b2c3d4e5f60718", "ami-0b1b2c3d4e5f60718"] {
            let r = evaluate(&image(&w, id), &w, ACCT, None);
            assert!(r.findings.is_empty(), "{id}");
            assert!(r.controls.iter().all(|c| c.result == ControlResult::PASS));
        }
        let linux = evaluate(&image(&w, "ami-0a1b2c3d4e5f60718"), &w, ACCT, None);
        assert_eq!(linux.controls.len(), 8);
        let windows = evaluate(&image(&w, "ami-0b1b2c3d4e5f60718"), &w, ACCT, None);
        assert_eq!(windows.controls.len(), 6);
    }

    #[test]
    fn cves_ssh_keys_and_secrets() {
        let w = world();
        let r = evaluate(&image(&w, "ami-0a5ca0000000000a1"), &w, ACCT, None);
        let f = failing(&r);
        assert_eq!(
            f.iter()
                .filter(|(c, _)| *c == "KNOWN_VULNERABILITY")
                .count(),
            3
        );
        assert!(f.contains(&(
            "SSH_PASSWORD_AUTHENTICATION",
            "PASSWORD_AUTHENTICATION_ENABLED"
        )));
        assert!(f.contains(&("AUTHORIZED_KEYS", "AUTHORIZED_KEYS_PRESENT")));
        assert!(f.contains(&("HARDCODED_CREDENTIALS", "HARDCODED_SECRET")));
        // most severe first; the CVSS 9.8 CVE is CRITICAL, the id-only CVE defaults to HIGH
        assert_eq!(r.findings[0].severity, Severity::CRITICAL);
        let id_only = r
            .findings
            .iter()
            .find(|f| {
                f.vulnerability
                    .as_ref()
                    .is_some_and(|v| v.cve_id == "CVE-2023-38546")
            })
            .unwrap();
        assert_eq!(id_only.severity, Severity::HIGH);
        assert!(id_only
            .scope
            .contains(&("PACKAGE_NAME".into(), "curl".into())));
        assert_eq!(r.counts().critical, 1);
        assert!(r.has_failures());
        // ids are stable across attempts
        let again = evaluate(&image(&w, "ami-0a5ca0000000000a1"), &w, ACCT, None);
        assert_eq!(r, again);
    }

    #[test]
    fn malware_end_of_life_and_root_access() {
        let w = world();
        let r = evaluate(&image(&w, "ami-0a5ca0000000000a3"), &w, ACCT, None);
        let f = failing(&r);
        for expected in [
            ("MALWARE", "MALWARE_DETECTED"),
            ("UNSUPPORTED_OS", "END_OF_LIFE_OS"),
            ("UNSUPPORTED_OS", "END_OF_LIFE_PACKAGE"),
            ("ROOT_PASSWORD", "ROOT_PASSWORD_BLANK"),
            ("ROOT_REMOTE_LOGIN", "ROOT_LOGIN_ENABLED"),
        ] {
            assert!(f.contains(&expected), "{expected:?} in {f:?}");
        }
        let malware = r
            .findings
            .iter()
            .find(|f| f.control_id == "MALWARE")
            .unwrap();
        assert!(malware
            .scope
            .contains(&("FILE_PATH".into(), "/usr/bin/.sysupdate".into())));
        assert!(malware.description.contains("Linux.Trojan.Mirai"));
        let mut set = image(&w, "ami-0a1b2c3d4e5f60718");
        set.root_password = "set".into();
        set.sshd = Some(crate::world::Sshd {
            password_authentication: false,
            permit_root_login: "prohibit-password".into(),
        });
        let f = evaluate(&set, &w, ACCT, None);
        assert!(failing(&f).contains(&("ROOT_PASSWORD", "ROOT_PASSWORD_SET")));
        assert!(failing(&f).contains(&("ROOT_REMOTE_LOGIN", "ROOT_LOGIN_ENABLED")));
    }

    #[test]
    fn windows_guest_accounts_and_launch_agent() {
        let w = world();
        let r = evaluate(&image(&w, "ami-0a5ca0000000000a4"), &w, ACCT, None);
        let f = failing(&r);
        assert!(f.contains(&("WINDOWS_GUEST_ACCOUNTS", "GUEST_ACCOUNT_ENABLED")));
        assert!(f.contains(&("WINDOWS_GUEST_ACCOUNTS", "REMOTE_DESKTOP_USER_PRESENT")));
        assert!(f.contains(&("WINDOWS_LAUNCH_AGENT", "LAUNCH_AGENT_NOT_CONFIGURED")));
        assert!(r.controls.iter().all(|c| !c.control_id.starts_with("SSH")));
        let mut none = image(&w, "ami-0a5ca0000000000a4");
        none.windows = Some(crate::world::WindowsFacts {
            launch_agent: "none".into(),
            ..crate::world::WindowsFacts::default()
        });
        let r = evaluate(&none, &w, ACCT, None);
        assert_eq!(
            failing(&r),
            vec![("WINDOWS_LAUNCH_AGENT", "LAUNCH_AGENT_NOT_CONFIGURED")]
        );
    }

    #[test]
    fn exemptions_apply_only_to_the_callers_named_product() {
        let w = world();
        let img = image(&w, "ami-0a5ca0000000000a2");
        let plain = evaluate(&img, &w, ACCT, None);
        assert!(plain.has_failures());
        assert_eq!(control(&plain, "KNOWN_VULNERABILITY"), ControlResult::FAIL);
        let exempt = evaluate(&img, &w, ACCT, Some("prod-demoseller1"));
        assert!(!exempt.has_failures());
        assert_eq!(
            control(&exempt, "KNOWN_VULNERABILITY"),
            ControlResult::EXEMPTION_PASS
        );
        assert_eq!(
            exempt.findings[0].exemption_id.as_deref(),
            Some("ex-demo-openssl")
        );
        assert_eq!(exempt.counts().exempted, 1);
        // another account naming the product gets nothing
        let other = evaluate(&img, &w, "999988887777", Some("prod-demoseller1"));
        assert!(other.has_failures());
        // a product the exemption is not for
        let wrong = evaluate(&img, &w, "999988887777", Some("prod-abcd1234efgh5"));
        assert!(wrong.has_failures());
        // partially exempted control stays FAIL
        let many = evaluate(
            &image(&w, "ami-0a5ca0000000000a1"),
            &w,
            ACCT,
            Some("prod-demoseller1"),
        );
        assert_eq!(control(&many, "KNOWN_VULNERABILITY"), ControlResult::FAIL);
        assert_eq!(many.counts().exempted, 1);
    }

    #[test]
    fn failed_scans_report_every_control_not_executed() {
        let r = not_executed(Platform::Windows);
        assert_eq!(r.controls.len(), 6);
        assert!(r
            .controls
            .iter()
            .all(|c| c.result == ControlResult::NOT_EXECUTED));
    }
}
