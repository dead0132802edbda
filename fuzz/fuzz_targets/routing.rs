//! X-Amz-Target routing: any bytes either name exactly one modeled operation or none.
#![no_main]

use imagebuild::protocol::router::Operation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let expected = Operation::ALL
        .into_iter()
        .find(|o| format!("{}.{}", o.prefix(), o.name()) == target);
    assert_eq!(Operation::from_target(target), expected);
});
