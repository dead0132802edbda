//! µs per SigV4 verification of a botocore-shaped request, with and without the derived-key
//! cache: `cargo bench --bench sigv4`.
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is right

use criterion::{criterion_group, criterion_main, Criterion};
use imagebuild::auth::sigv4::{SignedRequest, Verifier};
use imagebuild::auth::{Credential, StaticCredentials};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
// KAT-1 of the protocol notes: signed by botocore at 20240115T120000Z.
const SIG: &str = "7209877dfb823e860e200611680cbee0c382b39fe8ef982f0ff907cf9825baa2";
const NOW: i64 = 1_705_320_060_000;

fn headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("host", "127.0.0.1:18099".parse().unwrap());
    h.insert("x-amz-date", "20240115T120000Z".parse().unwrap());
    h.insert(
        "x-amz-target",
        "AWSMPImageBuilding.DescribeBuilds".parse().unwrap(),
    );
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    h.insert("authorization", format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/aws-marketplace/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={SIG}").parse().unwrap());
    h
}

fn creds() -> StaticCredentials {
    let mut c = StaticCredentials::default();
    c.insert(Credential::long_term(
        "AKIDEXAMPLE",
        SECRET,
        "111122223333",
        "bench",
    ));
    c
}

fn bench(c: &mut Criterion) {
    let h = headers();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body: b"{}",
    };
    let cached = Verifier::new(creds(), "aws-marketplace");
    let uncached = Verifier::without_key_cache(creds(), "aws-marketplace");
    assert!(cached.verify(&req, NOW).is_ok() && uncached.verify(&req, NOW).is_ok());
    c.bench_function("sigv4_verify_cached_key", |b| {
        b.iter(|| cached.verify(std::hint::black_box(&req), NOW).unwrap())
    });
    c.bench_function("sigv4_verify_uncached_key", |b| {
        b.iter(|| uncached.verify(std::hint::black_box(&req), NOW).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
