//! The world: the parts of AWS outside this service that builds and scans look at (EC2
//! images, the Marketplace catalog, subscriptions, SNS topics, IAM roles, exemptions), as data.
//!
//! Loaded from a JSON file (`--world`) or the built-in demo world; every outcome of a build is
//! a deterministic function of this data. The schema is published in `models/world.schema.json`.
//!
//! Depends on: nothing crate-internal.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The demo world that ships in the binary and is the default.
pub const DEMO_WORLD: &str = include_str!("demo-world.json");

/// Why a world document was refused; the message names the offending field.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Not readable.
    #[error("cannot read world file {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid JSON or not of the schema's shape.
    #[error("invalid world: at {path}: {message}")]
    Shape {
        /// JSON path of the bad field (`Images[0].Platform`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Well-formed but inconsistent (duplicate ids, bad patterns, dangling references).
    #[error("invalid world: at {path}: {message}")]
    Invalid {
        /// JSON path of the bad field.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole world document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct World {
    /// EC2 images callers may build from (or scan).
    #[serde(default)]
    pub images: Vec<Image>,
    /// Marketplace products with their versions (fulfillment options).
    #[serde(default)]
    pub products: Vec<Product>,
    /// Which accounts are subscribed to which products.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// ARNs of SNS topics that exist.
    #[serde(default)]
    pub sns_topics: Vec<String>,
    /// IAM roles (used by AMI scanning).
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Granted exceptions (used by AMI scanning).
    #[serde(default)]
    pub exemptions: Vec<Exemption>,
    /// What the installer packages of Catalog package versions do, by S3 object URL.
    #[serde(default)]
    pub installers: Vec<InstallerObject>,
}

/// An installer package in S3 and what it does when a build runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstallerObject {
    /// `s3://bucket/key` or `https://bucket.s3.amazonaws.com/key`.
    pub url: String,
    /// What it does.
    #[serde(default)]
    pub installer: Installer,
}

/// The controls an AMI scan evaluates (exemptions name one of them).
pub const CONTROL_IDS: [&str; 10] = [
    "KNOWN_VULNERABILITY",
    "MALWARE",
    "UNSUPPORTED_OS",
    "SSH_PASSWORD_AUTHENTICATION",
    "ROOT_PASSWORD",
    "ROOT_REMOTE_LOGIN",
    "AUTHORIZED_KEYS",
    "HARDCODED_CREDENTIALS",
    "WINDOWS_GUEST_ACCOUNTS",
    "WINDOWS_LAUNCH_AGENT",
];

/// What an exemption's `Match` may name.
pub const EXEMPTION_MATCH_KEYS: [&str; 3] = ["CveId", "PackageName", "FilePath"];

/// Windows launch agents a world may name.
pub const LAUNCH_AGENTS: [&str; 4] = ["EC2Launch v2", "EC2Launch", "EC2Config", "none"];

/// Operating-system platform of an image or an installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Platform {
    /// Linux and other Unix-likes.
    Linux,
    /// Windows.
    Windows,
}

impl Platform {
    /// The name as written in the world file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Linux => "Linux",
            Platform::Windows => "Windows",
        }
    }
}

/// An EBS snapshot of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Snapshot {
    /// `snap-…`.
    pub snapshot_id: String,
    /// Whether the snapshot is encrypted.
    #[serde(default)]
    pub encrypted: bool,
}

/// Operating-system facts of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OsInfo {
    /// For example `UBUNTU`.
    pub name: String,
    /// For example `22.04`.
    pub version: String,
    /// Whether the OS is past its end of life.
    #[serde(default)]
    pub end_of_life: bool,
}

/// `sshd_config` facts of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Sshd {
    /// `PasswordAuthentication`.
    #[serde(default)]
    pub password_authentication: bool,
    /// `PermitRootLogin` (`no`, `yes`, `prohibit-password`, …).
    #[serde(default = "default_permit_root_login")]
    pub permit_root_login: String,
}

fn default_permit_root_login() -> String {
    "no".into()
}

/// An installed package and the CVEs it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// CVEs found in this version: an id, or an object with its score and fixed version.
    #[serde(default)]
    pub cves: Vec<CveFact>,
    /// Whether this package version is past its end of life.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end_of_life: bool,
}

