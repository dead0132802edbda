//! The change types of `AmiProduct@1.0` and `Offer@1.0`: shape checks made at submission
//! (a failure is a 422 naming the field) and the rules checked when a set is applied (a
//! failure is a per-change `ErrorDetail` with AWS's documented code and message).
//!
//! Depends on: catalog (records), world.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    DeliveryOption, Entity, ErrorDetail, Offer, Product, Source, Version, Visibility, MCO_ACCOUNTS,
};

/// `AmiProduct@1.0`.
pub const AMI_PRODUCT: &str = "AmiProduct@1.0";
/// `Offer@1.0`.
pub const OFFER: &str = "Offer@1.0";

/// Change types of `AmiProduct@1.0`.
pub const PRODUCT_CHANGES: [&str; 16] = [
    "CreateProduct",
    "UpdateInformation",
    "AddDeliveryOptions",
    "UpdateDeliveryOptions",
    "RestrictDeliveryOptions",
    "UpdateVisibility",
    "ReleaseProduct",
    "UpdateTargeting",
    "AddRegions",
    "RestrictRegions",
    "UpdateFutureRegionSupport",
    "AddInstanceTypes",
    "RestrictInstanceTypes",
    "AddDimensions",
    "UpdateDimensions",
    "RestrictDimensions",
];

/// Change types of `Offer@1.0`.
pub const OFFER_CHANGES: [&str; 8] = [
    "CreateOffer",
    "UpdateInformation",
    "UpdatePricingTerms",
    "UpdateLegalTerms",
    "UpdateSupportTerms",
    "UpdateAvailability",
    "UpdateRenewalTerms",
    "ReleaseOffer",
];

/// Regions a product may be offered in.
pub const REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
    "af-south-1",
];

/// Installer types by platform (seed 002's package groups).
const LINUX_INSTALLERS: [&str; 5] = [".exe", ".rpm", ".deb", ".sh", ".run"];
const WINDOWS_INSTALLERS: [&str; 4] = [".msi", ".ps1", ".bat", ".exe"];

/// True when `change_type` exists for `entity_type`.
#[must_use]
pub fn known(entity_type: &str, change_type: &str) -> bool {
    match entity_type {
        AMI_PRODUCT => PRODUCT_CHANGES.contains(&change_type),
        OFFER => OFFER_CHANGES.contains(&change_type),
        _ => false,
    }
}

/// True for change types that create their entity.
#[must_use]
pub fn creates(change_type: &str) -> bool {
    matches!(change_type, "CreateProduct" | "CreateOffer")
}

fn obj(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

fn s_field<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

/// A shape check's failure: `#/path: problem`.
fn shape(path: &str, problem: impl std::fmt::Display) -> String {
    format!("#{path}: {problem}")
}

fn only_keys(d: &Value, path: &str, allowed: &[&str]) -> Result<(), String> {
    let Some(o) = obj(d) else {
        return Err(shape(path, "expected type: JSONObject"));
    };
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(shape(
                path,
                format!(
                    "extraneous key [{k}] is not permitted (No additional properties are allowed)"
                ),
            ));
        }
    }
    Ok(())
}

fn required<'a>(d: &'a Value, path: &str, key: &str) -> Result<&'a Value, String> {
    d.get(key)
        .filter(|v| !v.is_null())
        .ok_or_else(|| shape(path, format!("required key [{key}] not found")))
}

fn string_within(d: &Value, path: &str, key: &str, max: usize) -> Result<(), String> {
    match d.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.chars().count() > max => Err(shape(
            &format!("{path}/{key}"),
            format!("expected maxLength: {max}, actual: {}", s.chars().count()),
        )),
        Some(Value::String(s)) if s.trim().is_empty() || s.starts_with(char::is_whitespace) => {
            Err(shape(
                &format!("{path}/{key}"),
                format!("string [{s}] does not match pattern ^\\S+[\\S\\s]*"),
            ))
        }
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(shape(&format!("{path}/{key}"), "expected type: String")),
    }
}

fn string_list(
    d: &Value,
    path: &str,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Vec<String>, String> {
    let p = format!("{path}/{key}");
    let Some(v) = d.get(key) else {
        return Ok(Vec::new());
    };
    let Some(a) = v.as_array() else {
        return Err(shape(&p, "expected type: JSONArray"));
    };
    if a.len() < min {
        return Err(shape(
            &p,
            format!("expected minimum item count: {min}, found: {}", a.len()),
        ));
    }
    if a.len() > max {
        return Err(shape(
            &p,
            format!("expected maximum item count: {max}, found: {}", a.len()),
        ));
    }
    a.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| shape(&format!("{p}/{i}"), "expected type: String"))
        })
        .collect()
}

fn is_uuid_or_fo(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() || crate::world::is_fulfillment_option_id(s)
}

