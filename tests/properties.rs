//! Bounded property-based runs (proptest, 256 cases per property) of the input paths an attacker
//! controls: target routing, JSON input validation against both models, SigV4 Authorization
//! header parsing and NextToken decoding. Each property asserts behaviour (no panic, the right
//! answer), not speed.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use imagebuild::auth::sigv4::{SignedRequest, Verifier};
use imagebuild::auth::StaticCredentials;
use imagebuild::model::{Model, AMI_SCANNING_MODEL, IMAGE_BUILD_MODEL};
use imagebuild::ops::paging::{self, Binding};
use imagebuild::protocol::router::Operation;
use imagebuild::store::Cursor;
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("ami-0a1b2c3d4e5f60718"),
            Just("fo-ids4xf7qagwyc"),
            Just("Name"),
            Just("Values")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("FulfillmentOptionIds".to_string()),
            Just("SourceImageId".to_string()),
            Just("DestinationImageName".to_string()),
            Just("MaxResults".to_string()),
            Just("NextToken".to_string()),
            Just("Filters".to_string()),
            Just("BuildIds".to_string()),
            Just("Images".to_string()),
            Just("ScanId".to_string()),
            Just("ScanIds".to_string()),
            Just("ScanningPort".to_string()),
            Just("ClientToken".to_string()),
            "[A-Za-z]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn binding() -> Binding<'static> {
    Binding {
        operation: "DescribeBuilds",
        account: "123456789012",
        region: "us-east-1",
        query_hash: "q",
    }
}

proptest! {
    #[test]
    fn routing_accepts_exactly_the_modeled_targets(target in ".{0,60}") {
        let routed = Operation::from_target(&target);
        let expected = Operation::ALL
            .into_iter()
            .find(|o| format!("{}.{}", o.prefix(), o.name()) == target);
        prop_assert_eq!(routed, expected);
    }

    #[test]
    fn routing_round_trips_every_operation(i in 0..Operation::ALL.len(), junk in "[a-zA-Z.]{0,3}") {
        let op = Operation::ALL[i];
        let target = format!("{}.{}", op.prefix(), op.name());
        prop_assert_eq!(Operation::from_target(&target), Some(op));
        if !junk.is_empty() {
            prop_assert_eq!(Operation::from_target(&format!("{target}{junk}")), None);
        }
    }

    #[test]
    fn validation_answers_every_json_input_without_panicking(body in json_value(), op in 0..Operation::ALL.len()) {
        let op = Operation::ALL[op];
        let text = if op.prefix() == "AWSMPImageBuilding" { IMAGE_BUILD_MODEL } else { AMI_SCANNING_MODEL };
        let model = Model::parse(text).unwrap();
        // Ok or a typed rejection; the property is that it always answers.
        let _ = model.validate_input(op.name(), &body);
    }

    #[test]
    fn random_tokens_never_decode(token in ".{0,200}") {
        prop_assert!(paging::decode(&[b"k".to_vec()], &binding(), &token, 1_000_000).is_none());
    }

    #[test]
    fn any_edit_of_a_valid_token_is_refused(
        created in any::<i64>(),
        id in "[a-z0-9-]{1,40}",
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        use base64::Engine;
        let keys = [b"key-1".to_vec()];
        let cursor = Cursor { created_ms: created, build_id: id };
        let now = 1_800_000_000_000;
        let token = paging::encode(&keys, &binding(), &cursor, now);
        prop_assert_eq!(paging::decode(&keys, &binding(), &token, now), Some(cursor));
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap();
        let i = pos.index(raw.len());
        raw[i] ^= flip;
        let edited = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        prop_assert!(paging::decode(&keys, &binding(), &edited, now).is_none());
        let other = Binding { account: "111122223333", ..binding() };
        prop_assert!(paging::decode(&keys, &other, &token, now).is_none());
    }

    #[test]
    fn arbitrary_authorization_headers_are_refused_not_panicked_on(
        header in prop_oneof![
            ".{0,300}",
            "AWS4-HMAC-SHA256 [ -~]{0,200}",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/[0-9a-z/_-]{0,60}, SignedHeaders=[a-z;-]{0,60}, Signature=[0-9a-f]{0,70}",
        ],
        date in prop_oneof!["[0-9TZ]{0,20}", Just("20260101T000000Z".to_string())],
    ) {
        let verifier = Verifier::new(StaticCredentials::development(), "aws-marketplace");
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&header) {
            headers.insert("authorization", v);
        }
        if let Ok(v) = http::HeaderValue::from_str(&date) {
            headers.insert("x-amz-date", v);
        }
        headers.insert("host", http::HeaderValue::from_static("127.0.0.1:4580"));
        let req = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"{}" };
        prop_assert!(verifier.verify(&req, 1_767_225_600_000).is_err());
    }
}
