//! The Marketplace Catalog API operations (`marketplace-catalog`, 2018-09-17) for
//! `AmiProduct@1.0` and `Offer@1.0`: change sets, entities, tags and resource policies.
//!
//! Inputs arrive as JSON (body members and query parameters merged by the protocol layer);
//! answers are JSON values; failures are `CatalogError`, the model's error shapes.
//!
//! Depends on: catalog, store (documents), world.

use std::collections::BTreeMap;

use serde_json::{json, Value};

mod listing;
pub mod render;

pub use listing::{list_change_sets, list_entities};

use super::{Caller, Ctx};
use crate::catalog::changes::{self, AMI_PRODUCT, OFFER};
use crate::catalog::{self, kind, Change, ChangeSet, Entity, Status, Tag};
use crate::store::{Doc, DocWrite, StoreError};

/// A Catalog API failure: the variant is the model's error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(clippy::enum_variant_names)]
pub enum CatalogError {
    /// 422.
    #[error("{0}")]
    ValidationException(String),
    /// 404.
    #[error("{0}")]
    ResourceNotFoundException(String),
    /// 423.
    #[error("{0}")]
    ResourceInUseException(String),
    /// 402.
    #[error("{0}")]
    ServiceQuotaExceededException(String),
    /// 403.
    #[error("{0}")]
    AccessDeniedException(String),
    /// 415.
    #[error("{0}")]
    ResourceNotSupportedException(String),
    /// 429.
    #[error("{0}")]
    ThrottlingException(String),
    /// 500.
    #[error("{0}")]
    InternalServiceException(String),
}

impl CatalogError {
    /// Every shape the model names, with its status.
    pub const SHAPES: [(&'static str, u16); 8] = [
        ("ValidationException", 422),
        ("ResourceNotFoundException", 404),
        ("ResourceInUseException", 423),
        ("ServiceQuotaExceededException", 402),
        ("AccessDeniedException", 403),
        ("ResourceNotSupportedException", 415),
        ("ThrottlingException", 429),
        ("InternalServiceException", 500),
    ];

    /// The shape name (`X-Amzn-ErrorType`).
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        Self::SHAPES[self.index()].0
    }

    /// The HTTP status the model gives the shape.
    #[must_use]
    pub fn status(&self) -> u16 {
        Self::SHAPES[self.index()].1
    }

    fn index(&self) -> usize {
        match self {
            CatalogError::ValidationException(_) => 0,
            CatalogError::ResourceNotFoundException(_) => 1,
            CatalogError::ResourceInUseException(_) => 2,
            CatalogError::ServiceQuotaExceededException(_) => 3,
            CatalogError::AccessDeniedException(_) => 4,
            CatalogError::ResourceNotSupportedException(_) => 5,
            CatalogError::ThrottlingException(_) => 6,
            CatalogError::InternalServiceException(_) => 7,
        }
    }

    /// The error whose shape is `name` (for injected faults).
    #[must_use]
    pub fn from_type_name(name: &str, message: String) -> Option<Self> {
        let i = Self::SHAPES.iter().position(|(n, _)| *n == name)?;
        Some(match i {
            0 => CatalogError::ValidationException(message),
            1 => CatalogError::ResourceNotFoundException(message),
            2 => CatalogError::ResourceInUseException(message),
            3 => CatalogError::ServiceQuotaExceededException(message),
            4 => CatalogError::AccessDeniedException(message),
            5 => CatalogError::ResourceNotSupportedException(message),
            6 => CatalogError::ThrottlingException(message),
            _ => CatalogError::InternalServiceException(message),
        })
    }
}

impl From<StoreError> for CatalogError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        CatalogError::InternalServiceException(
            "An internal error occurred. Please retry your request.".into(),
        )
    }
}

fn invalid(m: impl Into<String>) -> CatalogError {
    CatalogError::ValidationException(m.into())
}

/// The counter of an account's open change sets (its quota, `--max-open-change-sets`).
fn count_open(owner: &str, delta: i64, max: i64) -> DocWrite {
    DocWrite::Count {
        kind: kind::OPEN_COUNT.into(),
        id: owner.into(),
        owner: owner.into(),
        delta,
        max,
    }
}

fn check_catalog(input: &Value) -> Result<(), CatalogError> {
    match input.get("Catalog").and_then(Value::as_str) {
        Some(catalog::CATALOG) => Ok(()),
        Some(other) => Err(invalid(format!("Catalog '{other}' is not valid. The only catalog is AWSMarketplace."))),
        None => Err(invalid("1 validation error detected: Value null at 'catalog' failed to satisfy constraint: Member must not be null")),
    }
}

fn str_member<'a>(input: &'a Value, name: &str, field: &str) -> Result<&'a str, CatalogError> {
    input
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null")))
}

