//! The accept loop: HTTP/1.1 connections on hyper, header-read timeout, header limits, a cap
//! on concurrent connections, and graceful shutdown that drains in-flight requests.
//!
//! Depends on: protocol (Service).

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::protocol::service::Service;

/// Connection limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Longest time a client may take to send its request headers (then the connection closes).
    pub header_read_timeout: Duration,
    /// How long to keep accepting after shutdown begins (readiness already says 503).
    pub shutdown_delay: Duration,
}
/// Longest time in-flight requests get to finish at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    limits: Limits,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Until shutdown begins the listener runs for ever; then for the shutdown delay.
    let mut closing_at: Option<tokio::time::Instant> = None;
    let close = |at: Option<tokio::time::Instant>| async move {
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending::<()>().await,
        }
    };
    loop {
        // A dropped sender means nobody can ask any more: shut down as if asked.
        let asked = *shutdown.borrow() || shutdown.has_changed().is_err();
        if closing_at.is_none() && asked {
            service
                .ctx
                .draining
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if !limits.shutdown_delay.is_zero() {
                tracing::info!(
                    delay_s = limits.shutdown_delay.as_secs(),
                    "shutdown: not ready; still accepting for the delay"
                );
            }
            closing_at = Some(tokio::time::Instant::now() + limits.shutdown_delay);
        }
        if closing_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
            break;
        }
        if permits.available_permits() == 0 {
            // At the cap: the next connection waits in the backlog for a free slot.
            service.ctx.metrics.rejected("connection_cap");
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed(), if closing_at.is_none() => continue,
            () = close(closing_at) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed(), if closing_at.is_none() => continue,
            () = close(closing_at) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // At most 100 headers: hyper's default. Setting the same number explicitly would
            // initialise a 100-slot array for every request it parses (measured, 1 % of CPU).
            .max_buf_size(64 * 1024)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| {
                    let svc = svc.clone();
                    async move { Ok::<_, std::convert::Infallible>(svc.handle(req).await) }
                }),
            );
        let conn = graceful.watch(conn);
        let metrics = service.ctx.metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    metrics.rejected("header_timeout");
                }
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
            drop(permit);
        });
    }
    service
        .ctx
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; closing remaining connections");
    }
}

/// Serves the exposition as `GET /metrics` on its own listener (`--metrics-listen`) until
/// `shutdown`; anything else is 404. A scrape reads atomics and, at most every
/// `--metrics-status-seconds`, the store: it never holds up requests on the main listener.
pub async fn serve_metrics(
    listener: TcpListener,
    ctx: Arc<crate::ops::Ctx>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ctx = ctx.clone();
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let ctx = ctx.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(if req.uri().path() == "/metrics" {
                            crate::control::metrics_response(&ctx).await
                        } else {
                            crate::control::not_found()
                        })
                    }
                }),
            );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
