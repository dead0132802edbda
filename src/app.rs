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
use crate::model::{Model, IMAGE_BUILD_MODEL};
use crate::ops::{Ctx, WorkerHandle};
use crate::protocol::service::Service;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::world::World;

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
    max_connections: usize,
    sink: Arc<dyn crate::worker::notify::Sink>,
}

impl App {
    /// Builds everything from `config` with the wall clock.
    ///
    /// # Errors
    /// `StartError` naming what is wrong.
    pub async fn build(config: &ServeConfig) -> Result<App, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds everything from `config` with the given clock.
    ///
    /// # Errors
    /// `StartError` naming what is wrong.
    pub async fn build_with_clock(
        config: &ServeConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartError> {
        let world = match &config.world {
            Some(path) => World::from_file(path)?,
            None => World::demo()?,
        };
        let store: Arc<dyn Store> = if config.in_memory {
            Arc::new(SqliteStore::in_memory()?)
        } else {
            Arc::new(SqliteStore::open(&config.data_dir)?)
        };
        let sns = match &config.sns_endpoint {
            Some(endpoint) => Some(Arc::new(crate::sns::Sns::connect(endpoint).await)),
            None => None,
        };
        let paging_key = store.secret("next-token-key").await?;
        let url_key = store.secret("log-url-key").await?;
        let ctx = Arc::new(Ctx {
            store,
            world: RwLock::new(Arc::new(world)),
            clock,
            config: config.ops(),
            worker: WorkerHandle::default(),
            paging_key,
            url_signer: crate::ops::logs::UrlSigner::new(&url_key),
            topics: sns
                .clone()
                .map(|s| s as Arc<dyn crate::ops::TopicDirectory>),
        });
        let model = Model::parse(IMAGE_BUILD_MODEL)?;
        let credentials = match &config.accounts {
            Some(path) => crate::auth::accounts::from_file(path)?,
            None => StaticCredentials::development(),
        };
        let service = Arc::new(Service::new(ctx, model, credentials, config.protocol()));
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let sink: Arc<dyn crate::worker::notify::Sink> = match sns {
            Some(s) => s,
            None => Arc::new(crate::worker::notify::KeepSink),
        };
        Ok(App {
            service,
            listener,
            addr,
            max_connections: config.max_connections,
            sink,
        })
    }

    /// Runs server, worker and notifier until `shutdown` turns true, then drains and stops.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let ctx = self.service.ctx.clone();
        let worker = tokio::spawn(crate::worker::run(ctx.clone(), shutdown.clone()));
        let notifier = tokio::spawn(crate::worker::notify::run(ctx, self.sink, shutdown.clone()));
        crate::server::serve(self.listener, self.service, self.max_connections, shutdown).await;
        let _ = worker.await;
        let _ = notifier.await;
    }
}