/// A CVE in a package: `"CVE-2023-0286"` (CVSS 7.5, no known fix) or
/// `{"CveId": …, "Cvss": 9.8, "FixedVersion": "3.0.8"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CveFact {
    /// Just the id.
    Id(String),
    /// The id with details.
    Detailed {
        /// CVE id.
        #[serde(rename = "CveId")]
        cve_id: String,
        /// CVSS v3 base score (0-10).
        #[serde(rename = "Cvss", default, skip_serializing_if = "Option::is_none")]
        cvss: Option<f64>,
        /// First version with the fix.
        #[serde(
            rename = "FixedVersion",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        fixed_version: Option<String>,
    },
}

// JSON numbers are never NaN and the loader checks 0 <= Cvss <= 10, so equality is total.
impl Eq for CveFact {}

/// CVSS assumed for a CVE given by id only.
pub const DEFAULT_CVSS: f64 = 7.5;

impl CveFact {
    /// The CVE id.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            CveFact::Id(id) | CveFact::Detailed { cve_id: id, .. } => id,
        }
    }

    /// The CVSS score (`DEFAULT_CVSS` when not given).
    #[must_use]
    pub fn cvss(&self) -> f64 {
        match self {
            CveFact::Detailed { cvss: Some(c), .. } => *c,
            _ => DEFAULT_CVSS,
        }
    }

    /// The fixed version, when known.
    #[must_use]
    pub fn fixed_version(&self) -> Option<&str> {
        match self {
            CveFact::Detailed { fixed_version, .. } => fixed_version.as_deref(),
            CveFact::Id(_) => None,
        }
    }
}

/// Malware found in an image: the file path, or `{"Path": …, "Signature": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MalwareFact {
    /// The infected file.
    Path(String),
    /// The infected file and the signature that matched.
    Detailed {
        /// The infected file.
        #[serde(rename = "Path")]
        path: String,
        /// The signature name.
        #[serde(rename = "Signature")]
        signature: String,
    },
}

impl MalwareFact {
    /// The infected file.
    #[must_use]
    pub fn path(&self) -> &str {
        match self {
            MalwareFact::Path(p) | MalwareFact::Detailed { path: p, .. } => p,
        }
    }

    /// The signature name, when known.
    #[must_use]
    pub fn signature(&self) -> Option<&str> {
        match self {
            MalwareFact::Detailed { signature, .. } => Some(signature),
            MalwareFact::Path(_) => None,
        }
    }
}

fn default_launch_agent() -> String {
    "EC2Launch v2".into()
}

/// Windows facts of an image (AMI scanning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct WindowsFacts {
    /// Enabled guest accounts (for example `Guest`).
    #[serde(default)]
    pub guest_accounts: Vec<String>,
    /// Members of the Remote Desktop Users group.
    #[serde(default)]
    pub remote_desktop_users: Vec<String>,
    /// `EC2Launch v2`, `EC2Launch`, `EC2Config` or `none`.
    #[serde(default = "default_launch_agent")]
    pub launch_agent: String,
    /// Whether the launch agent sets a random administrator password at launch.
    #[serde(default = "default_true")]
    pub random_admin_password: bool,
}

impl Default for WindowsFacts {
    fn default() -> Self {
        Self {
            guest_accounts: Vec::new(),
            remote_desktop_users: Vec::new(),
            launch_agent: default_launch_agent(),
            random_admin_password: true,
        }
    }
}

/// A tag on an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

fn default_true() -> bool {
    true
}
fn default_state() -> String {
    "available".into()
}
fn default_arch() -> String {
    "x86_64".into()
}
fn default_virt() -> String {
    "hvm".into()
}
fn default_root_device() -> String {
    "ebs".into()
}
fn default_root_password() -> String {
    "locked".into()
}

