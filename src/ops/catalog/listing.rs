//! ListChangeSets and ListEntities: keyset pages of the store's per-owner index for the
//! default order (newest first, no filters), so a page costs O(page) whatever the seller has;
//! any filter or other order reads the owner's documents and pages the sorted result.
//!
//! Depends on: ops::catalog, store (documents), catalog.

use serde_json::{json, Value};

use super::{check_catalog, decode_change_set, invalid, render, str_member, CatalogError};
use crate::catalog::{self, kind, ChangeSet, Entity};
use crate::ops::{Caller, Ctx};
use crate::store::StoreError;

fn max_results(input: &Value, max: u64, default: usize) -> Result<usize, CatalogError> {
    match input.get("MaxResults") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=max).contains(&n) => Ok(usize::try_from(n).unwrap_or(default)),
            _ => Err(invalid(format!("1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {max} and greater than or equal to 1"))),
        },
    }
}

/// One page of `items` (already filtered and sorted) after the token's position.
fn page<T>(
    ctx: &Ctx,
    caller: &Caller,
    op: &str,
    query: &Value,
    items: Vec<T>,
    input: &Value,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), CatalogError> {
    let hash = crate::ops::paging::query_hash(query);
    let binding = crate::ops::paging::Binding {
        operation: op,
        account: &caller.account,
        region: catalog::CATALOG_REGION,
        query_hash: &hash,
    };
    let now = ctx.clock.now_ms();
    let start = match input.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => crate::ops::paging::decode(&ctx.paging_keys, &binding, t, now)
            .and_then(|c| usize::try_from(c.created_ms).ok())
            .ok_or_else(|| invalid("The NextToken is not valid for this request."))?,
    };
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + out.len() < total).then(|| {
        let cursor = crate::store::Cursor {
            created_ms: i64::try_from(start + out.len()).unwrap_or(i64::MAX),
            build_id: "o".into(),
        };
        crate::ops::paging::encode(&ctx.paging_keys, &binding, &cursor, now)
    });
    Ok((out, next))
}

fn with_token(mut v: Value, key: &str, list: Vec<Value>, next: Option<String>) -> Value {
    v[key] = Value::Array(list);
    if let Some(t) = next {
        v["NextToken"] = json!(t);
    }
    v
}

