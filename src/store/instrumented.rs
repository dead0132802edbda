//! A `Store` that times every call of the store it wraps (`imagebuild_store_call_seconds`),
//! changing nothing else: same answers, same errors, same `generation`.
//!
//! Depends on: store (trait, metrics).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::metrics::{CallLabels, StoreMetrics};
use super::{
    BuildQuery, CreateOutcome, Cursor, Doc, DocWrite, Effects, OutboxEntry, Page,
    ScanCreateOutcome, ScanPage, ScanQuery, SigningKey, StatusCount, Store, StoreError, Sweep,
    TokenClaim,
};
use crate::domain::{Build, CreatedImage, InstallerLogs, Notification};
use crate::scan::Scan;

/// The timing wrapper.
pub struct Instrumented {
    inner: Arc<dyn Store>,
    metrics: StoreMetrics,
}

impl Instrumented {
    /// Wraps `inner`, recording into `metrics`.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>, metrics: StoreMetrics) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, call: &'static str, f: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.metrics
            .call_seconds
            .get_or_create(&CallLabels { call })
            .observe(started.elapsed().as_secs_f64());
        out
    }
}

type R<T> = Result<T, StoreError>;

#[async_trait]
impl Store for Instrumented {
    async fn create_build(
        &self,
        build: &Build,
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notification: Option<&Notification>,
    ) -> R<CreateOutcome> {
        let f = self
            .inner
            .create_build(build, token, max_in_progress, notification);
        self.timed("create_build", f).await
    }

    async fn list_builds(&self, q: &BuildQuery, after: Option<&Cursor>, limit: usize) -> R<Page> {
        self.timed("list_builds", self.inner.list_builds(q, after, limit))
            .await
    }

    async fn get_build(&self, build_id: &str) -> R<Option<Build>> {
        self.timed("get_build", self.inner.get_build(build_id))
            .await
    }

    async fn due_builds(&self, now_ms: i64, limit: usize) -> R<Vec<Build>> {
        self.timed("due_builds", self.inner.due_builds(now_ms, limit))
            .await
    }

    async fn next_due_ms(&self) -> R<Option<i64>> {
        self.timed("next_due_ms", self.inner.next_due_ms()).await
    }

    async fn update_build(&self, build: &Build, expected: u64, effects: &Effects) -> R<()> {
        self.timed(
            "update_build",
            self.inner.update_build(build, expected, effects),
        )
        .await
    }

    async fn create_scans(
        &self,
        operation: &str,
        scans: &[Scan],
        token: Option<&TokenClaim>,
        max_in_progress: u32,
        notifications: &[Notification],
    ) -> R<ScanCreateOutcome> {
        let f = self
            .inner
            .create_scans(operation, scans, token, max_in_progress, notifications);
        self.timed("create_scans", f).await
    }

    async fn list_scans(&self, q: &ScanQuery, after: Option<&Cursor>, limit: usize) -> R<ScanPage> {
        self.timed("list_scans", self.inner.list_scans(q, after, limit))
            .await
    }

    async fn get_scan(&self, scan_id: &str) -> R<Option<Scan>> {
        self.timed("get_scan", self.inner.get_scan(scan_id)).await
    }

    async fn due_scans(&self, now_ms: i64, limit: usize) -> R<Vec<Scan>> {
        self.timed("due_scans", self.inner.due_scans(now_ms, limit))
            .await
    }

    async fn update_scan(
        &self,
        scan: &Scan,
        expected: u64,
        notification: Option<&Notification>,
    ) -> R<()> {
        self.timed(
            "update_scan",
            self.inner.update_scan(scan, expected, notification),
        )
        .await
    }

    async fn created_image(&self, region: &str, image_id: &str) -> R<Option<CreatedImage>> {
        self.timed("created_image", self.inner.created_image(region, image_id))
            .await
    }

    async fn pending_notifications(&self, limit: usize) -> R<Vec<OutboxEntry>> {
        self.timed(
            "pending_notifications",
            self.inner.pending_notifications(limit),
        )
        .await
    }

    async fn mark_delivered(&self, ids: &[String], now_ms: i64) -> R<()> {
        self.timed("mark_delivered", self.inner.mark_delivered(ids, now_ms))
            .await
    }

    async fn notifications(&self, topic: Option<&str>) -> R<Vec<OutboxEntry>> {
        self.timed("notifications", self.inner.notifications(topic))
            .await
    }

    async fn reset(&self, account: Option<&str>) -> R<()> {
        self.timed("reset", self.inner.reset(account)).await
    }

    async fn clear_notifications(&self, topic: Option<&str>) -> R<()> {
        self.timed("clear_notifications", self.inner.clear_notifications(topic))
            .await
    }

    async fn installer_logs(&self, build_id: &str) -> R<Option<InstallerLogs>> {
        self.timed("installer_logs", self.inner.installer_logs(build_id))
            .await
    }

    async fn signing_keys(&self, purpose: &str, now_ms: i64) -> R<Vec<SigningKey>> {
        self.timed("signing_keys", self.inner.signing_keys(purpose, now_ms))
            .await
    }

    async fn rotate_key(&self, purpose: &str, now_ms: i64) -> R<SigningKey> {
        self.timed("rotate_key", self.inner.rotate_key(purpose, now_ms))
            .await
    }

    async fn get_doc(&self, kind: &str, id: &str) -> R<Option<Doc>> {
        self.timed("get_doc", self.inner.get_doc(kind, id)).await
    }

    async fn list_docs(&self, kind: &str, owner: &str) -> R<Vec<Doc>> {
        self.timed("list_docs", self.inner.list_docs(kind, owner))
            .await
    }

    async fn page_docs(
        &self,
        kind: &str,
        owner: &str,
        before: Option<&str>,
        limit: usize,
    ) -> R<Vec<Doc>> {
        let f = self.inner.page_docs(kind, owner, before, limit);
        self.timed("page_docs", f).await
    }

    async fn due_docs(&self, kind: &str, now_ms: i64, limit: usize) -> R<Vec<Doc>> {
        self.timed("due_docs", self.inner.due_docs(kind, now_ms, limit))
            .await
    }

    async fn write_docs(&self, writes: &[DocWrite]) -> R<()> {
        self.timed("write_docs", self.inner.write_docs(writes))
            .await
    }

    async fn status_counts(&self, doc_kinds: &[&str]) -> R<Vec<StatusCount>> {
        self.timed("status_counts", self.inner.status_counts(doc_kinds))
            .await
    }

    async fn sweep_reservations(&self, owner: &str, now_ms: i64, grace_ms: i64) -> R<Sweep> {
        let f = self.inner.sweep_reservations(owner, now_ms, grace_ms);
        self.timed("sweep_reservations", f).await
    }

    fn generation(&self) -> Option<u64> {
        self.inner.generation()
    }
}
