//! SigV4 parsing: arbitrary Authorization, X-Amz-Date, X-Amz-Security-Token headers and query
//! strings (presigned form) are refused without a panic. Input lines: authorization, date,
//! token, query; the body is fixed.
#![no_main]

use std::sync::LazyLock;

use imagebuild::auth::sigv4::{SignedRequest, Verifier};
use imagebuild::auth::StaticCredentials;
use libfuzzer_sys::fuzz_target;

static VERIFIER: LazyLock<Verifier<StaticCredentials>> =
    LazyLock::new(|| Verifier::new(StaticCredentials::development(), "aws-marketplace"));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut headers = http::HeaderMap::new();
    for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
        if let Some(v) = lines
            .next()
            .and_then(|l| http::HeaderValue::from_str(l).ok())
        {
            headers.insert(name, v);
        }
    }
    headers.insert("host", http::HeaderValue::from_static("127.0.0.1:4580"));
    let query = lines.next().unwrap_or("");
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query,
        headers: &headers,
        body: b"{}",
    };
    // Nothing here knows the secret, so nothing may pass.
    assert!(VERIFIER.verify(&req, 1_767_225_600_000).is_err());
});