/// An EC2 image with the facts builds and scans look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Image {
    /// `ami-` followed by 8 or 17 lowercase hex digits.
    pub image_id: String,
    /// Image name.
    #[serde(default)]
    pub name: Option<String>,
    /// Image description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owning account (12 digits).
    pub owner_id: String,
    /// Launchable by every account.
    #[serde(default)]
    pub public: bool,
    /// Accounts the image is shared with.
    #[serde(default)]
    pub shared_with: Vec<String>,
    /// Region the image lives in.
    pub region: String,
    /// `available` (anything else cannot be built from).
    #[serde(default = "default_state")]
    pub state: String,
    /// `Linux` or `Windows`.
    pub platform: Platform,
    /// `x86_64` or `arm64` (or anything else, which scans reject).
    #[serde(default = "default_arch")]
    pub architecture: String,
    /// `hvm` or `paravirtual`.
    #[serde(default = "default_virt")]
    pub virtualization_type: String,
    /// `ebs` or `instance-store`.
    #[serde(default = "default_root_device")]
    pub root_device_type: String,
    /// Block-device snapshots.
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    /// Marketplace product codes attached to the image.
    #[serde(default)]
    pub product_codes: Vec<String>,
    /// Whether the SSM agent runs on instances of this image.
    #[serde(default = "default_true")]
    pub ssm_agent: bool,
    /// Image tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// File systems on the image's volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_systems: Vec<String>,
    /// Operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
    /// Ports open on a running instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_ports: Vec<u16>,
    /// OS users that can log in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_users: Vec<String>,
    /// `sshd_config` facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshd: Option<Sshd>,
    /// `locked`, `blank` or `set`.
    #[serde(default = "default_root_password")]
    pub root_password: String,
    /// Paths of authorized-keys files left in the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_keys: Vec<String>,
    /// Installed packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    /// Malware found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub malware: Vec<MalwareFact>,
    /// Paths of files with hard-coded secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardcoded_secrets: Vec<String>,
    /// Windows facts (guest accounts, launch agent); defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsFacts>,
    /// Seconds a scan instance of this image takes to become reachable (over the scan timeout:
    /// `ScanTimedOut`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub boot_seconds: u64,
    /// The scanning infrastructure fails on this image (`InternalError`, retryable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scan_internal_error: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Image {
    /// True when `account` may launch the image (owner, public, or shared with it).
    #[must_use]
    pub fn visible_to(&self, account: &str) -> bool {
        self.owner_id == account || self.public || self.shared_with.iter().any(|a| a == account)
    }

    /// True when any snapshot is encrypted.
    #[must_use]
    pub fn encrypted(&self) -> bool {
        self.snapshots.iter().any(|s| s.encrypted)
    }
}

/// Product visibility (seed 002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Unpublished; no one can build it.
    Staging,
    /// Only the seller and allowlisted accounts.
    Limited,
    /// Everyone.
    Public,
    /// Only existing subscribers (and the seller).
    Restricted,
}

/// What an installer does when a build runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Installer {
    /// Exit code; non-zero fails the build with `InstallFailed`.
    #[serde(default)]
    pub exit_code: i32,
    /// How long the installer runs; over the install timeout fails with `InstallFailed`.
    #[serde(default)]
    pub duration_seconds: u64,
    /// What it prints on standard output.
    #[serde(default)]
    pub stdout: String,
    /// What it prints on standard error.
    #[serde(default)]
    pub stderr: String,
    /// The build infrastructure fails with a retryable error (`InternalError`).
    #[serde(default)]
    pub internal_error: bool,
}

impl Default for Installer {
    fn default() -> Self {
        Self {
            exit_code: 0,
            duration_seconds: 0,
            stdout: "installation complete\n".into(),
            stderr: String::new(),
            internal_error: false,
        }
    }
}

/// A product version: one fulfillment option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ProductVersion {
    /// Version title, for example `1.0.0`.
    pub version: String,
    /// The fulfillment option id callers pass to StartBuild.
    pub fulfillment_option_id: String,
    /// Platform the installer runs on.
    pub platform: Platform,
    /// Regions the version is offered in.
    pub regions: Vec<String>,
    /// A restricted version is usable by existing subscribers only.
    #[serde(default)]
    pub restricted: bool,
    /// What the installer does.
    #[serde(default)]
    pub installer: Installer,
}

/// A Marketplace product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Product {
    /// `prod-…`.
    pub product_id: String,
    /// The product code attached to images built with it.
    pub product_code: String,
    /// The seller's account.
    pub seller_account_id: String,
    /// Product title.
    pub title: String,
    /// Visibility.
    pub visibility: Visibility,
    /// Accounts allowed to see a Limited product.
    #[serde(default)]
    pub allowlist: Vec<String>,
    /// Versions.
    pub versions: Vec<ProductVersion>,
}