/// An entity by id: the stored one, else a world product not yet changed through the API.
///
/// # Errors
/// The store failed.
pub async fn load_entity(
    ctx: &Ctx,
    id: &str,
) -> Result<Option<(Entity, Option<u64>)>, CatalogError> {
    if let Some(d) = ctx.store.get_doc(kind::ENTITY, id).await? {
        let e: Entity = serde_json::from_str(&d.body)
            .map_err(|e| CatalogError::from(StoreError::Corrupt(e.to_string())))?;
        return Ok(Some((e, Some(d.version))));
    }
    let world = ctx.world();
    Ok(world
        .product(id)
        .map(|w| (Entity::AmiProduct(catalog::from_world_product(w, 0)), None)))
}

/// The catalog's view of a fulfillment option for StartBuild and the build worker: the product
/// as changed through the Catalog API, or `None` when the world's own product stands.
///
/// # Errors
/// The store failed.
pub async fn option_product(
    ctx: &Ctx,
    fo: &str,
) -> Result<Option<crate::world::Product>, StoreError> {
    let Some(link) = ctx.store.get_doc(kind::OPTION, fo).await? else {
        let world = ctx.world();
        let Some((p, _)) = world.fulfillment_option(fo) else {
            return Ok(None);
        };
        // A world product the API changed (its options are then all linked, so this one was
        // removed by nothing: the world's facts stand unless the product document exists).
        return match ctx.store.get_doc(kind::ENTITY, &p.product_id).await? {
            Some(d) => decode_product(&d).map(|p| Some(catalog::as_world_product(&p, &world))),
            None => Ok(None),
        };
    };
    let Some(d) = ctx.store.get_doc(kind::ENTITY, &link.body).await? else {
        return Ok(None);
    };
    decode_product(&d).map(|p| Some(catalog::as_world_product(&p, &ctx.world())))
}

/// The world as builds of `fos` must see it: the Catalog API's version of each product they
/// name replaces the world's (a clone only when there is one).
///
/// # Errors
/// The store failed.
pub async fn world_for(
    ctx: &Ctx,
    fos: &[String],
) -> Result<std::sync::Arc<crate::world::World>, StoreError> {
    world_for_caller(ctx, fos, None).await
}

/// As `world_for`, and `account` counts as an existing subscriber of each Catalog product it
/// has built before (a Succeeded build), as a buyer who subscribed would.
///
/// # Errors
/// The store failed.
pub async fn world_for_caller(
    ctx: &Ctx,
    fos: &[String],
    account: Option<(&str, &str)>,
) -> Result<std::sync::Arc<crate::world::World>, StoreError> {
    let world = ctx.world();
    let mut overlay: Vec<crate::world::Product> = Vec::new();
    for fo in fos {
        if let Some(p) = option_product(ctx, fo).await? {
            if !overlay.iter().any(|o| o.product_id == p.product_id) {
                overlay.push(p);
            }
        }
    }
    if overlay.is_empty() {
        return Ok(world);
    }
    let mut w = (*world).clone();
    for p in overlay {
        if let Some((acct, region)) = account {
            let q = crate::store::BuildQuery {
                account: acct.into(),
                region: region.into(),
                statuses: Some(vec![crate::domain::BuildStatus::Succeeded]),
                product_ids: Some(vec![p.product_id.clone()]),
                ..Default::default()
            };
            if !ctx.store.list_builds(&q, None, 1).await?.builds.is_empty() {
                w.subscriptions.push(crate::world::Subscription {
                    account_id: acct.into(),
                    product_id: p.product_id.clone(),
                });
            }
        }
        w.products.retain(|x| x.product_id != p.product_id);
        w.products.push(p);
    }
    Ok(std::sync::Arc::new(w))
}

/// True when `id` is an AMI delivery option of a product `account` can see (launched by buyers,
/// never installed by StartBuild).
///
/// # Errors
/// The store failed.
pub async fn is_launch_option(ctx: &Ctx, id: &str, account: &str) -> Result<bool, StoreError> {
    let Some(link) = ctx.store.get_doc(kind::OPTION, id).await? else {
        return Ok(false);
    };
    let Some(d) = ctx.store.get_doc(kind::ENTITY, &link.body).await? else {
        return Ok(false);
    };
    let p = decode_product(&d)?;
    let visible = p.owner == account
        || p.visibility == catalog::Visibility::Public
        || (p.visibility == catalog::Visibility::Limited
            && p.buyer_accounts.iter().any(|a| a == account));
    Ok(visible
        && p.option(id)
            .is_some_and(|(_, o)| o.kind == "AmazonMachineImage"))
}

fn decode_product(d: &Doc) -> Result<catalog::Product, StoreError> {
    match serde_json::from_str::<Entity>(&d.body) {
        Ok(Entity::AmiProduct(p)) => Ok(p),
        Ok(Entity::Offer(_)) => Err(StoreError::Corrupt(format!("{} is not a product", d.id))),
        Err(e) => Err(StoreError::Corrupt(e.to_string())),
    }
}

/// A parsed, shape-checked change of a StartChangeSet request.
struct Submitted {
    change: Change,
    revision: Option<u64>,
    reference: Option<String>,
}