/// ListChangeSets with its filters, sort and paging.
///
/// # Errors
/// The model's ListChangeSets errors.
pub async fn list_change_sets(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<Value, CatalogError> {
    check_catalog(&input)?;
    let limit = max_results(&input, 20, 20)?;
    if newest_first_unfiltered(&input) {
        return keyset_change_sets(ctx, caller, &input, limit).await;
    }
    let mut sets: Vec<ChangeSet> = ctx
        .store
        .list_docs(kind::CHANGE_SET, &caller.account)
        .await?
        .iter()
        .map(decode_change_set)
        .collect::<Result<_, _>>()?;
    let filters = input
        .get("FilterList")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if filters.len() > 8 {
        return Err(invalid(
            "FilterList: Member must have length less than or equal to 8",
        ));
    }
    filter_change_sets(&mut sets, &filters)?;
    let sort = input.get("Sort").cloned().unwrap_or(json!({}));
    let by_end = match sort.get("SortBy").and_then(Value::as_str) {
        None | Some("StartTime") => false,
        Some("EndTime") => true,
        Some(o) => {
            return Err(invalid(format!(
                "SortBy '{o}' is not supported. Supported: StartTime, EndTime."
            )))
        }
    };
    let ascending = match sort.get("SortOrder").and_then(Value::as_str) {
        None | Some("DESCENDING") => false,
        Some("ASCENDING") => true,
        Some(o) => {
            return Err(invalid(format!(
                "SortOrder '{o}' must be ASCENDING or DESCENDING."
            )))
        }
    };
    sets.sort_by_key(|c| {
        (
            if by_end {
                c.end_ms.unwrap_or(i64::MAX)
            } else {
                c.start_ms
            },
            c.id.clone(),
        )
    });
    if !ascending {
        sets.reverse();
    }
    let query = json!({"FilterList": filters, "Sort": sort});
    let (items, next) = page(ctx, caller, "ListChangeSets", &query, sets, &input, limit)?;
    Ok(with_token(
        json!({}),
        "ChangeSetSummaryList",
        items.iter().map(render::change_set_summary).collect(),
        next,
    ))
}

/// Applies ListChangeSets' `FilterList` (values within a filter OR'ed, filters AND'ed).
fn filter_change_sets(sets: &mut Vec<ChangeSet>, filters: &[Value]) -> Result<(), CatalogError> {
    for f in filters {
        let name = f.get("Name").and_then(Value::as_str).unwrap_or_default();
        let values = values_of(f);
        let one = values.first().cloned().unwrap_or_default();
        let bound = || {
            crate::clock::parse_iso8601_basic(&one.replace(['-', ':'], "")).ok_or_else(|| {
                invalid(format!(
                    "Filter {name}: '{one}' is not a timestamp (YYYY-MM-DDTHH:MM:SSZ)"
                ))
            })
        };
        match name {
            "ChangeSetName" => sets.retain(|c| values.contains(&c.name)),
            "Status" => sets.retain(|c| values.iter().any(|v| v == c.status.as_str())),
            "EntityId" => sets.retain(|c| c.entity_ids.iter().any(|e| values.contains(e))),
            "BeforeStartTime" => { let t = bound()?; sets.retain(|c| c.start_ms <= t) }
            "AfterStartTime" => { let t = bound()?; sets.retain(|c| c.start_ms >= t) }
            "BeforeEndTime" => { let t = bound()?; sets.retain(|c| c.end_ms.is_some_and(|e| e <= t)) }
            "AfterEndTime" => { let t = bound()?; sets.retain(|c| c.end_ms.is_some_and(|e| e >= t)) }
            other => return Err(invalid(format!("Filter name '{other}' is not supported. Supported: ChangeSetName, Status, EntityId, BeforeStartTime, AfterStartTime, BeforeEndTime, AfterEndTime."))),
        }
    }
    Ok(())
}

/// Every entity of the caller: stored ones and world products the API has not changed.
async fn own_entities(ctx: &Ctx, caller: &Caller) -> Result<Vec<Entity>, CatalogError> {
    let stored = ctx.store.list_docs(kind::ENTITY, &caller.account).await?;
    let mut out: Vec<Entity> = stored
        .iter()
        .map(|d| {
            serde_json::from_str(&d.body)
                .map_err(|e| CatalogError::from(StoreError::Corrupt(e.to_string())))
        })
        .collect::<Result<_, _>>()?;
    let world = ctx.world();
    for w in world
        .products
        .iter()
        .filter(|p| p.seller_account_id == caller.account)
    {
        if !stored.iter().any(|d| d.id == w.product_id) {
            out.push(Entity::AmiProduct(catalog::from_world_product(w, 0)));
        }
    }
    Ok(out)
}

/// ListEntities for `AmiProduct` (and `Offer`).
///
/// # Errors
/// The model's ListEntities errors.
pub async fn list_entities(
    ctx: &Ctx,
    caller: &Caller,
    input: Value,
) -> Result<String, CatalogError> {
    check_catalog(&input)?;
    let ty = str_member(&input, "EntityType", "entityType")?;
    if ty.contains('@') {
        return Err(invalid(format!(
            "EntityType '{ty}' must not include a version: use AmiProduct or Offer."
        )));
    }
    if ty != "AmiProduct" && ty != "Offer" {
        return Err(invalid(format!(
            "EntityType '{ty}' is not supported. Supported: AmiProduct, Offer."
        )));
    }
    let limit = max_results(&input, 50, 20)?;
    if input.get("FilterList").is_some() && input.get("EntityTypeFilters").is_some() {
        return Err(invalid(
            "Use either FilterList or EntityTypeFilters, not both.",
        ));
    }
    let ownership = input
        .get("OwnershipType")
        .and_then(Value::as_str)
        .unwrap_or("SELF");
    if ownership == "SELF" && newest_first_unfiltered(&input) {
        return keyset_entities(ctx, caller, ty, &input, limit).await;
    }
    let mut ents: Vec<Entity> = match ownership {
        "SELF" => own_entities(ctx, caller).await?,
        "SHARED" => Vec::new(),
        o => {
            return Err(invalid(format!(
                "OwnershipType '{o}' must be SELF or SHARED."
            )))
        }
    };
    ents.retain(|e| e.short_type() == ty);
    filter_entities(&mut ents, &input)?;
    sort_entities(&mut ents, &input)?;
    let query = json!({"T": ty, "F": input.get("FilterList"), "E": input.get("EntityTypeFilters"), "S": input.get("Sort"), "ES": input.get("EntityTypeSort"), "O": ownership});
    let (items, next) = page(ctx, caller, "ListEntities", &query, ents, &input, limit)?;
    Ok(with_token(
        json!({}),
        "EntitySummaryList",
        items.iter().map(render::entity_summary).collect(),
        next,
    )
    .to_string())
}

/// True for the listing the store's index serves: no filters, newest change (or start) first.
fn newest_first_unfiltered(input: &Value) -> bool {
    let sort = input
        .get("EntityTypeSort")
        .and_then(|s| s.get("AmiProductSort"))
        .or_else(|| input.get("Sort"));
    let by = sort.and_then(|s| s.get("SortBy")).and_then(Value::as_str);
    let order = sort
        .and_then(|s| s.get("SortOrder"))
        .and_then(Value::as_str);
    input.get("FilterList").is_none()
        && input.get("EntityTypeFilters").is_none()
        && matches!(by, None | Some("LastModifiedDate" | "StartTime"))
        && matches!(order, None | Some("DESCENDING"))
}

/// Where a keyset listing stopped: in the store's index (phase 0, the last `sort`), or among
/// the world products the API has not changed (phase 1, the last id).
#[derive(Clone)]
struct Keyset {
    phase: i64,
    last: String,
}

fn keyset_binding<'a>(
    caller: &'a Caller,
    op: &'a str,
    hash: &'a str,
) -> crate::ops::paging::Binding<'a> {
    crate::ops::paging::Binding {
        operation: op,
        account: &caller.account,
        region: catalog::CATALOG_REGION,
        query_hash: hash,
    }
}

