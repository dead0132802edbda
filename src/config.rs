//! Command-line and environment configuration, read once at start.
//!
//! Depends on: ops (OpsConfig), protocol (ProtocolConfig), server (Limits), worker (sweep settings).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// AWS Marketplace Image Build Service (and AMI scanning), wire-compatible.
#[derive(Debug, Parser)]
#[command(
    name = "imagebuild",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("IMAGEBUILD_GIT_COMMIT"), ")"),
    about
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start; boxing buys nothing
pub enum Command {
    /// Run the service.
    Serve(ServeConfig),
    /// DynamoDB table management.
    #[command(subcommand)]
    Dynamodb(DynamoCommand),
    /// World files.
    #[command(subcommand)]
    World(WorldCommand),
    /// Add new NextToken and log-URL signing keys to a data directory; the old ones keep
    /// verifying for `--key-grace-hours` after the service restarts.
    RotateKeys {
        /// Directory of the embedded store.
        #[arg(long, env = "IMAGEBUILD_DATA_DIR", default_value = "imagebuild-data")]
        data_dir: PathBuf,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// Which store backs the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// Embedded SQLite in the data directory.
    Sqlite,
    /// One DynamoDB table shared by every instance.
    Dynamodb,
}

/// `imagebuild world …` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorldCommand {
    /// Validate a world file offline with start-up's checks; print every problem with its
    /// path and exit 1 if there is any.
    Check {
        /// The world file.
        file: PathBuf,
    },
}

/// `imagebuild dynamodb …` subcommands.
#[derive(Debug, Subcommand)]
pub enum DynamoCommand {
    /// Create the table and its indexes (does nothing if it exists).
    CreateTable {
        /// Table name.
        #[arg(long, env = "IMAGEBUILD_DYNAMODB_TABLE", default_value = "imagebuild")]
        dynamodb_table: String,
        /// Endpoint of a DynamoDB-compatible server.
        #[arg(long, env = "IMAGEBUILD_DYNAMODB_ENDPOINT")]
        dynamodb_endpoint: Option<String>,
    },
}

