//! The service's instruments and their Prometheus exposition (`/_imagebuild/metrics`, and
//! `/metrics` on `--metrics-listen`).
//!
//! `prometheus-client` (the Prometheus project's own crate) rather than the `metrics` facade:
//! its registry is a value, so every `App` (several per test process) has its own series and a
//! test can assert exact counts; counters and gauges are plain atomics, families a read-locked
//! map, so recording on the request path costs a hash and an atomic add.
//!
//! Families: `imagebuild_http_*` (requests by service, operation, status and error code;
//! latency; in flight; bytes; rejected connections), `imagebuild_resources` (builds, scans and
//! change sets by status, counted in the store at most every `status_every`) and
//! `imagebuild_transitions_total`, `imagebuild_worker_*`, `imagebuild_store_*`
//! (`store::metrics`), `imagebuild_process_*` and `imagebuild_build_info`.
//!
//! Depends on: store (metrics, status counts), domain, scan, catalog (the status names).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::store::metrics::{latency_histogram, StoreMetrics};
use crate::store::Store;

/// Content type of the exposition (OpenMetrics text, which Prometheus reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The version and commit this binary was built from.
pub const BUILD_COMMIT: &str = env!("IMAGEBUILD_GIT_COMMIT");

/// One request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `AWSMPImageBuilding`, `AWSMPAmiScanning`, `AWSMPSeymour` (Catalog), `control`, `console`.
    pub service: &'static str,
    /// The operation, or the control-plane endpoint.
    pub operation: Cow<'static, str>,
    /// HTTP status.
    pub status: u16,
    /// `X-Amzn-ErrorType`, empty on success.
    pub error_code: Cow<'static, str>,
}

/// One operation's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// As in `RequestLabels`.
    pub service: &'static str,
    /// As in `RequestLabels`.
    pub operation: Cow<'static, str>,
}

/// A service's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// As in `RequestLabels`.
    pub service: &'static str,
}

/// Why a connection or request was turned away.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `connection_cap` (waited for a free slot), `header_timeout`, `body_timeout`,
    /// `body_too_large`.
    pub reason: &'static str,
}

/// A record kind and its status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `build`, `scan`, `changeset`.
    pub resource: String,
    /// The status as on the wire.
    pub status: String,
}

/// A status change.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// `build`, `scan`, `changeset`.
    pub resource: &'static str,
    /// The status before (`new` for a record just created).
    pub from: &'static str,
    /// The status after.
    pub to: &'static str,
}

/// A record kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// `build`, `scan`, `changeset`.
    pub resource: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The HTTP front end's instruments.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds from the request's arrival to its answer.
    pub duration: HistogramFamily<OperationLabels>,
    /// Requests being handled.
    pub in_flight: Gauge,
    /// Request body bytes (as declared by Content-Length).
    pub bytes_in: Family<ServiceLabels, Counter>,
    /// Response body bytes.
    pub bytes_out: Family<ServiceLabels, Counter>,
    /// Connections and requests turned away, by reason.
    pub rejected: Family<ReasonLabels, Counter>,
}

/// The worker's and the records' instruments.
#[derive(Debug, Clone)]
pub struct WorkMetrics {
    /// Status changes (and creations, from `new`).
    pub transitions: Family<TransitionLabels, Counter>,
    /// Records found due by the last worker pass.
    pub due: Family<ResourceLabels, Gauge>,
    /// Seconds per worker step of one record.
    pub step: HistogramFamily<ResourceLabels>,
    /// Steps whose version-fenced write lost to another writer.
    pub fenced_writes_lost: Family<ResourceLabels, Counter>,
    /// In-progress slots given back by the reservation sweep.
    pub reservations_released: Counter,
    /// Undelivered notifications seen by the notifier's last pass (at most its batch, 100).
    pub outbox_backlog: Gauge,
    /// Notifications an SNS endpoint refused (each is retried).
    pub sns_publish_failures: Counter,
}

