//! The worker role: the outbox dispatcher and the job processor.
//!
//! [`run`] is the one way to start it, from `anchor dev` and from the
//! `anchor-worker` binary alike. Topic handlers (AgentField hand-off,
//! webhook delivery, event publication) register in [`handlers`] as they are
//! built; recurring jobs in [`recurring_jobs`].

pub mod ops;

use std::{sync::Arc, time::Duration};

use anchor_agentfield::{AgentFieldClient, ClientConfig};
use anchor_commands::{
    CommandSigner,
    automation::AlertRouter,
    callback::CallbackKey,
    orchestrator::{Orchestrator, OrchestratorConfig},
};
use anchor_config::Settings;
use anchor_events::{EventBus, StreamSettings};
use anchor_evidence::{EvidenceSetup, issue::Issuer, keys::IssuerKeys};
use anchor_notify::{MailConfig, Notifier};
use anchor_outbox::{Dispatcher, DispatcherConfig, Handlers, RecurringJob};
use anchor_store::Database;
use anchor_webhooks::{
    address::Allowlist,
    delivery::{Deliverer, DeliveryConfig},
    fanout::Fanout,
};
use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// What the worker needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// When pooled connections are replaced (`database_max_lifetime`,
    /// `database_max_uses`).
    pub database_recycling: anchor_store::Recycling,
    pub dispatcher: DispatcherConfig,
    /// NATS with JetStream for domain events; `None`: the in-process bus.
    pub nats_url: Option<String>,
    /// The AgentField control plane commands are handed to.
    pub agentfield: ClientConfig,
    /// Node id, callback URL and patience of the hand-off.
    pub orchestrator: OrchestratorConfig,
    /// Key of the per-execution webhook secrets (shared with the gateway).
    pub callbacks: CallbackKey,
    /// The master key (it seals the evidence issuer keys) and the evidence store.
    pub evidence: EvidenceSetup,
    /// Webhook delivery: schedule, limits, the destination allowlist.
    pub webhooks: DeliveryConfig,
    /// Signs the commands automation accepts (the installation's command key).
    pub signer: Arc<CommandSigner>,
    /// Access audit events older than this are pruned (`access_audit_retention`).
    pub access_audit_retention: Duration,
    /// Unacknowledged critical alerts are escalated after this (`alert_escalate_after`).
    pub alert_escalate_after: Duration,
    /// The mail server for the portal's e-mail (`smtp`); `None`: nothing is mailed.
    pub mail: Option<MailConfig>,
}

/// The default of `access_audit_retention`.
pub const DEFAULT_ACCESS_AUDIT_RETENTION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The default of `alert_escalate_after`.
pub const DEFAULT_ALERT_ESCALATE_AFTER: Duration = Duration::from_secs(15 * 60);

/// The job that escalates critical alerts nobody acknowledged within
/// `after` (every 15 s), acting as Anchor's system actor with `signer`.
pub fn escalation_job(signer: Arc<anchor_commands::CommandSigner>, after: Duration) -> RecurringJob {
    RecurringJob::new("alerts.escalate", Duration::from_secs(15), move |db: Database| {
        let signer = Arc::clone(&signer);
        async move {
            anchor_commands::automation::escalate_unacknowledged(&db, &signer, after)
                .await
                .map(|n| format!("{n} unacknowledged critical alerts escalated"))
        }
    })
}

/// Where AgentField posts execution webhooks, under `public_url`.
pub const CALLBACK_PATH: &str = "/api/v1/callbacks/agentfield";

