//! The Marketplace Catalog's records: `AmiProduct@1.0` and `Offer@1.0` entities, change sets,
//! and the 20-character timestamps they are told in (their wire documents are rendered by
//! `ops::catalog::render`).
//!
//! Pure data and pure functions: the change types' rules are in `changes`, persistence is the
//! store's documents, the operations are in `ops::catalog`.
//!
//! Depends on: world (products as builds see them), clock (formatting).

pub mod changes;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only catalog there is.
pub const CATALOG: &str = "AWSMarketplace";
/// The only region the Catalog API lives in.
pub const CATALOG_REGION: &str = "us-east-1";
/// AWS Marketplace's own account (owner of the base AMIs packages are test-built on).
pub const MARKETPLACE_ACCOUNT: &str = "679593333241";
/// Managed Catalog Operations accounts AWS adds to every new product's allowlist.
pub const MCO_ACCOUNTS: [&str; 2] = ["297512042063", "782858285006"];

/// Store document kinds.
pub mod kind {
    /// An entity (product or offer).
    pub const ENTITY: &str = "entity";
    /// A change set.
    pub const CHANGE_SET: &str = "changeset";
    /// An entity's lock, held by an open change set.
    pub const LOCK: &str = "lock";
    /// A StartChangeSet client token.
    pub const TOKEN: &str = "cstoken";
    /// Fulfillment option id → product id.
    pub const OPTION: &str = "fo";
    /// Tags of a resource (by ARN).
    pub const TAGS: &str = "tags";
    /// Resource policy of a resource (by ARN).
    pub const POLICY: &str = "policy";
    /// A package group name, never reused by its seller.
    pub const PACKAGE_GROUP: &str = "pkggroup";
    /// An account's count of open change sets (in its `version`).
    pub const OPEN_COUNT: &str = "opencount";
    /// An entity's DescribeEntity answer, rendered when the entity is written.
    pub const RENDERED: &str = "erender";
    /// An AmiProduct's ListEntities summary, rendered when it is written (listed by change).
    pub const PRODUCT_SUMMARY: &str = "esum-AmiProduct";
    /// An Offer's ListEntities summary.
    pub const OFFER_SUMMARY: &str = "esum-Offer";

    /// The summary kind of an entity type (`AmiProduct` or `Offer`).
    #[must_use]
    pub fn summary(short_type: &str) -> &'static str {
        if short_type == "Offer" {
            OFFER_SUMMARY
        } else {
            PRODUCT_SUMMARY
        }
    }
}

/// A change set's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Checks and asynchronous work (scans, test builds) are running.
    Preparing,
    /// The changes are being applied (or reviewed).
    Applying,
    /// Applied (or, for VALIDATE, all checks passed).
    Succeeded,
    /// A check failed; nothing was applied.
    Failed,
    /// Cancelled while preparing.
    Cancelled,
}

impl Status {
    /// Every status, in the model's order.
    pub const ALL: [Status; 5] = [
        Status::Preparing,
        Status::Applying,
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Preparing => "PREPARING",
            Status::Applying => "APPLYING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// True once nothing will change any more.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }
}

/// `{ErrorCode, ErrorMessage}` of one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorDetail {
    /// For example `SCAN_ERROR`.
    pub error_code: String,
    /// What to fix.
    pub error_message: String,
}

impl ErrorDetail {
    /// A detail from a code and a message.
    #[must_use]
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error_code: code.into(),
            error_message: message.into(),
        }
    }
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// What a change is waiting for while its set prepares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Pending {
    /// The scan of an AMI version, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_id: Option<String>,
    /// True once the scan or test build has ended.
    #[serde(default)]
    pub done: bool,
    /// What the scan or test build found (empty: it passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDetail>,
    /// Every finding, served as JSON behind a `SCAN_ERROR`'s URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<ErrorDetail>,
    /// The scanned AMI's architecture and virtualization type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami: Option<(String, String)>,
    /// The failure was the service's, not the request's.
    #[serde(default)]
    pub server_fault: bool,
    /// What went wrong inside the service (with `server_fault`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fault: String,
}

