//! `anchor dev`: every role of the platform in one process, under one
//! shutdown token, with embedded defaults. Today the roles are the gateway
//! (with the web app), the worker (outbox dispatcher and job processor), the
//! agent node (Anchor's skills and reasoners), the AgentField mock (unless
//! `agentfield_url` names a real control plane) and the metrics listener;
//! the status mock joins as it is built.

use std::{future::Future, net::SocketAddr};

use anchor_config::{Overrides, Settings};
use anchor_store::Database;
use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{migrate_all, resolve_database};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Public HTTP listener; port 0 picks a free port [env: ANCHOR_HTTP_ADDR] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Prometheus metrics listener; port 0 picks a free port [env: ANCHOR_METRICS_ADDR] [default: 127.0.0.1:0]
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

impl DevArgs {
    pub(crate) fn apply(&self, overrides: &mut Overrides) {
        overrides.http_addr = self.http_addr;
        overrides.metrics_addr = self.metrics_addr;
    }
}

pub(crate) async fn run(mut settings: Settings) -> anyhow::Result<()> {
    // Development: the dev issuer is trusted unless turned off explicitly.
    settings.dev_issuer.get_or_insert(true);
    // Only the control plane (here the mock) may call the agent node: a
    // fresh internal token per run unless one is configured.
    settings
        .agent_node_token
        .get_or_insert_with(|| format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()).into());
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let resolved = resolve_database(&settings).await?;
    if let Some((cluster, started)) = &resolved.cluster {
        let how = match started {
            crate::cluster::Started::Now => "started",
            crate::cluster::Started::AlreadyRunning => "already running, reused",
        };
        println!("PostgreSQL: private cluster in {} ({how})", cluster.cluster_dir().display());
    }
    let result = Box::pin(serve(&settings, resolved.url.clone(), shutdown)).await;
    if let Some((cluster, _)) = &resolved.cluster {
        cluster.stop().await.context("stop the private PostgreSQL cluster")?;
        println!("PostgreSQL: private cluster stopped");
    }
    result
}

async fn serve(settings: &Settings, database_url: SecretString, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = Database::connect(&database_url, 4).await?;
    migrate_all(&db, settings.migration_concurrency, false).await?;
    let first_admin = crate::access::bootstrap_admin(&db).await?;
    db.close().await;

    let listener = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} (setting http_addr, ANCHOR_HTTP_ADDR)", settings.http_addr))?;
    let metrics_listener = TcpListener::bind(settings.metrics_addr).await.with_context(|| {
        format!("cannot listen on {} (setting metrics_addr, ANCHOR_METRICS_ADDR)", settings.metrics_addr)
    })?;
    let addr = listener.local_addr()?;
    let agentfield_mock = match &settings.agentfield_url {
        Some(_) => None,
        None if cfg!(feature = "agentfield-mock") => {
            Some(TcpListener::bind("127.0.0.1:0").await.context("bind the AgentField mock")?)
        }
        None => anyhow::bail!(
            "this build of anchor has no AgentField mock: set agentfield_url (ANCHOR_AGENTFIELD_URL) to the control plane"
        ),
    };
    let agentfield_url = match (&agentfield_mock, &settings.agentfield_url) {
        (Some(mock), _) => format!("http://{}", mock.local_addr()?),
        (None, Some(url)) => url.clone(),
        (None, None) => unreachable!("the mock runs when no control plane is configured"),
    };
    // The agent node is internal to the dev process: any free loopback port.
    let node_listener = TcpListener::bind("127.0.0.1:0").await.context("bind the agent node")?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    println!("Anchor is running at http://{addr}");
    println!("  readiness:  http://{addr}/readyz");
    println!("  API:        http://{addr}/api/v1/openapi.json");
    println!("  metrics:    http://{}/metrics", metrics_listener.local_addr()?);
    let mock_note = if agentfield_mock.is_some() { " (mock)" } else { "" };
    println!("  AgentField: {agentfield_url}{mock_note}");
    println!("  agent node: http://{}", node_listener.local_addr()?);
    println!("  state:      {}", settings.data_dir.display());
    if settings.dev_issuer_trusted() {
        println!("Sign in from scripts with a dev token:");
        println!("  TOKEN=$(anchor token issue --sub you --platform-admin)");
        println!("  curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/api/v1/workspaces");
    }
    if let Some(password) = &first_admin {
        println!("First run: a platform admin account was created; its password is shown only this once.");
        println!("  sign in at http://{addr}/ as: admin");
        println!("  password:   {password}");
    }
    println!("Press Ctrl-C to stop.");

    let gateway_config = anchor_gateway::Config::from_settings(settings, database_url.clone(), addr)?;
    let worker_config =
        anchor_worker::Config::from_settings(settings, database_url.clone(), &public_url, &agentfield_url)?;
    let node_config =
        anchor_agent_node::Config::from_settings(settings, database_url, node_listener.local_addr()?, &agentfield_url)?;
    let node_token = settings.agent_node_token.as_ref().map(|t| t.expose_secret().to_owned());
    let mock = run_mock(agentfield_mock, node_token, shutdown.clone());
    let (gateway, worker, node, mock, metrics) = tokio::join!(
        role("gateway", &shutdown, anchor_gateway::run(gateway_config, listener, shutdown.clone())),
        role("worker", &shutdown, anchor_worker::run(worker_config, shutdown.clone())),
        role("agent-node", &shutdown, anchor_agent_node::run(node_config, node_listener, shutdown.clone())),
        async {
            // An absent mock is not a stopped role: only a running one cancels the rest.
            if settings.agentfield_url.is_some() { Ok(()) } else { role("agentfield-mock", &shutdown, mock).await }
        },
        role("metrics", &shutdown, async {
            anchor_observability::serve_metrics(metrics_listener, shutdown.clone()).await.map_err(anyhow::Error::from)
        }),
    );
    gateway.and(worker).and(node).and(mock).and(metrics)
}

/// Runs one role; when it ends, for whatever reason, the others stop too.
async fn role(
    name: &str,
    shutdown: &CancellationToken,
    task: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let result = task.await;
    shutdown.cancel();
    result.with_context(|| format!("{name} failed"))
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::select! {
        () = anchor_observability::shutdown_signal() => {}
        () = shutdown.cancelled() => return,
    }
    eprintln!("stopping...");
    shutdown.cancel();
}

/// The AgentField mock on `listener`, when there is one.
#[cfg(feature = "agentfield-mock")]
async fn run_mock(
    listener: Option<TcpListener>,
    node_token: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(listener) = listener else { return Ok(()) };
    // Everything runs on loopback in dev: let the mock call the gateway back.
    let config = anchor_agentfield_mock::Config {
        webhook_allowed_hosts: vec!["127.0.0.1".into(), "localhost".into(), "::1".into()],
        node_token,
        ..anchor_agentfield_mock::Config::default()
    };
    anchor_agentfield_mock::run(config, listener, shutdown).await
}

#[cfg(not(feature = "agentfield-mock"))]
async fn run_mock(_: Option<TcpListener>, _: Option<String>, _: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