/// An account's subscription to a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Subscription {
    /// Subscriber account.
    pub account_id: String,
    /// Product subscribed to.
    pub product_id: String,
}

/// An IAM role (AMI scanning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Role {
    /// Role ARN.
    pub arn: String,
    /// Service principals the trust policy allows.
    #[serde(default)]
    pub trusted_principals: Vec<String>,
    /// Actions the role's policies allow.
    #[serde(default)]
    pub allowed_actions: Vec<String>,
    /// Actions the permissions boundary allows (`None`: no boundary).
    #[serde(default)]
    pub permissions_boundary: Option<Vec<String>>,
}

/// A granted exception (AMI scanning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Exemption {
    /// Exemption id.
    pub exemption_id: String,
    /// Product it applies to.
    pub product_id: String,
    /// Control it exempts.
    pub control_id: String,
    /// What it matches (for example `{"CveId": "CVE-…"}`).
    #[serde(default)]
    pub r#match: serde_json::Map<String, serde_json::Value>,
}

/// Why a fulfillment option may not be used by a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionDenial {
    /// No such fulfillment option.
    NotFound,
    /// Not offered in the caller's region.
    NotInRegion,
    /// The product is not visible to the caller (Staging, Limited, Restricted).
    NotVisible,
    /// The version is restricted and the caller is not a subscriber.
    RestrictedVersion,
}

impl World {
    /// Parses and validates a world document.
    ///
    /// # Errors
    /// `WorldError::Shape` or `WorldError::Invalid` naming the offending field.
    pub fn from_json(text: &str) -> Result<World, WorldError> {
        let world = Self::parse(text)?;
        world.validate()?;
        Ok(world)
    }

