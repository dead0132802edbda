//! The security surface through HTTP: SigV4 failures with AWS's codes and messages, temporary
//! credentials, presigned requests, per-operation permissions, tenant isolation, and the
//! hardening limits. Every negative case asserts the exact `__type`, the status, the message
//! prefix, and that nothing was written.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use imagebuild::clock::Clock;
use imagebuild::config::ServeConfig;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE: (&str, &str) = ("AKIAALICE0000000001", "alice-secret");
const READER: (&str, &str) = ("AKIAREADER000000001", "reader-secret");
const WRITER: (&str, &str) = ("AKIAWRITER000000001", "writer-secret");
const BOB: (&str, &str) = ("AKIABOB000000000001", "bob-secret");
const TEMP: (&str, &str, &str) = ("ASIATEMP00000000001", "temp-secret", "temp-session-token");
const EXPIRED: (&str, &str, &str) = ("ASIAEXPIRED00000001", "expired-secret", "expired-token");
const PUBLIC_AMI: &str = "ami-02a2b3c4d5e6f7081";

fn accounts_file(dir: &std::path::Path) -> std::path::PathBuf {
    let doc = json!({"Accounts": [
        {"AccountId": "111122223333", "Principals": [
            {"Name": "alice", "AccessKeys": [{"AccessKeyId": ALICE.0, "SecretAccessKey": ALICE.1}],
             "SessionCredentials": [
                {"AccessKeyId": TEMP.0, "SecretAccessKey": TEMP.1, "SessionToken": TEMP.2, "Expiration": "2099-01-01T00:00:00Z"},
                {"AccessKeyId": EXPIRED.0, "SecretAccessKey": EXPIRED.1, "SessionToken": EXPIRED.2, "Expiration": "2001-01-01T00:00:00Z"}]},
            {"Name": "reader", "Allow": ["aws-marketplace:Describe*"], "AccessKeys": [{"AccessKeyId": READER.0, "SecretAccessKey": READER.1}]},
            {"Name": "writer", "Allow": ["aws-marketplace:StartBuild"], "AccessKeys": [{"AccessKeyId": WRITER.0, "SecretAccessKey": WRITER.1}]}]},
        {"AccountId": "444455556666", "Principals": [
            {"Name": "bob", "AccessKeys": [{"AccessKeyId": BOB.0, "SecretAccessKey": BOB.1}]}]}]});
    let path = dir.join("accounts.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

async fn secured(extra: impl FnOnce(ServeConfig) -> ServeConfig) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        accounts: Some(accounts_file(dir.path())),
        provision_seconds: 3600,
        ..ServeConfig::for_test()
    };
    let mut app = spawn(extra(cfg)).await;
    app.access_key = ALICE.0.into();
    app.secret = ALICE.1.into();
    (app, dir)
}

fn start_opts(app: &TestApp) -> SignOpts {
    SignOpts {
        target: "AWSMPImageBuilding.StartBuild".into(),
        body: start_body(GOOD_FO, PUBLIC_AMI).to_string(),
        ..app.opts()
    }
}

fn set(req: &mut hyper::Request<Full<Bytes>>, name: &'static str, value: &str) {
    req.headers_mut()
        .insert(name, hyper::header::HeaderValue::from_str(value).unwrap());
}

