//! The reservation sweep's loop: every `every`, one pass of `Store::sweep_reservations` under
//! the store's lease (a no-op on stores whose counters cannot leak).
//!
//! Depends on: ops (Ctx), store (trait), metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::ops::Ctx;
use crate::store::metrics::LeaseLabels;

/// How the sweep runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Time between passes.
    pub every: Duration,
    /// Age after which an unwritten reservation is given back.
    pub grace_ms: i64,
}

/// One pass as `owner`; records what it did.
///
/// # Errors
/// A store failure (the next pass tries again).
pub async fn pass(
    ctx: &Ctx,
    owner: &str,
    settings: Settings,
) -> Result<crate::store::Sweep, crate::store::StoreError> {
    let now = ctx.clock.now_ms();
    let out = ctx
        .store
        .sweep_reservations(owner, now, settings.grace_ms)
        .await?;
    let m = &ctx.metrics;
    if out.took_over {
        m.store
            .lease_takeovers
            .get_or_create(&LeaseLabels { lease: "sweep" })
            .inc();
    }
    m.work.reservations_released.inc_by(u64::from(out.released));
    Ok(out)
}

/// Runs passes until `shutdown` turns true.
pub async fn run(
    ctx: Arc<Ctx>,
    settings: Settings,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let owner = uuid::Uuid::new_v4().to_string();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = pass(&ctx, &owner, settings).await {
            tracing::warn!(error = %e, "reservation sweep failed; retrying next pass");
        }
        tokio::select! {
            () = tokio::time::sleep(settings.every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
