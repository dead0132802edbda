//! Drift guards: `smithy/` and `models/` must describe the same API (operations, members,
//! required members, constraints, errors, idempotency tokens, paging, signing name).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

#[derive(Debug, Default, Clone, PartialEq)]
struct SShape {
    kind: String,
    members: Vec<(String, String)>,
    required: BTreeSet<String>,
    idempotency: BTreeSet<String>,
    list_member: Option<String>,
    enum_values: Vec<String>,
    min: Option<i64>,
    max: Option<i64>,
    error: Option<String>,
    // operations
    input: Option<String>,
    output: Option<String>,
    errors: BTreeSet<String>,
    paginated: bool,
    // service
    operations: BTreeSet<String>,
    sigv4: Option<String>,
}

fn trait_arg(t: &str, key: &str) -> Option<String> {
    let inner = t.split_once('(')?.1.trim_end_matches(')');
    inner.split(',').find_map(|kv| {
        let (k, v) = kv.split_once(':')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Parses the subset of Smithy IDL 2.0 this project writes.
fn parse_smithy(text: &str) -> BTreeMap<String, SShape> {
    let mut shapes = BTreeMap::new();
    let mut traits: Vec<String> = Vec::new();
    let mut member_traits: Vec<String> = Vec::new();
    let mut current: Option<(String, SShape)> = None;
    let mut in_errors = false;
    let mut in_ops = false;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap().trim();
        if line.is_empty()
            || line.starts_with('$')
            || line.starts_with("namespace")
            || line.starts_with("use ")
        {
            continue;
        }
        if let Some((name, shape)) = current.as_mut() {
            if in_errors || in_ops {
                for tok in
                    line.split(|c: char| c == '[' || c == ']' || c.is_whitespace() || c == ',')
                {
                    let tok = tok.trim();
                    if tok.is_empty() || tok == "errors:" || tok == "operations:" {
                        continue;
                    }
                    if in_errors {
                        shape.errors.insert(tok.to_string());
                    } else {
                        shape.operations.insert(tok.to_string());
                    }
                }
                if line.contains(']') {
                    in_errors = false;
                    in_ops = false;
                }
                continue;
            }
            if line == "}" {
                let (n, s) = current.take().unwrap();
                shapes.insert(n, s);
                continue;
            }
            if line.starts_with('@') {
                member_traits.push(line.to_string());
                continue;
            }
            let _ = name;
            match shape.kind.as_str() {
                "structure" => {
                    let (m, t) = line.split_once(':').unwrap();
                    let m = m.trim().to_string();
                    if member_traits.iter().any(|t| t == "@required") {
                        shape.required.insert(m.clone());
                    }
                    if member_traits.iter().any(|t| t == "@idempotencyToken") {
                        shape.idempotency.insert(m.clone());
                    }
                    member_traits.clear();
                    shape.members.push((m, t.trim().to_string()));
                }
                "list" => {
                    shape.list_member = Some(line.split_once(':').unwrap().1.trim().to_string())
                }
                "enum" => shape.enum_values.push(line.to_string()),
                "operation" => {
                    let (k, v) = line.split_once(':').unwrap();
                    match k.trim() {
                        "input" => shape.input = Some(v.trim().to_string()),
                        "output" => shape.output = Some(v.trim().to_string()),
                        "errors" => {
                            in_errors = !v.contains(']');
                            for tok in v
                                .split(|c: char| {
                                    c == '[' || c == ']' || c == ',' || c.is_whitespace()
                                })
                                .filter(|t| !t.is_empty())
                            {
                                shape.errors.insert(tok.to_string());
                            }
                        }
                        other => panic!("unexpected operation property {other}"),
                    }
                }
                "service" => {
                    if line.starts_with("operations") {
                        in_ops = !line.contains(']');
                        let v = line.split_once(':').unwrap().1;
                        for tok in v
                            .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
                            .filter(|t| !t.is_empty())
                        {
                            shape.operations.insert(tok.to_string());
                        }
                    }
                }
                k => panic!("unexpected body for {k}"),
            }
            continue;
        }
        if line.starts_with('@') {
            traits.push(line.to_string());
            continue;
        }
        let mut parts = line.split_whitespace();
        let kind = parts.next().unwrap().to_string();
        let name = parts.next().unwrap().trim_end_matches('{').to_string();
        let mut s = SShape {
            kind: kind.clone(),
            ..SShape::default()
        };
        for t in traits.drain(..) {
            if t.starts_with("@range") || t.starts_with("@length") {
                s.min = trait_arg(&t, "min").map(|v| v.parse().unwrap());
                s.max = trait_arg(&t, "max").map(|v| v.parse().unwrap());
            } else if let Some(rest) = t.strip_prefix("@error(") {
                s.error = Some(rest.trim_end_matches(')').trim_matches('"').to_string());
            } else if t.starts_with("@paginated") {
                s.paginated = true;
            } else if t.starts_with("@sigv4") {
                s.sigv4 = trait_arg(&t, "name");
            }
        }
        if line.ends_with('{') {
            current = Some((name, s));
        } else {
            shapes.insert(name, s);
        }
    }
    assert!(current.is_none(), "unterminated shape");
    shapes
}

fn botocore(dir: &str) -> (Value, Value) {
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("models/{dir}/service-2.json")).unwrap(),
    )
    .unwrap();
    let p: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("models/{dir}/paginators-1.json")).unwrap(),
    )
    .unwrap();
    (m, p)
}

