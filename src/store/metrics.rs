//! What the store measures of itself: the latency of every store call (by the `Instrumented`
//! wrapper), SQLite's group commits, and DynamoDB's calls and refusals (by an SDK
//! interceptor that sees every attempt, retries included).
//!
//! Depends on: prometheus-client only; the registry that exposes these is `crate::metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Latency buckets (seconds) shared by every latency histogram of the service: 50 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// A histogram with `LATENCY_BUCKETS`.
#[must_use]
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The name of one store call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The `Store` method.
    pub call: &'static str,
}

/// The name of one DynamoDB API and what became of the attempt.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `PutItem`, `TransactWriteItems`, …
    pub api: String,
    /// HTTP status of the attempt (0 when no response came).
    pub status: u16,
}

/// A lease's name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    /// `build` (a step a dead instance left half-done) or `sweep` (the reservation sweep).
    pub lease: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The store's instruments. Cloning shares them.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// Seconds per store call, by call.
    pub call_seconds: HistogramFamily<CallLabels>,
    /// Writes per SQLite group commit.
    pub group_commit_writes: Histogram,
    /// Seconds per SQLite `COMMIT` (the WAL fsync under `synchronous=FULL`).
    pub commit_seconds: Histogram,
    /// DynamoDB attempts by API and status.
    pub dynamodb_calls: Family<ApiLabels, Counter>,
    /// DynamoDB conditional checks that failed (a single-item condition, or a transaction
    /// cancelled by one).
    pub dynamodb_condition_failures: Counter,
    /// DynamoDB transactions cancelled by a conflicting transaction.
    pub dynamodb_transaction_conflicts: Counter,
    /// DynamoDB throttles (provisioned throughput, request limit, throttling).
    pub dynamodb_throttles: Counter,
    /// Leases taken over from an instance that let them lapse (registered with the worker's).
    pub lease_takeovers: Family<LeaseLabels, Counter>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            call_seconds: Family::new_with_constructor(latency_histogram),
            group_commit_writes: Histogram::new([
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0,
            ]),
            commit_seconds: latency_histogram(),
            dynamodb_calls: Family::default(),
            dynamodb_condition_failures: Counter::default(),
            dynamodb_transaction_conflicts: Counter::default(),
            dynamodb_throttles: Counter::default(),
            lease_takeovers: Family::default(),
        }
    }
}

impl StoreMetrics {
    /// Registers every instrument under `imagebuild_store_…`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("store");
        r.register_with_unit(
            "call",
            "Latency of store calls, by call",
            Unit::Seconds,
            self.call_seconds.clone(),
        );
        r.register(
            "sqlite_group_commit_writes",
            "Writes committed together by one SQLite group commit",
            self.group_commit_writes.clone(),
        );
        r.register_with_unit(
            "sqlite_commit",
            "Latency of SQLite COMMIT, the WAL fsync included",
            Unit::Seconds,
            self.commit_seconds.clone(),
        );
        r.register(
            "dynamodb_calls",
            "DynamoDB call attempts, by API and HTTP status",
            self.dynamodb_calls.clone(),
        );
        r.register(
            "dynamodb_condition_failures",
            "DynamoDB conditional checks that failed",
            self.dynamodb_condition_failures.clone(),
        );
        r.register(
            "dynamodb_transaction_conflicts",
            "DynamoDB transactions cancelled by a conflicting transaction",
            self.dynamodb_transaction_conflicts.clone(),
        );
        r.register(
            "dynamodb_throttles",
            "DynamoDB requests throttled",
            self.dynamodb_throttles.clone(),
        );
    }

    /// Counts one DynamoDB attempt from its API, status and (error) body.
    pub fn dynamodb_attempt(&self, api: &str, status: u16, body: Option<&[u8]>) {
        self.dynamodb_calls
            .get_or_create(&ApiLabels {
                api: api.to_string(),
                status,
            })
            .inc();
        if status < 400 {
            return;
        }
        let body = body.unwrap_or_default();
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        if has(b"ConditionalCheckFailed") {
            self.dynamodb_condition_failures.inc();
        }
        if has(b"TransactionConflict") {
            self.dynamodb_transaction_conflicts.inc();
        }
        if has(b"Throughput") || has(b"Throttling") || has(b"RequestLimitExceeded") {
            self.dynamodb_throttles.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_refusals_are_told_apart_by_their_bodies() {
        let m = StoreMetrics::default();
        m.dynamodb_attempt("PutItem", 200, Some(b"{}"));
        m.dynamodb_attempt(
            "UpdateItem",
            400,
            Some(br##"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"##),
        );
        m.dynamodb_attempt(
            "TransactWriteItems",
            400,
            Some(br#"{"CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict"}]}"#),
        );
        m.dynamodb_attempt(
            "Query",
            400,
            Some(br##"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}"##),
        );
        assert_eq!(m.dynamodb_condition_failures.get(), 1);
        assert_eq!(m.dynamodb_transaction_conflicts.get(), 1);
        assert_eq!(m.dynamodb_throttles.get(), 1);
        let calls = |api: &str, status| {
            m.dynamodb_calls
                .get_or_create(&ApiLabels {
                    api: api.into(),
                    status,
                })
                .get()
        };
        assert_eq!(calls("PutItem", 200), 1);
        assert_eq!(calls("UpdateItem", 400), 1);
    }
}