impl Config {
    /// `public_url` is where AgentField reaches the gateway (the settings'
    /// own, or the dev listener's); `agentfield_url` the control plane (the
    /// settings' own, or the dev mock's).
    pub fn from_settings(
        settings: &Settings,
        database_url: SecretString,
        public_url: &str,
        agentfield_url: &str,
    ) -> anyhow::Result<Self> {
        let mut agentfield = ClientConfig::new(agentfield_url);
        agentfield.api_key = settings.agentfield_api_key.clone();
        let callback_url = format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/'));
        Ok(Self {
            database_url,
            database_max_connections: settings.database_max_connections,
            database_recycling: anchor_store::Recycling {
                max_lifetime: settings.database_max_lifetime,
                max_uses: settings.database_max_uses,
            },
            dispatcher: DispatcherConfig::default(),
            nats_url: settings.nats_url.clone(),
            agentfield,
            orchestrator: OrchestratorConfig::new(settings.agent_node_id.clone(), callback_url),
            callbacks: CallbackKey::load_or_create(&settings.data_dir)
                .context("the AgentField callback key (data_dir/keys/agentfield-callback.key)")?,
            evidence: EvidenceSetup::from_settings(settings).context("setting master_key / evidence_dir")?,
            signer: Arc::new(
                CommandSigner::load_or_create(&settings.data_dir)
                    .context("the command key (data_dir/keys/command-signer.p8)")?,
            ),
            webhooks: DeliveryConfig {
                allowlist: Allowlist::parse(settings.webhook_allowed_hosts.as_deref().unwrap_or_default())
                    .map_err(|e| anyhow::anyhow!("setting webhook_allowed_hosts: {e}"))?,
                ..DeliveryConfig::default()
            },
            access_audit_retention: settings.access_audit_retention,
            alert_escalate_after: settings.alert_escalate_after,
            mail: settings.smtp.as_ref().map(|smtp| MailConfig {
                url: smtp.url.clone(),
                from: smtp.from.clone(),
                public_url: public_url.to_owned(),
                timeout: smtp.timeout,
            }),
        })
    }
}

/// Delivered outbox events are kept this long for inspection, then dropped.
pub const DELIVERED_RETENTION_DAYS: i32 = 7;

/// What becomes of each published domain event besides the bus: the
/// webhook fan-out, and the portal's e-mail when a mail server is configured.
#[derive(Debug, Clone)]
pub struct Fanouts {
    pub webhooks: Fanout,
    pub mail: Option<Notifier>,
}

/// The handler of every outbox topic this worker delivers: domain events
/// (projected into the Ops read model, published on the bus, then fanned out
/// to webhook endpoints and, when configured, to the portal's e-mail),
/// AgentField hand-off and reconciliation, evidence issuing, webhook
/// delivery, e-mail.
pub fn handlers(
    db: Database,
    events: EventBus,
    fanouts: Fanouts,
    orchestrator: Orchestrator,
    issuer: Issuer,
    deliverer: Deliverer,
    router: AlertRouter,
) -> Handlers {
    let publish = anchor_events::publish_handler(events);
    let mail = fanouts.mail.clone();
    let handlers = Handlers::new().on(anchor_events::PUBLISH_TOPIC, move |event: anchor_outbox::OutboxEvent| {
        let db = db.clone();
        let published = publish(event.clone());
        let fanouts = fanouts.clone();
        async move {
            // The Ops read model first: a failure retries the whole event,
            // and every step is idempotent.
            ops::project(&db, &event).await?;
            published.await?;
            if let Some(mail) = &fanouts.mail {
                mail.plan(&event).await?;
            }
            fanouts.webhooks.handle(&event).await
        }
    });
    let handlers = match mail {
        Some(mail) => mail.register(handlers),
        None => handlers,
    };
    router.register(deliverer.register(issuer.register(orchestrator.register(handlers))))
}

/// The bus for domain events: NATS JetStream when configured, else in process.
pub async fn event_bus(config: &Config, db: &Database) -> anyhow::Result<EventBus> {
    match &config.nats_url {
        Some(url) => {
            let settings =
                StreamSettings { message_id_prefix: format!("{}:", db.installation_id().await?), ..Default::default() };
            Ok(EventBus::nats(url, settings).await?)
        }
        None => Ok(EventBus::in_process()),
    }
}

