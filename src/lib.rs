//! `imagebuild`: the AWS Marketplace Image Build Service (and Marketplace's self-service AMI
//! scanning), wire-compatible with AWS so that the `aws` CLI, the SDKs and test harnesses drive
//! it unchanged.
//!
//! Layers, arrows pointing down: `server` → `protocol` (awsJson1_1, SigV4 via `auth`, model
//! validation via `model`) → `ops` → `domain` / `store` / `world`; `worker` advances builds in
//! the background; `app` wires it all; `control` serves `/_imagebuild/…`.

pub mod app;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod console;
pub mod control;
pub mod domain;
pub mod encoding;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod protocol;
pub mod scan;
pub mod server;
pub mod sns;
pub mod store;
pub mod worker;
pub mod world;