/// One change of a set, as submitted and as it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// For example `AddDeliveryOptions`.
    pub change_type: String,
    /// `AmiProduct@1.0` or `Offer@1.0`.
    pub entity_type: String,
    /// The entity's id as submitted (`prod-…`, `prod-…@3`, `$Name.Entity.Identifier`, absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The entity's bare id once known (a new entity's id is chosen at submission).
    pub entity_id: String,
    /// `ChangeName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_name: Option<String>,
    /// `Details` / `DetailsDocument`, normalized.
    pub details: Value,
    /// Tags for a new entity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity_tags: Vec<Tag>,
    /// Per-change errors (empty on success).
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
    /// Asynchronous work of the change.
    #[serde(default)]
    pub pending: Pending,
}

/// A change set as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeSet {
    /// 25 lower-case alphanumerics.
    pub id: String,
    /// Submitting account.
    pub owner: String,
    /// `ChangeSetName` (default `Submitted by <account>`).
    pub name: String,
    /// `APPLY` or `VALIDATE`.
    pub intent: String,
    /// Status.
    pub status: Status,
    /// Submission time (epoch ms).
    pub start_ms: i64,
    /// End time once terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
    /// `CLIENT_ERROR` or `SERVER_FAULT` when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// Why it failed, beyond the per-change errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_description: Option<String>,
    /// The changes, in submission order.
    pub changes: Vec<Change>,
    /// Entities the set touches (and locks while open), bare ids.
    pub entity_ids: Vec<String>,
    /// Entities the set locked (existing ones; new ones are created by it).
    #[serde(default)]
    pub locked: Vec<String>,
    /// `ClientRequestToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// When a review step (UpdateVisibility) is decided, while applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

impl ChangeSet {
    /// The change set's ARN.
    #[must_use]
    pub fn arn(&self) -> String {
        change_set_arn(&self.owner, &self.id)
    }
}

/// `arn:aws:aws-marketplace:us-east-1:<acct>:AWSMarketplace/ChangeSet/<id>`.
#[must_use]
pub fn change_set_arn(owner: &str, id: &str) -> String {
    format!("arn:aws:aws-marketplace:{CATALOG_REGION}:{owner}:{CATALOG}/ChangeSet/{id}")
}

/// An entity's ARN.
#[must_use]
pub fn entity_arn(owner: &str, short_type: &str, id: &str) -> String {
    format!("arn:aws:aws-marketplace:{CATALOG_REGION}:{owner}:{CATALOG}/{short_type}/{id}")
}

/// Catalog visibility of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Staging in the seller portal: only the seller.
    Draft,
    /// The seller and the allowlist.
    Limited,
    /// Everyone.
    Public,
    /// Existing subscribers only.
    Restricted,
}

impl Visibility {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Draft => "Draft",
            Visibility::Limited => "Limited",
            Visibility::Public => "Public",
            Visibility::Restricted => "Restricted",
        }
    }

    /// Parses the wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Visibility::Draft,
            Visibility::Limited,
            Visibility::Public,
            Visibility::Restricted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Where a version's software comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum Source {
    /// A scanned AMI, launched by buyers.
    AmazonMachineImage {
        /// Source id (UUID).
        #[serde(rename = "Id")]
        id: String,
        /// The AMI as submitted.
        #[serde(rename = "Image")]
        image: String,
        /// `x86_64` or `arm64`.
        #[serde(rename = "Architecture")]
        architecture: String,
        /// `hvm`.
        #[serde(rename = "VirtualizationType")]
        virtualization_type: String,
        /// `{Name, Version, Username, ScanningPort}`.
        #[serde(rename = "OperatingSystem")]
        operating_system: Value,
    },
    /// An installer package that buyers install into their own AMIs with StartBuild.
    SoftwarePackage {
        /// Source id (UUID).
        #[serde(rename = "Id")]
        id: String,
        /// The package group name.
        #[serde(rename = "PackageGroupName")]
        package_group_name: String,
        /// The installer's S3 object URL.
        #[serde(rename = "InstallerUrl")]
        installer_url: String,
        /// `.msi`, `.rpm`, ….
        #[serde(rename = "InstallerType")]
        installer_type: String,
        /// `Linux` or `Windows`.
        #[serde(rename = "Platform")]
        platform: String,
        /// The base operating systems it was test-built on.
        #[serde(rename = "OperatingSystems")]
        operating_systems: Vec<String>,
    },
}