fn compare(smithy_file: &str, model_dir: &str) {
    let smithy = parse_smithy(&std::fs::read_to_string(smithy_file).unwrap());
    let (model, paginators) = botocore(model_dir);
    let service = smithy
        .values()
        .find(|s| s.kind == "service")
        .expect("a service shape");
    let svc_name = smithy.iter().find(|(_, s)| s.kind == "service").unwrap().0;
    assert_eq!(
        svc_name,
        model["metadata"]["targetPrefix"].as_str().unwrap()
    );
    assert_eq!(
        service.sigv4.as_deref(),
        model["metadata"]["signingName"].as_str()
    );

    let model_ops: BTreeSet<String> = model["operations"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(service.operations, model_ops, "operations differ");
    for op in &model_ops {
        let s = &smithy[op];
        let m = &model["operations"][op];
        assert_eq!(
            s.input.as_deref(),
            m["input"]["shape"].as_str(),
            "{op} input"
        );
        assert_eq!(
            s.output.as_deref(),
            m["output"]["shape"].as_str(),
            "{op} output"
        );
        let errs: BTreeSet<String> = m["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["shape"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(s.errors, errs, "{op} errors");
        assert_eq!(
            s.paginated,
            paginators["pagination"].get(op).is_some(),
            "{op} paginated"
        );
    }

    let model_shapes: BTreeSet<String> = model["shapes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let smithy_shapes: BTreeSet<String> = smithy
        .iter()
        .filter(|(_, s)| !matches!(s.kind.as_str(), "service" | "operation"))
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(smithy_shapes, model_shapes, "shape sets differ");
    for name in &model_shapes {
        let m = &model["shapes"][name];
        let s = &smithy[name];
        let ty = m["type"].as_str().unwrap();
        let kind = if ty == "string" && m.get("enum").is_some() {
            "enum"
        } else {
            ty
        };
        assert_eq!(s.kind, kind, "{name} kind");
        assert_eq!(s.min, m.get("min").and_then(Value::as_i64), "{name} min");
        assert_eq!(s.max, m.get("max").and_then(Value::as_i64), "{name} max");
        match kind {
            "structure" => {
                let members: Vec<(String, String)> = m["members"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v["shape"].as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(s.members, members, "{name} members");
                let required: BTreeSet<String> = m
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                assert_eq!(s.required, required, "{name} required");
                let idem: BTreeSet<String> = m["members"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(_, v)| v.get("idempotencyToken") == Some(&Value::Bool(true)))
                    .map(|(k, _)| k.clone())
                    .collect();
                assert_eq!(s.idempotency, idem, "{name} idempotency tokens");
                let err = match (m.get("exception"), m.get("fault")) {
                    (Some(_), Some(_)) => Some("server".to_string()),
                    (Some(_), None) => Some("client".to_string()),
                    _ => None,
                };
                assert_eq!(s.error, err, "{name} error trait");
            }
            "list" => assert_eq!(
                s.list_member.as_deref(),
                m["member"]["shape"].as_str(),
                "{name} member"
            ),
            "enum" => {
                let values: Vec<String> = m["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(s.enum_values, values, "{name} enum");
            }
            _ => {}
        }
    }
}

#[test]
fn image_build_smithy_matches_botocore_model() {
    compare(
        "smithy/marketplaceimagebuild.smithy",
        "marketplaceimagebuild/2017-12-15",
    );
}

#[test]
fn ami_scanning_smithy_matches_botocore_model() {
    compare(
        "smithy/marketplaceamiscanning.smithy",
        "marketplaceamiscanning/2021-01-15",
    );
}

#[test]
fn the_two_models_share_endpoint_and_signing_name_but_not_target_prefix() {
    let (build, _) = botocore("marketplaceimagebuild/2017-12-15");
    let (scan, _) = botocore("marketplaceamiscanning/2021-01-15");
    for k in [
        "endpointPrefix",
        "signingName",
        "protocol",
        "jsonVersion",
        "signatureVersion",
    ] {
        assert_eq!(build["metadata"][k], scan["metadata"][k], "{k}");
    }
    assert_ne!(
        build["metadata"]["targetPrefix"],
        scan["metadata"]["targetPrefix"]
    );
    // nothing of the scanning service leaks into the published model
    let build_ops: Vec<&String> = build["operations"].as_object().unwrap().keys().collect();
    assert_eq!(build_ops, ["DescribeBuilds", "StartBuild"]);
    // every waiter names an operation of its own model
    for dir in [
        "marketplaceimagebuild/2017-12-15",
        "marketplaceamiscanning/2021-01-15",
    ] {
        let (m, _) = botocore(dir);
        let w: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("models/{dir}/waiters-2.json")).unwrap(),
        )
        .unwrap();
        for (name, waiter) in w["waiters"].as_object().unwrap() {
            let op = waiter["operation"].as_str().unwrap();
            assert!(
                m["operations"].get(op).is_some(),
                "{dir} waiter {name}: {op}"
            );
        }
    }
}

/// The seed's build model, kept in the repo so the comparison never depends on the layout the
/// tests run in.
const SEED_COPY: &str = "tests/fixtures/marketplaceimagebuild-2017-12-15.normal.json";

#[test]
fn the_kept_seed_copy_is_the_seed() {
    let copy: Value = serde_json::from_str(&std::fs::read_to_string(SEED_COPY).unwrap()).unwrap();
    // Beside the steering repo (CI, developers) the copy must equal the seed it was taken from.
    if let Ok(seed) =
        std::fs::read_to_string("../shared/seeds/marketplaceimagebuild-2017-12-15.normal.json")
    {
        assert_eq!(
            copy,
            serde_json::from_str::<Value>(&seed).unwrap(),
            "{SEED_COPY} drifted from the seed"
        );
    }
    assert_eq!(copy["metadata"]["targetPrefix"], "AWSMPImageBuilding");
}

#[test]
fn shipped_model_is_the_seed_plus_build_ids_only() {
    let mut seed: Value =
        serde_json::from_str(&std::fs::read_to_string(SEED_COPY).unwrap()).unwrap();
    let (ours, _) = botocore("marketplaceimagebuild/2017-12-15");
    let members = seed["shapes"]["DescribeBuildsRequest"]["members"]
        .as_object_mut()
        .unwrap();
    assert!(members.get("BuildIds").is_none());
    members.insert("BuildIds".into(), serde_json::json!({"shape": "StringList", "documentation": "<p>List of unique build identifiers.</p>"}));
    assert_eq!(ours, seed);
}

#[test]
fn the_parser_notices_a_difference() {
    let text = std::fs::read_to_string("smithy/marketplaceimagebuild.smithy").unwrap();
    let changed = text.replace("@range(min: 0, max: 256)", "@range(min: 1, max: 256)");
    let a = parse_smithy(&text);
    let b = parse_smithy(&changed);
    assert_ne!(a["MaxResults"], b["MaxResults"]);
    assert_eq!(a["StartBuildRequest"].required.len(), 3);
    assert_eq!(a["StartBuild"].errors.len(), 9);
}