fn decode_keyset(
    ctx: &Ctx,
    caller: &Caller,
    op: &str,
    hash: &str,
    input: &Value,
) -> Result<Option<Keyset>, CatalogError> {
    let Some(t) = input.get("NextToken").and_then(Value::as_str) else {
        return Ok(None);
    };
    let c = crate::ops::paging::decode(
        &ctx.paging_keys,
        &keyset_binding(caller, op, hash),
        t,
        ctx.clock.now_ms(),
    )
    .ok_or_else(|| invalid("The NextToken is not valid for this request."))?;
    Ok(Some(Keyset {
        phase: c.created_ms,
        last: c.build_id,
    }))
}

fn encode_keyset(ctx: &Ctx, caller: &Caller, op: &str, hash: &str, k: Keyset) -> String {
    let cursor = crate::store::Cursor {
        created_ms: k.phase,
        build_id: k.last,
    };
    crate::ops::paging::encode(
        &ctx.paging_keys,
        &keyset_binding(caller, op, hash),
        &cursor,
        ctx.clock.now_ms(),
    )
}

/// Up to `want` stored documents of the owner, newest first, after `before`, that `keep` keeps.
async fn scan_index<T>(
    ctx: &Ctx,
    kind: &str,
    owner: &str,
    mut before: Option<String>,
    want: usize,
    keep: impl Fn(&crate::store::Doc) -> Result<Option<T>, StoreError>,
) -> Result<(Vec<(String, T)>, bool), StoreError> {
    let mut out = Vec::new();
    loop {
        let page = ctx
            .store
            .page_docs(kind, owner, before.as_deref(), want.max(8))
            .await?;
        let exhausted = page.len() < want.max(8);
        for d in &page {
            if let Some(t) = keep(d)? {
                out.push((d.sort.clone(), t));
                if out.len() == want {
                    return Ok((out, false));
                }
            }
        }
        if exhausted {
            return Ok((out, true));
        }
        before = page.last().map(|d| d.sort.clone());
    }
}

