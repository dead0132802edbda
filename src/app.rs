//! The composition root: builds the store, world, context, service and background tasks from
//! a `ServeConfig`, and runs them until shutdown.
//!
//! Depends on: everything.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;

use crate::auth::StaticCredentials;
use crate::clock::{Clock, SystemClock};
use crate::config::ServeConfig;
use crate::model::{Model, AMI_SCANNING_MODEL, IMAGE_BUILD_MODEL};
use crate::ops::{Ctx, WorkerHandle};
use crate::protocol::service::Service;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::world::World;

/// Key purpose of the NextToken signing keys.
pub const PAGING_KEYS: &str = "next-token";
/// Key purpose of the log-URL signing keys.
pub const LOG_URL_KEYS: &str = "log-url";

/// Adds a new signing key for NextTokens and log URLs in `data_dir`; the previous keys keep
/// verifying for the grace period (`--key-grace-hours`) once the service restarts.
///
/// # Errors
/// The store cannot be opened or written.
pub async fn rotate_keys(data_dir: &std::path::Path, now_ms: i64) -> Result<(), StartError> {
    let store = SqliteStore::open_beside_server(data_dir)?;
    for purpose in [PAGING_KEYS, LOG_URL_KEYS] {
        let _ = store.signing_keys(purpose, now_ms).await?;
        let k = store.rotate_key(purpose, now_ms).await?;
        tracing::info!(purpose, key_id = k.id, "rotated signing key");
    }
    Ok(())
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The world file is unusable.
    #[error(transparent)]
    World(#[from] crate::world::WorldError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The accounts file is unusable.
    #[error(transparent)]
    Accounts(#[from] crate::auth::accounts::AccountsError),
    /// The shipped model is broken (a packaging bug).
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A built, bound, not yet running service.
pub struct App {
    /// The shared service.
    pub service: Arc<Service>,
    /// The bound listener.
    pub listener: TcpListener,
    /// The bound address (resolves port 0).
    pub addr: SocketAddr,
    limits: crate::server::Limits,
    sink: Arc<dyn crate::worker::notify::Sink>,
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    sweep: crate::worker::sweep::Settings,
}

/// Opens the configured store, wrapped so that every call is timed; returns it with the
/// backend's instruments.
async fn open_store(
    config: &ServeConfig,
) -> Result<(Arc<dyn Store>, crate::store::metrics::StoreMetrics), StartError> {
    let (backend, metrics): (Arc<dyn Store>, _) = match config.store {
        crate::config::StoreKind::Dynamodb => {
            let d = crate::store::dynamo::DynamoStore::connect(
                &config.dynamodb_table,
                config.dynamodb_endpoint.as_deref(),
            )
            .await;
            d.check_schema().await?;
            let m = d.metrics();
            (Arc::new(d), m)
        }
        crate::config::StoreKind::Sqlite => {
            let s = if config.in_memory {
                SqliteStore::in_memory()?
            } else {
                SqliteStore::open(&config.data_dir)?
            };
            let m = s.metrics();
            (Arc::new(s), m)
        }
    };
    if config.no_request_metrics {
        return Ok((backend, metrics));
    }
    let timed = crate::store::instrumented::Instrumented::new(backend, metrics.clone());
    Ok((Arc::new(timed), metrics))
}

/// The control plane's token (generated and logged once when none is configured) and whether
/// its mutations are allowed.
fn control_settings(config: &ServeConfig) -> crate::ops::ControlSettings {
    crate::ops::ControlSettings {
        token: config.control_token.clone().unwrap_or_else(|| {
            use rand::RngCore;
            let mut b = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut b);
            let t = hex::encode(b);
            tracing::info!("control-plane token (X-Imagebuild-Control-Token): {t}");
            t
        }),
        mutations_enabled: config.listen.ip().is_loopback()
            || config.control_plane_on_public_address,
    }
}

/// The NextToken and log-URL keys still in their grace period, newest first.
async fn keys_in_grace(
    store: &dyn Store,
    now: i64,
    grace_hours: u64,
) -> Result<(Vec<Vec<u8>>, Vec<Vec<u8>>), StartError> {
    let grace_ms = i64::try_from(grace_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
    let keys = |v: Vec<crate::store::SigningKey>| -> Vec<Vec<u8>> {
        crate::store::keys_in_grace(&v, now, grace_ms)
            .into_iter()
            .map(|k| k.key)
            .collect()
    };
    let paging = keys(store.signing_keys(PAGING_KEYS, now).await?);
    let urls = keys(store.signing_keys(LOG_URL_KEYS, now).await?);
    Ok((paging, urls))
}

/// Binds `addr`, resolving port 0.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

impl App {
    /// Builds everything from `config` with the wall clock.
    ///
    /// # Errors
    /// `StartError` naming what is wrong.
    pub async fn build(config: &ServeConfig) -> Result<App, StartError> {
        let clock: Arc<dyn Clock> = if config.clock_offset_seconds == 0 {
            Arc::new(SystemClock)
        } else {
            Arc::new(crate::clock::OffsetClock {
                offset_ms: config.clock_offset_seconds.saturating_mul(1000),
            })
        };
        Self::build_with_clock(config, clock).await
    }

    /// Builds everything from `config` with the given clock.
    ///
    /// # Errors
    /// `StartError` naming what is wrong.
    pub async fn build_with_clock(
        config: &ServeConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartError> {
        let clock_shift = Arc::new(crate::clock::ShiftableClock::new(clock));
        let clock: Arc<dyn Clock> = clock_shift.clone();
        let control = control_settings(config);
        let world = match &config.world {
            Some(path) => World::from_file(path)?,
            None => World::demo()?,
        };
        let (store, store_metrics) = open_store(config).await?;
        let metrics = Arc::new(crate::metrics::Metrics::new(
            store_metrics,
            std::time::Duration::from_secs(config.metrics_status_seconds),
        ));
        let sns = match &config.sns_endpoint {
            Some(endpoint) => Some(Arc::new(crate::sns::Sns::connect(endpoint).await)),
            None => None,
        };
        let (paging_keys, url_keys) =
            keys_in_grace(store.as_ref(), clock.now_ms(), config.key_grace_hours).await?;
        let ctx = Arc::new(Ctx {
            store,
            world: RwLock::new(Arc::new(world)),
            clock,
            clock_shift,
            control,
            harness: crate::ops::harness::Harness::default(),
            config: config.ops(),
            worker: WorkerHandle::default(),
            paging_keys,
            url_signer: crate::ops::logs::UrlSigner::new(&url_keys),
            topics: sns
                .clone()
                .map(|s| s as Arc<dyn crate::ops::TopicDirectory>),
            pages: crate::ops::page_cache::PageCache::new(config.response_cache_entries),
            fragments: crate::ops::page_cache::FragmentCache::new(
                config.response_cache_entries.saturating_mul(32),
            ),
            draining: std::sync::atomic::AtomicBool::new(false),
            metrics,
        });
        let model = Model::parse(IMAGE_BUILD_MODEL)?;
        let credentials = match &config.accounts {
            Some(path) => crate::auth::accounts::from_file(path)?,
            None => StaticCredentials::development(),
        };
        let scan_model = Model::parse(AMI_SCANNING_MODEL)?;
        let service = Arc::new(Service::new(
            ctx,
            model,
            scan_model,
            credentials,
            config.protocol(),
        ));
        let (listener, addr) = bind(config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let sink: Arc<dyn crate::worker::notify::Sink> = match sns {
            Some(s) => s,
            None => Arc::new(crate::worker::notify::KeepSink),
        };
        Ok(App {
            service,
            listener,
            addr,
            limits: config.limits(),
            sink,
            metrics_listener,
            sweep: config.sweep(),
        })
    }

    /// Runs server, worker and notifier until `shutdown` turns true, then drains and stops.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let ctx = self.service.ctx.clone();
        let worker = tokio::spawn(crate::worker::run(ctx.clone(), shutdown.clone()));
        let notifier = tokio::spawn(crate::worker::notify::run(
            ctx.clone(),
            self.sink,
            shutdown.clone(),
        ));
        let sweep = tokio::spawn(crate::worker::sweep::run(
            ctx.clone(),
            self.sweep,
            shutdown.clone(),
        ));
        if let Some((listener, addr)) = self.metrics_listener {
            tracing::info!("metrics on http://{addr}/metrics");
            tokio::spawn(crate::server::serve_metrics(
                listener,
                ctx,
                shutdown.clone(),
            ));
        }
        crate::server::serve(self.listener, self.service, self.limits, shutdown).await;
        let _ = worker.await;
        let _ = notifier.await;
        let _ = sweep.await;
    }
}
