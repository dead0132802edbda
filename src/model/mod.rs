//! The botocore service models under `models/`, compiled into the binary and parsed once:
//! operations, their input shapes and errors, and a validator that checks a request's JSON
//! against its input shape the way AWS's front end does (types first, then constraints).
//!
//! Depends on: nothing crate-internal.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// The Image Build model exactly as shipped in `models/`.
pub const IMAGE_BUILD_MODEL: &str =
    include_str!("../../models/marketplaceimagebuild/2017-12-15/service-2.json");

/// The AMI scanning companion model exactly as shipped in `models/`.
pub const AMI_SCANNING_MODEL: &str =
    include_str!("../../models/marketplaceamiscanning/2021-01-15/service-2.json");

/// Why a model failed to load (a packaging bug, caught by tests).
#[derive(Debug, thiserror::Error)]
#[error("invalid service model: {0}")]
pub struct ModelError(String);

/// A shape of the model, reduced to what validation needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A structure with members (name → target shape) and required member names.
    Structure {
        /// Members in model order.
        members: Vec<(String, String)>,
        /// Required member names.
        required: Vec<String>,
        /// True for error shapes.
        exception: bool,
        /// True for server-fault error shapes.
        fault: bool,
    },
    /// A list of the target shape.
    List {
        /// Member shape name.
        member: String,
        /// Minimum length.
        min: Option<i64>,
        /// Maximum length.
        max: Option<i64>,
    },
    /// A string.
    String {
        /// Minimum length.
        min: Option<i64>,
        /// Maximum length.
        max: Option<i64>,
        /// Allowed values.
        enum_values: Option<Vec<String>>,
        /// Regular-expression pattern (checked by operations, not here).
        pattern: Option<String>,
    },
    /// A 32-bit integer.
    Integer {
        /// Minimum value.
        min: Option<i64>,
        /// Maximum value.
        max: Option<i64>,
    },
    /// A 64-bit integer.
    Long {
        /// Minimum value.
        min: Option<i64>,
        /// Maximum value.
        max: Option<i64>,
    },
    /// A boolean.
    Boolean,
    /// A floating-point number.
    Double,
    /// A timestamp (epoch seconds on the wire).
    Timestamp,
    /// A map of string keys to the value shape.
    Map {
        /// Value shape name.
        value: String,
    },
}

/// One operation of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Input shape name.
    pub input: Option<String>,
    /// Output shape name.
    pub output: Option<String>,
    /// Modeled error shape names.
    pub errors: Vec<String>,
}

/// A parsed service model.
#[derive(Debug, Clone)]
pub struct Model {
    /// `metadata.targetPrefix`.
    pub target_prefix: String,
    /// `metadata.signingName`.
    pub signing_name: String,
    /// Operations by name.
    pub operations: BTreeMap<String, Operation>,
    /// Shapes by name.
    pub shapes: HashMap<String, Shape>,
}

/// A constraint violation found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Top-level input member the violation is under (`MaxResults`).
    pub member: String,
    /// AWS-style path (`maxResults`, `filters.1.member.name`).
    pub path: String,
    /// AWS-style message for this violation.
    pub message: String,
}

/// What validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The JSON does not have the modeled types (`SerializationException`).
    Serialization(String),
    /// Constraints are violated (the operation maps these to modeled errors).
    Constraints(Vec<Violation>),
}