/// Process facts, read at each scrape.
#[derive(Debug, Clone, Default)]
struct ProcessMetrics {
    resident: Gauge,
    open_fds: Gauge,
    uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// Every instrument of one service instance, and its registry.
#[derive(Debug)]
pub struct Metrics {
    /// HTTP front end.
    pub http: HttpMetrics,
    /// Worker and records.
    pub work: WorkMetrics,
    /// The store (shared with the store itself).
    pub store: StoreMetrics,
    resources: Family<StatusLabels, Gauge>,
    process: ProcessMetrics,
    registry: Registry,
    started: Instant,
    status_every: Duration,
    /// Serializes scrapes; holds when the status counts were last refreshed.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

impl HttpMetrics {
    fn new() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            rejected: Family::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("http");
        r.register("requests", "Requests answered", self.requests.clone());
        r.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer",
            Unit::Seconds,
            self.duration.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests being handled",
            self.in_flight.clone(),
        );
        r.register_with_unit(
            "request",
            "Request body bytes received",
            Unit::Bytes,
            self.bytes_in.clone(),
        );
        r.register_with_unit(
            "response",
            "Response body bytes sent",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
        r.register(
            "rejected",
            "Connections and requests turned away (connection cap, slow or oversized clients)",
            self.rejected.clone(),
        );
    }
}

impl WorkMetrics {
    fn new() -> Self {
        Self {
            transitions: Family::default(),
            due: Family::default(),
            step: Family::new_with_constructor(latency_histogram),
            fenced_writes_lost: Family::default(),
            reservations_released: Counter::default(),
            outbox_backlog: Gauge::default(),
            sns_publish_failures: Counter::default(),
        }
    }

    fn register(&self, registry: &mut Registry, store: &StoreMetrics) {
        registry.register(
            "transitions",
            "Status changes of builds, scans and change sets (from \"new\" when created)",
            self.transitions.clone(),
        );
        let r = registry.sub_registry_with_prefix("worker");
        r.register(
            "due",
            "Records due at the last worker pass",
            self.due.clone(),
        );
        r.register_with_unit(
            "step",
            "Time of one worker step of one record",
            Unit::Seconds,
            self.step.clone(),
        );
        r.register(
            "fenced_writes_lost",
            "Worker steps whose version-fenced write lost to another writer",
            self.fenced_writes_lost.clone(),
        );
        r.register(
            "lease_takeovers",
            "Leases taken over from an instance that let them lapse",
            store.lease_takeovers.clone(),
        );
        r.register(
            "reservations_released",
            "In-progress build slots given back because their build was never written",
            self.reservations_released.clone(),
        );
        r.register(
            "outbox_backlog",
            "Undelivered notifications at the notifier's last pass (at most 100)",
            self.outbox_backlog.clone(),
        );
        r.register(
            "sns_publish_failures",
            "Notifications the SNS endpoint refused (retried)",
            self.sns_publish_failures.clone(),
        );
    }
}

impl Metrics {
    /// Instruments for one instance; `store` comes from the store backend; the status counts
    /// are refreshed at a scrape at most every `status_every` (zero: at every scrape).
    #[must_use]
    pub fn new(store: StoreMetrics, status_every: Duration) -> Self {
        let mut registry = Registry::with_prefix("imagebuild");
        let (http, work) = (HttpMetrics::new(), WorkMetrics::new());
        let resources = Family::<StatusLabels, Gauge>::default();
        let process = ProcessMetrics::default();
        http.register(&mut registry);
        work.register(&mut registry, &store);
        store.register(&mut registry);
        register_rest(&mut registry, &resources, &process);
        Self {
            http,
            work,
            store,
            resources,
            process,
            registry,
            started: Instant::now(),
            status_every,
            refreshed: tokio::sync::Mutex::new(None),
        }
    }

    /// Counts a status change.
    pub fn transition(&self, resource: &'static str, from: &'static str, to: &'static str) {
        self.work
            .transitions
            .get_or_create(&TransitionLabels { resource, from, to })
            .inc();
    }