/// `Details` (JSON object text) or `DetailsDocument`, never both; neither is `{}`.
fn details_of(c: &Value, at: &dyn Fn(&str) -> CatalogError) -> Result<Value, CatalogError> {
    Ok(match (c.get("Details"), c.get("DetailsDocument")) {
        (Some(_), Some(_)) => return Err(at("Details: Use either Details or DetailsDocument, but not both.")),
        (Some(Value::String(s)), None) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(at("Details: The input for this change type could not be read. Submit a properly formatted input: Details must be a JSON object.")),
        },
        (Some(_), None) => return Err(at("Details: expected a string")),
        (None, Some(d)) => d.clone(),
        (None, None) => json!({}),
    })
}

/// Which entity a change names: an id (with an optional `@revision`) or a `$Name` reference.
struct Target {
    entity_id: String,
    revision: Option<u64>,
    reference: Option<String>,
}

fn target_of(
    identifier: Option<&str>,
    change_type: &str,
    at: &dyn Fn(&str) -> CatalogError,
) -> Result<Target, CatalogError> {
    let mut t = Target {
        entity_id: String::new(),
        revision: None,
        reference: None,
    };
    if let Some(ident) = identifier {
        if changes::creates(change_type) {
            return Err(at(&format!(
                "Entity.Identifier: {change_type} creates a new entity and takes no Identifier."
            )));
        }
        if let Some(r) = ident.strip_prefix('$') {
            let target = r.strip_suffix(".Entity.Identifier").ok_or_else(|| at(&format!("Entity.Identifier: '{ident}' is not a reference of the form $ChangeName.Entity.Identifier")))?;
            t.reference = Some(target.to_string());
        } else {
            let (id, rev) = match ident.split_once('@') {
                Some((id, rev)) => (
                    id,
                    Some(rev.parse::<u64>().map_err(|_| {
                        at(&format!(
                            "Entity.Identifier: '{ident}' has an invalid revision"
                        ))
                    })?),
                ),
                None => (ident, None),
            };
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(at(&format!(
                    "Entity.Identifier: '{ident}' is not a valid entity identifier"
                )));
            }
            t.entity_id = id.to_string();
            t.revision = rev;
        }
    } else if !changes::creates(change_type) {
        return Err(at("Entity.Identifier: Member must not be null"));
    }
    Ok(t)
}

fn parse_change(i: usize, c: &Value) -> Result<Submitted, CatalogError> {
    let at = |m: &str| invalid(format!("ChangeSet[{i}].{m}"));
    let change_type = c
        .get("ChangeType")
        .and_then(Value::as_str)
        .ok_or_else(|| at("ChangeType: Member must not be null"))?;
    let entity = c
        .get("Entity")
        .ok_or_else(|| at("Entity: Member must not be null"))?;
    let entity_type = entity
        .get("Type")
        .and_then(Value::as_str)
        .ok_or_else(|| at("Entity.Type: Member must not be null"))?;
    if entity_type != AMI_PRODUCT && entity_type != OFFER {
        return Err(at(&format!("Entity.Type: Unsupported entity type '{entity_type}'. Supported types: AmiProduct@1.0, Offer@1.0.")));
    }
    if !changes::known(entity_type, change_type) {
        return Err(at(&format!(
            "ChangeType: Unsupported change type '{change_type}' for entity type '{entity_type}'."
        )));
    }
    let details = details_of(c, &at)?;
    changes::check_shape(entity_type, change_type, &details)
        .map_err(|m| at(&format!("Details: {change_type}: {m}")))?;
    let name = c
        .get("ChangeName")
        .and_then(Value::as_str)
        .map(str::to_string);
    if name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 72) {
        return Err(at("ChangeName: Member must have length between 1 and 72"));
    }
    let identifier = entity
        .get("Identifier")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Target {
        entity_id,
        revision,
        reference,
    } = target_of(identifier.as_deref(), change_type, &at)?;
    let entity_tags = parse_tags(c.get("EntityTags"), &format!("ChangeSet[{i}].EntityTags"))?;
    Ok(Submitted {
        change: Change {
            change_type: change_type.into(),
            entity_type: entity_type.into(),
            identifier,
            entity_id,
            change_name: name,
            details,
            entity_tags,
            errors: Vec::new(),
            pending: catalog::Pending::default(),
        },
        revision,
        reference,
    })
}

fn parse_tags(v: Option<&Value>, field: &str) -> Result<Vec<Tag>, CatalogError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let tags: Vec<Tag> =
        serde_json::from_value(v.clone()).map_err(|e| invalid(format!("{field}: {e}")))?;
    if tags.is_empty() || tags.len() > 200 {
        return Err(invalid(format!(
            "{field}: Member must have length between 1 and 200"
        )));
    }
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256)
    {
        return Err(invalid(format!(
            "{field}: tag '{}' must have a key of 1-128 and a value of 0-256 characters",
            t.key
        )));
    }
    Ok(tags)
}

/// A new id from the harness's id sequence (seeded runs repeat), hashed so that ids made in the
/// same millisecond share nothing.
fn new_id(ctx: &Ctx, prefix: &str, n: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(ctx.harness.new_build_id().as_bytes());
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&digest);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed);
    format!("{prefix}{}", catalog::random_alnum(n, &mut rng))
}