fn int_field(v: &Value, k: &str) -> Option<i64> {
    v.get(k)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

impl Model {
    /// Parses a botocore `service-2.json`.
    ///
    /// # Errors
    /// `ModelError` if the document is not a usable model.
    pub fn parse(text: &str) -> Result<Model, ModelError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| ModelError(e.to_string()))?;
        let meta = doc
            .get("metadata")
            .ok_or_else(|| ModelError("no metadata".into()))?;
        let s = |k: &str| {
            meta.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ModelError(format!("metadata.{k} missing")))
        };
        let mut operations = BTreeMap::new();
        for (name, op) in doc
            .get("operations")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError("no operations".into()))?
        {
            let shape_of = |k: &str| {
                op.get(k)
                    .and_then(|x| x.get("shape"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let errors = op
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.get("shape").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            operations.insert(
                name.clone(),
                Operation {
                    input: shape_of("input"),
                    output: shape_of("output"),
                    errors,
                },
            );
        }
        let mut shapes = HashMap::new();
        for (name, sh) in doc
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError("no shapes".into()))?
        {
            let ty = sh.get("type").and_then(Value::as_str).unwrap_or_default();
            let shape = match ty {
                "structure" => Shape::Structure {
                    members: sh
                        .get("members")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| {
                                    (
                                        k.clone(),
                                        v.get("shape")
                                            .and_then(Value::as_str)
                                            .unwrap_or_default()
                                            .to_string(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    required: sh
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                    exception: sh
                        .get("exception")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    fault: sh.get("fault").and_then(Value::as_bool).unwrap_or(false),
                },
                "list" => Shape::List {
                    member: sh
                        .get("member")
                        .and_then(|m| m.get("shape"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    min: int_field(sh, "min"),
                    max: int_field(sh, "max"),
                },
                "string" => Shape::String {
                    min: int_field(sh, "min"),
                    max: int_field(sh, "max"),
                    enum_values: sh.get("enum").and_then(Value::as_array).map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    }),
                    pattern: sh
                        .get("pattern")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
                "integer" => Shape::Integer {
                    min: int_field(sh, "min"),
                    max: int_field(sh, "max"),
                },
                "long" => Shape::Long {
                    min: int_field(sh, "min"),
                    max: int_field(sh, "max"),
                },
                "boolean" => Shape::Boolean,
                "double" | "float" => Shape::Double,
                "timestamp" => Shape::Timestamp,
                "map" => Shape::Map {
                    value: sh
                        .get("value")
                        .and_then(|m| m.get("shape"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                },
                other => {
                    return Err(ModelError(format!(
                        "shape {name}: unsupported type '{other}'"
                    )))
                }
            };
            shapes.insert(name.clone(), shape);
        }
        let model = Model {
            target_prefix: s("targetPrefix")?,
            signing_name: s("signingName")?,
            operations,
            shapes,
        };
        model.check_references()?;
        Ok(model)
    }

    fn check_references(&self) -> Result<(), ModelError> {
        let known = |n: &str| self.shapes.contains_key(n);
        for (name, op) in &self.operations {
            for s in op
                .input
                .iter()
                .chain(op.output.iter())
                .chain(op.errors.iter())
            {
                if !known(s) {
                    return Err(ModelError(format!(
                        "operation {name} refers to unknown shape {s}"
                    )));
                }
            }
        }
        for (name, sh) in &self.shapes {
            let targets: Vec<&String> = match sh {
                Shape::Structure { members, .. } => members.iter().map(|(_, t)| t).collect(),
                Shape::List { member, .. } => vec![member],
                Shape::Map { value } => vec![value],
                _ => vec![],
            };
            if let Some(t) = targets.into_iter().find(|t| !known(t)) {
                return Err(ModelError(format!(
                    "shape {name} refers to unknown shape {t}"
                )));
            }
        }
        Ok(())
    }

    /// Names of every error shape (`exception: true`).
    #[must_use]
    pub fn error_shapes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .shapes
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    Shape::Structure {
                        exception: true,
                        ..
                    }
                )
            })
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// Validates `body` against the input shape of `operation`.
    ///
    /// # Errors
    /// `Invalid::Serialization` for type errors, else `Invalid::Constraints` with every violation.
    pub fn validate_input(&self, operation: &str, body: &Value) -> Result<(), Invalid> {
        let Some(input) = self
            .operations
            .get(operation)
            .and_then(|o| o.input.as_deref())
        else {
            return Ok(());
        };
        let mut violations = Vec::new();
        self.check(input, body, "", "", &mut violations)?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Invalid::Constraints(violations))
        }
    }

    fn check(
        &self,
        shape_name: &str,
        v: &Value,
        member: &str,
        path: &str,
        out: &mut Vec<Violation>,
    ) -> Result<(), Invalid> {
        let Some(shape) = self.shapes.get(shape_name) else {
            return Ok(());
        };
        let mut violate = |message: String| {
            out.push(Violation {
                member: member.to_string(),
                path: path.to_string(),
                message,
            });
        };
        match shape {
            Shape::Structure {
                members, required, ..
            } => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| Invalid::Serialization(type_message(v, "Structure")))?;
                for (name, target) in members {
                    let top = if member.is_empty() {
                        name.as_str()
                    } else {
                        member
                    };
                    let p = join_path(path, name);
                    match obj.get(name) {
                        None | Some(Value::Null) => {
                            if required.contains(name) {
                                out.push(Violation {
                                    member: top.to_string(),
                                    path: p.clone(),
                                    message: format!("Value null at '{p}' failed to satisfy constraint: Member must not be null"),
                                });
                            }
                        }
                        Some(x) => self.check(target, x, top, &p, out)?,
                    }
                }
            }
            Shape::List {
                member: m,
                min,
                max,
            } => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| Invalid::Serialization(type_message(v, "List")))?;
                let len = i64::try_from(arr.len()).unwrap_or(i64::MAX);
                if let Some(min) = min.filter(|m| len < *m) {
                    violate(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}", render(v)));
                }
                if let Some(max) = max.filter(|m| len > *m) {
                    violate(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}", render(v)));
                }
                for (i, item) in arr.iter().enumerate() {
                    let p = format!("{path}.{}.member", i + 1);
                    if item.is_null() {
                        out.push(Violation { member: member.to_string(), path: p.clone(), message: format!("Value null at '{p}' failed to satisfy constraint: Member must not be null") });
                    } else {
                        self.check(m, item, member, &p, out)?;
                    }
                }
            }
            Shape::String {
                min,
                max,
                enum_values,
                ..
            } => {
                let s = v
                    .as_str()
                    .ok_or_else(|| Invalid::Serialization(type_message(v, "String")))?;
                let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
                if let Some(min) = min.filter(|m| len < *m) {
                    violate(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}", clip(s)));
                }
                if let Some(max) = max.filter(|m| len > *m) {
                    violate(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}", clip(s)));
                }
                if let Some(values) = enum_values.as_ref().filter(|e| !e.iter().any(|x| x == s)) {
                    violate(format!("Value '{}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]", clip(s), values.join(", ")));
                }
            }
            Shape::Integer { min, max } | Shape::Long { min, max } => {
                let is_int = matches!(shape, Shape::Integer { .. });
                let n = v
                    .as_i64()
                    .filter(|n| !is_int || i32::try_from(*n).is_ok())
                    .ok_or_else(|| {
                        Invalid::Serialization(type_message(
                            v,
                            if is_int { "Integer" } else { "Long" },
                        ))
                    })?;
                if let Some(min) = min.filter(|m| n < *m) {
                    violate(format!("Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    violate(format!("Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"));
                }
            }
            Shape::Boolean => {
                if !v.is_boolean() {
                    return Err(Invalid::Serialization(type_message(v, "Boolean")));
                }
            }
            Shape::Double => {
                if !v.is_number() {
                    return Err(Invalid::Serialization(type_message(v, "Double")));
                }
            }
            Shape::Timestamp => {
                if !v.is_number() {
                    return Err(Invalid::Serialization(type_message(v, "Timestamp")));
                }
            }
            Shape::Map { value } => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| Invalid::Serialization(type_message(v, "Map")))?;
                for (k, item) in obj {
                    self.check(value, item, member, &format!("{path}.{k}"), out)?;
                }
            }
        }
        Ok(())
    }
}

