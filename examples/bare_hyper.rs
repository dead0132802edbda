//! The ceiling of the stack: a bare hyper 1.x server on the same runtime that answers every
//! request with a fixed JSON body of a chosen size (default: the size of a DescribeBuilds page
//! of 25). `cargo run --release --example bare_hyper -- 127.0.0.1:4590 [BYTES]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4590".into());
    let size: usize = args
        .next()
        .map_or(25 * 1100, |s| s.parse().expect("size in bytes"));
    let body = Bytes::from(format!(
        "{{\"Builds\":\"{}\"}}",
        "x".repeat(size.saturating_sub(14))
    ));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("listening on http://{}", listener.local_addr().unwrap());
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    let mut resp = hyper::Response::new(Full::new(body));
                    resp.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
                    );
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
