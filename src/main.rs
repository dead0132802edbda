//! The `imagebuild` binary: parse configuration, start logging, run until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser;

// The service allocates many small strings per request; mimalloc handles that pattern
// markedly better than glibc malloc (measured in docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use imagebuild::app::App;
use imagebuild::config::{Cli, Command};

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `imagebuild world check FILE`: every problem on stdout, one a line; exit 1 on any.
fn check_world(file: &std::path::Path) -> ExitCode {
    let problems = imagebuild::world::World::check_file(file);
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("{}: no problems", file.display());
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: {} problem(s)", file.display(), problems.len());
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard = imagebuild::logging::init(match &cli.command {
        Command::Serve(config) => config.log_format,
        _ => imagebuild::config::LogFormat::Text,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imagebuild: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Dynamodb(imagebuild::config::DynamoCommand::CreateTable { dynamodb_table, dynamodb_endpoint }) => {
                let store = imagebuild::store::dynamo::DynamoStore::connect(&dynamodb_table, dynamodb_endpoint.as_deref()).await;
                match store.create_table().await {
                    Ok(true) => {
                        tracing::info!(table = %dynamodb_table, "created table");
                        ExitCode::SUCCESS
                    }
                    Ok(false) => match store.check_schema().await {
                        Ok(()) => {
                            tracing::info!(table = %dynamodb_table, "table exists with the expected schema");
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            tracing::error!("{e}");
                            ExitCode::FAILURE
                        }
                    },
                    Err(e) => {
                        tracing::error!("cannot create table: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::World(imagebuild::config::WorldCommand::Check { file }) => check_world(&file),
            Command::RotateKeys { data_dir } => {
                use imagebuild::clock::Clock;
                match imagebuild::app::rotate_keys(&data_dir, imagebuild::clock::SystemClock.now_ms()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("cannot rotate keys: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Serve(config) => {
                let app = match App::build(&config).await {
                    Ok(app) => app,
                    Err(e) => {
                        tracing::error!("cannot start: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                if config.insecure_no_signature_check {
                    tracing::warn!("SIGNATURE VERIFICATION IS OFF (--insecure-no-signature-check): any request is accepted as the development account");
                } else {
                    tracing::info!("SigV4 signature verification is on");
                }
                let store = match config.store {
                    imagebuild::config::StoreKind::Dynamodb => format!("dynamodb table {}", config.dynamodb_table),
                    imagebuild::config::StoreKind::Sqlite if config.in_memory => {
                        "in-memory (nothing survives a restart)".to_string()
                    }
                    imagebuild::config::StoreKind::Sqlite => format!("sqlite in {}", config.data_dir.display()),
                };
                let world = config.world.as_ref().map_or_else(|| "built-in demo world".to_string(), |p| p.display().to_string());
                tracing::info!(store = %store, world = %world, "starting");
                let (tx, rx) = tokio::sync::watch::channel(false);
                tracing::info!("listening on http://{}", app.addr);
                let run = tokio::spawn(app.run(rx));
                shutdown_signal().await;
                let _ = tx.send(true);
                let _ = run.await;
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
        }
    })
}