/// `imagebuild serve` options; every one also reads an `IMAGEBUILD_*` variable.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    #[arg(long, env = "IMAGEBUILD_LISTEN", default_value = "127.0.0.1:4580")]
    pub listen: SocketAddr,
    /// Directory of the embedded store.
    #[arg(long, env = "IMAGEBUILD_DATA_DIR", default_value = "imagebuild-data")]
    pub data_dir: PathBuf,
    /// Store backend: `sqlite` (embedded, in the data dir) or `dynamodb` (a shared table).
    #[arg(long, env = "IMAGEBUILD_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// DynamoDB table (with `--store dynamodb`).
    #[arg(long, env = "IMAGEBUILD_DYNAMODB_TABLE", default_value = "imagebuild")]
    pub dynamodb_table: String,
    /// DynamoDB endpoint, for DynamoDB-compatible servers (else the AWS SDK's chain, including
    /// `AWS_ENDPOINT_URL_DYNAMODB`).
    #[arg(long, env = "IMAGEBUILD_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
    /// Keep everything in memory (nothing survives a restart); for tests.
    #[arg(long, env = "IMAGEBUILD_IN_MEMORY", default_value_t = false)]
    pub in_memory: bool,
    /// World file (JSON); the built-in demo world when absent.
    #[arg(long, env = "IMAGEBUILD_WORLD")]
    pub world: Option<PathBuf>,
    /// Accounts file (JSON): accounts, access keys, session credentials, allowed actions; the
    /// development account only when absent.
    #[arg(long, env = "IMAGEBUILD_ACCOUNTS")]
    pub accounts: Option<PathBuf>,
    /// Hours a rotated-out signing key keeps verifying NextTokens and log URLs.
    #[arg(long, env = "IMAGEBUILD_KEY_GRACE_HOURS", default_value_t = 24)]
    pub key_grace_hours: u64,
    /// Concurrent in-progress builds allowed per account and region.
    #[arg(long, env = "IMAGEBUILD_MAX_CONCURRENT_BUILDS", default_value_t = 10)]
    pub max_concurrent_builds: u32,
    /// Seconds a build spends launching its instance.
    #[arg(long, env = "IMAGEBUILD_PROVISION_SECONDS", default_value_t = 2)]
    pub provision_seconds: u64,
    /// Seconds a build spends running installers.
    #[arg(long, env = "IMAGEBUILD_INSTALL_SECONDS", default_value_t = 2)]
    pub install_seconds: u64,
    /// Seconds a build spends creating the image.
    #[arg(long, env = "IMAGEBUILD_IMAGING_SECONDS", default_value_t = 2)]
    pub imaging_seconds: u64,
    /// Installers whose world DurationSeconds exceed this fail with InstallFailed.
    #[arg(
        long,
        env = "IMAGEBUILD_INSTALL_TIMEOUT_SECONDS",
        default_value_t = 3600
    )]
    pub install_timeout_seconds: u64,
    /// Concurrent in-progress (Ingesting or Scanning) AMI scans allowed per account and region.
    #[arg(long, env = "IMAGEBUILD_MAX_CONCURRENT_SCANS", default_value_t = 50)]
    pub max_concurrent_scans: u32,
    /// Seconds a scan spends ingesting the AMI.
    #[arg(long, env = "IMAGEBUILD_INGEST_SECONDS", default_value_t = 2)]
    pub ingest_seconds: u64,
    /// Seconds a scan spends scanning the AMI.
    #[arg(long, env = "IMAGEBUILD_SCAN_SECONDS", default_value_t = 3)]
    pub scan_seconds: u64,
    /// Seconds each Catalog change-set step (PREPARING, APPLYING) takes.
    #[arg(long, env = "IMAGEBUILD_CHANGE_SET_SECONDS", default_value_t = 2)]
    pub change_set_seconds: u64,
    /// Seconds the Seller Operations review of an UpdateVisibility change takes.
    #[arg(long, env = "IMAGEBUILD_REVIEW_SECONDS", default_value_t = 5)]
    pub review_seconds: u64,
    /// Change sets one account may have open at once (AWS's quota is 250).
    #[arg(long, env = "IMAGEBUILD_MAX_OPEN_CHANGE_SETS", default_value_t = 250)]
    pub max_open_change_sets: u32,
    /// Regions AMIs must be in to be scanned (comma-separated; AWS scans in us-east-1 only).
    #[arg(
        long,
        env = "IMAGEBUILD_SCAN_REGIONS",
        default_value = "us-east-1",
        value_delimiter = ','
    )]
    pub scan_regions: Vec<String>,
    /// Images whose world BootSeconds exceed this fail their scan with ScanTimedOut.
    #[arg(long, env = "IMAGEBUILD_SCAN_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub scan_timeout_seconds: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "IMAGEBUILD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Milliseconds a client may take to send its request headers.
    #[arg(long, env = "IMAGEBUILD_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Log lines as `text` or `json` (one object a line); every request adds an access line.
    #[arg(long, env = "IMAGEBUILD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds between SIGTERM and closing the listener, during which `/_imagebuild/ready`
    /// answers 503 while requests are still served (so a load balancer stops sending first).
    #[arg(long, env = "IMAGEBUILD_SHUTDOWN_DELAY_SECONDS", default_value_t = 0)]
    pub shutdown_delay_seconds: u64,
    /// Also serve the Prometheus exposition as `/metrics` on this address (it is always at
    /// `/_imagebuild/metrics` on the main one).
    #[arg(long, env = "IMAGEBUILD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a scrape reuses the store's counts of builds, scans and change sets by status
    /// (`imagebuild_resources`) before counting again; 0 counts at every scrape.
    #[arg(long, env = "IMAGEBUILD_METRICS_STATUS_SECONDS", default_value_t = 15)]
    pub metrics_status_seconds: u64,
    /// Do not count requests or time store calls (the `imagebuild_http_*` and
    /// `imagebuild_store_call_seconds` families stay empty): only to measure what they cost.
    #[arg(long, env = "IMAGEBUILD_NO_REQUEST_METRICS", default_value_t = false)]
    pub no_request_metrics: bool,
    /// Seconds between passes of the DynamoDB in-progress reservation sweep.
    #[arg(
        long,
        env = "IMAGEBUILD_RESERVATION_SWEEP_SECONDS",
        default_value_t = 30
    )]
    pub reservation_sweep_seconds: u64,
    /// Seconds after which a StartBuild slot reservation whose build was never written is
    /// given back (far longer than any StartBuild takes).
    #[arg(
        long,
        env = "IMAGEBUILD_RESERVATION_GRACE_SECONDS",
        default_value_t = 120
    )]
    pub reservation_grace_seconds: u64,
    /// Milliseconds a client may take to send its request body.
    #[arg(long, env = "IMAGEBUILD_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Seconds to add to the server's clock (tests of clock skew; may be negative).
    #[arg(
        long,
        env = "IMAGEBUILD_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        allow_hyphen_values = true
    )]
    pub clock_offset_seconds: i64,
    /// Rendered DescribeBuilds answers kept for reuse by identical requests (pollers, waiters)
    /// until the next write or the next second; 0 turns the reuse off.
    #[arg(long, env = "IMAGEBUILD_RESPONSE_CACHE_ENTRIES", default_value_t = 128)]
    pub response_cache_entries: usize,
    /// Most connections served at once; more wait to be accepted.
    #[arg(long, env = "IMAGEBUILD_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Publish notifications to this SNS-compatible endpoint (and check topics there).
    #[arg(long, env = "IMAGEBUILD_SNS_ENDPOINT")]
    pub sns_endpoint: Option<String>,
    /// Token for the mutating control-plane endpoints (generated and logged once when absent).
    #[arg(long, env = "IMAGEBUILD_CONTROL_TOKEN")]
    pub control_token: Option<String>,
    /// Allow the mutating control-plane endpoints when listening beyond loopback.
    #[arg(
        long,
        env = "IMAGEBUILD_CONTROL_PLANE_ON_PUBLIC_ADDRESS",
        default_value_t = false
    )]
    pub control_plane_on_public_address: bool,
    /// Accept requests without verifying SigV4 signatures (logged loudly at start).
    #[arg(
        long,
        env = "IMAGEBUILD_INSECURE_NO_SIGNATURE_CHECK",
        default_value_t = false
    )]
    pub insecure_no_signature_check: bool,
}