/// Substitutes `$Name.Entity.Identifier` inside payloads (CreateOffer's ProductId, …).
fn substitute(v: &mut Value, names: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s
                .strip_prefix('$')
                .and_then(|r| r.strip_suffix(".Entity.Identifier"))
                .and_then(|n| names.get(n))
            {
                *s = id.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, names)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, names)),
        _ => {}
    }
}

fn hash_request(input: &Value) -> String {
    let mut v = input.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("ClientRequestToken");
    }
    super::paging::query_hash(&v)
}

/// The members of a StartChangeSet request beside its changes.
struct Header {
    intent: String,
    name: String,
    token: Option<String>,
    tags: Vec<Tag>,
}

fn parse_header(input: &Value, caller: &Caller) -> Result<Header, CatalogError> {
    let intent = input
        .get("Intent")
        .and_then(Value::as_str)
        .unwrap_or("APPLY");
    if intent != "APPLY" && intent != "VALIDATE" {
        return Err(invalid(format!("1 validation error detected: Value '{intent}' at 'intent' failed to satisfy constraint: Member must satisfy enum value set: [VALIDATE, APPLY]")));
    }
    let name = match input.get("ChangeSetName").and_then(Value::as_str) {
        Some(n) if n.is_empty() || n.len() > 100 => {
            return Err(invalid(
                "ChangeSetName: Member must have length between 1 and 100",
            ))
        }
        Some(n) => n.to_string(),
        None => format!("Submitted by {}", caller.account),
    };
    let token = input
        .get("ClientRequestToken")
        .and_then(Value::as_str)
        .map(str::to_string);
    if token.as_ref().is_some_and(|t| {
        t.is_empty() || t.len() > 64 || !t.bytes().all(|b| (b'!'..=b'~').contains(&b))
    }) {
        return Err(invalid(
            "ClientRequestToken: Member must have length between 1 and 64 and match ^[!-~]+$",
        ));
    }
    let tags = parse_tags(input.get("ChangeSetTags"), "ChangeSetTags")?;
    Ok(Header {
        intent: intent.into(),
        name,
        token,
        tags,
    })
}

/// Each id once, in first-seen order.
fn unique(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// StartChangeSet: checks shapes, resolves references, and queues the set with its locks.
///
/// # Errors
/// The model's StartChangeSet errors.
pub async fn start_change_set(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<Value, CatalogError> {
    check_catalog(&input)?;
    let raw = input.get("ChangeSet").and_then(Value::as_array).ok_or_else(|| invalid("1 validation error detected: Value null at 'changeSet' failed to satisfy constraint: Member must not be null"))?;
    if raw.is_empty() || raw.len() > 20 {
        return Err(invalid(format!("1 validation error detected: Value at 'changeSet' failed to satisfy constraint: Member must have length less than or equal to 20 and greater than or equal to 1 (got {})", raw.len())));
    }
    let header = parse_header(&input, caller)?;
    let hash = hash_request(&input);
    if let Some(t) = &header.token {
        if let Some(answer) = replay(ctx, caller, t, &hash).await? {
            return Ok(answer);
        }
    }
    let mut subs = raw
        .iter()
        .enumerate()
        .map(|(i, c)| parse_change(i, c))
        .collect::<Result<Vec<_>, _>>()?;
    resolve_entities(ctx, caller, &mut subs).await?;
    let now = ctx.clock.now_ms();
    let entity_ids = unique(subs.iter().map(|s| s.change.entity_id.clone()));
    let locked = unique(
        subs.iter()
            .filter(|s| !changes::creates(&s.change.change_type))
            .map(|s| s.change.entity_id.clone()),
    );
    let cs = ChangeSet {
        id: new_id(ctx, "", 25),
        owner: caller.account.clone(),
        name: header.name.clone(),
        intent: header.intent.clone(),
        status: Status::Preparing,
        start_ms: now,
        end_ms: None,
        failure_code: None,
        failure_description: None,
        changes: subs.into_iter().map(|s| s.change).collect(),
        entity_ids,
        locked,
        client_token: header.token.clone(),
        review: None,
    };
    let writes = start_writes(ctx, caller, &cs, &header, &hash, now);
    match ctx.store.write_docs(&writes).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(conflict(ctx, caller, header.token.as_deref(), &hash, &cs.locked).await)
        }
        Err(e) => return Err(e.into()),
    }
    ctx.worker.wake();
    ctx.metrics
        .transition(kind::CHANGE_SET, "new", Status::Preparing.as_str());
    tracing::info!(change_set = %cs.id, account = %caller.account, "change set started");
    Ok(json!({"ChangeSetId": cs.id, "ChangeSetArn": cs.arn()}))
}