/// ListEntities in the default order: the summaries rendered when each entity was written,
/// from the store's index, then the world's products the API has not changed.
async fn keyset_entities(
    ctx: &Ctx,
    caller: &Caller,
    ty: &str,
    input: &Value,
    limit: usize,
) -> Result<String, CatalogError> {
    let hash = crate::ops::paging::query_hash(&json!({"T": ty}));
    let op = "ListEntities/keyset";
    let at = decode_keyset(ctx, caller, op, &hash, input)?.unwrap_or(Keyset {
        phase: 0,
        last: String::new(),
    });
    let mut items: Vec<(Keyset, String)> = Vec::new();
    if at.phase == 0 {
        let before = Some(at.last.clone()).filter(|l| !l.is_empty());
        let page = ctx
            .store
            .page_docs(
                kind::summary(ty),
                &caller.account,
                before.as_deref(),
                limit + 1,
            )
            .await?;
        let exhausted = page.len() <= limit;
        items.extend(page.into_iter().map(|d| {
            (
                Keyset {
                    phase: 0,
                    last: d.sort,
                },
                d.body,
            )
        }));
        if !exhausted {
            return Ok(summary_page(ctx, caller, op, &hash, items, limit));
        }
    }
    if ty == "AmiProduct" {
        let after = (at.phase == 1).then_some(at.last.as_str());
        for w in unchanged_world_products(ctx, caller, after).await? {
            if items.len() > limit {
                break;
            }
            let summary =
                render::entity_summary(&Entity::AmiProduct(catalog::from_world_product(&w, 0)));
            items.push((
                Keyset {
                    phase: 1,
                    last: w.product_id.clone(),
                },
                summary.to_string(),
            ));
        }
    }
    Ok(summary_page(ctx, caller, op, &hash, items, limit))
}

/// The seller's world products that no change set has changed, by id descending, after `after`.
async fn unchanged_world_products(
    ctx: &Ctx,
    caller: &Caller,
    after: Option<&str>,
) -> Result<Vec<crate::world::Product>, StoreError> {
    let world = ctx.world();
    let mut mine: Vec<&crate::world::Product> = world
        .products
        .iter()
        .filter(|p| {
            p.seller_account_id == caller.account && after.is_none_or(|a| p.product_id.as_str() < a)
        })
        .collect();
    mine.sort_by(|a, b| b.product_id.cmp(&a.product_id));
    let mut out = Vec::new();
    for w in mine {
        if ctx
            .store
            .get_doc(kind::ENTITY, &w.product_id)
            .await?
            .is_none()
        {
            out.push(w.clone());
        }
    }
    Ok(out)
}

/// `{"EntitySummaryList": [<rendered summaries>], "NextToken"?}` without re-encoding them.
fn summary_page(
    ctx: &Ctx,
    caller: &Caller,
    op: &str,
    hash: &str,
    mut items: Vec<(Keyset, String)>,
    limit: usize,
) -> String {
    let more = items.len() > limit;
    items.truncate(limit);
    let mut out = String::with_capacity(64 + items.iter().map(|(_, b)| b.len() + 1).sum::<usize>());
    out.push_str("{\"EntitySummaryList\":[");
    for (i, (_, body)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(body);
    }
    out.push(']');
    if let Some((k, _)) = items.last().filter(|_| more) {
        let token = encode_keyset(ctx, caller, op, hash, k.clone());
        out.push_str(",\"NextToken\":");
        out.push_str(&Value::String(token).to_string());
    }
    out.push('}');
    out
}