impl ServeConfig {
    /// A configuration for tests: port 0, in memory, zero-length build stages.
    #[must_use]
    pub fn for_test() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::from("unused"),
            in_memory: true,
            store: StoreKind::Sqlite,
            dynamodb_table: "imagebuild".into(),
            dynamodb_endpoint: None,
            world: None,
            accounts: None,
            key_grace_hours: 24,
            max_concurrent_builds: 10,
            provision_seconds: 0,
            install_seconds: 0,
            imaging_seconds: 0,
            install_timeout_seconds: 3600,
            max_concurrent_scans: 50,
            ingest_seconds: 0,
            scan_seconds: 0,
            change_set_seconds: 0,
            review_seconds: 0,
            max_open_change_sets: 250,
            scan_regions: vec!["us-east-1".into()],
            scan_timeout_seconds: 1800,
            max_body_bytes: 1024 * 1024,
            max_connections: 1024,
            response_cache_entries: 128,
            header_timeout_ms: 10_000,
            shutdown_delay_seconds: 0,
            metrics_listen: None,
            metrics_status_seconds: 0,
            no_request_metrics: false,
            reservation_sweep_seconds: 30,
            reservation_grace_seconds: 120,
            log_format: LogFormat::Text,
            body_timeout_ms: 30_000,
            clock_offset_seconds: 0,
            sns_endpoint: None,
            control_token: Some("test-control-token".into()),
            control_plane_on_public_address: false,
            insecure_no_signature_check: false,
        }
    }

    /// The operations' tunables.
    #[must_use]
    pub fn ops(&self) -> crate::ops::OpsConfig {
        crate::ops::OpsConfig {
            max_in_progress_builds: self.max_concurrent_builds,
            provision_seconds: self.provision_seconds,
            install_seconds: self.install_seconds,
            imaging_seconds: self.imaging_seconds,
            install_timeout_seconds: self.install_timeout_seconds,
            max_in_progress_scans: self.max_concurrent_scans,
            ingest_seconds: self.ingest_seconds,
            scan_seconds: self.scan_seconds,
            change_set_seconds: self.change_set_seconds,
            review_seconds: self.review_seconds,
            max_open_change_sets: self.max_open_change_sets,
            scan: crate::scan::checks::ScanSettings {
                regions: self.scan_regions.clone(),
                timeout_seconds: self.scan_timeout_seconds,
            },
            ..crate::ops::OpsConfig::default()
        }
    }

    /// The accept loop's limits.
    #[must_use]
    pub fn limits(&self) -> crate::server::Limits {
        crate::server::Limits {
            max_connections: self.max_connections,
            header_read_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            shutdown_delay: std::time::Duration::from_secs(self.shutdown_delay_seconds),
        }
    }

    /// How the reservation sweep runs.
    #[must_use]
    pub fn sweep(&self) -> crate::worker::sweep::Settings {
        crate::worker::sweep::Settings {
            every: std::time::Duration::from_secs(self.reservation_sweep_seconds.max(1)),
            grace_ms: i64::try_from(self.reservation_grace_seconds.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    /// The HTTP front end's limits.
    #[must_use]
    pub fn protocol(&self) -> crate::protocol::service::ProtocolConfig {
        crate::protocol::service::ProtocolConfig {
            max_body_bytes: self.max_body_bytes,
            body_timeout: std::time::Duration::from_millis(self.body_timeout_ms),
            verify_signatures: !self.insecure_no_signature_check,
            request_metrics: !self.no_request_metrics,
        }
    }
}