    /// Counts a turned-away connection or request.
    pub fn rejected(&self, reason: &'static str) {
        self.http
            .rejected
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The exposition: refreshes the status counts if due (a store failure keeps the last
    /// ones), reads the process facts, and encodes every family.
    pub async fn render(&self, store: &dyn Store) -> String {
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_none_or(|at| at.elapsed() >= self.status_every) {
            match self.refresh_statuses(store).await {
                Ok(()) => *refreshed = Some(Instant::now()),
                Err(e) => tracing::warn!(error = %e, "metrics: status counts not refreshed"),
            }
        }
        self.read_process();
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics: encoding failed");
        }
        out
    }

    async fn refresh_statuses(&self, store: &dyn Store) -> Result<(), crate::store::StoreError> {
        let counts = tokio::time::timeout(
            Duration::from_secs(10),
            store.status_counts(&[crate::catalog::kind::CHANGE_SET]),
        )
        .await
        .map_err(|_| crate::store::StoreError::Unavailable("status counts timed out".into()))??;
        for (resource, status) in known_statuses() {
            self.resources
                .get_or_create(&StatusLabels { resource, status })
                .set(0);
        }
        for c in counts {
            let labels = StatusLabels {
                resource: c.resource,
                status: c.status,
            };
            self.resources
                .get_or_create(&labels)
                .set(i64::try_from(c.count).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    fn read_process(&self) {
        let p = &self.process;
        if let Some(kb) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| vm_rss_kb(&s))
        {
            p.resident.set(kb.saturating_mul(1024));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            p.open_fds
                .set(i64::try_from(dir.count()).unwrap_or(i64::MAX));
        }
        p.uptime.set(self.started.elapsed().as_secs_f64());
    }
}

/// Registers the resource gauges, the process facts and the build info.
fn register_rest(
    registry: &mut Registry,
    resources: &Family<StatusLabels, Gauge>,
    process: &ProcessMetrics,
) {
    registry.register(
        "resources",
        "Builds, scans and change sets by status, as counted in the store",
        resources.clone(),
    );
    let info = Info::new(vec![
        ("version", env!("CARGO_PKG_VERSION")),
        ("commit", BUILD_COMMIT),
    ]);
    registry.register("build", "The version and commit of this binary", info);
    let r = registry.sub_registry_with_prefix("process");
    r.register_with_unit(
        "resident_memory",
        "Resident set size",
        Unit::Bytes,
        process.resident.clone(),
    );
    r.register(
        "open_fds",
        "Open file descriptors",
        process.open_fds.clone(),
    );
    r.register_with_unit(
        "uptime",
        "Time since the service started",
        Unit::Seconds,
        process.uptime.clone(),
    );
}

/// Every status each resource can be in, so that a status with no records reads 0.
fn known_statuses() -> Vec<(String, String)> {
    let builds = crate::domain::BuildStatus::ALL
        .iter()
        .map(|s| ("build", s.as_str()));
    let scans = crate::scan::ScanStatus::ALL
        .iter()
        .map(|s| ("scan", s.as_str()));
    let sets = crate::catalog::Status::ALL
        .iter()
        .map(|s| (crate::catalog::kind::CHANGE_SET, s.as_str()));
    builds
        .chain(scans)
        .chain(sets)
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect()
}

/// `VmRSS:  1234 kB` of `/proc/self/status`.
fn vm_rss_kb(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_exposition_has_every_family_and_zero_for_unseen_statuses() {
        let store = crate::store::sqlite::SqliteStore::in_memory().expect("store");
        let m = Metrics::new(store.metrics(), Duration::ZERO);
        m.transition("build", "new", "InProgress");
        m.rejected("body_too_large");
        let text = m.render(&store).await;
        for line in [
            "imagebuild_transitions_total{resource=\"build\",from=\"new\",to=\"InProgress\"} 1",
            "imagebuild_http_rejected_total{reason=\"body_too_large\"} 1",
            "imagebuild_resources{resource=\"build\",status=\"InProgress\"} 0",
            "imagebuild_resources{resource=\"changeset\",status=\"PREPARING\"} 0",
            "imagebuild_build_info{version=\"",
            "# TYPE imagebuild_process_resident_memory_bytes gauge",
            "# TYPE imagebuild_store_sqlite_commit_seconds histogram",
            "# TYPE imagebuild_http_requests_in_flight gauge",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        assert_eq!(vm_rss_kb("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048));
        assert_eq!(vm_rss_kb("Name:\tx\n"), None);
    }
}
