//! The worker role: the outbox dispatcher and the job processor.
//!
//! [`run`] is the one way to start it, from `anchor dev` and from the
//! `anchor-worker` binary alike. Topic handlers (AgentField hand-off,
//! webhook delivery, event publication) register in [`handlers`] as they are
//! built; recurring jobs in [`recurring_jobs`].

use std::time::Duration;

use anchor_config::Settings;
use anchor_outbox::{Dispatcher, DispatcherConfig, Handlers, RecurringJob};
use anchor_store::Database;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// What the worker needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub dispatcher: DispatcherConfig,
}

impl Config {
    pub fn from_settings(settings: &Settings, database_url: SecretString) -> Self {
        Self {
            database_url,
            database_max_connections: settings.database_max_connections,
            dispatcher: DispatcherConfig::default(),
        }
    }
}

/// Delivered outbox events are kept this long for inspection, then dropped.
pub const DELIVERED_RETENTION_DAYS: i32 = 7;

/// The handler of every outbox topic this worker delivers.
pub fn handlers() -> Handlers {
    Handlers::new()
}

/// The installation's housekeeping.
pub fn recurring_jobs() -> Vec<RecurringJob> {
    vec![
        RecurringJob::new("sessions.prune", Duration::from_secs(600), |db: Database| async move {
            db.prune_sessions().await.map(|n| format!("{n} expired web sessions dropped")).map_err(|e| e.to_string())
        }),
        RecurringJob::new("idempotency.prune", Duration::from_secs(600), |db: Database| async move {
            db.prune_idempotency_keys()
                .await
                .map(|n| format!("{n} idempotency keys past retention dropped"))
                .map_err(|e| e.to_string())
        }),
        RecurringJob::new("outbox.prune_delivered", Duration::from_secs(3600), |db: Database| async move {
            anchor_outbox::prune_delivered(&db, DELIVERED_RETENTION_DAYS)
                .await
                .map(|n| format!("{n} delivered outbox events dropped"))
                .map_err(|e| e.to_string())
        }),
    ]
}

/// Runs until `shutdown`: the dispatcher (when there are topics to deliver)
/// and the recurring jobs, under one token.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = Database::connect(&config.database_url, config.database_max_connections).await?;
    let handlers = handlers();
    let dispatcher = Dispatcher::new(db.clone(), handlers.clone(), config.dispatcher.clone());
    let dispatch = async {
        if handlers.topics().is_empty() {
            shutdown.cancelled().await;
            Ok(())
        } else {
            dispatcher.run(shutdown.clone()).await
        }
    };
    let jobs = anchor_outbox::run_recurring_jobs(db.clone(), recurring_jobs(), shutdown.clone());
    tracing::info!("worker started");
    let (dispatched, jobs) = tokio::join!(dispatch, jobs);
    db.close().await;
    tracing::info!("worker stopped");
    dispatched?;
    jobs?;
    Ok(())
}