/// One transaction starts a set: the set (due for its first step), its count against the
/// quota, a lock per entity it changes, its token and its tags.
fn start_writes(
    ctx: &Ctx,
    caller: &Caller,
    cs: &ChangeSet,
    header: &Header,
    hash: &str,
    now: i64,
) -> Vec<DocWrite> {
    let set_doc = Doc::new(
        kind::CHANGE_SET,
        &cs.id,
        &caller.account,
        Some(ctx.harness.due_change_set(&ctx.config, now)),
        json!({"ChangeSet": cs, "BaseUrl": caller.base_url}).to_string(),
    )
    .sorted(change_set_sort(cs));
    let quota = i64::from(ctx.config.max_open_change_sets);
    let mut writes = vec![
        DocWrite::Put {
            doc: set_doc,
            expected: None,
        },
        count_open(&caller.account, 1, quota),
    ];
    for id in &cs.locked {
        writes.push(put_new(kind::LOCK, id, &caller.account, None, &cs.id));
    }
    if let Some(t) = &header.token {
        let body = json!({"Hash": hash, "ChangeSetId": cs.id}).to_string();
        writes.push(put_new(
            kind::TOKEN,
            &token_key(caller, t),
            &caller.account,
            None,
            &body,
        ));
    }
    if !header.tags.is_empty() {
        let body = serde_json::to_string(&header.tags).unwrap_or_default();
        writes.push(put_new(kind::TAGS, &cs.arn(), &caller.account, None, &body));
    }
    writes
}

fn put_new(kind: &str, id: &str, owner: &str, due_ms: Option<i64>, body: &str) -> DocWrite {
    DocWrite::Put {
        doc: Doc::new(kind, id, owner, due_ms, body.into()),
        expected: None,
    }
}

/// An entity's place in its seller's listing: newest change last (`page_docs` reads backwards).
#[must_use]
pub fn entity_sort(e: &Entity) -> String {
    format!("{:013}#{}", e.modified_ms(), e.id())
}

/// A change set's place in its owner's listing: by start time.
#[must_use]
pub fn change_set_sort(cs: &ChangeSet) -> String {
    format!("{:013}#{}", cs.start_ms, cs.id)
}

fn token_key(caller: &Caller, token: &str) -> String {
    format!("{}#{token}", caller.account)
}

async fn replay(
    ctx: &Ctx,
    caller: &Caller,
    token: &str,
    hash: &str,
) -> Result<Option<Value>, CatalogError> {
    let Some(d) = ctx
        .store
        .get_doc(kind::TOKEN, &token_key(caller, token))
        .await?
    else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&d.body).unwrap_or_default();
    if v["Hash"].as_str() != Some(hash) {
        return Err(invalid(format!("The ClientRequestToken '{token}' was used with different request parameters. Use a new token or repeat the original request.")));
    }
    let id = v["ChangeSetId"].as_str().unwrap_or_default();
    Ok(Some(
        json!({"ChangeSetId": id, "ChangeSetArn": catalog::change_set_arn(&caller.account, id)}),
    ))
}

/// Why a StartChangeSet transaction lost: a concurrent set took a lock, or the same token won.
async fn conflict(
    ctx: &Ctx,
    caller: &Caller,
    token: Option<&str>,
    hash: &str,
    locked: &[String],
) -> CatalogError {
    if let Some(t) = token {
        match replay(ctx, caller, t, hash).await {
            Ok(Some(_)) => {
                return CatalogError::ResourceInUseException(
                    "A change set with the same ClientRequestToken is being created; retry.".into(),
                )
            }
            Err(e) => return e,
            Ok(None) => {}
        }
    }
    for id in locked {
        if let Ok(Some(lock)) = ctx.store.get_doc(kind::LOCK, id).await {
            return locked_error(id, &lock.body);
        }
    }
    let open = ctx.store.get_doc(kind::OPEN_COUNT, &caller.account).await;
    let quota = u64::from(ctx.config.max_open_change_sets);
    if open.ok().flatten().is_some_and(|d| d.version >= quota) {
        return CatalogError::ServiceQuotaExceededException(
            "The maximum number of open requests per account has been exceeded.".into(),
        );
    }
    CatalogError::ResourceInUseException(
        "The request conflicted with another request; retry.".into(),
    )
}

fn locked_error(entity: &str, change_set: &str) -> CatalogError {
    CatalogError::ResourceInUseException(format!(
        "Requested change set has entities locked by change sets - entity: '{entity}'  change sets: {change_set}"
    ))
}

