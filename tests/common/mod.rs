//! Test harness: an in-process server on port 0 and a client that signs with `aws-sigv4`'s
//! own high-level signer (an independent check of the server's canonicalisation).

#![allow(dead_code, clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use imagebuild::app::App;
use imagebuild::clock::{Clock, ManualClock, SystemClock};
use imagebuild::config::ServeConfig;
use serde_json::Value;

pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub struct TestApp {
    pub addr: SocketAddr,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub handle: tokio::task::JoinHandle<()>,
    pub client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    pub region: String,
    pub access_key: String,
    pub secret: String,
    pub clock: Arc<dyn Clock>,
}

/// Everything that goes into one signature.
#[derive(Debug, Clone)]
pub struct SignOpts {
    pub access_key: String,
    pub secret: String,
    pub token: Option<String>,
    pub region: String,
    pub service: String,
    pub at_ms: i64,
    pub target: String,
    pub body: String,
    /// Sign in the query string, valid this long.
    pub presign_expires: Option<Duration>,
}

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Reply {
    pub fn error_type(&self) -> &str {
        self.body
            .get("__type")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body
            .get("Message")
            .or_else(|| self.body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

pub async fn spawn(config: ServeConfig) -> TestApp {
    spawn_with_clock(config, Arc::new(SystemClock)).await
}

pub async fn spawn_with_clock(config: ServeConfig, clock: Arc<dyn Clock>) -> TestApp {
    let app = App::build_with_clock(&config, clock.clone())
        .await
        .expect("app builds");
    let addr = app.addr;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(app.run(rx));
    TestApp {
        addr,
        shutdown: tx,
        handle,
        client: Client::builder(TokioExecutor::new()).build_http(),
        region: "us-east-1".into(),
        access_key: ACCESS_KEY.into(),
        secret: SECRET_KEY.into(),
        clock,
    }
}

pub fn manual_clock() -> Arc<ManualClock> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    Arc::new(ManualClock::new(now))
}

/// A client of a server running elsewhere (another process) at `addr`, signing as the
/// development account; `stop` only lets go of it.
pub fn remote(addr: SocketAddr) -> TestApp {
    TestApp {
        addr,
        shutdown: tokio::sync::watch::channel(false).0,
        handle: tokio::spawn(async {}),
        client: Client::builder(TokioExecutor::new()).build_http(),
        region: "us-east-1".into(),
        access_key: ACCESS_KEY.into(),
        secret: SECRET_KEY.into(),
        clock: Arc::new(SystemClock),
    }
}

impl TestApp {
    /// Sends a request; `None` when the connection fails (the server died mid-request).
    pub async fn try_raw(&self, req: hyper::Request<Full<Bytes>>) -> Option<Reply> {
        let resp = self.client.request(req).await.ok()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.into_body().collect().await.ok()?.to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Some(Reply {
            status,
            headers,
            body,
            raw,
        })
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
    }

    /// Sends a raw request exactly as given.
    pub async fn raw(&self, req: hyper::Request<Full<Bytes>>) -> Reply {
        let resp = self.client.request(req).await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    /// Builds a request signed by aws-sigv4 at the clock's time.
    pub fn signed(&self, target: &str, body: &str) -> hyper::Request<Full<Bytes>> {
        self.signed_at(target, body, self.clock.now_ms())
    }

    pub fn signed_at(&self, target: &str, body: &str, at_ms: i64) -> hyper::Request<Full<Bytes>> {
        self.sign(&SignOpts {
            target: target.into(),
            body: body.into(),
            at_ms,
            ..self.opts()
        })
    }

    /// Signing options for this app's current key, secret and region, now.
    pub fn opts(&self) -> SignOpts {
        SignOpts {
            access_key: self.access_key.clone(),
            secret: self.secret.clone(),
            token: None,
            region: self.region.clone(),
            service: "aws-marketplace".into(),
            at_ms: self.clock.now_ms(),
            target: "AWSMPImageBuilding.DescribeBuilds".into(),
            body: "{}".into(),
            presign_expires: None,
        }
    }

    /// Builds a request signed by aws-sigv4 exactly as `o` says (header or query-string auth).
    pub fn sign(&self, o: &SignOpts) -> hyper::Request<Full<Bytes>> {
        let host = self.addr.to_string();
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", o.target.as_str()),
        ];
        let identity: Identity =
            Credentials::new(&o.access_key, &o.secret, o.token.clone(), None, "test").into();
        let mut settings = SigningSettings::default();
        if let Some(exp) = o.presign_expires {
            settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
            settings.expires_in = Some(exp);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&o.region)
            .name(&o.service)
            .time(UNIX_EPOCH + Duration::from_millis(o.at_ms as u64))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = format!("http://{host}/");
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(o.body.as_bytes()),
        )
        .unwrap();
        let (instructions, _sig) = sign(signable, &params).unwrap().into_parts();
        let mut req = hyper::Request::builder().method("POST").uri(&uri);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let mut req = req.body(Full::new(Bytes::from(o.body.clone()))).unwrap();
        instructions.apply_to_request_http1x(&mut req);
        req
    }

    /// A Catalog API (restJson1) request: `method path?query` with a JSON body (POST) or none,
    /// signed as botocore signs it.
    #[allow(dead_code)] // not every test binary uses the Catalog
    pub fn signed_rest(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> hyper::Request<Full<Bytes>> {
        let host = self.addr.to_string();
        let mut headers = vec![("host", host.as_str())];
        if method == "POST" {
            headers.push(("content-type", "application/json"));
        }
        let identity: Identity =
            Credentials::new(&self.access_key, &self.secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("aws-marketplace")
            .time(UNIX_EPOCH + Duration::from_millis(self.clock.now_ms() as u64))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let uri = format!("http://{host}{path_and_query}");
        let signable = SignableRequest::new(
            method,
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .unwrap();
        let (instructions, _sig) = sign(signable, &params).unwrap().into_parts();
        let mut req = hyper::Request::builder().method(method).uri(&uri);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let mut req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        instructions.apply_to_request_http1x(&mut req);
        req
    }

    /// Calls a Catalog API operation (`POST /<op>` with `body`, or GET/PATCH/DELETE with `query`).
    #[allow(dead_code)] // not every test binary uses the Catalog
    pub async fn catalog(&self, method: &str, op: &str, query: &str, body: Value) -> Reply {
        let path = if query.is_empty() {
            format!("/{op}")
        } else {
            format!("/{op}?{query}")
        };
        let body = if method == "POST" {
            body.to_string()
        } else {
            String::new()
        };
        self.raw(self.signed_rest(method, &path, &body)).await
    }

    pub async fn call(&self, op: &str, body: Value) -> Reply {
        let req = self.signed(&format!("AWSMPImageBuilding.{op}"), &body.to_string());
        self.raw(req).await
    }

    /// Calls an operation of the AMI scanning companion service.
    #[allow(dead_code)] // not every test binary scans
    pub async fn scan_call(&self, op: &str, body: Value) -> Reply {
        let req = self.signed(&format!("AWSMPAmiScanning.{op}"), &body.to_string());
        self.raw(req).await
    }

    pub async fn get(&self, url: &str) -> (u16, String) {
        let req = hyper::Request::builder()
            .uri(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn builds(&self) -> Vec<Value> {
        let r = self
            .call("DescribeBuilds", serde_json::json!({"MaxResults": 256}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["Builds"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until the build leaves InProgress (builds in tests have zero-length stages).
    pub async fn wait_terminal(&self, build_id: &str) -> Value {
        for _ in 0..200 {
            let r = self
                .call(
                    "DescribeBuilds",
                    serde_json::json!({"BuildIds": [build_id]}),
                )
                .await;
            let b = r.body["Builds"][0].clone();
            if b["Status"] != "InProgress" {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("build {build_id} stayed InProgress");
    }
}

pub fn start_body(fo: &str, image: &str) -> Value {
    serde_json::json!({
        "FulfillmentOptionIds": [fo],
        "SourceImageId": image,
        "DestinationImageName": "test image",
    })
}

pub const GOOD_FO: &str = "fo-ids4xf7qagwyc";
pub const LINUX_AMI: &str = "ami-0a1b2c3d4e5f60718";
