//! Recurring jobs (pruning, reconciliation, later SLA clocks and billing
//! runs). Each occurrence runs once across all worker replicas: a replica
//! runs a job only after moving its `next_run_at` forward in one statement.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use anchor_store::Database;
use tokio_util::sync::CancellationToken;

type JobFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// A job that runs every `every`.
#[derive(Clone)]
pub struct RecurringJob {
    pub name: &'static str,
    pub every: Duration,
    run: Arc<dyn Fn(Database) -> JobFuture + Send + Sync>,
}

impl std::fmt::Debug for RecurringJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecurringJob").field("name", &self.name).field("every", &self.every).finish()
    }
}

impl RecurringJob {
    /// `run` returns a one-line summary for the log, or an error.
    pub fn new<F, Fut>(name: &'static str, every: Duration, run: F) -> Self
    where
        F: Fn(Database) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        Self { name, every, run: Arc::new(move |db| Box::pin(run(db))) }
    }
}

/// Records the jobs and their intervals (a changed interval takes effect).
pub async fn register_jobs(db: &Database, jobs: &[RecurringJob]) -> Result<(), sqlx::Error> {
    for job in jobs {
        sqlx::query(
            "INSERT INTO platform.recurring_jobs (name, every_secs) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET every_secs = EXCLUDED.every_secs",
        )
        .bind(job.name)
        .bind(job.every.as_secs().max(1) as i32)
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// Runs `jobs` on schedule until `shutdown`.
pub async fn run_recurring_jobs(
    db: Database,
    jobs: Vec<RecurringJob>,
    shutdown: CancellationToken,
) -> Result<(), sqlx::Error> {
    register_jobs(&db, &jobs).await?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        // A database that is away for a while delays the jobs; it does not end them.
        if let Err(e) = run_due_jobs(&db, &jobs).await {
            tracing::error!(error = %e, "recurring jobs could not run; trying again");
        }
    }
}

/// One pass: runs every job that is due and that this replica wins.
/// Returns the names of the jobs it ran.
pub async fn run_due_jobs(db: &Database, jobs: &[RecurringJob]) -> Result<Vec<&'static str>, sqlx::Error> {
    let mut ran = Vec::new();
    for job in jobs {
        let due: Option<String> = sqlx::query_scalar(
            "UPDATE platform.recurring_jobs
                SET next_run_at = now() + make_interval(secs => every_secs), last_run_at = now()
              WHERE name = $1 AND next_run_at <= now()
             RETURNING name",
        )
        .bind(job.name)
        .fetch_optional(db.pool())
        .await?;
        if due.is_none() {
            continue;
        }
        ran.push(job.name);
        let error = match (job.run)(db.clone()).await {
            Ok(summary) => {
                tracing::debug!(job = job.name, %summary, "recurring job ran");
                None
            }
            Err(e) => {
                tracing::warn!(job = job.name, error = %e, "recurring job failed");
                Some(e)
            }
        };
        sqlx::query("UPDATE platform.recurring_jobs SET last_error = $2 WHERE name = $1")
            .bind(job.name)
            .bind(error)
            .execute(db.pool())
            .await?;
    }
    Ok(ran)
}