fn is_instance_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 24
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// The submission-time checks of one change's details (a 422 with the message when they fail).
///
/// # Errors
/// What is wrong, as `#/path: problem`.
pub fn check_shape(entity_type: &str, change_type: &str, d: &Value) -> Result<(), String> {
    if obj(d).is_none()
        && !matches!(
            change_type,
            "AddDimensions" | "UpdateDimensions" | "RestrictDimensions"
        )
    {
        return Err(shape("", "expected type: JSONObject"));
    }
    match (entity_type, change_type) {
        (AMI_PRODUCT, "CreateProduct") => {
            only_keys(d, "", &["ProductTitle"])?;
            string_within(d, "", "ProductTitle", 72)
        }
        (AMI_PRODUCT, "UpdateInformation") => check_information(d),
        (AMI_PRODUCT, "AddDeliveryOptions") => check_add_delivery_options(d),
        (AMI_PRODUCT, "UpdateDeliveryOptions") => {
            only_keys(d, "", &["Version", "DeliveryOptions"])?;
            let opts = required(d, "", "DeliveryOptions")?
                .as_array()
                .ok_or_else(|| shape("/DeliveryOptions", "expected type: JSONArray"))?;
            if opts.len() != 1 {
                return Err(shape(
                    "/DeliveryOptions",
                    format!("expected exactly 1 item, found: {}", opts.len()),
                ));
            }
            let id = s_field(&opts[0], "Id").unwrap_or_default();
            if !is_uuid_or_fo(id) {
                return Err(shape("/DeliveryOptions/0/Id", format!("string [{id}] does not match pattern [a-f0-9]{{8}}(-[a-f0-9]{{4}}){{4}}[a-f0-9]{{8}}")));
            }
            Ok(())
        }
        (AMI_PRODUCT, "RestrictDeliveryOptions") => {
            only_keys(d, "", &["DeliveryOptionIds"])?;
            let ids = string_list(d, "", "DeliveryOptionIds", 1, 50)?;
            match ids.iter().find(|i| !is_uuid_or_fo(i)) {
                Some(bad) => Err(shape(
                    "/DeliveryOptionIds",
                    format!("string [{bad}] is not a delivery option id"),
                )),
                None => Ok(()),
            }
        }
        (AMI_PRODUCT, "UpdateVisibility") => {
            only_keys(d, "", &["TargetVisibility", "ReplacementProductId"])?;
            required(d, "", "TargetVisibility")?;
            Ok(())
        }
        (AMI_PRODUCT, "ReleaseProduct") | (OFFER, "ReleaseOffer") => only_keys(d, "", &[]),
        (AMI_PRODUCT, "UpdateTargeting") => {
            only_keys(d, "", &["PositiveTargeting"])?;
            let t = required(d, "", "PositiveTargeting")?;
            only_keys(t, "/PositiveTargeting", &["BuyerAccounts"])?;
            let accounts = string_list(t, "/PositiveTargeting", "BuyerAccounts", 0, 5000)?;
            match accounts.iter().find(|a| !crate::world::is_account_id(a)) {
                Some(bad) => Err(shape(
                    "/PositiveTargeting/BuyerAccounts",
                    format!("string [{bad}] does not match pattern ^\\d{{12}}$"),
                )),
                None => Ok(()),
            }
        }
        (AMI_PRODUCT, "AddRegions" | "RestrictRegions") => {
            only_keys(d, "", &["Regions"])?;
            required(d, "", "Regions")?;
            string_list(d, "", "Regions", 0, 100).map(|_| ())
        }
        (AMI_PRODUCT, "UpdateFutureRegionSupport") => {
            only_keys(d, "", &["FutureRegionSupport"])?;
            let f = required(d, "", "FutureRegionSupport")?;
            only_keys(f, "/FutureRegionSupport", &["SupportedRegions"])?;
            required(f, "/FutureRegionSupport", "SupportedRegions")?;
            string_list(f, "/FutureRegionSupport", "SupportedRegions", 0, 10).map(|_| ())
        }
        (AMI_PRODUCT, "AddInstanceTypes" | "RestrictInstanceTypes") => {
            only_keys(d, "", &["InstanceTypes"])?;
            required(d, "", "InstanceTypes")?;
            let types = string_list(d, "", "InstanceTypes", 1, 1500)?;
            match types.iter().find(|t| !is_instance_type(t)) {
                Some(bad) => Err(shape(
                    "/InstanceTypes",
                    format!("string [{bad}] does not match pattern ^[A-Za-z0-9_.-]+$"),
                )),
                None => Ok(()),
            }
        }
        (AMI_PRODUCT, "AddDimensions" | "UpdateDimensions" | "RestrictDimensions") => {
            let a = d
                .as_array()
                .ok_or_else(|| shape("", "expected type: JSONArray"))?;
            if a.is_empty() || a.len() > 200 {
                return Err(shape(
                    "",
                    format!("expected between 1 and 200 items, found: {}", a.len()),
                ));
            }
            for (i, dim) in a.iter().enumerate() {
                only_keys(
                    dim,
                    &format!("/{i}"),
                    &["Key", "Name", "Description", "Unit", "Types"],
                )?;
                required(dim, &format!("/{i}"), "Key")?;
            }
            Ok(())
        }
        (OFFER, "CreateOffer") => {
            only_keys(d, "", &["ProductId", "Name"])?;
            required(d, "", "ProductId").map(|_| ())
        }
        // The offer's terms are kept as given (enough for AWS's samples).
        (OFFER, _) => Ok(()),
        _ => Err(shape(
            "",
            format!("change type {change_type} is not supported for {entity_type}"),
        )),
    }
}

fn check_information(d: &Value) -> Result<(), String> {
    only_keys(
        d,
        "",
        &[
            "ProductTitle",
            "ShortDescription",
            "LongDescription",
            "Sku",
            "LogoUrl",
            "VideoUrls",
            "Highlights",
            "AdditionalResources",
            "SupportDescription",
            "Categories",
            "SearchKeywords",
        ],
    )?;
    for (k, max) in [
        ("ProductTitle", 72),
        ("ShortDescription", 1000),
        ("LongDescription", 5000),
        ("SupportDescription", 2000),
    ] {
        string_within(d, "", k, max)?;
    }
    if let Some(s) = s_field(d, "LogoUrl") {
        if !s.starts_with("https://") {
            return Err(shape(
                "/LogoUrl",
                format!("string [{s}] is not a valid URI"),
            ));
        }
    }
    string_list(d, "", "Highlights", 1, 3)?;
    string_list(d, "", "Categories", 1, 3)?;
    string_list(d, "", "SearchKeywords", 1, 15)?;
    string_list(d, "", "VideoUrls", 0, 1)?;
    let text = d.to_string();
    if text
        .chars()
        .any(|c| matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}'))
    {
        return Err(shape("", "control characters are not allowed"));
    }
    Ok(())
}

fn check_add_delivery_options(d: &Value) -> Result<(), String> {
    only_keys(d, "", &["Version", "DeliveryOptions"])?;
    let v = required(d, "", "Version")?;
    only_keys(v, "/Version", &["VersionTitle", "ReleaseNotes"])?;
    required(v, "/Version", "VersionTitle")?;
    required(v, "/Version", "ReleaseNotes")?;
    string_within(v, "/Version", "VersionTitle", 64)?;
    string_within(v, "/Version", "ReleaseNotes", 30000)?;
    let opts = required(d, "", "DeliveryOptions")?
        .as_array()
        .ok_or_else(|| shape("/DeliveryOptions", "expected type: JSONArray"))?;
    if opts.len() != 1 {
        return Err(shape(
            "/DeliveryOptions",
            format!("expected exactly 1 item, found: {}", opts.len()),
        ));
    }
    let details = required(&opts[0], "/DeliveryOptions/0", "Details")?;
    only_keys(
        details,
        "/DeliveryOptions/0/Details",
        &["AmiDeliveryOptionDetails", "PackageDeliveryOptionDetails"],
    )?;
    match (
        details.get("AmiDeliveryOptionDetails"),
        details.get("PackageDeliveryOptionDetails"),
    ) {
        (Some(a), None) => check_ami_option(a),
        (None, Some(p)) => check_package_option(p),
        _ => Err(shape(
            "/DeliveryOptions/0/Details",
            "exactly one of AmiDeliveryOptionDetails or PackageDeliveryOptionDetails is required",
        )),
    }
}

