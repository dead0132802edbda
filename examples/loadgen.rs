//! A load generator that signs every request with SigV4 (via `aws-sigv4`'s own signer), runs a
//! fixed number of requests at a chosen concurrency over keep-alive connections, and prints
//! requests/s and p50/p99/p99.9 latency.
//!
//! ```text
//! loadgen run ENDPOINT describe|describe-distinct|start|start-scan|dynamodb-getitem|unsigned|describe-entity|list-entities|start-change-set CONCURRENCY REQUESTS [MAX_RESULTS]
//! loadgen startup BINARY [ARGS…]        # ms from spawn to the first answered request
//! loadgen harness ENDPOINT TOKEN N [build|scan]
//! loadgen abuse ENDPOINT SLOW_CONNECTIONS OVERSIZED_CONCURRENCY SECONDS
//! ```
//!
//! `abuse` keeps SLOW_CONNECTIONS connections that trickle their headers or body one byte a
//! second (reopened when the server closes them), and OVERSIZED_CONCURRENCY loops sending 8 MiB
//! bodies (declared, or chunked without a length), for SECONDS; run `run` beside it to see what
//! well-behaved clients get meanwhile.
//!
//! The Catalog ops are restJson1: `describe-entity` (GET, the entity in `$LOADGEN_ENTITY`),
//! `list-entities` (a page of MAX_RESULTS products, newest first) and `start-change-set` (a
//! CreateProduct with its own ClientRequestToken: durable, and each one a new product).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // benchmark tool

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn signed(
    host: &str,
    service: &str,
    target: &str,
    content_type: &str,
    body: String,
) -> hyper::Request<Full<Bytes>> {
    let headers = [
        ("host", host),
        ("content-type", content_type),
        ("x-amz-target", target),
    ];
    let identity: Identity = Credentials::new(KEY, SECRET, None, None, "loadgen").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut b = hyper::Request::builder().method("POST").uri("/");
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let mut req = b.body(Full::new(Bytes::from(body))).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req
}

