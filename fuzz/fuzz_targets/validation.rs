//! JSON input validation: any body that parses as JSON gets an answer (valid or a typed
//! rejection) from both models for every operation, and never a panic. The first byte picks the
//! operation so that the fuzzer can steer towards one model's members.
#![no_main]

use std::sync::LazyLock;

use imagebuild::model::{Model, AMI_SCANNING_MODEL, IMAGE_BUILD_MODEL};
use imagebuild::protocol::router::Operation;
use libfuzzer_sys::fuzz_target;

static BUILD: LazyLock<Model> =
    LazyLock::new(|| Model::parse(IMAGE_BUILD_MODEL).expect("shipped model parses"));
static SCAN: LazyLock<Model> =
    LazyLock::new(|| Model::parse(AMI_SCANNING_MODEL).expect("shipped model parses"));

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let op = Operation::ALL[usize::from(pick) % Operation::ALL.len()];
    let model = if op.prefix() == "AWSMPImageBuilding" {
        &*BUILD
    } else {
        &*SCAN
    };
    let _ = model.validate_input(op.name(), &value);
});