fn check_ami_option(a: &Value) -> Result<(), String> {
    let p = "/DeliveryOptions/0/Details/AmiDeliveryOptionDetails";
    only_keys(
        a,
        p,
        &[
            "AmiSource",
            "UsageInstructions",
            "RecommendedInstanceType",
            "SecurityGroups",
            "AccessEndpointUrl",
        ],
    )?;
    let src = required(a, p, "AmiSource")?;
    let sp = format!("{p}/AmiSource");
    only_keys(
        src,
        &sp,
        &[
            "AmiId",
            "AccessRoleArn",
            "UserName",
            "OperatingSystemName",
            "OperatingSystemVersion",
            "ScanningPort",
            "AfiIds",
        ],
    )?;
    for k in [
        "AmiId",
        "AccessRoleArn",
        "UserName",
        "OperatingSystemName",
        "OperatingSystemVersion",
    ] {
        required(src, &sp, k)?;
    }
    let ami = s_field(src, "AmiId").unwrap_or_default();
    let ok_ami = ami.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|c| c.is_ascii_alphanumeric())
    });
    if !ok_ami {
        return Err(shape(
            &format!("{sp}/AmiId"),
            format!(
                "string [{ami}] does not match pattern ^ami-([a-zA-Z0-9]{{8}}|[a-zA-Z0-9]{{17}})$"
            ),
        ));
    }
    let user = s_field(src, "UserName").unwrap_or_default();
    let ok_user = user.len() <= 32
        && user.starts_with(|c: char| c.is_ascii_alphabetic())
        && user
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if !ok_user {
        return Err(shape(
            &format!("{sp}/UserName"),
            format!("string [{user}] does not match pattern ^[a-zA-Z][a-zA-Z0-9_-]{{0,31}}$"),
        ));
    }
    if let Some(port) = src.get("ScanningPort") {
        if !port.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
            return Err(shape(
                &format!("{sp}/ScanningPort"),
                format!("{port} is not in 1..65535"),
            ));
        }
    }
    for k in ["UsageInstructions", "RecommendedInstanceType"] {
        required(a, p, k)?;
    }
    string_within(a, p, "UsageInstructions", 4000)
}

fn check_package_option(pk: &Value) -> Result<(), String> {
    let p = "/DeliveryOptions/0/Details/PackageDeliveryOptionDetails";
    only_keys(
        pk,
        p,
        &[
            "PackageGroupName",
            "Installer",
            "Platform",
            "OperatingSystems",
            "UsageInstructions",
        ],
    )?;
    let name = required(pk, p, "PackageGroupName")?
        .as_str()
        .unwrap_or_default();
    if name.is_empty()
        || name.len() >= 100
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return Err(shape(
            &format!("{p}/PackageGroupName"),
            format!("string [{name}] does not match pattern ^[a-zA-Z0-9_-]{{1,99}}$"),
        ));
    }
    let inst = required(pk, p, "Installer")?;
    only_keys(inst, &format!("{p}/Installer"), &["Url", "Type"])?;
    let url = required(inst, &format!("{p}/Installer"), "Url")?
        .as_str()
        .unwrap_or_default();
    if !(url.starts_with("s3://") || (url.starts_with("https://") && url.contains(".s3"))) {
        return Err(shape(
            &format!("{p}/Installer/Url"),
            format!("string [{url}] is not an S3 object URL"),
        ));
    }
    let platform = required(pk, p, "Platform")?.as_str().unwrap_or_default();
    let types: &[&str] = match platform {
        "Linux" => &LINUX_INSTALLERS,
        "Windows" => &WINDOWS_INSTALLERS,
        other => {
            return Err(shape(
                &format!("{p}/Platform"),
                format!("{other} is not a valid enum value (Linux, Windows)"),
            ))
        }
    };
    let ty = required(inst, &format!("{p}/Installer"), "Type")?
        .as_str()
        .unwrap_or_default();
    if !types.contains(&ty) {
        return Err(shape(
            &format!("{p}/Installer/Type"),
            format!(
                "{ty} is not an installer type for {platform} ({})",
                types.join(" ")
            ),
        ));
    }
    let oses = required(pk, p, "OperatingSystems")?
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            shape(
                &format!("{p}/OperatingSystems"),
                "expected a non-empty JSONArray",
            )
        })?;
    for (i, os) in oses.iter().enumerate() {
        let op = format!("{p}/OperatingSystems/{i}");
        only_keys(os, &op, &["Name", "Version"])?;
        required(os, &op, "Name")?;
        required(os, &op, "Version")?;
    }
    Ok(())
}

/// What one change needs from outside (a scan, a test build) and what it found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prepared {
    /// Errors found by the scan or the test build.
    pub errors: Vec<ErrorDetail>,
    /// The AMI's architecture and virtualization, when it was scanned.
    pub ami: Option<(String, String)>,
}

/// Everything `apply` needs besides the entities.
pub struct Env<'a> {
    /// Now (epoch ms).
    pub now_ms: i64,
    /// The submitting seller.
    pub owner: &'a str,
    /// The world (accounts, base images).
    pub world: &'a crate::world::World,
    /// New ids (UUIDs).
    pub new_id: &'a mut dyn FnMut() -> String,
    /// New fulfillment option ids (`fo-…`).
    pub new_fo: &'a mut dyn FnMut() -> String,
    /// New product codes (25 characters).
    pub new_code: &'a mut dyn FnMut() -> String,
    /// Package group names the seller used before.
    pub used_groups: &'a [String],
    /// Whether the seller has a public profile (UpdateVisibility to Public).
    pub seller_profile: bool,
}

/// The strings of a JSON array (anything else: none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The items `bad` picks, joined for a message, when there are any.
fn picked(items: &[String], bad: impl Fn(&str) -> bool) -> Option<String> {
    let hits: Vec<&str> = items
        .iter()
        .map(String::as_str)
        .filter(|i| bad(i))
        .collect();
    (!hits.is_empty()).then(|| hits.join(", "))
}

fn err(code: &str, message: impl Into<String>) -> Vec<ErrorDetail> {
    vec![ErrorDetail::new(code, message)]
}