/// A restJson1 request (the Catalog API), signed as botocore signs it.
fn signed_rest(host: &str, method: &str, path: &str, body: String) -> hyper::Request<Full<Bytes>> {
    let mut headers = vec![("host", host)];
    if method == "POST" {
        headers.push(("content-type", "application/json"));
    }
    let identity: Identity = Credentials::new(KEY, SECRET, None, None, "loadgen").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("aws-marketplace")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = format!("http://{host}{path}");
    let signable = SignableRequest::new(
        method,
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut b = hyper::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let mut req = b.body(Full::new(Bytes::from(body))).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req
}

fn make_request(host: &str, op: &str, max_results: u32, i: u64) -> hyper::Request<Full<Bytes>> {
    match op {
        "describe-entity" => {
            let id = std::env::var("LOADGEN_ENTITY").expect("LOADGEN_ENTITY names the entity");
            signed_rest(host, "GET", &format!("/DescribeEntity?catalog=AWSMarketplace&entityId={id}"), String::new())
        }
        "list-entities" => signed_rest(
            host,
            "POST",
            "/ListEntities",
            format!("{{\"Catalog\": \"AWSMarketplace\", \"EntityType\": \"AmiProduct\", \"MaxResults\": {max_results}}}"),
        ),
        "start-change-set" => signed_rest(
            host,
            "POST",
            "/StartChangeSet",
            format!(
                "{{\"Catalog\": \"AWSMarketplace\", \"ClientRequestToken\": \"{}\", \"ChangeSet\": [{{\"ChangeType\": \"CreateProduct\", \"Entity\": {{\"Type\": \"AmiProduct@1.0\"}}, \"DetailsDocument\": {{\"ProductTitle\": \"Load {i}\"}}}}]}}",
                uuid::Uuid::new_v4()
            ),
        ),
        "describe" => signed(host, "aws-marketplace", "AWSMPImageBuilding.DescribeBuilds", "application/x-amz-json-1.1", format!("{{\"MaxResults\": {max_results}}}")),
        // The same query in other bytes each time (trailing spaces): no two consecutive requests
        // can share a whole cached answer, as when clients page, filter or poll differently.
        "describe-distinct" => signed(host, "aws-marketplace", "AWSMPImageBuilding.DescribeBuilds", "application/x-amz-json-1.1", format!("{{\"MaxResults\": {max_results}{}}}", " ".repeat((i % 512) as usize))),
        "start" => signed(
            host,
            "aws-marketplace",
            "AWSMPImageBuilding.StartBuild",
            "application/x-amz-json-1.1",
            format!(
                "{{\"FulfillmentOptionIds\": [\"fo-ids4xf7qagwyc\"], \"SourceImageId\": \"ami-0a1b2c3d4e5f60718\", \"DestinationImageName\": \"load {i}\", \"ClientToken\": \"{}\"}}",
                uuid::Uuid::new_v4()
            ),
        ),
        "start-scan" => signed(
            host,
            "aws-marketplace",
            "AWSMPAmiScanning.StartScans",
            "application/x-amz-json-1.1",
            r#"{"Images": [{"SourceImageId": "ami-0a1b2c3d4e5f60718", "OsUserName": "ubuntu", "AccessRoleArn": "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"}]}"#.into(),
        ),
        "dynamodb-getitem" => signed(host, "dynamodb", "DynamoDB_20120810.GetItem", "application/x-amz-json-1.0", r#"{"TableName": "bench", "Key": {"pk": {"S": "k1"}}}"#.into()),
        "unsigned" => hyper::Request::builder().method("POST").uri("/").header("host", host).body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
        other => panic!("unknown op {other}"),
    }
}

async fn run(endpoint: &str, op: &str, concurrency: usize, requests: u64, max_results: u32) {
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let host = host.clone();
        let op = op.to_string();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            // Keep-alive; servers that close after each answer (moto_server) are reconnected
            // to, and the reconnect counts in that request's latency.
            let connect = |host: String| async move {
                let stream = tokio::net::TcpStream::connect(&host)
                    .await
                    .expect("connect");
                stream.set_nodelay(true).unwrap();
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                sender
            };
            let mut sender = connect(host.clone()).await;
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut bytes = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let t = Instant::now();
                if sender.ready().await.is_err() {
                    sender = connect(host.clone()).await;
                }
                let resp = match sender
                    .send_request(make_request(&host, &op, max_results, i))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        sender = connect(host.clone()).await;
                        sender
                            .send_request(make_request(&host, &op, max_results, i))
                            .await
                            .expect("send after reconnecting")
                    }
                };
                let ok = resp.status().is_success();
                bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
                    .len();
                lat.push(t.elapsed().as_micros() as u32);
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors, bytes)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut body_bytes = 0;
    for t in tasks {
        let (l, e, b) = t.await.unwrap();
        all.extend(l);
        errors += e;
        body_bytes = body_bytes.max(b);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!(
        "op={op} concurrency={concurrency} requests={} errors={errors} body_bytes={body_bytes} rps={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3}",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
}

/// Reset + StartBuild (or StartScans) + advance to a terminal status, through the control
/// plane, N times.
async fn harness(endpoint: &str, token: &str, n: usize, kind: &str) {
    let scan = kind == "scan";
    let (start_op, id_field, steps) = if scan {
        ("start-scan", "ScanId", 2)
    } else {
        ("start", "BuildId", 3)
    };
    let id_of = |v: &serde_json::Value| -> Option<String> {
        let id = if scan {
            &v["Scans"][0]["ScanId"]
        } else {
            &v["BuildId"]
        };
        id.as_str().map(str::to_string)
    };
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let stream = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let control = |path: &str, body: String| {
        hyper::Request::builder()
            .method("POST")
            .uri(format!("/_imagebuild/{path}"))
            .header("host", host.as_str())
            .header("x-imagebuild-control-token", token)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let mut lat = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        sender.ready().await.unwrap();
        let r = sender
            .send_request(control("reset", "{}".into()))
            .await
            .unwrap();
        assert!(r.status().is_success());
        let _ = r.into_body().collect().await;
        sender.ready().await.unwrap();
        let r = sender
            .send_request(make_request(&host, start_op, 25, i as u64))
            .await
            .unwrap();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let id = id_of(&v).expect("an id");
        sender.ready().await.unwrap();
        let r = sender
            .send_request(control(
                "advance",
                format!("{{\"{id_field}\": \"{id}\", \"Steps\": {steps}}}"),
            ))
            .await
            .unwrap();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Status"], "Succeeded");
        lat.push(t.elapsed().as_micros() as u32);
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "harness kind={kind} iterations={n} reset+start+advance-to-Succeeded p50_ms={:.3} p99_ms={:.3}",
        pct(0.5),
        pct(0.99)
    );
}

/// One slow client: a request whose headers (odd `n`) or body (even `n`) arrive a byte a second.
/// Returns when the server closes the connection.
async fn slow_client(host: &str, n: usize) -> bool {
    use tokio::io::AsyncWriteExt;
    let Ok(mut s) = tokio::net::TcpStream::connect(host).await else {
        return false;
    };
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: AWSMPImageBuilding.DescribeBuilds\r\ncontent-length: 4096\r\n"
    );
    let (first, trickle): (Vec<u8>, Vec<u8>) = if n % 2 == 1 {
        (
            head.as_bytes()[..20].to_vec(),
            head.as_bytes()[20..].to_vec(),
        )
    } else {
        (format!("{head}\r\n").into_bytes(), vec![b' '; 4096])
    };
    if s.write_all(&first).await.is_err() {
        return true;
    }
    for b in trickle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if s.write_all(&[b]).await.is_err() {
            return true;
        }
    }
    false
}