fn auth_of(req: &hyper::Request<Full<Bytes>>) -> String {
    req.headers()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

async fn alice_builds(app: &TestApp) -> usize {
    let r = app
        .raw(app.sign(&SignOpts {
            body: json!({"MaxResults": 256}).to_string(),
            ..app.opts()
        }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["Builds"].as_array().unwrap().len()
}

struct Case {
    name: &'static str,
    req: hyper::Request<Full<Bytes>>,
    status: u16,
    ty: &'static str,
    prefix: &'static str,
}

#[tokio::test]
async fn negative_cases_answer_like_aws_and_write_nothing() {
    let (app, _dir) = secured(|c| c).await;
    let now = app.clock.now_ms();
    let good = || app.sign(&start_opts(&app));
    let with_auth = |f: &dyn Fn(String) -> String| {
        let mut r = good();
        let a = f(auth_of(&r));
        set(&mut r, "authorization", &a);
        r
    };
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name, req, status, ty, prefix| {
        cases.push(Case {
            name,
            req,
            status,
            ty,
            prefix,
        })
    };

    let mut r = good();
    r.headers_mut().remove("authorization");
    add(
        "no authorization",
        r,
        400,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );
    add(
        "sha512",
        with_auth(&|a| a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")),
        400,
        "IncompleteSignatureException",
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.",
    );
    let three_missing = "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.";
    for (name, header) in [
        ("bare X", "X"),
        ("bearer", "Bearer abc"),
        ("sigv2", "AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl"),
    ] {
        let mut r = good();
        set(&mut r, "authorization", header);
        r.headers_mut().remove("x-amz-date");
        let msg = format!("{three_missing} Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}");
        add(
            name,
            r,
            400,
            "IncompleteSignatureException",
            Box::leak(msg.into_boxed_str()),
        );
    }
    add(
        "no Signature",
        with_auth(&|a| a.split(", Signature=").next().unwrap().to_string()),
        400,
        "IncompleteSignatureException",
        "Authorization header requires 'Signature' parameter.",
    );
    add(
        "no Credential",
        with_auth(&|a| a.replace("Credential=", "Cred=")),
        400,
        "IncompleteSignatureException",
        "Authorization header requires 'Credential' parameter.",
    );
    add(
        "no SignedHeaders",
        with_auth(&|a| a.replace("SignedHeaders=", "Signed=")),
        400,
        "IncompleteSignatureException",
        "Authorization header requires 'SignedHeaders' parameter.",
    );
    add(
        "short credential",
        with_auth(&|a| a.replace("/aws-marketplace/aws4_request", "")),
        400,
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements",
    );
    add(
        "pair without =",
        with_auth(&|a| format!("{a}, junk")),
        400,
        "IncompleteSignatureException",
        "'junk' not a valid key=value pair",
    );
    let mut r = good();
    r.headers_mut().remove("x-amz-date");
    add(
        "no date",
        r,
        400,
        "IncompleteSignatureException",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
    let mut r = good();
    set(&mut r, "x-amz-date", "2024-01-15T12:00:00Z");
    add(
        "extended date",
        r,
        400,
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '2024-01-15T12:00:00Z'.",
    );
    add(
        "wrong service",
        app.sign(&SignOpts {
            service: "execute-api".into(),
            ..start_opts(&app)
        }),
        400,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'aws-marketplace'.",
    );
    add(
        "bad region",
        app.sign(&SignOpts {
            region: "moon".into(),
            ..start_opts(&app)
        }),
        400,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'moon'.",
    );
    add(
        "scope date",
        with_auth(&|a| {
            let d = &a[a.find("Credential=").unwrap() + 31..a.find("Credential=").unwrap() + 39];
            a.replacen(d, "20000101", 1)
        }),
        400,
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
    );
    add(
        "terminator",
        with_auth(&|a| a.replace("aws4_request", "aws5_request")),
        400,
        "InvalidSignatureException",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
    );
    add(
        "host unsigned",
        with_auth(&|a| {
            a.replace(
                "SignedHeaders=content-type;host;",
                "SignedHeaders=content-type;",
            )
        }),
        400,
        "InvalidSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
    add(
        "date unsigned",
        with_auth(&|a| a.replace(";x-amz-date", "")),
        400,
        "InvalidSignatureException",
        "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
    );
    add(
        "expired",
        app.sign(&SignOpts {
            at_ms: now - 6 * 60_000,
            ..start_opts(&app)
        }),
        400,
        "InvalidSignatureException",
        "Signature expired:",
    );
    add(
        "future",
        app.sign(&SignOpts {
            at_ms: now + 6 * 60_000,
            ..start_opts(&app)
        }),
        400,
        "InvalidSignatureException",
        "Signature not yet current:",
    );
    add(
        "unknown key",
        app.sign(&SignOpts {
            access_key: "AKIANOBODY000000001".into(),
            ..start_opts(&app)
        }),
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    add(
        "wrong secret",
        app.sign(&SignOpts {
            secret: "nope".into(),
            ..start_opts(&app)
        }),
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
    );
    let mut r = good();
    *r.body_mut() = Full::new(Bytes::from(
        start_body(GOOD_FO, PUBLIC_AMI)
            .to_string()
            .replace("test image", "evil image"),
    ));
    add(
        "body changed",
        r,
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match",
    );
    let mut r = good();
    set(&mut r, "x-amz-content-sha256", &"0".repeat(64));
    add(
        "content sha",
        r,
        400,
        "InvalidSignatureException",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
    let mut r = good();
    set(
        &mut r,
        "content-type",
        "application/x-amz-json-1.1; charset=utf-8",
    );
    add(
        "signed header changed",
        r,
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match",
    );
    add(
        "token with long-term key",
        app.sign(&SignOpts {
            token: Some("x".into()),
            ..start_opts(&app)
        }),
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    add(
        "temp key without token",
        app.sign(&SignOpts {
            access_key: TEMP.0.into(),
            secret: TEMP.1.into(),
            ..start_opts(&app)
        }),
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    add(
        "temp key wrong token",
        app.sign(&SignOpts {
            access_key: TEMP.0.into(),
            secret: TEMP.1.into(),
            token: Some("other".into()),
            ..start_opts(&app)
        }),
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    add(
        "expired temp key",
        app.sign(&SignOpts {
            access_key: EXPIRED.0.into(),
            secret: EXPIRED.1.into(),
            token: Some(EXPIRED.2.into()),
            ..start_opts(&app)
        }),
        400,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    );
    let presigned = app.sign(&SignOpts {
        presign_expires: Some(Duration::from_secs(60)),
        ..start_opts(&app)
    });
    let mut both = app.sign(&SignOpts {
        presign_expires: Some(Duration::from_secs(60)),
        ..start_opts(&app)
    });
    set(&mut both, "authorization", &auth_of(&good()));
    add(
        "both auths",
        both,
        400,
        "InvalidSignatureException",
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
    );
    let mut no_sig = app.sign(&SignOpts {
        presign_expires: Some(Duration::from_secs(60)),
        ..start_opts(&app)
    });
    let q = no_sig
        .uri()
        .query()
        .unwrap()
        .split('&')
        .filter(|kv| !kv.starts_with("X-Amz-Signature="))
        .collect::<Vec<_>>()
        .join("&");
    *no_sig.uri_mut() = format!("http://{}/?{q}", app.addr).parse().unwrap();
    add("presigned without signature", no_sig, 400, "IncompleteSignatureException", "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.");
    add(
        "presigned expired",
        app.sign(&SignOpts {
            presign_expires: Some(Duration::from_secs(60)),
            at_ms: now - 120_000,
            ..start_opts(&app)
        }),
        400,
        "InvalidSignatureException",
        "Signature expired:",
    );
    let mut r = good();
    let a = auth_of(&r);
    r.headers_mut().append(
        "authorization",
        hyper::header::HeaderValue::from_str(&a).unwrap(),
    );
    add(
        "two authorization headers",
        r,
        400,
        "IncompleteSignatureException",
        "Only one Authorization header is allowed.",
    );
    let mut r = good();
    r.headers_mut().insert(
        "authorization",
        hyper::header::HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff\xfe").unwrap(),
    );
    add(
        "non-UTF-8 authorization",
        r,
        400,
        "IncompleteSignatureException",
        "Authorization header contains characters that are not printable ASCII.",
    );
    let mut r = good();
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_bytes(b"application/x-amz-json-1.1\xff").unwrap(),
    );
    add(
        "non-UTF-8 content type",
        r,
        404,
        "UnknownOperationException",
        "",
    );
    let r = app.sign(&SignOpts {
        access_key: READER.0.into(),
        secret: READER.1.into(),
        ..start_opts(&app)
    });
    add("reader starts a build", r, 400, "UnauthorizedOperationException", "User: arn:aws:iam::111122223333:user/reader is not authorized to perform: aws-marketplace:StartBuild");
    add("writer lists builds", app.sign(&SignOpts { access_key: WRITER.0.into(), secret: WRITER.1.into(), ..app.opts() }), 400, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/writer is not authorized to perform: aws-marketplace:DescribeBuilds");
    let mut r = good();
    *r.method_mut() = hyper::Method::PUT;
    add(
        "PUT",
        r,
        403,
        "AccessDeniedException",
        "Unable to determine service/operation name to be authorized",
    );

    let n = cases.len();
    assert!(n >= 30, "only {n} cases");
    for c in cases {
        let r = app.raw(c.req).await;
        assert_eq!(
            (r.status, r.error_type()),
            (c.status, c.ty),
            "{}: {:?}",
            c.name,
            r.body
        );
        assert!(
            r.message().starts_with(c.prefix),
            "{}: message {:?} does not start with {:?}",
            c.name,
            r.message(),
            c.prefix
        );
        assert!(r.headers.contains_key("x-amzn-requestid"), "{}", c.name);
        assert_eq!(alice_builds(&app).await, 0, "{} wrote something", c.name);
    }
    // and the valid variants of the same requests do work
    let r = app.raw(presigned).await;
    assert_eq!(r.status, 200, "presigned: {:?}", r.body);
    let r = app
        .raw(app.sign(&SignOpts {
            access_key: TEMP.0.into(),
            secret: TEMP.1.into(),
            token: Some(TEMP.2.into()),
            ..start_opts(&app)
        }))
        .await;
    assert_eq!(r.status, 200, "temporary credentials: {:?}", r.body);
    let r = app
        .raw(app.sign(&SignOpts {
            access_key: WRITER.0.into(),
            secret: WRITER.1.into(),
            ..start_opts(&app)
        }))
        .await;
    assert_eq!(r.status, 200, "writer: {:?}", r.body);
    let r = app
        .raw(app.sign(&SignOpts {
            access_key: READER.0.into(),
            secret: READER.1.into(),
            ..app.opts()
        }))
        .await;
    assert_eq!(
        (r.status, r.body["Builds"].as_array().unwrap().len()),
        (200, 3)
    );
    app.stop().await;
}

#[tokio::test]
async fn accounts_and_regions_are_isolated() {
    let (mut app, _dir) = secured(|c| c).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut b = start_body(GOOD_FO, PUBLIC_AMI);
        b["ClientToken"] = json!("shared-token");
        b["DestinationImageName"] = json!(format!("img {}", ids.len()));
        ids.push(app.call("StartBuild", b).await);
    }
    // same token, other parameters, same account: mismatch
    assert_eq!(ids[1].error_type(), "IdempotentParameterMismatchException");
    let alice_id = ids[0].body["BuildId"].as_str().unwrap().to_string();
    let page = app.call("DescribeBuilds", json!({"MaxResults": 1})).await;
    assert!(page.body.get("NextToken").is_none());
    app.call("StartBuild", start_body(GOOD_FO, PUBLIC_AMI))
        .await;
    let page = app.call("DescribeBuilds", json!({"MaxResults": 1})).await;
    let token = page.body["NextToken"].as_str().unwrap().to_string();

    // Bob: the same ClientToken is his own; alice's build id, token are useless to him.
    app.access_key = BOB.0.into();
    app.secret = BOB.1.into();
    let mut b = start_body(GOOD_FO, PUBLIC_AMI);
    b["ClientToken"] = json!("shared-token");
    let bob = app.call("StartBuild", b).await;
    assert_eq!(bob.status, 200);
    assert_ne!(bob.body["BuildId"], json!(alice_id));
    let r = app
        .call("DescribeBuilds", json!({"BuildIds": [alice_id]}))
        .await;
    assert_eq!(r.body["Builds"], json!([]));
    let r = app
        .call(
            "DescribeBuilds",
            json!({"Filters": [{"Name": "build-id", "Values": [alice_id]}]}),
        )
        .await;
    assert_eq!(r.body["Builds"], json!([]));
    let r = app
        .call(
            "DescribeBuilds",
            json!({"MaxResults": 1, "NextToken": token}),
        )
        .await;
    assert_eq!(r.error_type(), "InvalidNextTokenException");
    assert_eq!(app.builds().await.len(), 1);

    // Alice in another region: her token is invalid there, and she sees nothing.
    app.access_key = ALICE.0.into();
    app.secret = ALICE.1.into();
    app.region = "us-west-2".into();
    let r = app
        .call(
            "DescribeBuilds",
            json!({"MaxResults": 1, "NextToken": token}),
        )
        .await;
    assert_eq!(r.error_type(), "InvalidNextTokenException");
    assert_eq!(app.builds().await.len(), 0);
    app.region = "us-east-1".into();
    assert_eq!(app.builds().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_valid_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        in_memory: false,
        data_dir: dir.path().to_path_buf(),
        provision_seconds: 3600,
        ..ServeConfig::for_test()
    };
    let app = spawn(cfg.clone()).await;
    for _ in 0..2 {
        app.call("StartBuild", start_body(GOOD_FO, LINUX_AMI)).await;
    }
    let token = app
        .call("DescribeBuilds", json!({"MaxResults": 1}))
        .await
        .body["NextToken"]
        .as_str()
        .unwrap()
        .to_string();
    app.stop().await;
    imagebuild::app::rotate_keys(dir.path(), imagebuild::clock::SystemClock.now_ms())
        .await
        .unwrap();
    // within the grace period the old token still verifies
    let app = spawn(cfg.clone()).await;
    assert_eq!(
        app.call(
            "DescribeBuilds",
            json!({"MaxResults": 1, "NextToken": token})
        )
        .await
        .status,
        200
    );
    app.stop().await;
    // with no grace left, it does not
    let app = spawn(ServeConfig {
        key_grace_hours: 0,
        ..cfg
    })
    .await;
    let r = app
        .call(
            "DescribeBuilds",
            json!({"MaxResults": 1, "NextToken": token}),
        )
        .await;
    assert_eq!(r.error_type(), "InvalidNextTokenException");
    app.stop().await;
}

async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8], read_for: Duration) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(read_for, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn hardening_limits_hold() {
    let (app, _dir) = secured(|c| ServeConfig {
        header_timeout_ms: 300,
        body_timeout_ms: 300,
        max_body_bytes: 4096,
        ..c
    })
    .await;
    // a chunked body larger than the limit is refused while streaming
    let big = "x".repeat(10_000);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSMPImageBuilding.DescribeBuilds\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        app.addr,
        big.len()
    );
    let out = raw_exchange(app.addr, chunked.as_bytes(), Duration::from_secs(2)).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(out.contains("RequestEntityTooLargeException"));
    // a declared Content-Length over the limit is refused before reading
    let declared = format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSMPImageBuilding.DescribeBuilds\r\nContent-Length: 99999999\r\n\r\n", app.addr);
    let out = raw_exchange(app.addr, declared.as_bytes(), Duration::from_secs(2)).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    // a slow body gets 408 after the body timeout
    let slow = format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSMPImageBuilding.DescribeBuilds\r\nContent-Length: 100\r\n\r\n{{", app.addr);
    let out = raw_exchange(app.addr, slow.as_bytes(), Duration::from_secs(3)).await;
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("RequestTimeoutException"));
    // slow headers: the connection is closed after the header timeout
    let t = std::time::Instant::now();
    let out = raw_exchange(
        app.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "connection held {:?}",
        t.elapsed()
    );
    assert!(!out.contains("200 OK"));
    // too many headers, and huge headers
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let out = raw_exchange(
        app.addr,
        format!("POST / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
        Duration::from_secs(2),
    )
    .await;
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 431"), "{out}");
    // the limit is 100 headers (Host, the X-H ones, Content-Length): 100 are read (and the
    // request refused for its signature), 101 are not
    for (extra, refused) in [(98, false), (99, true)] {
        let headers: String = (0..extra).map(|i| format!("X-H{i}: v\r\n")).collect();
        let out = raw_exchange(
            app.addr,
            format!("POST / HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 0\r\n\r\n").as_bytes(),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(
            out.is_empty() || out.starts_with("HTTP/1.1 431"),
            refused,
            "{extra} extra headers: {}",
            &out[..out.len().min(200)]
        );
    }
    let huge = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let out = raw_exchange(app.addr, huge.as_bytes(), Duration::from_secs(2)).await;
    assert!(
        out.is_empty() || out.starts_with("HTTP/1.1 431"),
        "{}",
        &out[..out.len().min(200)]
    );
    // and the server still answers well-behaved clients
    assert_eq!(app.call("DescribeBuilds", json!({})).await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn connection_cap_makes_extra_clients_wait_not_fail() {
    let (app, _dir) = secured(|c| ServeConfig {
        max_connections: 1,
        ..c
    })
    .await;
    // one idle keep-alive connection holds the only slot
    let hog = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let call = {
        let req = app.sign(&app.opts());
        let client = app.client.clone();
        tokio::spawn(async move { client.request(req).await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "served beyond the connection cap");
    drop(hog);
    let status = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn insecure_mode_still_names_the_caller_by_access_key() {
    let (mut app, _dir) = secured(|c| ServeConfig {
        insecure_no_signature_check: true,
        ..c
    })
    .await;
    app.secret = "anything".into();
    assert_eq!(
        app.call("StartBuild", start_body(GOOD_FO, PUBLIC_AMI))
            .await
            .status,
        200
    );
    app.access_key = BOB.0.into();
    assert_eq!(app.builds().await.len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn scan_operations_are_authorized_and_isolated_per_account() {
    let (mut app, _dir) = secured(|c| c).await;
    let start = json!({"Images": [{"SourceImageId": PUBLIC_AMI,
        "AccessRoleArn": "arn:aws:iam::111122223333:role/MarketplaceAmiIngestion", "OsUserName": "ec2-user"}]});
    // alice's default grant includes the scan actions
    let r = app.scan_call("StartScans", start.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sid = r.body["Scans"][0]["ScanId"].as_str().unwrap().to_string();
    // a role of another account is refused before anything is written
    let mut foreign = start.clone();
    foreign["Images"][0]["AccessRoleArn"] = json!("arn:aws:iam::123456789012:role/R");
    let r = app.scan_call("StartScans", foreign).await;
    assert_eq!(r.error_type(), "InvalidAccessRoleArnException");
    // writer may only StartBuild: every scan operation is a modeled UnauthorizedOperationException
    app.access_key = WRITER.0.into();
    app.secret = WRITER.1.into();
    for (op, body) in [
        ("StartScans", start.clone()),
        ("DescribeScans", json!({})),
        ("DescribeScanFindings", json!({"ScanId": sid})),
        ("ResubmitScan", json!({"ScanId": sid})),
    ] {
        let r = app.scan_call(op, body).await;
        assert_eq!(r.error_type(), "UnauthorizedOperationException", "{op}");
        assert!(
            r.message().contains(&format!("aws-marketplace:{op}")),
            "{op}"
        );
    }
    // reader may describe
    app.access_key = READER.0.into();
    app.secret = READER.1.into();
    let r = app.scan_call("DescribeScans", json!({})).await;
    assert_eq!(r.body["Scans"].as_array().unwrap().len(), 1);
    // bob (another account) sees none of alice's scans
    app.access_key = BOB.0.into();
    app.secret = BOB.1.into();
    let r = app
        .scan_call("DescribeScans", json!({"ScanIds": [sid]}))
        .await;
    assert_eq!(r.body["Scans"], json!([]));
    for op in ["DescribeScanFindings", "ResubmitScan"] {
        let r = app.scan_call(op, json!({"ScanId": sid})).await;
        assert_eq!(r.error_type(), "InvalidScanIdException", "{op}");
    }
}

#[tokio::test]
async fn scan_requests_are_validated_against_the_companion_model() {
    let (app, _dir) = secured(|c| c).await;
    let r = app
        .scan_call("DescribeScans", json!({"MaxResults": 0}))
        .await;
    assert_eq!(r.error_type(), "InvalidMaxResultsException");
    let r = app
        .scan_call(
            "DescribeScanFindings",
            json!({"ScanId": "x", "MaxResults": 101}),
        )
        .await;
    assert_eq!(r.error_type(), "InvalidMaxResultsException");
    let r = app
        .scan_call("StartScans", json!({"Images": [{"SourceImageId": "ami-12345678", "AccessRoleArn": "a", "ScanningPort": "22"}]}))
        .await;
    assert_eq!(r.error_type(), "SerializationException");
    let r = app.scan_call("StartScans", json!({})).await;
    assert_eq!(r.error_type(), "ValidationException");
    assert!(r.message().contains("'images'"), "{}", r.message());
    // a scan target is not a build operation and vice versa
    let r = app
        .raw(app.signed("AWSMPImageBuilding.StartScans", "{}"))
        .await;
    assert_eq!(r.error_type(), "UnknownOperationException");
}

#[tokio::test]
async fn the_same_describe_bytes_from_another_account_get_that_accounts_answer() {
    // Alice's answer is rendered (and may be kept for reuse); Bob then sends the very same
    // bytes in the same second with no write in between and must see only his own builds.
    let (mut app, _dir) = secured(|c| c).await;
    let started = app
        .call("StartBuild", start_body(GOOD_FO, PUBLIC_AMI))
        .await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    let poll = json!({"MaxResults": 7});
    for _ in 0..3 {
        let alice = app.call("DescribeBuilds", poll.clone()).await;
        assert_eq!(alice.body["Builds"].as_array().unwrap().len(), 1);
    }
    app.access_key = BOB.0.into();
    app.secret = BOB.1.into();
    let bob = app.call("DescribeBuilds", poll).await;
    assert_eq!(bob.status, 200, "{:?}", bob.body);
    assert_eq!(bob.body["Builds"], json!([]));
}