/// Resolves `$Name` references, assigns new entities their ids, checks existence, ownership,
/// revisions, locks and duplicates.
async fn resolve_entities(
    ctx: &Ctx,
    caller: &Caller,
    subs: &mut [Submitted],
) -> Result<(), CatalogError> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for s in subs.iter_mut() {
        if changes::creates(&s.change.change_type) {
            s.change.entity_id = if s.change.entity_type == AMI_PRODUCT {
                new_id(ctx, "prod-", 13)
            } else {
                new_id(ctx, "offer-", 13)
            };
        }
        if let Some(n) = &s.change.change_name {
            if names
                .insert(n.clone(), s.change.entity_id.clone())
                .is_some()
            {
                return Err(invalid(format!(
                    "ChangeName '{n}' is used by more than one change."
                )));
            }
        }
    }
    for (i, s) in subs.iter_mut().enumerate() {
        if let Some(r) = &s.reference {
            let id = names.get(r).filter(|id| !id.is_empty()).ok_or_else(|| invalid(format!("ChangeSet[{i}].Entity.Identifier: the reference ${r}.Entity.Identifier names no change of this change set.")))?;
            s.change.entity_id = id.clone();
        }
        substitute(&mut s.change.details, &names);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in subs.iter().enumerate() {
        if !seen.insert((s.change.entity_id.clone(), s.change.change_type.clone())) {
            return Err(invalid(format!("ChangeSet[{i}]: the change type {} appears more than once for entity {}. A change set can hold each change type once per entity.", s.change.change_type, s.change.entity_id)));
        }
        if changes::creates(&s.change.change_type) || s.reference.is_some() {
            continue;
        }
        let Some((e, _)) = load_entity(ctx, &s.change.entity_id)
            .await?
            .filter(|(e, _)| e.owner() == caller.account)
        else {
            return Err(CatalogError::ResourceNotFoundException(format!(
                "ChangeSet[{i}].Entity.Identifier: The entity '{}' was not found.",
                s.change.entity_id
            )));
        };
        let matches_type = matches!(
            (&e, s.change.entity_type.as_str()),
            (Entity::AmiProduct(_), AMI_PRODUCT) | (Entity::Offer(_), OFFER)
        );
        if !matches_type {
            return Err(invalid(format!(
                "ChangeSet[{i}].Entity.Type: entity '{}' is not of type {}.",
                s.change.entity_id, s.change.entity_type
            )));
        }
        if let Some(rev) = s.revision.filter(|r| *r != e.revision()) {
            return Err(invalid(format!("ChangeSet[{i}].Entity.Identifier: The revision {rev} of entity {} is not the latest. Use the latest RevisionId: {}@{}", e.id(), e.id(), e.revision())));
        }
        if let Some(lock) = ctx.store.get_doc(kind::LOCK, &s.change.entity_id).await? {
            return Err(locked_error(&s.change.entity_id, &lock.body));
        }
        if s.change.change_type == "UpdateVisibility" {
            if let Some(rep) = s
                .change
                .details
                .get("ReplacementProductId")
                .and_then(Value::as_str)
            {
                let ok = load_entity(ctx, rep).await?.is_some_and(|(r, _)| r.owner() == caller.account && matches!(&r, Entity::AmiProduct(p) if matches!(p.visibility, catalog::Visibility::Limited | catalog::Visibility::Public)));
                if !ok {
                    return Err(invalid(format!("ChangeSet[{i}].Details.ReplacementProductId: '{rep}' is not one of your Limited or Public products.")));
                }
            }
        }
    }
    Ok(())
}

async fn own_change_set(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
) -> Result<(Doc, ChangeSet), CatalogError> {
    let not_found =
        || CatalogError::ResourceNotFoundException(format!("Change set '{id}' not found."));
    let doc = ctx
        .store
        .get_doc(kind::CHANGE_SET, id)
        .await?
        .filter(|d| d.owner == caller.account)
        .ok_or_else(not_found)?;
    let cs = decode_change_set(&doc)?;
    let sixty_days = 60 * 24 * 3600 * 1000;
    if cs
        .end_ms
        .is_some_and(|e| ctx.clock.now_ms() - e > sixty_days)
    {
        return Err(not_found());
    }
    Ok((doc, cs))
}