impl Source {
    /// The source's id.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Source::AmazonMachineImage { id, .. } | Source::SoftwarePackage { id, .. } => id,
        }
    }
}

/// How buyers get a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryOption {
    /// UUID (AMI) or the `fo-…` fulfillment option id (package).
    pub id: String,
    /// `AmazonMachineImage` or `SoftwarePackage`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The source it delivers.
    pub source_id: String,
    /// `(x86_64) Amazon Machine Image`, ….
    pub title: String,
    /// Restricted options are closed to new buyers.
    pub restricted: bool,
    /// `UsageInstructions`, `RecommendedInstanceType`, `SecurityGroups`, `AccessEndpointUrl`.
    pub details: Value,
}

/// One version of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    /// UUID.
    pub id: String,
    /// `VersionTitle`, unique in the product.
    pub version_title: String,
    /// Release notes.
    pub release_notes: String,
    /// When it was added (epoch ms).
    pub created_ms: i64,
    /// Its sources.
    pub sources: Vec<Source>,
    /// Its delivery options.
    pub delivery_options: Vec<DeliveryOption>,
}

/// An `AmiProduct@1.0` entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Product {
    /// `prod-…`.
    pub id: String,
    /// The seller.
    pub owner: String,
    /// Bumped by every applied change.
    pub revision: u64,
    /// Last change (epoch ms).
    pub modified_ms: i64,
    /// Visibility.
    pub visibility: Visibility,
    /// 25 characters, attached to images built with the product.
    pub product_code: String,
    /// `Description` fields (`ProductTitle`, `ShortDescription`, …).
    pub description: serde_json::Map<String, Value>,
    /// `PromotionalResources` fields (`LogoUrl`, `Videos`, `AdditionalResources`).
    pub promotional: serde_json::Map<String, Value>,
    /// `SupportInformation.Description`.
    pub support_description: Option<String>,
    /// Regions offered.
    pub regions: Vec<String>,
    /// Regions restricted.
    pub restricted_regions: Vec<String>,
    /// `All`, `US` or `None`.
    pub future_region_support: Option<String>,
    /// The Limited allowlist.
    pub buyer_accounts: Vec<String>,
    /// Instance types offered.
    pub instance_types: Vec<String>,
    /// Instance types restricted.
    pub restricted_instance_types: Vec<String>,
    /// Pricing dimensions.
    pub dimensions: Vec<Value>,
    /// Versions, oldest first.
    pub versions: Vec<Version>,
    /// Delivery options of this product whose installers are world facts (world products).
    #[serde(default)]
    pub from_world: bool,
}

impl Product {
    /// The title, or the empty string.
    #[must_use]
    pub fn title(&self) -> &str {
        self.description
            .get("ProductTitle")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The delivery option with id `id`, and its version.
    #[must_use]
    pub fn option(&self, id: &str) -> Option<(&Version, &DeliveryOption)> {
        self.versions.iter().find_map(|v| {
            v.delivery_options
                .iter()
                .find(|o| o.id == id)
                .map(|o| (v, o))
        })
    }
}

/// An `Offer@1.0` entity: kept as the documents its changes gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Offer {
    /// `offer-…`.
    pub id: String,
    /// The seller.
    pub owner: String,
    /// Bumped by every applied change.
    pub revision: u64,
    /// Last change (epoch ms).
    pub modified_ms: i64,
    /// The product it prices.
    pub product_id: Option<String>,
    /// `Draft` until ReleaseOffer, then `Public`.
    pub state: String,
    /// Terms and information by change type.
    pub document: serde_json::Map<String, Value>,
}

