//! The notifier: delivers the outbox at least once, never blocking builds.
//!
//! By default delivered messages are kept in the store per topic (harnesses list them); with
//! an SNS endpoint configured they are also published there.
//!
//! Depends on: ops (Ctx), store (trait).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::Notification;
use crate::ops::Ctx;

/// Where notifications go.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Delivers one notification.
    ///
    /// # Errors
    /// A human-readable reason; the notification stays queued and is retried.
    async fn deliver(&self, n: &Notification) -> Result<(), String>;
}

/// Keeps messages in the store only.
#[derive(Debug, Default)]
pub struct KeepSink;

#[async_trait]
impl Sink for KeepSink {
    async fn deliver(&self, _n: &Notification) -> Result<(), String> {
        Ok(())
    }
}

/// Delivers pending notifications once; returns how many were delivered.
///
/// # Errors
/// A store failure.
pub async fn deliver_pending(
    ctx: &Ctx,
    sink: &dyn Sink,
) -> Result<usize, crate::store::StoreError> {
    let pending = ctx.store.pending_notifications(100).await?;
    let backlog = i64::try_from(pending.len()).unwrap_or(i64::MAX);
    ctx.metrics.work.outbox_backlog.set(backlog);
    let mut done = Vec::new();
    for entry in &pending {
        match sink.deliver(&entry.notification).await {
            Ok(()) => done.push(entry.id.clone()),
            Err(e) => {
                ctx.metrics.work.sns_publish_failures.inc();
                tracing::warn!(topic = %entry.notification.topic_arn, error = %e, "notification delivery failed; will retry");
                break;
            }
        }
    }
    if !done.is_empty() {
        ctx.store.mark_delivered(&done, ctx.clock.now_ms()).await?;
    }
    Ok(done.len())
}

/// Runs the notifier until `shutdown` turns true.
pub async fn run(
    ctx: Arc<Ctx>,
    sink: Arc<dyn Sink>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wait = match deliver_pending(&ctx, sink.as_ref()).await {
            Ok(n) if n > 0 => Duration::from_millis(0),
            Ok(_) => Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, "notifier failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}