/// Applies one change to the working entities; its errors (empty: it applied).
pub fn apply(
    change_type: &str,
    entity_type: &str,
    entity_id: &str,
    d: &Value,
    prepared: &Prepared,
    ents: &mut BTreeMap<String, Entity>,
    env: &mut Env<'_>,
) -> Vec<ErrorDetail> {
    if !prepared.errors.is_empty() {
        return prepared.errors.clone();
    }
    if entity_type == OFFER {
        return apply_offer(change_type, entity_id, d, ents, env);
    }
    if change_type == "CreateProduct" {
        let mut description = Map::new();
        if let Some(t) = s_field(d, "ProductTitle") {
            description.insert("ProductTitle".into(), Value::String(t.into()));
        }
        let product = Product {
            id: entity_id.into(),
            owner: env.owner.into(),
            revision: 0,
            modified_ms: env.now_ms,
            visibility: Visibility::Draft,
            product_code: (env.new_code)(),
            description,
            promotional: Map::new(),
            support_description: None,
            regions: Vec::new(),
            restricted_regions: Vec::new(),
            future_region_support: None,
            buyer_accounts: MCO_ACCOUNTS.iter().map(|a| (*a).to_string()).collect(),
            instance_types: Vec::new(),
            restricted_instance_types: Vec::new(),
            dimensions: Vec::new(),
            versions: Vec::new(),
            from_world: false,
        };
        ents.insert(entity_id.into(), Entity::AmiProduct(product));
        return Vec::new();
    }
    let Some(Entity::AmiProduct(p)) = ents.get_mut(entity_id) else {
        return err(
            "INVALID_PRODUCT_TYPE",
            "Use an existing single AMI product.",
        );
    };
    apply_product(change_type, p, d, prepared, env)
}

fn apply_product(
    change_type: &str,
    p: &mut Product,
    d: &Value,
    prepared: &Prepared,
    env: &mut Env<'_>,
) -> Vec<ErrorDetail> {
    match change_type {
        "UpdateInformation" => update_information(p, d),
        "AddDeliveryOptions" => add_delivery_options(p, d, prepared, env),
        "UpdateDeliveryOptions" => update_delivery_options(p, d),
        "RestrictDeliveryOptions" => restrict_delivery_options(p, d),
        "UpdateVisibility" => update_visibility(p, d, env),
        "ReleaseProduct" => release_product(p),
        "UpdateTargeting" => update_targeting(p, d, env),
        "AddRegions" | "RestrictRegions" => regions(p, change_type, d),
        "UpdateFutureRegionSupport" => future_regions(p, d),
        "AddInstanceTypes" | "RestrictInstanceTypes" => instance_types(p, change_type, d),
        "AddDimensions" | "UpdateDimensions" | "RestrictDimensions" => {
            dimensions(p, change_type, d)
        }
        _ => Vec::new(),
    }
}

fn update_information(p: &mut Product, d: &Value) -> Vec<ErrorDetail> {
    let Some(o) = obj(d).filter(|o| !o.is_empty()) else {
        return err("MISSING_DATA", "No data provided to perform an update. Provide data for at least 1 field of the product.");
    };
    if p.visibility == Visibility::Draft && !p.description.contains_key("ShortDescription") {
        for k in [
            "ProductTitle",
            "ShortDescription",
            "LongDescription",
            "LogoUrl",
            "Highlights",
            "SupportDescription",
            "Categories",
            "SearchKeywords",
        ] {
            let titled = k == "ProductTitle" && !p.title().is_empty();
            if !o.contains_key(k) && !titled {
                return err("INVALID_INPUT", format!("Provide {k}."));
            }
        }
    }
    let total: usize = o
        .get("SearchKeywords")
        .and_then(Value::as_array)
        .map_or(0, |a| {
            a.iter().filter_map(Value::as_str).map(str::len).sum()
        });
    if total > 250 {
        return err(
            "INVALID_INPUT",
            "Search keywords must be no more than 250 combined characters.",
        );
    }
    for (k, v) in o {
        match k.as_str() {
            "LogoUrl" => {
                p.promotional.insert("LogoUrl".into(), v.clone());
            }
            "VideoUrls" => {
                let videos: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(
                        |u| serde_json::json!({"Type": "Link", "Title": "Product video", "Url": u}),
                    )
                    .collect();
                p.promotional.insert("Videos".into(), Value::Array(videos));
            }
            "AdditionalResources" => {
                let res: Vec<Value> = v.as_array().into_iter().flatten().map(|r| serde_json::json!({"Type": "Link", "Text": r.get("Text"), "Url": r.get("Url")})).collect();
                p.promotional
                    .insert("AdditionalResources".into(), Value::Array(res));
            }
            "SupportDescription" => p.support_description = v.as_str().map(str::to_string),
            _ => {
                p.description.insert(k.clone(), v.clone());
            }
        }
    }
    Vec::new()
}