/// Decodes a stored change set.
///
/// # Errors
/// The document is corrupt.
pub fn decode_change_set(doc: &Doc) -> Result<ChangeSet, StoreError> {
    let v: Value =
        serde_json::from_str(&doc.body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    serde_json::from_value(v["ChangeSet"].clone()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// DescribeChangeSet.
///
/// # Errors
/// The model's DescribeChangeSet errors.
pub async fn describe_change_set(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<Value, CatalogError> {
    check_catalog(&input)?;
    let id = str_member(&input, "ChangeSetId", "changeSetId")?;
    let (_, cs) = own_change_set(ctx, caller, id).await?;
    Ok(render::describe_change_set(&cs))
}

/// CancelChangeSet: only while PREPARING.
///
/// # Errors
/// The model's CancelChangeSet errors.
pub async fn cancel_change_set(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<Value, CatalogError> {
    check_catalog(&input)?;
    let id = str_member(&input, "ChangeSetId", "changeSetId")?;
    let (doc, mut cs) = own_change_set(ctx, caller, id).await?;
    if cs.status != Status::Preparing {
        return Err(CatalogError::ResourceInUseException(format!("Change set {id} cannot be cancelled in status {}: only a PREPARING change set can be cancelled.", cs.status.as_str())));
    }
    cs.status = Status::Cancelled;
    cs.end_ms = Some(ctx.clock.now_ms());
    let writes = finish_writes(ctx, &doc, &cs).await?;
    match ctx.store.write_docs(&writes).await {
        Ok(()) => {
            ctx.metrics.transition(
                kind::CHANGE_SET,
                Status::Preparing.as_str(),
                Status::Cancelled.as_str(),
            );
            Ok(json!({"ChangeSetId": cs.id, "ChangeSetArn": cs.arn()}))
        }
        Err(StoreError::ConditionFailed) => Err(CatalogError::ResourceInUseException(format!(
            "Change set {id} changed status while it was being cancelled; describe it and retry."
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The writes that end a change set: the set itself (no longer due) and its locks released.
///
/// # Errors
/// The store failed.
pub async fn finish_writes(
    ctx: &Ctx,
    doc: &Doc,
    cs: &ChangeSet,
) -> Result<Vec<DocWrite>, StoreError> {
    let base: Value = serde_json::from_str(&doc.body).unwrap_or_default();
    let body = json!({"ChangeSet": cs, "BaseUrl": base["BaseUrl"]}).to_string();
    let mut writes = vec![DocWrite::Put {
        doc: Doc {
            version: doc.version + 1,
            due_ms: None,
            body,
            ..doc.clone()
        },
        expected: Some(doc.version),
    }];
    // Every set counted itself open when it was started, in the same transaction.
    writes.push(count_open(&cs.owner, -1, i64::MAX));
    for id in &cs.locked {
        if let Some(lock) = ctx
            .store
            .get_doc(kind::LOCK, id)
            .await?
            .filter(|l| l.body == cs.id)
        {
            writes.push(DocWrite::Delete {
                kind: kind::LOCK.into(),
                id: id.clone(),
                expected: lock.version,
            });
        }
    }
    Ok(writes)
}

/// DescribeEntity.
///
/// # Errors
/// The model's DescribeEntity errors.
pub async fn describe_entity(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<String, CatalogError> {
    check_catalog(&input)?;
    let id = str_member(&input, "EntityId", "entityId")?;
    check_entity_id(id)?;
    // Entities the API wrote were rendered then: their bytes are the answer.
    if let Some(d) = ctx.store.get_doc(kind::RENDERED, id).await? {
        if d.owner == caller.account {
            return Ok(d.body);
        }
        return Err(entity_not_found(id));
    }
    let e = entity_of(ctx, caller, id).await?;
    let ty = if matches!(e, Entity::AmiProduct(_)) {
        AMI_PRODUCT
    } else {
        OFFER
    };
    Ok(render::describe_entity(&e, ty).to_string())
}

fn entity_not_found(id: &str) -> CatalogError {
    CatalogError::ResourceNotFoundException(format!("Entity {id} not found."))
}

fn check_entity_id(id: &str) -> Result<(), CatalogError> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!("1 validation error detected: Value '{id}' at 'entityId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w\\-]+$")));
    }
    Ok(())
}

async fn entity_of(ctx: &Ctx, caller: &Caller, id: &str) -> Result<Entity, CatalogError> {
    check_entity_id(id)?;
    load_entity(ctx, id)
        .await?
        .map(|(e, _)| e)
        .filter(|e| e.owner() == caller.account)
        .ok_or_else(|| CatalogError::ResourceNotFoundException(format!("Entity {id} not found.")))
}

/// BatchDescribeEntities: per-entity errors, never an HTTP error for one entity.
///
/// # Errors
/// The model's BatchDescribeEntities errors.
pub async fn batch_describe_entities(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<Value, CatalogError> {
    let list = input.get("EntityRequestList").and_then(Value::as_array).ok_or_else(|| invalid("1 validation error detected: Value null at 'entityRequestList' failed to satisfy constraint: Member must not be null"))?;
    if list.is_empty() || list.len() > 20 {
        return Err(invalid(
            "EntityRequestList: Member must have length between 1 and 20",
        ));
    }
    let (mut details, mut errors) = (serde_json::Map::new(), serde_json::Map::new());
    for r in list {
        let id = r
            .get("EntityId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if r.get("Catalog").and_then(Value::as_str) != Some(catalog::CATALOG) {
            errors.insert(id, json!({"ErrorCode": "ValidationException", "ErrorMessage": "Catalog must be AWSMarketplace."}));
            continue;
        }
        match entity_of(ctx, caller, &id).await {
            Ok(e) => {
                let d = render::describe_entity(
                    &e,
                    if matches!(e, Entity::AmiProduct(_)) {
                        AMI_PRODUCT
                    } else {
                        OFFER
                    },
                );
                details.insert(id, json!({"EntityType": d["EntityType"], "EntityArn": d["EntityArn"], "EntityIdentifier": d["EntityIdentifier"], "LastModifiedDate": d["LastModifiedDate"], "DetailsDocument": d["DetailsDocument"]}));
            }
            Err(CatalogError::InternalServiceException(m)) => {
                return Err(CatalogError::InternalServiceException(m))
            }
            Err(e) => {
                errors.insert(
                    id,
                    json!({"ErrorCode": e.type_name(), "ErrorMessage": e.to_string()}),
                );
            }
        }
    }
    Ok(json!({"EntityDetails": details, "Errors": errors}))
}

/// The owner of a taggable resource ARN (a change set or an entity of the caller).
async fn resource_of(ctx: &Ctx, caller: &Caller, arn: &str) -> Result<(), CatalogError> {
    let not_found =
        || CatalogError::ResourceNotFoundException(format!("Resource {arn} not found."));
    let prefix = format!(
        "arn:aws:aws-marketplace:{}:{}:{}/",
        catalog::CATALOG_REGION,
        caller.account,
        catalog::CATALOG
    );
    let Some(rest) = arn.strip_prefix(&prefix) else {
        if arn.starts_with("arn:") && arn.contains(":aws-marketplace:") {
            return Err(not_found());
        }
        return Err(invalid(format!("ResourceArn '{arn}' is not a valid ARN.")));
    };
    match rest.split_once('/') {
        Some(("ChangeSet", id)) => own_change_set(ctx, caller, id)
            .await
            .map(|_| ())
            .map_err(|_| not_found()),
        Some(("AmiProduct" | "Offer", id)) => entity_of(ctx, caller, id)
            .await
            .map(|_| ())
            .map_err(|_| not_found()),
        _ => Err(not_found()),
    }
}

/// The `ResourceArn` of a tagging or policy request (a resource of the caller) and its `kind`
/// document, if it has one.
async fn resource_doc(
    ctx: &Ctx,
    caller: &Caller,
    input: &Value,
    kind: &str,
) -> Result<(String, Option<Doc>), CatalogError> {
    let arn = str_member(input, "ResourceArn", "resourceArn")?.to_string();
    resource_of(ctx, caller, &arn).await?;
    let doc = ctx.store.get_doc(kind, &arn).await?;
    Ok((arn, doc))
}

/// TagResource, UntagResource, ListTagsForResource.
///
/// # Errors
/// The model's tagging errors.
pub async fn tags(
    ctx: &Ctx,
    caller: &Caller,
    op: &str,
    input: Value,
) -> Result<Value, CatalogError> {
    let (arn, doc) = resource_doc(ctx, caller, &input, kind::TAGS).await?;
    let mut current: Vec<Tag> = doc
        .as_ref()
        .and_then(|d| serde_json::from_str(&d.body).ok())
        .unwrap_or_default();
    match op {
        "ListTagsForResource" => return Ok(json!({"ResourceArn": arn, "Tags": current})),
        "TagResource" => {
            for t in parse_tags(input.get("Tags"), "Tags")? {
                current.retain(|c| c.key != t.key);
                current.push(t);
            }
            if current.len() > 200 {
                return Err(invalid("A resource can have at most 200 tags."));
            }
        }
        _ => {
            let keys: Vec<String> = input
                .get("TagKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect();
            if keys.is_empty() || keys.len() > 200 {
                return Err(invalid(
                    "TagKeys: Member must have length between 1 and 200",
                ));
            }
            current.retain(|c| !keys.contains(&c.key));
        }
    }
    let body = serde_json::to_string(&current).unwrap_or_default();
    let write = match doc {
        Some(d) => DocWrite::Put {
            doc: Doc {
                version: d.version + 1,
                body,
                ..d.clone()
            },
            expected: Some(d.version),
        },
        None => put_new(kind::TAGS, &arn, &caller.account, None, &body),
    };
    ctx.store.write_docs(&[write]).await.map_err(|e| match e {
        StoreError::ConditionFailed => {
            CatalogError::ThrottlingException("Concurrent tag updates; retry.".into())
        }
        e => e.into(),
    })?;
    Ok(json!({}))
}

/// PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy.
///
/// # Errors
/// The model's policy errors.
pub async fn policy(
    ctx: &Ctx,
    caller: &Caller,
    op: &str,
    input: Value,
) -> Result<Value, CatalogError> {
    let (arn, doc) = resource_doc(ctx, caller, &input, kind::POLICY).await?;
    match op {
        "GetResourcePolicy" => doc.map(|d| json!({"Policy": d.body})).ok_or_else(|| {
            CatalogError::ResourceNotFoundException(format!(
                "No resource policy is attached to {arn}."
            ))
        }),
        "DeleteResourcePolicy" => {
            let d = doc.ok_or_else(|| {
                CatalogError::ResourceNotFoundException(format!(
                    "No resource policy is attached to {arn}."
                ))
            })?;
            ctx.store
                .write_docs(&[DocWrite::Delete {
                    kind: kind::POLICY.into(),
                    id: arn,
                    expected: d.version,
                }])
                .await?;
            Ok(json!({}))
        }
        _ => {
            let text = str_member(&input, "Policy", "policy")?;
            if text.is_empty()
                || text.len() > 10240
                || !serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object())
            {
                return Err(invalid(
                    "Policy must be a JSON policy document of 1 to 10240 characters.",
                ));
            }
            let write = match doc {
                Some(d) => DocWrite::Put {
                    doc: Doc {
                        version: d.version + 1,
                        body: text.into(),
                        ..d.clone()
                    },
                    expected: Some(d.version),
                },
                None => put_new(kind::POLICY, &arn, &caller.account, None, text),
            };
            ctx.store.write_docs(&[write]).await?;
            Ok(json!({}))
        }
    }
}