/// An entity as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "EntityType")]
#[allow(clippy::large_enum_variant)] // one entity at a time; boxing buys nothing here
pub enum Entity {
    /// `AmiProduct@1.0`.
    AmiProduct(Product),
    /// `Offer@1.0`.
    Offer(Offer),
}

impl Entity {
    /// Bare id.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Entity::AmiProduct(p) => &p.id,
            Entity::Offer(o) => &o.id,
        }
    }

    /// The owning seller.
    #[must_use]
    pub fn owner(&self) -> &str {
        match self {
            Entity::AmiProduct(p) => &p.owner,
            Entity::Offer(o) => &o.owner,
        }
    }

    /// Current revision.
    #[must_use]
    pub fn revision(&self) -> u64 {
        match self {
            Entity::AmiProduct(p) => p.revision,
            Entity::Offer(o) => o.revision,
        }
    }

    /// `AmiProduct` or `Offer`.
    #[must_use]
    pub fn short_type(&self) -> &'static str {
        match self {
            Entity::AmiProduct(_) => "AmiProduct",
            Entity::Offer(_) => "Offer",
        }
    }

    /// Last modification (epoch ms).
    #[must_use]
    pub fn modified_ms(&self) -> i64 {
        match self {
            Entity::AmiProduct(p) => p.modified_ms,
            Entity::Offer(o) => o.modified_ms,
        }
    }

    /// The entity's ARN.
    #[must_use]
    pub fn arn(&self) -> String {
        entity_arn(self.owner(), self.short_type(), self.id())
    }

    /// Marks a change: next revision, modified now.
    pub fn touch(&mut self, now_ms: i64) {
        match self {
            Entity::AmiProduct(p) => {
                p.revision += 1;
                p.modified_ms = now_ms;
            }
            Entity::Offer(o) => {
                o.revision += 1;
                o.modified_ms = now_ms;
            }
        }
    }
}

/// Timestamps as the model types them: `YYYY-MM-DDTHH:MM:SSZ` (20 characters).
#[must_use]
pub fn timestamp(ms: i64) -> String {
    let full = crate::clock::iso8601_extended(ms);
    format!("{}Z", &full[..19])
}