fn add_delivery_options(
    p: &mut Product,
    d: &Value,
    prepared: &Prepared,
    env: &mut Env<'_>,
) -> Vec<ErrorDetail> {
    let title = d["Version"]["VersionTitle"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if p.versions.iter().any(|v| v.version_title == title) {
        return err(
            "DUPLICATE_VERSION_TITLE",
            "The version title must be different from any other version titles of this product.",
        );
    }
    let opt = &d["DeliveryOptions"][0]["Details"];
    let source_id = (env.new_id)();
    let delivered = match opt.get("AmiDeliveryOptionDetails") {
        Some(a) => ami_delivery(p, a, prepared, &source_id, env),
        None => package_delivery(p, &opt["PackageDeliveryOptionDetails"], &source_id, env),
    };
    let (source, option) = match delivered {
        Ok(x) => x,
        Err(e) => return e,
    };
    p.versions.push(Version {
        id: (env.new_id)(),
        version_title: title,
        release_notes: d["Version"]["ReleaseNotes"]
            .as_str()
            .unwrap_or_default()
            .into(),
        created_ms: env.now_ms,
        sources: vec![source],
        delivery_options: vec![option],
    });
    Vec::new()
}

/// A version's source and delivery option, or why it cannot be added.
type Delivered = Result<(Source, DeliveryOption), Vec<ErrorDetail>>;

/// An AMI version: the scanned AMI (its facts from the scan) and a launchable option.
fn ami_delivery(
    p: &Product,
    a: &Value,
    prepared: &Prepared,
    source_id: &str,
    env: &mut Env<'_>,
) -> Delivered {
    let src = &a["AmiSource"];
    if let Some(t) = s_field(a, "RecommendedInstanceType") {
        if !p.instance_types.is_empty() && !p.instance_types.iter().any(|x| x == t) {
            return Err(err(
                "RECOMMENDED_INSTANCE_TYPE_NOT_AVAILABLE",
                "Provide an existing, available instance type.",
            ));
        }
    }
    let (arch, virt) = prepared
        .ami
        .clone()
        .unwrap_or_else(|| ("x86_64".into(), "hvm".into()));
    let source = Source::AmazonMachineImage {
        id: source_id.into(),
        image: s_field(src, "AmiId").unwrap_or_default().into(),
        architecture: arch.clone(),
        virtualization_type: virt,
        operating_system: serde_json::json!({
            "Name": src.get("OperatingSystemName"), "Version": src.get("OperatingSystemVersion"),
            "Username": src.get("UserName"), "ScanningPort": src.get("ScanningPort").cloned().unwrap_or(Value::from(22)),
        }),
    };
    let mut details = a.clone();
    if let Some(o) = details.as_object_mut() {
        o.remove("AmiSource");
    }
    let option = DeliveryOption {
        id: (env.new_id)(),
        kind: "AmazonMachineImage".into(),
        source_id: source_id.into(),
        title: format!("({arch}) Amazon Machine Image"),
        restricted: false,
        details,
    };
    Ok((source, option))
}

/// A package version: the installer and its operating systems, and a `fo-…` option to build.
fn package_delivery(p: &Product, pk: &Value, source_id: &str, env: &mut Env<'_>) -> Delivered {
    let group = s_field(pk, "PackageGroupName")
        .unwrap_or_default()
        .to_string();
    let used_here = p.versions.iter().flat_map(|v| &v.sources).any(|s| {
        matches!(s, Source::SoftwarePackage { package_group_name, .. } if *package_group_name == group)
    });
    if used_here || env.used_groups.contains(&group) {
        return Err(err("DUPLICATE_PACKAGE_GROUP_NAME", format!("The package group name {group} was used before. Package group names can never be reused; provide a new one.")));
    }
    let platform = s_field(pk, "Platform").unwrap_or("Linux").to_string();
    let operating_systems = pk["OperatingSystems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "{} {}",
                o["Name"].as_str().unwrap_or_default(),
                o["Version"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let source = Source::SoftwarePackage {
        id: source_id.into(),
        package_group_name: group,
        installer_url: pk["Installer"]["Url"].as_str().unwrap_or_default().into(),
        installer_type: pk["Installer"]["Type"].as_str().unwrap_or_default().into(),
        platform: platform.clone(),
        operating_systems,
    };
    let mut details = Map::new();
    if let Some(u) = pk.get("UsageInstructions") {
        details.insert("UsageInstructions".into(), u.clone());
    }
    let option = DeliveryOption {
        id: (env.new_fo)(),
        kind: "SoftwarePackage".into(),
        source_id: source_id.into(),
        title: format!("({platform}) Software package"),
        restricted: false,
        details: Value::Object(details),
    };
    Ok((source, option))
}

fn update_delivery_options(p: &mut Product, d: &Value) -> Vec<ErrorDetail> {
    if p.visibility == Visibility::Draft && p.versions.is_empty() {
        return err(
            "INVALID_PRODUCT",
            "Use an existing limited or public product.",
        );
    }
    let opt = &d["DeliveryOptions"][0];
    let id = s_field(opt, "Id").unwrap_or_default();
    let Some(v) = p
        .versions
        .iter_mut()
        .find(|v| v.delivery_options.iter().any(|o| o.id == id))
    else {
        return err("INVALID_DELIVERY_OPTION_IDS", format!("Provide delivery option IDs that can be found in the product. IDs not found: [{id}]"));
    };
    if let Some(notes) = d.get("Version").and_then(|x| s_field(x, "ReleaseNotes")) {
        v.release_notes = notes.into();
    }
    if let Some(o) = v.delivery_options.iter_mut().find(|o| o.id == id) {
        let given = opt["Details"]
            .get("AmiDeliveryOptionDetails")
            .or_else(|| opt["Details"].get("PackageDeliveryOptionDetails"));
        if let (Some(Value::Object(given)), Value::Object(mine)) = (given, &mut o.details) {
            for (k, val) in given {
                mine.insert(k.clone(), val.clone());
            }
        }
    }
    Vec::new()
}

fn restrict_delivery_options(p: &mut Product, d: &Value) -> Vec<ErrorDetail> {
    let ids: Vec<String> = strings(&d["DeliveryOptionIds"]);
    if ids.is_empty() {
        return err(
            "MISSING_DELIVERY_OPTION_IDS",
            "Provide at least one delivery option ID.",
        );
    }
    if p.visibility == Visibility::Draft {
        return err("INVALID_PRODUCT", "Use an existing public product.");
    }
    if let Some(missing) = picked(&ids, |i| p.option(i).is_none()) {
        return err("INVALID_DELIVERY_OPTION_IDS", format!("Provide delivery option IDs that can be found in the product. IDs not found: [{missing}]"));
    }
    if let Some(closed) = picked(&ids, |i| p.option(i).is_some_and(|(_, o)| o.restricted)) {
        return err("INVALID_DELIVERY_OPTION", format!("Provide delivery option IDs that are in a public state. IDs not in public state: [{closed}]"));
    }
    let open_left = p
        .versions
        .iter()
        .flat_map(|v| &v.delivery_options)
        .filter(|o| !o.restricted && !ids.contains(&o.id))
        .count();
    if open_left == 0 {
        return err("ALL_DELIVERY_OPTIONS_RESTRICTED", "Provide fewer delivery options to restrict as at least one must remain in public state.");
    }
    for o in p
        .versions
        .iter_mut()
        .flat_map(|v| v.delivery_options.iter_mut())
    {
        if ids.contains(&o.id) {
            o.restricted = true;
        }
    }
    Vec::new()
}

fn update_visibility(p: &mut Product, d: &Value, env: &Env<'_>) -> Vec<ErrorDetail> {
    let target = s_field(d, "TargetVisibility").unwrap_or_default();
    if target.is_empty() {
        return err(
            "EMPTY_TARGET_VISIBILITY",
            "Provide a valid target visibility state: Public, Limited, or Restricted.",
        );
    }
    let Some(t) = Visibility::parse(target).filter(|v| *v != Visibility::Draft) else {
        return err(
            "INVALID_TARGET_VISIBILITY",
            "Provide a valid target visibility state: Public, Limited, or Restricted.",
        );
    };
    if p.visibility == Visibility::Draft {
        return err(
            "INVALID_PRODUCT_STATE",
            "Use an existing Public, Limited, or Restricted product.",
        );
    }
    if t == Visibility::Public && !env.seller_profile {
        return err("MISSING_SELLER_PROFILE_INFORMATION", "Before you can update your product to Public, you must add a public profile to your seller account.");
    }
    if d.get("ReplacementProductId").is_some() && t != Visibility::Restricted {
        return err(
            "INVALID_REPLACEMENT_PRODUCT_ID",
            "A replacement product can be given only when the target visibility is Restricted.",
        );
    }
    p.visibility = t;
    Vec::new()
}

fn release_product(p: &mut Product) -> Vec<ErrorDetail> {
    if p.visibility != Visibility::Draft {
        return err("INVALID_PRODUCT_STATE", "Use an existing Draft product.");
    }
    let mut missing = Vec::new();
    if !p.description.contains_key("ShortDescription") {
        missing.push("Provide Description information.");
    }
    if p.versions.is_empty() {
        missing.push("Provide Versions information.");
    }
    if !p.promotional.contains_key("LogoUrl") {
        missing.push("Provide PromotionalResources information.");
    }
    if p.support_description.is_none() {
        missing.push("Provide SupportInformation information.");
    }
    if !missing.is_empty() {
        return missing
            .into_iter()
            .map(|m| ErrorDetail::new("VALIDATION_FAILED", m))
            .collect();
    }
    p.visibility = Visibility::Limited;
    Vec::new()
}

fn update_targeting(p: &mut Product, d: &Value, env: &Env<'_>) -> Vec<ErrorDetail> {
    if p.visibility == Visibility::Restricted {
        return err(
            "INVALID_PRODUCT_VISIBILITY",
            "Use an existing Public, Limited or Draft product.",
        );
    }
    let accounts: Vec<String> = strings(&d["PositiveTargeting"]["BuyerAccounts"]);
    let _ = env;
    let mut list: Vec<String> = MCO_ACCOUNTS.iter().map(|a| (*a).to_string()).collect();
    for a in accounts {
        if !list.contains(&a) {
            list.push(a);
        }
    }
    p.buyer_accounts = list;
    Vec::new()
}

fn regions(p: &mut Product, change_type: &str, d: &Value) -> Vec<ErrorDetail> {
    let given: Vec<String> = strings(&d["Regions"]);
    if given.is_empty() {
        return err("INVALID_INPUT", "Regions can't be empty.");
    }
    if let Some(bad) = picked(&given, |r| !REGIONS.contains(&r)) {
        return err("INVALID_REGIONS", format!("Requested regions [{bad}] are invalid or unavailable. Only supported values are [{}].", REGIONS.join(", ")));
    }
    for r in given {
        if change_type == "AddRegions" {
            p.restricted_regions.retain(|x| *x != r);
            if !p.regions.contains(&r) {
                p.regions.push(r);
            }
        } else {
            p.regions.retain(|x| *x != r);
            if !p.restricted_regions.contains(&r) {
                p.restricted_regions.push(r);
            }
        }
    }
    Vec::new()
}

fn future_regions(p: &mut Product, d: &Value) -> Vec<ErrorDetail> {
    let given: Vec<&str> = d["FutureRegionSupport"]["SupportedRegions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match given.as_slice() {
        [] => err("INVALID_INPUT", "SupportedRegions can't be empty."),
        [one] if ["All", "US", "None"].contains(one) => {
            p.future_region_support = Some((*one).to_string());
            Vec::new()
        }
        [one] => err("INVALID_REGIONS", format!("Requested regions [{one}] are invalid or unavailable. Only supported values are [All, US, None].")),
        _ => err("TOO_MANY_REGIONS", "Currently, only 1 value is supported for FutureRegionSupport: All, US, or None"),
    }
}

fn instance_types(p: &mut Product, change_type: &str, d: &Value) -> Vec<ErrorDetail> {
    let given: Vec<String> = strings(&d["InstanceTypes"]);
    if let Some(bad) = picked(&given, |t| !t.contains('.')) {
        return err(
            "INVALID_INSTANCE_TYPES",
            format!("The following instance types are not valid: [{bad}]"),
        );
    }
    if change_type == "RestrictInstanceTypes" {
        let recommended: Vec<String> = p
            .versions
            .iter()
            .flat_map(|v| &v.delivery_options)
            .filter(|o| !o.restricted)
            .filter_map(|o| {
                o.details
                    .get("RecommendedInstanceType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .filter(|t| given.contains(t))
            .collect();
        if !recommended.is_empty() {
            return err("RECOMMENDED_INSTANCE_TYPE_RESTRICTED", format!("The following instance types are recommended by a version and cannot be restricted: [{}]", recommended.join(", ")));
        }
        p.instance_types.retain(|t| !given.contains(t));
        for t in given {
            if !p.restricted_instance_types.contains(&t) {
                p.restricted_instance_types.push(t);
            }
        }
    } else {
        p.restricted_instance_types.retain(|t| !given.contains(t));
        for t in given {
            if !p.instance_types.contains(&t) {
                p.instance_types.push(t);
            }
        }
    }
    Vec::new()
}

fn dimensions(p: &mut Product, change_type: &str, d: &Value) -> Vec<ErrorDetail> {
    let given = d.as_array().cloned().unwrap_or_default();
    let key = |v: &Value| {
        v.get("Key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match change_type {
        "AddDimensions" => {
            if let Some(dup) = given
                .iter()
                .find(|g| p.dimensions.iter().any(|x| key(x) == key(g)))
            {
                return err(
                    "INVALID_DIMENSION",
                    format!("Dimension {} already exists.", key(dup)),
                );
            }
            if p.dimensions.len() + given.len() > 200 {
                return err(
                    "INVALID_DIMENSION",
                    "A product can have at most 200 dimensions.",
                );
            }
            p.dimensions.extend(given);
        }
        "UpdateDimensions" => {
            for g in given {
                if let Some(x) = p.dimensions.iter_mut().find(|x| key(x) == key(&g)) {
                    *x = g;
                }
            }
        }
        _ => {
            if p.visibility != Visibility::Draft {
                return err(
                    "INVALID_DIMENSION",
                    format!(
                        "Dimension can't be restricted in current state '{}'",
                        p.visibility.as_str()
                    ),
                );
            }
            p.dimensions
                .retain(|x| !given.iter().any(|g| key(g) == key(x)));
        }
    }
    Vec::new()
}

fn apply_offer(
    change_type: &str,
    id: &str,
    d: &Value,
    ents: &mut BTreeMap<String, Entity>,
    env: &mut Env<'_>,
) -> Vec<ErrorDetail> {
    if change_type == "CreateOffer" {
        let product_id = s_field(d, "ProductId").map(str::to_string);
        let owned = product_id.as_ref().is_some_and(
            |pid| matches!(ents.get(pid), Some(Entity::AmiProduct(p)) if p.owner == env.owner),
        );
        if !owned {
            return err(
                "INVALID_INPUT",
                "Provide a ProductId of one of your products.",
            );
        }
        let mut document = Map::new();
        if let Some(n) = d.get("Name") {
            document.insert("Name".into(), n.clone());
        }
        ents.insert(
            id.into(),
            Entity::Offer(Offer {
                id: id.into(),
                owner: env.owner.into(),
                revision: 0,
                modified_ms: env.now_ms,
                product_id,
                state: "Draft".into(),
                document,
            }),
        );
        return Vec::new();
    }
    let Some(Entity::Offer(o)) = ents.get_mut(id) else {
        return err("INVALID_INPUT", "Use an existing offer.");
    };
    if change_type == "ReleaseOffer" {
        o.state = "Released".into();
    } else {
        o.document.insert(change_type.into(), d.clone());
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixture {
        ents: BTreeMap<String, Entity>,
        world: crate::world::World,
        n: u32,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                ents: BTreeMap::new(),
                world: crate::world::World::default(),
                n: 0,
            }
        }

        fn run(&mut self, change_type: &str, d: Value) -> Vec<String> {
            self.run_as(change_type, d, true)
        }

        fn run_as(&mut self, change_type: &str, d: Value, profile: bool) -> Vec<String> {
            let world = self.world.clone();
            let mut n = self.n;
            let mut new_id = || {
                n += 1;
                format!("00000000-0000-4000-8000-{n:012}")
            };
            let mut m = self.n;
            let mut new_fo = || {
                m += 1;
                format!("fo-test{m:08}")
            };
            let mut new_code = || "c".repeat(25);
            let mut env = Env {
                now_ms: 0,
                owner: "111111111111",
                world: &world,
                new_id: &mut new_id,
                new_fo: &mut new_fo,
                new_code: &mut new_code,
                used_groups: &[],
                seller_profile: profile,
            };
            let out = apply(
                change_type,
                AMI_PRODUCT,
                "prod-1",
                &d,
                &Prepared::default(),
                &mut self.ents,
                &mut env,
            );
            self.n += 10;
            out.into_iter().map(|e| e.error_code).collect()
        }

        fn product(&self) -> &Product {
            match &self.ents["prod-1"] {
                Entity::AmiProduct(p) => p,
                Entity::Offer(_) => unreachable!(),
            }
        }
    }

    fn pkg(title: &str, group: &str) -> Value {
        json!({"Version": {"VersionTitle": title, "ReleaseNotes": "n"}, "DeliveryOptions": [{"Details": {"PackageDeliveryOptionDetails": {
            "PackageGroupName": group, "Installer": {"Url": "s3://b/k.rpm", "Type": ".rpm"}, "Platform": "Linux",
            "OperatingSystems": [{"Name": "AMAZONLINUX", "Version": "2023"}]}}}]})
    }

    fn released() -> Fixture {
        let mut f = Fixture::new();
        assert!(f
            .run("CreateProduct", json!({"ProductTitle": "T"}))
            .is_empty());
        assert_eq!(f.run("ReleaseProduct", json!({})), ["VALIDATION_FAILED"; 4]);
        assert_eq!(f.run("UpdateInformation", json!({})), ["MISSING_DATA"]);
        assert_eq!(
            f.run("UpdateInformation", json!({"ShortDescription": "s"})),
            ["INVALID_INPUT"]
        );
        let info = json!({"ShortDescription": "s", "LongDescription": "l", "LogoUrl": "https://x/l.png", "Highlights": ["h"],
            "SupportDescription": "d", "Categories": ["c"], "SearchKeywords": ["k"]});
        assert!(f.run("UpdateInformation", info).is_empty());
        assert_eq!(
            f.run("UpdateVisibility", json!({"TargetVisibility": "Public"})),
            ["INVALID_PRODUCT_STATE"]
        );
        assert_eq!(
            f.run(
                "RestrictDeliveryOptions",
                json!({"DeliveryOptionIds": ["fo-x"]})
            ),
            ["INVALID_PRODUCT"]
        );
        assert!(f.run("AddDeliveryOptions", pkg("1.0", "g1")).is_empty());
        assert_eq!(
            f.run("AddDeliveryOptions", pkg("1.0", "g2")),
            ["DUPLICATE_VERSION_TITLE"]
        );
        assert_eq!(
            f.run("AddDeliveryOptions", pkg("1.1", "g1")),
            ["DUPLICATE_PACKAGE_GROUP_NAME"]
        );
        assert!(f.run("ReleaseProduct", json!({})).is_empty());
        assert_eq!(f.product().visibility, Visibility::Limited);
        assert_eq!(
            f.run("ReleaseProduct", json!({})),
            ["INVALID_PRODUCT_STATE"]
        );
        f
    }

    #[test]
    fn draft_to_limited_with_its_checks() {
        let f = released();
        let p = f.product();
        assert_eq!(p.versions.len(), 1);
        assert_eq!(p.buyer_accounts, MCO_ACCOUNTS);
        assert!(p.versions[0].delivery_options[0].id.starts_with("fo-"));
    }

    #[test]
    fn restricting_versions_keeps_one_open() {
        let mut f = released();
        let first = f.product().versions[0].delivery_options[0].id.clone();
        assert_eq!(
            f.run(
                "RestrictDeliveryOptions",
                json!({"DeliveryOptionIds": [first]})
            ),
            ["ALL_DELIVERY_OPTIONS_RESTRICTED"]
        );
        assert_eq!(
            f.run(
                "RestrictDeliveryOptions",
                json!({"DeliveryOptionIds": ["fo-nothere"]})
            ),
            ["INVALID_DELIVERY_OPTION_IDS"]
        );
        assert!(f.run("AddDeliveryOptions", pkg("2.0", "g3")).is_empty());
        assert!(f
            .run(
                "RestrictDeliveryOptions",
                json!({"DeliveryOptionIds": [first.clone()]})
            )
            .is_empty());
        assert_eq!(
            f.run(
                "RestrictDeliveryOptions",
                json!({"DeliveryOptionIds": [first.clone()]})
            ),
            ["INVALID_DELIVERY_OPTION"]
        );
        assert_eq!(
            f.run(
                "UpdateDeliveryOptions",
                json!({"DeliveryOptions": [{"Id": "fo-nothere", "Details": {}}]})
            ),
            ["INVALID_DELIVERY_OPTION_IDS"]
        );
        assert!(f
            .product()
            .option(&first)
            .is_some_and(|(_, o)| o.restricted));
    }

    #[test]
    fn visibility_targeting_regions_and_instance_types() {
        let mut f = released();
        assert_eq!(
            f.run("UpdateVisibility", json!({"TargetVisibility": ""})),
            ["EMPTY_TARGET_VISIBILITY"]
        );
        assert_eq!(
            f.run("UpdateVisibility", json!({"TargetVisibility": "Draft"})),
            ["INVALID_TARGET_VISIBILITY"]
        );
        assert_eq!(
            f.run_as(
                "UpdateVisibility",
                json!({"TargetVisibility": "Public"}),
                false
            ),
            ["MISSING_SELLER_PROFILE_INFORMATION"]
        );
        assert_eq!(
            f.run(
                "UpdateVisibility",
                json!({"TargetVisibility": "Public", "ReplacementProductId": "prod-2"})
            ),
            ["INVALID_REPLACEMENT_PRODUCT_ID"]
        );
        assert!(f
            .run(
                "UpdateTargeting",
                json!({"PositiveTargeting": {"BuyerAccounts": ["222222222222"]}})
            )
            .is_empty());
        assert!(f
            .product()
            .buyer_accounts
            .contains(&"222222222222".to_string()));
        assert!(f
            .run(
                "UpdateVisibility",
                json!({"TargetVisibility": "Restricted"})
            )
            .is_empty());
        assert_eq!(
            f.run(
                "UpdateTargeting",
                json!({"PositiveTargeting": {"BuyerAccounts": []}})
            ),
            ["INVALID_PRODUCT_VISIBILITY"]
        );
        assert_eq!(
            f.run("AddRegions", json!({"Regions": []})),
            ["INVALID_INPUT"]
        );
        assert_eq!(
            f.run("AddRegions", json!({"Regions": ["mars-1"]})),
            ["INVALID_REGIONS"]
        );
        assert!(f
            .run("AddRegions", json!({"Regions": ["eu-west-1"]}))
            .is_empty());
        assert!(f
            .run("RestrictRegions", json!({"Regions": ["eu-west-1"]}))
            .is_empty());
        assert_eq!(f.product().restricted_regions, ["eu-west-1"]);
        assert_eq!(
            f.run(
                "UpdateFutureRegionSupport",
                json!({"FutureRegionSupport": {"SupportedRegions": []}})
            ),
            ["INVALID_INPUT"]
        );
        assert_eq!(
            f.run(
                "UpdateFutureRegionSupport",
                json!({"FutureRegionSupport": {"SupportedRegions": ["All", "US"]}})
            ),
            ["TOO_MANY_REGIONS"]
        );
        assert_eq!(
            f.run(
                "UpdateFutureRegionSupport",
                json!({"FutureRegionSupport": {"SupportedRegions": ["Mars"]}})
            ),
            ["INVALID_REGIONS"]
        );
        assert!(f
            .run(
                "UpdateFutureRegionSupport",
                json!({"FutureRegionSupport": {"SupportedRegions": ["US"]}})
            )
            .is_empty());
        assert_eq!(
            f.run("AddInstanceTypes", json!({"InstanceTypes": ["bogus"]})),
            ["INVALID_INSTANCE_TYPES"]
        );
        assert!(f
            .run("AddInstanceTypes", json!({"InstanceTypes": ["t3.micro"]}))
            .is_empty());
        assert!(f
            .run(
                "RestrictInstanceTypes",
                json!({"InstanceTypes": ["t3.micro"]})
            )
            .is_empty());
        assert_eq!(f.product().restricted_instance_types, ["t3.micro"]);
    }

    #[test]
    fn recommended_instance_types_and_dimensions() {
        let mut f = released();
        assert!(f
            .run("AddInstanceTypes", json!({"InstanceTypes": ["m5.large"]}))
            .is_empty());
        let ami = |title: &str, t: &str| {
            json!({"Version": {"VersionTitle": title, "ReleaseNotes": "n"}, "DeliveryOptions": [{"Details": {"AmiDeliveryOptionDetails": {
            "AmiSource": {"AmiId": "ami-12345678", "AccessRoleArn": "r", "UserName": "u", "OperatingSystemName": "X", "OperatingSystemVersion": "1"},
            "UsageInstructions": "u", "RecommendedInstanceType": t}}}]})
        };
        assert_eq!(
            f.run("AddDeliveryOptions", ami("3.0", "c5.xlarge")),
            ["RECOMMENDED_INSTANCE_TYPE_NOT_AVAILABLE"]
        );
        assert!(f
            .run("AddDeliveryOptions", ami("3.0", "m5.large"))
            .is_empty());
        assert_eq!(
            f.run(
                "RestrictInstanceTypes",
                json!({"InstanceTypes": ["m5.large"]})
            ),
            ["RECOMMENDED_INSTANCE_TYPE_RESTRICTED"]
        );
        let dim = json!([{"Key": "m5.large", "Name": "m5.large", "Description": "d", "Unit": "Hrs", "Types": ["Metered"]}]);
        assert!(f.run("AddDimensions", dim.clone()).is_empty());
        assert_eq!(f.run("AddDimensions", dim.clone()), ["INVALID_DIMENSION"]);
        assert_eq!(f.run("RestrictDimensions", dim), ["INVALID_DIMENSION"]);
        f.ents.insert(
            "prod-1".into(),
            Entity::Offer(Offer {
                id: "prod-1".into(),
                owner: "o".into(),
                revision: 1,
                modified_ms: 0,
                product_id: None,
                state: "Draft".into(),
                document: Map::new(),
            }),
        );
        assert_eq!(
            f.run("AddRegions", json!({"Regions": ["us-east-1"]})),
            ["INVALID_PRODUCT_TYPE"]
        );
    }

    #[test]
    fn shapes_are_checked_at_submission() {
        let bad = [
            (
                "CreateProduct",
                json!({"ProductTitle": "x".repeat(73)}),
                "maxLength",
            ),
            ("AddRegions", json!({"Regions": "us-east-1"}), "JSONArray"),
            ("AddRegions", json!({}), "required key [Regions]"),
            (
                "UpdateTargeting",
                json!({"PositiveTargeting": {"BuyerAccounts": ["12"]}}),
                "BuyerAccounts",
            ),
            (
                "AddDeliveryOptions",
                json!({"Version": {"VersionTitle": "1", "ReleaseNotes": "n"}, "DeliveryOptions": []}),
                "exactly 1",
            ),
            (
                "AddDeliveryOptions",
                pkg("1", "bad name!"),
                "PackageGroupName",
            ),
            (
                "UpdateInformation",
                json!({"LogoUrl": "http://x"}),
                "LogoUrl",
            ),
            (
                "RestrictDeliveryOptions",
                json!({"DeliveryOptionIds": []}),
                "minimum item count",
            ),
            ("AddDimensions", json!({}), "JSONArray"),
        ];
        for (ct, d, needle) in bad {
            let e = check_shape(AMI_PRODUCT, ct, &d).unwrap_err();
            assert!(e.contains(needle), "{ct}: {e}");
        }
        assert!(check_shape(AMI_PRODUCT, "AddDeliveryOptions", &pkg("1", "ok_name-1")).is_ok());
        assert!(check_shape(OFFER, "CreateOffer", &json!({"ProductId": "prod-1"})).is_ok());
    }
}