fn values_of(f: &Value) -> Vec<String> {
    f.get("ValueList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn filter_entities(ents: &mut Vec<Entity>, input: &Value) -> Result<(), CatalogError> {
    for f in input
        .get("FilterList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let vals = values_of(f);
        match f.get("Name").and_then(Value::as_str).unwrap_or_default() {
            "EntityId" => ents.retain(|e| vals.iter().any(|v| v == e.id())),
            "Name" => ents.retain(
                |e| matches!(e, Entity::AmiProduct(p) if vals.iter().any(|v| v == p.title())),
            ),
            other => {
                return Err(invalid(format!(
                    "Filter name '{other}' is not supported. Supported: EntityId, Name."
                )))
            }
        }
    }
    let Some(af) = input.get("EntityTypeFilters") else {
        return Ok(());
    };
    let Some(f) = af.get("AmiProductFilters") else {
        return Err(invalid(
            "EntityTypeFilters: only AmiProductFilters applies to AmiProduct.",
        ));
    };
    let product = |e: &Entity| match e {
        Entity::AmiProduct(p) => Some(p.clone()),
        Entity::Offer(_) => None,
    };
    if let Some(x) = f.get("EntityId") {
        let v = values_of(x);
        ents.retain(|e| v.iter().any(|i| i == e.id()));
    }
    if let Some(x) = f.get("Visibility") {
        let v = values_of(x);
        ents.retain(|e| product(e).is_some_and(|p| v.iter().any(|i| i == p.visibility.as_str())));
    }
    if let Some(x) = f.get("ProductTitle") {
        let v = values_of(x);
        let wild = x
            .get("WildCardValue")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        ents.retain(|e| {
            product(e).is_some_and(|p| {
                (v.is_empty() || v.iter().any(|t| t == p.title()))
                    && wild
                        .as_ref()
                        .is_none_or(|w| p.title().to_lowercase().contains(w))
            })
        });
    }
    if let Some(r) = f.get("LastModifiedDate").and_then(|x| x.get("DateRange")) {
        let at = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .and_then(|s| crate::clock::parse_iso8601_basic(&s.replace(['-', ':'], "")))
        };
        let (after, before) = (at("AfterValue"), at("BeforeValue"));
        ents.retain(|e| {
            after.is_none_or(|a| e.modified_ms() >= a)
                && before.is_none_or(|b| e.modified_ms() <= b)
        });
    }
    Ok(())
}

fn sort_entities(ents: &mut [Entity], input: &Value) -> Result<(), CatalogError> {
    let sort = input
        .get("EntityTypeSort")
        .and_then(|s| s.get("AmiProductSort"))
        .or_else(|| input.get("Sort"))
        .cloned()
        .unwrap_or(json!({}));
    let by = sort
        .get("SortBy")
        .and_then(Value::as_str)
        .unwrap_or("LastModifiedDate")
        .to_string();
    let key = |e: &Entity| -> String {
        let title = match e {
            Entity::AmiProduct(p) => p.title().to_string(),
            Entity::Offer(_) => String::new(),
        };
        let vis = match e {
            Entity::AmiProduct(p) => p.visibility.as_str().to_string(),
            Entity::Offer(_) => String::new(),
        };
        match by.as_str() {
            "EntityId" => e.id().to_string(),
            "ProductTitle" | "Name" => format!("{title}\0{}", e.id()),
            "Visibility" => format!("{vis}\0{}", e.id()),
            _ => format!("{:020}\0{}", e.modified_ms(), e.id()),
        }
    };
    if ![
        "EntityId",
        "ProductTitle",
        "Name",
        "Visibility",
        "LastModifiedDate",
    ]
    .contains(&by.as_str())
    {
        return Err(invalid(format!("SortBy '{by}' is not supported.")));
    }
    ents.sort_by_key(key);
    if sort.get("SortOrder").and_then(Value::as_str) != Some("ASCENDING") {
        ents.reverse();
    }
    Ok(())
}

/// ListChangeSets newest first without filters, from the store's index.
async fn keyset_change_sets(
    ctx: &Ctx,
    caller: &Caller,
    input: &Value,
    limit: usize,
) -> Result<Value, CatalogError> {
    let hash = crate::ops::paging::query_hash(&json!({}));
    let op = "ListChangeSets/keyset";
    let before = decode_keyset(ctx, caller, op, &hash, input)?.map(|k| k.last);
    let (mut found, _) = scan_index(
        ctx,
        kind::CHANGE_SET,
        &caller.account,
        before,
        limit + 1,
        |d| decode_change_set(d).map(Some),
    )
    .await?;
    let more = found.len() > limit;
    found.truncate(limit);
    let token = if more {
        found.last().map(|(sort, _)| {
            encode_keyset(
                ctx,
                caller,
                op,
                &hash,
                Keyset {
                    phase: 0,
                    last: sort.clone(),
                },
            )
        })
    } else {
        None
    };
    let list = found
        .iter()
        .map(|(_, cs)| render::change_set_summary(cs))
        .collect();
    Ok(with_token(json!({}), "ChangeSetSummaryList", list, token))
}