fn join_path(path: &str, name: &str) -> String {
    let mut c = name.chars();
    let camel = c
        .next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default();
    if path.is_empty() {
        camel
    } else {
        format!("{path}.{camel}")
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 256 {
        s.chars().take(256).collect::<String>() + "..."
    } else {
        s.to_string()
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The message AWS's JSON front end gives when a value has the wrong JSON type.
fn type_message(v: &Value, expected: &str) -> String {
    match v {
        Value::Object(_) => "Start of structure or map found where not expected.".into(),
        Value::Array(_) => "Start of list found where not expected.".into(),
        Value::String(_) => format!("STRING_VALUE can not be converted to {}", article(expected)),
        Value::Number(_) => format!("NUMBER_VALUE can not be converted to {}", article(expected)),
        Value::Bool(_) => format!(
            "BOOLEAN_VALUE can not be converted to {}",
            article(expected)
        ),
        Value::Null => format!("NULL_VALUE can not be converted to {}", article(expected)),
    }
}

fn article(t: &str) -> String {
    if t.starts_with(['A', 'E', 'I', 'O', 'U']) {
        format!("an {t}")
    } else {
        format!("a {t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model() -> Model {
        Model::parse(IMAGE_BUILD_MODEL).unwrap()
    }

    #[test]
    fn shipped_model_loads_with_both_operations_and_build_ids() {
        let m = model();
        assert_eq!(m.target_prefix, "AWSMPImageBuilding");
        assert_eq!(m.signing_name, "aws-marketplace");
        assert_eq!(
            m.operations.keys().cloned().collect::<Vec<_>>(),
            vec!["DescribeBuilds", "StartBuild"]
        );
        let Some(Shape::Structure { members, .. }) = m.shapes.get("DescribeBuildsRequest") else {
            panic!()
        };
        assert!(members
            .iter()
            .any(|(n, t)| n == "BuildIds" && t == "StringList"));
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let m = model();
        assert_eq!(
            m.validate_input("DescribeBuilds", &json!({"MaxResults": "5"})),
            Err(Invalid::Serialization(
                "STRING_VALUE can not be converted to an Integer".into()
            ))
        );
        assert!(matches!(
            m.validate_input("DescribeBuilds", &json!({"MaxResults": 1.5})),
            Err(Invalid::Serialization(_))
        ));
        assert!(matches!(
            m.validate_input("DescribeBuilds", &json!({"MaxResults": 9_999_999_999_i64})),
            Err(Invalid::Serialization(_))
        ));
        assert!(matches!(
            m.validate_input("DescribeBuilds", &json!({"Filters": {"Name": "x"}})),
            Err(Invalid::Serialization(_))
        ));
        assert!(matches!(
            m.validate_input("DescribeBuilds", &json!([])),
            Err(Invalid::Serialization(_))
        ));
        assert!(matches!(
            m.validate_input("StartBuild", &json!({"SourceImageId": ["a"]})),
            Err(Invalid::Serialization(_))
        ));
    }

    #[test]
    fn constraints_are_collected_with_aws_paths() {
        let m = model();
        let Err(Invalid::Constraints(v)) = m.validate_input(
            "DescribeBuilds",
            &json!({"MaxResults": 300, "NextToken": ""}),
        ) else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        assert!(v.iter().any(|x| x.member == "MaxResults" && x.message == "Value '300' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 256"));
        assert!(v
            .iter()
            .any(|x| x.member == "NextToken" && x.path == "nextToken"));
        let Err(Invalid::Constraints(v)) =
            m.validate_input("StartBuild", &json!({"FulfillmentOptionIds": ["a", null]}))
        else {
            panic!()
        };
        let paths: Vec<_> = v.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "fulfillmentOptionIds.2.member",
                "sourceImageId",
                "destinationImageName"
            ]
        );
        // null members are absent; unknown members are ignored
        assert_eq!(
            m.validate_input("DescribeBuilds", &json!({"MaxResults": null, "Colour": 1})),
            Ok(())
        );
    }
}
