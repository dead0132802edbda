//! Wire forms of the catalog's records: DescribeEntity's `DetailsDocument`, entity summaries,
//! change-set descriptions.
//!
//! Depends on: catalog (records), clock. Rendered here, in the operations' layer, so the
//! catalog's records stay free of wire shapes.

use serde_json::{json, Map, Value};

use crate::catalog::{timestamp, ChangeSet, Entity, Product, Source};

fn ms_timestamp(ms: i64) -> String {
    crate::clock::iso8601_extended(ms)
}

/// The `DetailsDocument` of an entity, as AWS documents it for `AmiProduct@1.0`.
#[must_use]
pub fn details_document(e: &Entity) -> Value {
    match e {
        Entity::AmiProduct(p) => product_document(p),
        Entity::Offer(o) => {
            let mut d = o.document.clone();
            d.insert("ProductId".into(), json!(o.product_id));
            d.insert("State".into(), json!(o.state));
            Value::Object(d)
        }
    }
}

fn product_document(p: &Product) -> Value {
    let versions: Vec<Value> = p
        .versions
        .iter()
        .map(|v| {
            let sources: Vec<Value> = v.sources.iter().map(source).collect();
            let options: Vec<Value> = v
                .delivery_options
                .iter()
                .map(|o| {
                    let mut m = Map::new();
                    m.insert("Id".into(), json!(o.id));
                    m.insert("Type".into(), json!(o.kind));
                    m.insert("SourceId".into(), json!(o.source_id));
                    m.insert("Title".into(), json!(o.title));
                    m.insert("ShortDescription".into(), json!("No description provided for this delivery method"));
                    m.insert("Visibility".into(), json!(option_visibility(p, o.restricted)));
                    let usage = o.details.get("UsageInstructions").cloned().unwrap_or(Value::Null);
                    let mut instructions = json!({"Usage": usage});
                    if let Some(a) = o.details.get("AccessEndpointUrl") {
                        instructions["Access"] = json!({"Type": "Endpoint", "Port": a.get("Port"), "Protocol": a.get("Protocol"), "RelativePath": a.get("RelativePath")});
                    }
                    m.insert("Instructions".into(), instructions);
                    if o.kind == "AmazonMachineImage" {
                        let groups: Vec<Value> = o.details.get("SecurityGroups").and_then(Value::as_array).into_iter().flatten().map(|g| json!({"Protocol": g.get("IpProtocol"), "FromPort": g.get("FromPort"), "ToPort": g.get("ToPort"), "CidrIps": g.get("IpRanges")})).collect();
                        m.insert("Recommendations".into(), json!({"InstanceType": o.details.get("RecommendedInstanceType"), "SecurityGroups": groups}));
                        m.insert("AmiAlias".into(), json!(format!("/aws/service/marketplace/{}/{}", p.id, v.version_title)));
                    } else {
                        m.insert("FulfillmentOptionId".into(), json!(o.id));
                    }
                    Value::Object(m)
                })
                .collect();
            json!({
                "Id": v.id, "VersionTitle": v.version_title, "ReleaseNotes": v.release_notes,
                "UpgradeInstructions": "NA", "CreationDate": ms_timestamp(v.created_ms),
                "Sources": sources, "DeliveryOptions": options,
            })
        })
        .collect();
    let mut description = p.description.clone();
    description.insert("ProductCode".into(), json!(p.product_code));
    description.insert("Visibility".into(), json!(p.visibility.as_str()));
    description.insert("ProductState".into(), json!("Active"));
    let compatibility = json!({"AvailableInstanceTypes": p.instance_types, "RestrictedInstanceTypes": p.restricted_instance_types});
    json!({
        "Versions": versions,
        "Description": description,
        "PromotionalResources": {
            "LogoUrl": p.promotional.get("LogoUrl"),
            "Videos": p.promotional.get("Videos").cloned().unwrap_or(json!([])),
            "AdditionalResources": p.promotional.get("AdditionalResources").cloned().unwrap_or(json!([])),
        },
        "SupportInformation": {"Description": p.support_description, "Resources": []},
        "RegionAvailability": {"Regions": p.regions, "FutureRegionSupport": p.future_region_support, "Restrict": p.restricted_regions},
        "Targeting": {"PositiveTargeting": {"BuyerAccounts": p.buyer_accounts}},
        "Dimensions": p.dimensions,
        "Compatibility": compatibility,
    })
}

/// `Public`/`Limited` as the product, or `Restricted` once restricted.
fn option_visibility(p: &Product, restricted: bool) -> &'static str {
    if restricted {
        "Restricted"
    } else {
        match p.visibility {
            crate::catalog::Visibility::Public => "Public",
            crate::catalog::Visibility::Restricted => "Restricted",
            _ => "Limited",
        }
    }
}