/// The installation's housekeeping. `access_audit_retention`: how long the
/// access audit log is kept.
pub fn recurring_jobs(access_audit_retention: Duration) -> Vec<RecurringJob> {
    vec![
        RecurringJob::new("sessions.prune", Duration::from_secs(600), |db: Database| async move {
            db.prune_sessions().await.map(|n| format!("{n} expired web sessions dropped")).map_err(|e| e.to_string())
        }),
        RecurringJob::new("access_audit.prune", Duration::from_secs(3600), move |db: Database| async move {
            db.prune_access_audit(access_audit_retention)
                .await
                .map(|n| format!("{n} access audit events past retention dropped"))
                .map_err(|e| e.to_string())
        }),
        RecurringJob::new("idempotency.prune", Duration::from_secs(600), |db: Database| async move {
            db.prune_idempotency_keys()
                .await
                .map(|n| format!("{n} idempotency keys past retention dropped"))
                .map_err(|e| e.to_string())
        }),
        RecurringJob::new("alerts.agents_offline", Duration::from_secs(30), |db: Database| async move {
            anchor_telemetry::alerts::check_offline(&db)
                .await
                .map(|n| format!("{n} agent-offline alerts opened"))
                .map_err(|e| e.to_string())
        }),
        RecurringJob::new("sla.clocks", Duration::from_secs(15), |db: Database| async move {
            anchor_commands::sla::check_due(&db)
                .await
                .map(|n| format!("{n} SLA warnings and breaches sent"))
                .map_err(|e| e.to_string())
        }),
        RecurringJob::new("telemetry.upkeep", Duration::from_secs(3600), |db: Database| async move {
            match db.maintain_telemetry(3).await {
                Ok(u) if u.failed > 0 => Err(format!("telemetry upkeep failed in {} workspaces (logged)", u.failed)),
                Ok(u) => Ok(format!(
                    "{} sample partitions created, {} past retention dropped, {} check results and batch records deleted",
                    u.partitions_created, u.partitions_dropped, u.rows_deleted
                )),
                Err(e) => Err(e.to_string()),
            }
        }),
        RecurringJob::new("callbacks.prune_receipts", Duration::from_secs(3600), |db: Database| async move {
            db.prune_callback_receipts()
                .await
                .map(|n| format!("{n} callback receipts past retention dropped"))
                .map_err(|e| e.to_string())
        }),
        RecurringJob::new(
            "ops.rebuild",
            Duration::from_secs(3600),
            |db: Database| async move { ops::rebuild(&db).await },
        ),
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
    let db = Database::connect_with(&config.database_url, config.database_max_connections, config.database_recycling)
        .await?;
    let agentfield = AgentFieldClient::new(config.agentfield.clone())?;
    let router = AlertRouter::new(
        db.clone(),
        agentfield.clone(),
        Arc::clone(&config.signer),
        config.orchestrator.node_id.clone(),
    );
    let orchestrator = Orchestrator::new(db.clone(), agentfield, config.callbacks.clone(), config.orchestrator.clone());
    let keys = IssuerKeys::new(db.clone(), config.evidence.master.clone());
    let issuer = Issuer::new(db.clone(), keys, config.evidence.store.clone());
    let mail = match &config.mail {
        Some(mail) => Some(Notifier::new(db.clone(), mail).context("setting smtp")?),
        None => None,
    };
    let fanouts = Fanouts { webhooks: Fanout::new(db.clone()), mail };
    let deliverer = Deliverer::new(db.clone(), config.evidence.master.clone(), config.webhooks.clone());
    let handlers =
        handlers(db.clone(), event_bus(&config, &db).await?, fanouts, orchestrator, issuer, deliverer, router);
    let dispatcher = Dispatcher::new(db.clone(), handlers, config.dispatcher.clone());
    // Either part ending (an error at start, say) ends the other: a worker
    // process never lives on with half of its work stopped.
    let stop = shutdown.child_token();
    let dispatch = async {
        let result = dispatcher.run(stop.clone()).await;
        stop.cancel();
        result
    };
    let mut recurring = recurring_jobs(config.access_audit_retention);
    recurring.push(escalation_job(Arc::clone(&config.signer), config.alert_escalate_after));
    let jobs = async {
        let result = anchor_outbox::run_recurring_jobs(db.clone(), recurring, stop.clone()).await;
        stop.cancel();
        result
    };
    tracing::info!("worker started");
    let (dispatched, jobs) = tokio::join!(dispatch, jobs);
    db.close().await;
    tracing::info!("worker stopped");
    dispatched?;
    jobs?;
    Ok(())
}