/// One oversized request: 8 MiB declared (odd `n`) or streamed chunked with no length. Returns
/// the status line the server answered with, if any.
async fn oversized(host: &str, n: usize) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    let framing = if n % 2 == 1 {
        "content-length: 8388608".to_string()
    } else {
        "transfer-encoding: chunked".to_string()
    };
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: AWSMPImageBuilding.DescribeBuilds\r\n{framing}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.ok()?;
    let chunk = vec![b'x'; 64 * 1024];
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..128 {
            let ok = if n % 2 == 1 {
                wr.write_all(&chunk).await
            } else {
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                wr.write_all(&framed).await
            };
            if ok.is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await;
    writer.abort();
    let line = String::from_utf8_lossy(&buf[..got.ok()?.ok()?]).to_string();
    line.split(' ').nth(1)?.parse().ok()
}

async fn abuse(endpoint: &str, slow: usize, oversize: usize, seconds: u64) {
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let until = Instant::now() + Duration::from_secs(seconds);
    let closed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for n in 0..slow {
        let (host, closed) = (host.clone(), closed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let run = tokio::time::timeout_at(until.into(), slow_client(&host, n));
                if let Ok(true) = run.await {
                    closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    for n in 0..oversize {
        let (host, statuses) = (host.clone(), statuses.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = n;
            while Instant::now() < until {
                let status = oversized(&host, i).await;
                *statuses.lock().unwrap().entry(status).or_insert(0u64) += 1;
                i += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let statuses = statuses.lock().unwrap();
    println!(
        "abuse slow_connections={slow} closed_by_server={} oversized_answers={:?}",
        closed.load(std::sync::atomic::Ordering::Relaxed),
        *statuses
    );
}

async fn startup(bin: &str, args: &[String]) {
    let started = Instant::now();
    let mut child = std::process::Command::new(bin)
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .map(|i| args[i + 1].clone())
        .expect("--listen ADDR");
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(&listen).await {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let resp = sender
                .send_request(make_request(&listen, "describe", 25, 0))
                .await
                .expect("send");
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            println!(
                "startup_ms={:.1} first_status={status}",
                started.elapsed().as_secs_f64() * 1000.0
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!("server did not answer");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            let max_results = args.get(5).map_or(25, |s| s.parse().unwrap());
            run(&args[1], &args[2], args[3].parse().unwrap(), args[4].parse().unwrap(), max_results).await;
        }
        Some("startup") => startup(&args[1], &args[2..]).await,
        Some("abuse") => {
            abuse(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap(), args[4].parse().unwrap()).await;
        }
        Some("harness") => {
            let kind = args.get(4).map_or("build", String::as_str);
            harness(&args[1], &args[2], args[3].parse().unwrap(), kind).await;
        }
        _ => eprintln!("usage: loadgen run ENDPOINT OP CONCURRENCY REQUESTS [MAX_RESULTS] | loadgen startup BIN ARGS…"),
    }
}