    fn parse(text: &str) -> Result<World, WorldError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| WorldError::Shape {
            path: display_path(&e.path().to_string()),
            message: e.inner().to_string(),
        })
    }

    /// Every problem of a world file, as start-up would find them: the file unreadable, its
    /// first shape error (parsing stops there), or every inconsistency.
    #[must_use]
    pub fn check_file(path: &std::path::Path) -> Vec<WorldError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(source) => {
                return vec![WorldError::Io {
                    path: path.display().to_string(),
                    source,
                }]
            }
        };
        match Self::parse(&text) {
            Ok(world) => world.problems(),
            Err(e) => vec![e],
        }
    }

    /// Reads, parses and validates a world file.
    ///
    /// # Errors
    /// `WorldError` naming the file or the offending field.
    pub fn from_file(path: &std::path::Path) -> Result<World, WorldError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorldError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// The built-in demo world.
    ///
    /// # Errors
    /// Never in a released binary (a test parses it).
    pub fn demo() -> Result<World, WorldError> {
        Self::from_json(DEMO_WORLD)
    }

    /// Every inconsistency of the document (duplicate ids, bad patterns, dangling references),
    /// each naming its field.
    #[must_use]
    pub fn problems(&self) -> Vec<WorldError> {
        let mut problems = Vec::new();
        self.image_problems(&mut problems);
        self.product_problems(&mut problems);
        self.reference_problems(&mut problems);
        problems
    }

    fn image_problems(&self, problems: &mut Vec<WorldError>) {
        let mut image_ids = HashSet::new();
        for (i, img) in self.images.iter().enumerate() {
            if !is_image_id(&img.image_id) {
                problems.push(problem(
                    format!("Images[{i}].ImageId"),
                    format!(
                        "'{}' is not an image id (ami- followed by 8 or 17 lowercase hex digits)",
                        img.image_id
                    ),
                ));
            }
            if !image_ids.insert((img.region.as_str(), img.image_id.as_str())) {
                problems.push(problem(
                    format!("Images[{i}].ImageId"),
                    format!("duplicate image id '{}'", img.image_id),
                ));
            }
            if !is_account_id(&img.owner_id) {
                problems.push(problem(
                    format!("Images[{i}].OwnerId"),
                    format!("'{}' is not a 12-digit account id", img.owner_id),
                ));
            }
            if let Some(j) = img.shared_with.iter().position(|a| !is_account_id(a)) {
                problems.push(problem(
                    format!("Images[{i}].SharedWith[{j}]"),
                    "not a 12-digit account id".into(),
                ));
            }
            if !is_region(&img.region) {
                problems.push(problem(
                    format!("Images[{i}].Region"),
                    format!("'{}' is not a region name", img.region),
                ));
            }
            if !["locked", "blank", "set"].contains(&img.root_password.as_str()) {
                problems.push(problem(
                    format!("Images[{i}].RootPassword"),
                    format!("'{}' is not one of locked, blank, set", img.root_password),
                ));
            }
            for (j, p) in img.packages.iter().enumerate() {
                if let Some(k) = p
                    .cves
                    .iter()
                    .position(|c| !(0.0..=10.0).contains(&c.cvss()) || !c.id().starts_with("CVE-"))
                {
                    problems.push(problem(
                        format!("Images[{i}].Packages[{j}].Cves[{k}]"),
                        "a CVE needs an id starting with CVE- and a Cvss from 0 to 10".into(),
                    ));
                }
            }
            if let Some(w) = &img.windows {
                if !LAUNCH_AGENTS.contains(&w.launch_agent.as_str()) {
                    problems.push(problem(
                        format!("Images[{i}].Windows.LaunchAgent"),
                        format!(
                            "'{}' is not one of {}",
                            w.launch_agent,
                            LAUNCH_AGENTS.join(", ")
                        ),
                    ));
                }
            }
        }
    }

    fn product_problems(&self, problems: &mut Vec<WorldError>) {
        let mut product_ids = HashSet::new();
        let mut option_ids = HashSet::new();
        for (i, p) in self.products.iter().enumerate() {
            if !is_product_id(&p.product_id) {
                problems.push(problem(
                    format!("Products[{i}].ProductId"),
                    format!(
                        "'{}' is not a product id (prod- followed by lowercase letters and digits)",
                        p.product_id
                    ),
                ));
            }
            if !product_ids.insert(p.product_id.as_str()) {
                problems.push(problem(
                    format!("Products[{i}].ProductId"),
                    format!("duplicate product id '{}'", p.product_id),
                ));
            }
            if !is_account_id(&p.seller_account_id) {
                problems.push(problem(
                    format!("Products[{i}].SellerAccountId"),
                    "not a 12-digit account id".into(),
                ));
            }
            if let Some(j) = p.allowlist.iter().position(|a| !is_account_id(a)) {
                problems.push(problem(
                    format!("Products[{i}].Allowlist[{j}]"),
                    "not a 12-digit account id".into(),
                ));
            }
            if p.versions.is_empty() {
                problems.push(problem(
                    format!("Products[{i}].Versions"),
                    "a product needs at least one version".into(),
                ));
            }
            for (j, v) in p.versions.iter().enumerate() {
                if !is_fulfillment_option_id(&v.fulfillment_option_id) {
                    problems.push(problem(format!("Products[{i}].Versions[{j}].FulfillmentOptionId"), format!("'{}' is not a fulfillment option id (fo- followed by lowercase letters and digits)", v.fulfillment_option_id)));
                }
                if !option_ids.insert(v.fulfillment_option_id.as_str()) {
                    problems.push(problem(
                        format!("Products[{i}].Versions[{j}].FulfillmentOptionId"),
                        format!(
                            "duplicate fulfillment option id '{}'",
                            v.fulfillment_option_id
                        ),
                    ));
                }
                if v.regions.is_empty() {
                    problems.push(problem(
                        format!("Products[{i}].Versions[{j}].Regions"),
                        "a version needs at least one region".into(),
                    ));
                }
                if let Some(k) = v.regions.iter().position(|r| !is_region(r)) {
                    problems.push(problem(
                        format!("Products[{i}].Versions[{j}].Regions[{k}]"),
                        "not a region name".into(),
                    ));
                }
            }
        }
    }

    /// Subscriptions, topics, roles and exemptions, and what they refer to.
    fn reference_problems(&self, problems: &mut Vec<WorldError>) {
        let product_ids: HashSet<&str> = self
            .products
            .iter()
            .map(|p| p.product_id.as_str())
            .collect();
        for (i, s) in self.subscriptions.iter().enumerate() {
            if !is_account_id(&s.account_id) {
                problems.push(problem(
                    format!("Subscriptions[{i}].AccountId"),
                    "not a 12-digit account id".into(),
                ));
            }
            if !product_ids.contains(s.product_id.as_str()) {
                problems.push(problem(
                    format!("Subscriptions[{i}].ProductId"),
                    format!("no product '{}' in Products", s.product_id),
                ));
            }
        }
        for (i, t) in self.sns_topics.iter().enumerate() {
            if parse_sns_topic_arn(t).is_none() {
                problems.push(problem(
                    format!("SnsTopics[{i}]"),
                    format!("'{t}' is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
                ));
            }
        }
        for (i, r) in self.roles.iter().enumerate() {
            if !r.arn.starts_with("arn:aws:iam::") || !r.arn.contains(":role/") {
                problems.push(problem(
                    format!("Roles[{i}].Arn"),
                    format!("'{}' is not an IAM role ARN", r.arn),
                ));
            }
        }
        for (i, e) in self.exemptions.iter().enumerate() {
            if !product_ids.contains(e.product_id.as_str()) {
                problems.push(problem(
                    format!("Exemptions[{i}].ProductId"),
                    format!("no product '{}' in Products", e.product_id),
                ));
            }
            if !CONTROL_IDS.contains(&e.control_id.as_str()) {
                problems.push(problem(
                    format!("Exemptions[{i}].ControlId"),
                    format!(
                        "'{}' is not a control id ({})",
                        e.control_id,
                        CONTROL_IDS.join(", ")
                    ),
                ));
            }
            for (k, v) in &e.r#match {
                if !EXEMPTION_MATCH_KEYS.contains(&k.as_str()) || !v.is_string() {
                    problems.push(problem(
                        format!("Exemptions[{i}].Match.{k}"),
                        format!(
                            "Match keys are {} with string values",
                            EXEMPTION_MATCH_KEYS.join(", ")
                        ),
                    ));
                }
            }
        }
    }

    /// Checks the document is consistent.
    ///
    /// # Errors
    /// `WorldError::Invalid` naming the first offending field (`problems` lists them all).
    pub fn validate(&self) -> Result<(), WorldError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Finds a role by ARN.
    #[must_use]
    pub fn role(&self, arn: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.arn == arn)
    }

    /// Finds a product by id.
    #[must_use]
    pub fn product(&self, product_id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.product_id == product_id)
    }

    /// Finds an image by region and id.
    #[must_use]
    pub fn image(&self, region: &str, image_id: &str) -> Option<&Image> {
        self.images
            .iter()
            .find(|i| i.image_id == image_id && i.region == region)
    }

    /// Finds a fulfillment option and its product.
    #[must_use]
    pub fn fulfillment_option(&self, id: &str) -> Option<(&Product, &ProductVersion)> {
        self.products.iter().find_map(|p| {
            p.versions
                .iter()
                .find(|v| v.fulfillment_option_id == id)
                .map(|v| (p, v))
        })
    }

    /// True when `account` is subscribed to `product_id`.
    #[must_use]
    pub fn subscribed(&self, account: &str, product_id: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.account_id == account && s.product_id == product_id)
    }

    /// Decides whether `account` may build fulfillment option `id` in `region` (seed 002).
    ///
    /// # Errors
    /// The reason it may not.
    pub fn usable_option(
        &self,
        id: &str,
        account: &str,
        region: &str,
    ) -> Result<(&Product, &ProductVersion), OptionDenial> {
        let (product, version) = self.fulfillment_option(id).ok_or(OptionDenial::NotFound)?;
        let seller = product.seller_account_id == account;
        let subscriber = self.subscribed(account, &product.product_id);
        let visible = match product.visibility {
            Visibility::Staging => seller,
            Visibility::Limited => seller || product.allowlist.iter().any(|a| a == account),
            Visibility::Public => true,
            Visibility::Restricted => seller || subscriber,
        };
        if !visible {
            return Err(OptionDenial::NotVisible);
        }
        if !version.regions.iter().any(|r| r == region) {
            return Err(OptionDenial::NotInRegion);
        }
        if version.restricted && !(seller || subscriber) {
            return Err(OptionDenial::RestrictedVersion);
        }
        Ok((product, version))
    }

    /// The installer package at `url`, if the world has it.
    #[must_use]
    pub fn installer(&self, url: &str) -> Option<&Installer> {
        self.installers
            .iter()
            .find(|i| i.url == url)
            .map(|i| &i.installer)
    }

    /// True when the SNS topic exists.
    #[must_use]
    pub fn topic_exists(&self, arn: &str) -> bool {
        self.sns_topics.iter().any(|t| t == arn)
    }
}

