//! The `anchor` command: run the whole platform locally (`anchor dev`),
//! migrate, and manage workspaces.
//!
//! Every subcommand finds the database the same way: `DATABASE_URL` (or
//! `ANCHOR_DATABASE_URL`) when set, otherwise the private cluster in
//! `ANCHOR_DATA_DIR`, started if it is not running. A subcommand that had to
//! start the private cluster stops it again when it is done; `anchor dev`
//! always stops it on exit.

mod access;
mod cluster;
mod dev;
mod evidence;
mod webhook;
mod workspace;

use std::{path::PathBuf, process::ExitCode};

use anchor_config::{LogFormat, Overrides, Settings};
use anchor_store::{Database, migrate};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

pub use cluster::PrivateCluster;

#[derive(Debug, Parser)]
#[command(name = "anchor", version, about = "Anchor: PSA, RMM and automation for managed service providers")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand accepts; each is also `ANCHOR_<NAME>` in the
/// environment and a key of the configuration file.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML) [env: ANCHOR_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Local state: private PostgreSQL cluster, dev keys, local object store [env: ANCHOR_DATA_DIR] [default: ./.anchor]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL; without it a private cluster runs in the data directory [env: DATABASE_URL, ANCHOR_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log format: text or json [env: ANCHOR_LOG_FORMAT] [default: text]
    #[arg(long, global = true, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole platform in one process, with embedded defaults
    Dev(dev::DevArgs),
    /// Migrate the platform schema and every workspace schema (idempotent)
    Migrate,
    /// Create and list workspaces (one per client company)
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCommand),
    /// Workspace memberships
    #[command(subcommand)]
    Member(access::MemberCommand),
    /// Local staff accounts for web sign-in
    #[command(subcommand)]
    Account(access::AccountCommand),
    /// Access tokens from the dev issuer, for scripts and curl
    #[command(subcommand)]
    Token(access::TokenCommand),
    /// Signed audit evidence: verify a credential or a workspace's chain, rotate the issuer key
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Webhooks: verify a delivery's Standard Webhooks signature (for receivers)
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format {other:?}; use text or json")),
    }
}

/// Runs a parsed command line; errors are printed as one line and exit 1.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text its
/// parent already contains (common with wrapped database errors).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        log_format: cli.global.log_format,
        ..Overrides::default()
    };
    if let Command::Dev(args) = &cli.command {
        args.apply(&mut overrides);
    }
    let settings = Settings::load(cli.global.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Dev(_) => {
            anchor_observability::init_logging(settings.log_format, &settings.log_filter);
            Box::pin(dev::run(settings)).await
        }
        Command::Token(access::TokenCommand::Issue(args)) => {
            anchor_observability::init_logging(settings.log_format, "warn");
            access::validate_subject(&args.sub)?;
            let issuer = access::dev_issuer(&settings)?;
            let token = issuer.issue(&args.sub, args.ttl)?;
            if args.platform_admin {
                with_database(&settings, |db| async move { access::grant_platform_admin(&db, &args.sub).await })
                    .await?;
            }
            println!("{token}");
            Ok(())
        }
        Command::Webhook(cmd) => {
            anchor_observability::init_logging(settings.log_format, "warn");
            webhook::run(cmd)
        }
        Command::Evidence(evidence::EvidenceCommand::Verify { source, keys }) => {
            anchor_observability::init_logging(settings.log_format, "warn");
            evidence::verify_one(&source, keys.as_deref()).await
        }
        command => {
            // Commands print their results; logs are for warnings only unless asked.
            anchor_observability::init_logging(settings.log_format, "warn");
            let setup = match &command {
                Command::Evidence(_) => Some(anchor_evidence::EvidenceSetup::from_settings(&settings)?),
                _ => None,
            };
            let trusted: Vec<String> = settings.trusted_issuers().into_iter().map(str::to_owned).collect();
            with_database(&settings, |db| async move {
                match command {
                    Command::Migrate => migrate_all(&db, settings.migration_concurrency, true).await,
                    Command::Workspace(cmd) => workspace::run(&db, cmd).await,
                    Command::Member(cmd) => access::set_member(&db, cmd, &trusted).await,
                    Command::Account(cmd) => access::account(&db, cmd).await,
                    Command::Evidence(cmd) => evidence::run(&db, &setup.expect("set up above"), cmd).await,
                    Command::Dev(_) | Command::Token(_) | Command::Webhook(_) => unreachable!("handled above"),
                }
            })
            .await
        }
    }
}

/// The database the settings point at, with the private cluster started when
/// needed, and whether this process started it.
pub(crate) struct ResolvedDatabase {
    pub url: SecretString,
    pub cluster: Option<(PrivateCluster, cluster::Started)>,
}

pub(crate) async fn resolve_database(settings: &Settings) -> anyhow::Result<ResolvedDatabase> {
    if let Some(url) = &settings.database_url {
        return Ok(ResolvedDatabase { url: url.clone(), cluster: None });
    }
    let cluster = PrivateCluster::new(&settings.data_dir, settings.postgres_bin_dir.as_deref())?;
    let started = cluster.ensure_running().await?;
    Ok(ResolvedDatabase { url: cluster.url()?, cluster: Some((cluster, started)) })
}

/// Runs `f` against the installation's database, migrated to this version,
/// and stops the private cluster afterwards if this process started it.
async fn with_database<F, Fut>(settings: &Settings, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let resolved = resolve_database(settings).await?;
    let result = async {
        let db = Database::connect(&resolved.url, 4).await?;
        migrate::migrate_platform(db.pool()).await.context("migrate the platform schema")?;
        let result = f(db.clone()).await;
        db.close().await;
        result
    }
    .await;
    if let Some((cluster, cluster::Started::Now)) = &resolved.cluster {
        cluster.stop().await.context("stop the private PostgreSQL cluster")?;
    }
    result
}

/// Platform schema, then every workspace schema, with progress on stderr.
pub(crate) async fn migrate_all(db: &Database, concurrency: usize, verbose: bool) -> anyhow::Result<()> {
    let platform = migrate::migrate_platform(db.pool()).await.context("migrate the platform schema")?;
    let report = db
        .migrate_workspaces(concurrency, |p| {
            // About twenty progress lines for a large run, one per workspace for a small one.
            let every = (p.total / 20).max(1);
            if verbose && (p.done % every == 0 || p.done == p.total) {
                eprintln!("workspaces: {}/{} migrated (last: {})", p.done, p.total, p.slug);
            }
        })
        .await
        .context("migrate workspace schemas")?;
    if verbose {
        eprintln!(
            "platform schema: {platform} migration(s) applied; workspaces: {} behind, {} migration(s) applied",
            report.behind, report.applied
        );
    } else if platform > 0 || report.applied > 0 {
        tracing::info!(platform, workspaces_behind = report.behind, applied = report.applied, "migrations applied");
    }
    Ok(())
}
