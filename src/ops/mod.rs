//! The operations: typed inputs in, typed outputs or modeled errors out. No HTTP here.
//!
//! Depends on: domain, store (trait), world, clock, worker (handle only).

pub mod builds;
pub mod catalog;
pub mod error;
pub mod harness;
pub mod images;
pub mod logs;
pub mod page_cache;
pub mod paging;
pub mod scans;

use std::sync::{Arc, RwLock};

pub use builds::find_image;
pub use error::OpError;

use crate::clock::Clock;
use crate::store::Store;
use crate::world::World;

/// Tunables of the operations and the build lifecycle.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// Concurrent in-progress builds allowed per account and region.
    pub max_in_progress_builds: u32,
    /// Page size when MaxResults is absent.
    pub default_page_size: usize,
    /// Seconds spent launching the build instance.
    pub provision_seconds: u64,
    /// Seconds spent running installers.
    pub install_seconds: u64,
    /// Seconds spent creating the image.
    pub imaging_seconds: u64,
    /// An installer that runs longer than this (world `DurationSeconds`) fails with InstallFailed.
    pub install_timeout_seconds: u64,
    /// Lifetime of the log URLs handed out by DescribeBuilds.
    pub log_url_ttl_seconds: i64,
    /// Concurrent in-progress (Ingesting or Scanning) scans allowed per account and region.
    pub max_in_progress_scans: u32,
    /// Seconds a scan spends ingesting.
    pub ingest_seconds: u64,
    /// Seconds a scan spends scanning.
    pub scan_seconds: u64,
    /// Scanning regions and timeout.
    pub scan: crate::scan::checks::ScanSettings,
    /// Seconds each change-set step (preparing, applying) takes.
    pub change_set_seconds: u64,
    /// Seconds Seller Operations takes to review an UpdateVisibility.
    pub review_seconds: u64,
    /// Change sets one account may have open (PREPARING or APPLYING) at once.
    pub max_open_change_sets: u32,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            max_in_progress_builds: 10,
            default_page_size: 100,
            provision_seconds: 2,
            install_seconds: 2,
            imaging_seconds: 2,
            install_timeout_seconds: 3600,
            log_url_ttl_seconds: 3600,
            max_in_progress_scans: 50,
            ingest_seconds: 2,
            scan_seconds: 3,
            scan: crate::scan::checks::ScanSettings::default(),
            change_set_seconds: 2,
            review_seconds: 5,
            max_open_change_sets: 250,
        }
    }
}

/// Wakes the worker when there is new work.
#[derive(Debug, Clone, Default)]
pub struct WorkerHandle {
    notify: Arc<tokio::sync::Notify>,
    /// Held by each worker pass, so the background worker and a control-plane `advance` never
    /// step the same records at once (which would let a scripted outcome meant for one record
    /// be taken by the pass that then loses the record's version race).
    steps: Arc<tokio::sync::Mutex<()>>,
}

impl WorkerHandle {
    /// Tells the worker to look for due work now.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Waits until woken.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Waits for the right to run a worker pass in this process.
    pub async fn pass(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.steps.lock().await
    }
}

/// Where SNS topics live when an SNS endpoint is configured.
#[async_trait::async_trait]
pub trait TopicDirectory: Send + Sync + 'static {
    /// Whether the topic exists.
    ///
    /// # Errors
    /// The endpoint could not answer.
    async fn topic_exists(&self, arn: &str) -> Result<bool, String>;
}

/// Everything operations need, shared by all requests.
pub struct Ctx {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// The world; replaceable at run time.
    pub world: RwLock<Arc<World>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub config: OpsConfig,
    /// Worker wake-up.
    pub worker: WorkerHandle,
    /// Keys that verify NextTokens, newest (the signing one) first; persisted in the store.
    pub paging_keys: Vec<Vec<u8>>,
    /// Signs log URLs (its key is persisted in the store).
    pub url_signer: logs::UrlSigner,
    /// The same clock as `clock`, with the control plane's handle to move it.
    pub clock_shift: Arc<crate::clock::ShiftableClock>,
    /// Control-plane settings.
    pub control: ControlSettings,
    /// What a harness set: transitions, scripted outcomes, seed, faults.
    pub harness: harness::Harness,
    /// The SNS endpoint's topics, when one is configured (else the world's).
    pub topics: Option<std::sync::Arc<dyn TopicDirectory>>,
    /// Rendered DescribeBuilds answers, reused until the next write or second.
    pub pages: page_cache::PageCache,
    /// Rendered build objects, reused while the record, host and second are the same.
    pub fragments: page_cache::FragmentCache,
    /// True once shutdown began: in-flight requests finish, readiness answers 503.
    pub draining: std::sync::atomic::AtomicBool,
    /// Instruments (`/_imagebuild/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Ctx {
    /// A snapshot of the current world.
    #[must_use]
    pub fn world(&self) -> Arc<World> {
        self.world
            .read()
            .map_or_else(|p| p.into_inner().clone(), |w| w.clone())
    }
}

/// Who may use the mutating control-plane endpoints.
#[derive(Clone, Default)]
pub struct ControlSettings {
    /// The token mutating requests must carry in `X-Imagebuild-Control-Token`.
    pub token: String,
    /// False when the service listens beyond loopback without `--control-plane-on-public-address`.
    pub mutations_enabled: bool,
}

impl std::fmt::Debug for ControlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSettings")
            .field("mutations_enabled", &self.mutations_enabled)
            .finish_non_exhaustive()
    }
}

/// The authenticated caller of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Account id.
    pub account: String,
    /// Region of the request's credential scope.
    pub region: String,
    /// Scheme and authority the caller reached the service at (for URLs handed back).
    pub base_url: String,
}