fn source(s: &Source) -> Value {
    match s {
        Source::AmazonMachineImage {
            id,
            image,
            architecture,
            virtualization_type,
            operating_system,
        } => json!({
            "Id": id, "Type": "AmazonMachineImage", "Image": image, "Architecture": architecture,
            "VirtualizationType": virtualization_type, "OperatingSystem": operating_system,
        }),
        Source::SoftwarePackage {
            id,
            package_group_name,
            installer_url,
            installer_type,
            platform,
            operating_systems,
        } => json!({
            "Id": id, "Type": "SoftwarePackage", "PackageGroupName": package_group_name,
            "Installer": {"Url": installer_url, "Type": installer_type}, "Platform": platform,
            "OperatingSystems": operating_systems,
        }),
    }
}

/// DescribeEntity's answer.
#[must_use]
pub fn describe_entity(e: &Entity, entity_type: &str) -> Value {
    let doc = details_document(e);
    json!({
        "EntityType": entity_type,
        "EntityIdentifier": format!("{}@{}", e.id(), e.revision()),
        "EntityArn": e.arn(),
        "LastModifiedDate": timestamp(e.modified_ms()),
        "Details": doc.to_string(),
        "DetailsDocument": doc,
    })
}

/// One `EntitySummary` of ListEntities.
#[must_use]
pub fn entity_summary(e: &Entity) -> Value {
    match e {
        Entity::AmiProduct(p) => json!({
            "Name": p.title(), "EntityType": "AmiProduct", "EntityId": p.id, "EntityArn": e.arn(),
            "LastModifiedDate": timestamp(p.modified_ms), "Visibility": p.visibility.as_str(),
            "AmiProductSummary": {"ProductTitle": p.title(), "Visibility": p.visibility.as_str()},
        }),
        Entity::Offer(o) => json!({
            "Name": o.document.get("Name").and_then(Value::as_str).unwrap_or_default(),
            "EntityType": "Offer", "EntityId": o.id, "EntityArn": e.arn(),
            "LastModifiedDate": timestamp(o.modified_ms), "Visibility": if o.state == "Released" { "Public" } else { "Draft" },
        }),
    }
}

/// DescribeChangeSet's answer.
#[must_use]
pub fn describe_change_set(cs: &ChangeSet) -> Value {
    let changes: Vec<Value> = cs
        .changes
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("ChangeType".into(), json!(c.change_type));
            let identifier = match &c.identifier {
                Some(_) if cs.status == crate::catalog::Status::Succeeded => c.entity_id.clone(),
                Some(i) => i.clone(),
                None if cs.status == crate::catalog::Status::Succeeded && cs.intent == "APPLY" => {
                    c.entity_id.clone()
                }
                None => String::new(),
            };
            let mut entity = json!({"Type": c.entity_type});
            if !identifier.is_empty() {
                entity["Identifier"] = json!(identifier);
            }
            m.insert("Entity".into(), entity);
            m.insert("Details".into(), json!(c.details.to_string()));
            m.insert("DetailsDocument".into(), c.details.clone());
            m.insert("ErrorDetailList".into(), json!(c.errors));
            if let Some(n) = &c.change_name {
                m.insert("ChangeName".into(), json!(n));
            }
            Value::Object(m)
        })
        .collect();
    let mut out = json!({
        "ChangeSetId": cs.id, "ChangeSetArn": cs.arn(), "ChangeSetName": cs.name, "Intent": cs.intent,
        "StartTime": timestamp(cs.start_ms), "Status": cs.status.as_str(), "ChangeSet": changes,
    });
    if let Some(e) = cs.end_ms {
        out["EndTime"] = json!(timestamp(e));
    }
    if let Some(f) = &cs.failure_code {
        out["FailureCode"] = json!(f);
    }
    if let Some(f) = &cs.failure_description {
        out["FailureDescription"] = json!(f);
    }
    out
}

/// One `ChangeSetSummaryListItem` of ListChangeSets.
#[must_use]
pub fn change_set_summary(cs: &ChangeSet) -> Value {
    let mut out = json!({
        "ChangeSetId": cs.id, "ChangeSetArn": cs.arn(), "ChangeSetName": cs.name,
        "StartTime": timestamp(cs.start_ms), "Status": cs.status.as_str(), "EntityIdList": cs.entity_ids,
    });
    if let Some(e) = cs.end_ms {
        out["EndTime"] = json!(timestamp(e));
    }
    if let Some(f) = &cs.failure_code {
        out["FailureCode"] = json!(f);
    }
    out
}