/// Random lower-case alphanumerics (ids).
#[must_use]
pub fn random_alnum(n: usize, rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// The product as StartBuild and the build worker see it (seed 002's rules apply to it).
#[must_use]
pub fn as_world_product(p: &Product, world: &crate::world::World) -> crate::world::Product {
    use crate::world::{Platform, ProductVersion, Visibility as W};
    let regions = if p.regions.is_empty() {
        vec![CATALOG_REGION.to_string()]
    } else {
        p.regions.clone()
    };
    let versions = p
        .versions
        .iter()
        .flat_map(|v| {
            v.delivery_options
                .iter()
                .filter(|o| o.kind == "SoftwarePackage")
                .filter_map(|o| {
                    let Some(Source::SoftwarePackage {
                        installer_url,
                        platform,
                        ..
                    }) = v.sources.iter().find(|s| s.id() == o.source_id)
                    else {
                        return None;
                    };
                    let world_version = world
                        .fulfillment_option(&o.id)
                        .map(|(_, wv)| wv.installer.clone());
                    let installer = world
                        .installer(installer_url)
                        .cloned()
                        .or(world_version)
                        .unwrap_or_default();
                    Some(ProductVersion {
                        version: v.version_title.clone(),
                        fulfillment_option_id: o.id.clone(),
                        platform: if platform == "Windows" {
                            Platform::Windows
                        } else {
                            Platform::Linux
                        },
                        regions: regions.clone(),
                        restricted: o.restricted,
                        installer,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    crate::world::Product {
        product_id: p.id.clone(),
        product_code: p.product_code.clone(),
        seller_account_id: p.owner.clone(),
        title: p.title().to_string(),
        visibility: match p.visibility {
            Visibility::Draft => W::Staging,
            Visibility::Limited => W::Limited,
            Visibility::Public => W::Public,
            Visibility::Restricted => W::Restricted,
        },
        allowlist: p.buyer_accounts.clone(),
        versions,
    }
}

/// A UUID that is the same for the same inputs (world versions keep their ids across starts).
fn stable_uuid(purpose: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{purpose}\0{key}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A world product as a catalog entity (revision 1), before the Catalog API changes it.
#[must_use]
pub fn from_world_product(w: &crate::world::Product, now_ms: i64) -> Product {
    let versions = w
        .versions
        .iter()
        .map(|v| {
            let source_id = stable_uuid("source", &v.fulfillment_option_id);
            Version {
                id: stable_uuid("version", &v.fulfillment_option_id),
                version_title: v.version.clone(),
                release_notes: String::new(),
                created_ms: 0,
                sources: vec![Source::SoftwarePackage {
                    id: source_id.clone(),
                    package_group_name: format!("{}-{}", w.product_id, v.version),
                    installer_url: String::new(),
                    installer_type: String::new(),
                    platform: v.platform.as_str().to_string(),
                    operating_systems: Vec::new(),
                }],
                delivery_options: vec![DeliveryOption {
                    id: v.fulfillment_option_id.clone(),
                    kind: "SoftwarePackage".into(),
                    source_id,
                    title: format!("({}) Software package", v.platform.as_str()),
                    restricted: v.restricted,
                    details: Value::Object(serde_json::Map::new()),
                }],
            }
        })
        .collect();
    let mut description = serde_json::Map::new();
    description.insert("ProductTitle".into(), Value::String(w.title.clone()));
    Product {
        id: w.product_id.clone(),
        owner: w.seller_account_id.clone(),
        revision: 1,
        modified_ms: now_ms,
        visibility: match w.visibility {
            crate::world::Visibility::Staging => Visibility::Draft,
            crate::world::Visibility::Limited => Visibility::Limited,
            crate::world::Visibility::Public => Visibility::Public,
            crate::world::Visibility::Restricted => Visibility::Restricted,
        },
        product_code: w.product_code.clone(),
        description,
        promotional: serde_json::Map::new(),
        support_description: None,
        regions: w
            .versions
            .first()
            .map(|v| v.regions.clone())
            .unwrap_or_default(),
        restricted_regions: Vec::new(),
        future_region_support: None,
        buyer_accounts: w.allowlist.clone(),
        instance_types: Vec::new(),
        restricted_instance_types: Vec::new(),
        dimensions: Vec::new(),
        versions,
        from_world: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_twenty_characters() {
        assert_eq!(timestamp(1_705_320_000_123), "2024-01-15T12:00:00Z");
        assert_eq!(timestamp(0).len(), 20);
    }

    #[test]
    fn world_products_round_trip_through_the_catalog() {
        let world = crate::world::World::demo().unwrap();
        for w in &world.products {
            let p = from_world_product(w, 0);
            let back = as_world_product(&p, &world);
            assert_eq!(back.product_id, w.product_id);
            assert_eq!(back.visibility, w.visibility);
            assert_eq!(back.allowlist, w.allowlist);
            let ids = |x: &crate::world::Product| {
                x.versions
                    .iter()
                    .map(|v| {
                        (
                            v.fulfillment_option_id.clone(),
                            v.restricted,
                            v.installer.clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(&back), ids(w));
        }
    }
}