fn display_path(p: &str) -> String {
    if p == "." || p.is_empty() {
        "(document)".into()
    } else {
        p.to_string()
    }
}

/// An inconsistency of the world document at `path`.
fn problem(path: String, message: String) -> WorldError {
    WorldError::Invalid { path, message }
}

/// True for `ami-` followed by 8 or 17 lowercase hex digits.
#[must_use]
pub fn is_image_id(s: &str) -> bool {
    s.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// True for a 12-digit account id.
#[must_use]
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit())
}

/// True for a region name such as `us-east-1` or `us-gov-west-1`.
#[must_use]
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts[0].len() == 2
        && parts[0].bytes().all(|c| c.is_ascii_lowercase())
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|c| c.is_ascii_digit()))
}

fn is_lower_alnum(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// True for `prod-` followed by lowercase letters and digits.
#[must_use]
pub fn is_product_id(s: &str) -> bool {
    s.strip_prefix("prod-").is_some_and(is_lower_alnum)
}

/// True for `fo-` followed by lowercase letters and digits.
#[must_use]
pub fn is_fulfillment_option_id(s: &str) -> bool {
    s.strip_prefix("fo-").is_some_and(is_lower_alnum)
}

/// Splits `arn:aws:sns:REGION:ACCOUNT:NAME` into (region, account, name).
#[must_use]
pub fn parse_sns_topic_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut it = arn.splitn(6, ':');
    let (arn_lit, partition, service) = (it.next()?, it.next()?, it.next()?);
    let (region, account, name) = (it.next()?, it.next()?, it.next()?);
    let name_ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    (arn_lit == "arn"
        && partition.starts_with("aws")
        && service == "sns"
        && is_region(region)
        && is_account_id(account)
        && name_ok)
        .then_some((region, account, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_world_is_valid() {
        let w = World::demo().unwrap();
        assert!(w.images.len() >= 5);
        assert!(w.fulfillment_option("fo-ids4xf7qagwyc").is_some());
    }

    #[test]
    fn malformed_world_names_the_field() {
        let err = World::from_json(r#"{"Images":[{"ImageId":"ami-12345678","OwnerId":"123456789012","Region":"us-east-1","Platform":"Solaris"}]}"#).unwrap_err();
        assert!(err.to_string().contains("Images[0].Platform"), "{err}");
        let err = World::from_json(r#"{"Images":[{"ImageId":"ami-XYZ","OwnerId":"123456789012","Region":"us-east-1","Platform":"Linux"}]}"#).unwrap_err();
        assert!(err.to_string().contains("Images[0].ImageId"), "{err}");
        let err = World::from_json(r#"{"Imagez":[]}"#).unwrap_err();
        assert!(err.to_string().contains("Imagez"), "{err}");
        let err = World::from_json(r#"{"SnsTopics":["nope"]}"#).unwrap_err();
        assert!(err.to_string().contains("SnsTopics[0]"), "{err}");
    }

    #[test]
    fn visibility_rules_follow_seed_002() {
        let w = World::demo().unwrap();
        let dev = "123456789012";
        assert!(w
            .usable_option("fo-ids4xf7qagwyc", dev, "us-east-1")
            .is_ok());
        assert_eq!(
            w.usable_option("fo-ids4xf7qagwyc", dev, "ap-south-1")
                .unwrap_err(),
            OptionDenial::NotInRegion
        );
        assert_eq!(
            w.usable_option("fo-nosuchoption", dev, "us-east-1")
                .unwrap_err(),
            OptionDenial::NotFound
        );
        assert_eq!(
            w.usable_option("fo-demostaging01", dev, "us-east-1")
                .unwrap_err(),
            OptionDenial::NotVisible
        );
        assert_eq!(
            w.usable_option("fo-demolimited01", dev, "us-east-1")
                .unwrap_err(),
            OptionDenial::NotVisible
        );
        assert_eq!(
            w.usable_option("fo-demolimited01", "999988887777", "us-east-1")
                .map(|(p, _)| p.product_id.clone())
                .unwrap(),
            "prod-demolimited1"
        );
        assert_eq!(
            w.usable_option("fo-demorestrict01", dev, "us-east-1")
                .unwrap_err(),
            OptionDenial::NotVisible
        );
        // dev is subscribed to the agent product, so its restricted version is usable by dev only
        assert!(w
            .usable_option("fo-demorestricted1", dev, "us-east-1")
            .is_ok());
        assert_eq!(
            w.usable_option("fo-demorestricted1", "210987654321", "us-east-1")
                .unwrap_err(),
            OptionDenial::RestrictedVersion
        );
    }

    #[test]
    fn identifier_patterns() {
        assert!(is_image_id("ami-12345678"));
        assert!(is_image_id("ami-0123456789abcdef0"));
        assert!(!is_image_id("ami-0123456789ABCDEF0"));
        assert!(!is_image_id("ami-123"));
        assert!(
            is_region("us-east-1")
                && is_region("us-gov-west-1")
                && !is_region("us_east_1")
                && !is_region("xx")
        );
        assert!(
            parse_sns_topic_arn("arn:aws:sns:us-east-1:123456789012:image-build-events").is_some()
        );
        assert!(parse_sns_topic_arn("arn:aws:sns:us-east-1:12345:t").is_none());
    }
}

#[cfg(test)]
mod schema_tests {
    use serde_json::Value;

    const SCHEMA: &str = include_str!("../../models/world.schema.json");

    fn props(schema: &Value, def: Option<&str>) -> Vec<String> {
        let node = match def {
            Some(d) => &schema["$defs"][d],
            None => schema,
        };
        let mut v: Vec<String> = node["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    /// Serialising a fully populated world must produce exactly the schema's property names,
    /// and the schema must refuse what the loader refuses.
    #[test]
    fn schema_names_every_field_the_loader_knows() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let mut world = super::World::demo().unwrap();
        world.exemptions.push(super::Exemption {
            exemption_id: "ex-1".into(),
            product_id: "prod-abcd1234efgh5".into(),
            control_id: "C".into(),
            r#match: serde_json::Map::new(),
        });
        let mut img = world.images[0].clone();
        img.tags.push(super::Tag {
            key: "k".into(),
            value: "v".into(),
        });
        img.description = Some("d".into());
        img.authorized_keys
            .push("/root/.ssh/authorized_keys".into());
        img.malware.push(super::MalwareFact::Path("x".into()));
        img.windows = Some(super::WindowsFacts::default());
        img.boot_seconds = 1;
        img.scan_internal_error = true;
        img.packages[0].end_of_life = true;
        img.hardcoded_secrets.push("/etc/x".into());
        world.images[0] = img;
        let v = serde_json::to_value(&world).unwrap();
        assert_eq!(keys(&v), props(&schema, None));
        assert_eq!(keys(&v["Images"][0]), props(&schema, Some("Image")));
        assert_eq!(keys(&v["Products"][0]), props(&schema, Some("Product")));
        assert_eq!(
            keys(&v["Products"][0]["Versions"][0]),
            props(&schema, Some("ProductVersion"))
        );
        assert_eq!(
            keys(&v["Products"][0]["Versions"][0]["Installer"]),
            props(&schema, Some("Installer"))
        );
        assert_eq!(keys(&v["Roles"][0]), props(&schema, Some("Role")));
        assert_eq!(
            keys(&v["Images"][0]["Windows"]),
            props(&schema, Some("WindowsFacts"))
        );
        assert_eq!(
            keys(&v["Images"][0]["Packages"][0]),
            keys(&schema["$defs"]["Image"]["properties"]["Packages"]["items"]["properties"])
        );
        assert_eq!(keys(&v["Exemptions"][0]), props(&schema, Some("Exemption")));
        assert_eq!(
            keys(&v["Subscriptions"][0]),
            props(&schema, Some("Subscription"))
        );
        assert_eq!(
            keys(&v["Installers"][0]),
            props(&schema, Some("InstallerObject"))
        );
    }
}
