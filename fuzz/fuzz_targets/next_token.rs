//! NextToken decoding: arbitrary strings never decode, for builds' and scans' bindings alike
//! (the MAC key is not in the input), and decoding never panics.
#![no_main]

use imagebuild::ops::paging::{self, Binding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    for operation in ["DescribeBuilds", "DescribeScans", "ListImages"] {
        let binding = Binding {
            operation,
            account: "123456789012",
            region: "us-east-1",
            query_hash: "q",
        };
        assert!(
            paging::decode(&[b"fuzz-key".to_vec()], &binding, token, 1_800_000_000_000).is_none()
        );
    }
});
