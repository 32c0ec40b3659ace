//! Configuration for every Anchor process, layered in one fixed order:
//! built-in defaults, then an optional TOML file, then the environment
//! (`ANCHOR_*`, plus the conventional `DATABASE_URL`), then command-line flags.
//! The result is validated once at start; an error names the setting that is
//! wrong and where it came from.
//!
//! Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`, so a logged
//! `Settings` never leaks them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The dev issuer's `iss` (`anchor_auth::dev_issuer::DEV_ISSUER`).
pub const DEV_ISSUER_ID: &str = "urn:anchor:dev-issuer";

/// Environment variable naming the configuration file, when no `--config` is given.
pub const CONFIG_FILE_ENV: &str = "ANCHOR_CONFIG";

/// Every setting of an installation. Field names are the file keys; the
/// environment variable is `ANCHOR_` + the name in upper case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of the public HTTP listener (API and web). Port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Address of the Prometheus metrics listener, kept apart from the public
    /// listener so metrics are never exposed by accident. Port 0 picks a free port.
    pub metrics_addr: SocketAddr,
    /// Local state: the private PostgreSQL cluster (when no database URL is
    /// set), dev signing keys, the local object store.
    pub data_dir: PathBuf,
    /// PostgreSQL connection URL. Unset: `anchor` runs a private cluster in `data_dir`.
    pub database_url: Option<SecretString>,
    /// Upper bound of each process's connection pool.
    pub database_max_connections: u32,
    /// A pooled connection older than this is replaced by a fresh one. Each
    /// PostgreSQL server process keeps the catalogue entries of every
    /// workspace schema it has served, and never shrinks that cache.
    #[serde(with = "humantime_serde")]
    pub database_max_lifetime: Duration,
    /// A pooled connection is replaced after about this many checkouts
    /// (counted by sampling, exactly below 32), so that a busy pool, whose
    /// connections may serve every workspace within one
    /// `database_max_lifetime`, still keeps each server process's catalogue
    /// cache small (a few hundred KB per workspace served). 0: no cap.
    pub database_max_uses: u32,
    /// Where `initdb` and `pg_ctl` live, when not on the usual paths.
    pub postgres_bin_dir: Option<PathBuf>,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info` or `info,anchor_store=debug`.
    pub log_filter: String,
    /// A request that takes longer is answered 503 `request_timeout`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// How many workspace schemas are migrated at once.
    pub migration_concurrency: usize,
    /// Trust tokens from the built-in dev issuer (key in `data_dir`). Unset:
    /// trusted only by `anchor dev` and by the CLI on the private dev cluster
    /// (no `database_url`); never by a production process unless set to
    /// `true`. See [`Settings::dev_issuer_trusted`].
    pub dev_issuer: Option<bool>,
    /// External OIDC issuers whose access tokens are accepted.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// Proxies whose `X-Forwarded-For` names the client: comma-separated
    /// addresses and CIDRs (`10.0.0.0/8, 192.0.2.7`). Unset: none, and the
    /// peer address is the client for throttling and the audit log.
    pub trusted_proxies: Option<String>,
    /// Password checks (Argon2id, 19 MiB each) run at once for sign-ins.
    /// Unset: one per core. A sign-in that finds every slot taken waits a
    /// few seconds at most, then is answered 503 with `Retry-After`.
    pub password_hash_concurrency: Option<usize>,
    /// How long the access audit log is kept; older events are pruned by a
    /// recurring job of the worker.
    #[serde(with = "humantime_serde")]
    pub access_audit_retention: Duration,
    /// A critical alert open this long without anyone acknowledging it (and
    /// not snoozed) is escalated: its ticket goes to P1 with a note, and
    /// `alert.escalated` is published.
    #[serde(with = "humantime_serde")]
    pub alert_escalate_after: Duration,
    /// The URL people reach Anchor at (behind a proxy, the proxy's). Unset:
    /// `http://` + `http_addr`. Cookies are `Secure` when it is `https`.
    pub public_url: Option<String>,
    /// Staff sign-in with an OIDC provider (authorization code + PKCE).
    pub oidc: Option<OidcSettings>,
    /// The AgentField control plane. Unset: `anchor dev` runs its mock.
    pub agentfield_url: Option<String>,
    /// The control plane's API key, when it requires one (`X-API-Key`).
    pub agentfield_api_key: Option<SecretString>,
    /// The id Anchor's agent node registers under (AgentField targets are
    /// `<agent_node_id>.<skill>`).
    pub agent_node_id: String,
    /// The control plane's internal token: every call to the agent node's
    /// reasoners and skills must carry it (`Authorization: Bearer`), so only
    /// the control plane can call them. Required by `anchor-agent-node`;
    /// `anchor dev` makes one for its mock when unset.
    pub agent_node_token: Option<SecretString>,
    /// Listener of the agent node (`anchor-agent-node`; `anchor dev` always
    /// picks a free loopback port).
    pub agent_node_addr: SocketAddr,
    /// The URL AgentField reaches the agent node at. Unset: `http://` +
    /// the bound listener.
    pub agent_node_url: Option<String>,
    /// The gateway keys whose command envelopes the agent node acts on:
    /// comma-separated Ed25519 Multikeys (`z6Mk...`). Unset: the public key
    /// the gateway published in `data_dir/keys/command-signer.pub` (one
    /// host); the agent node never needs the private key.
    pub command_keys: Option<String>,
    /// NATS with JetStream for domain events (also `NATS_URL`). Unset: an
    /// in-process bus.
    pub nats_url: Option<String>,
    /// Redis (also `REDIS_URL`): rate limits shared by every gateway
    /// replica. Unset: each process counts its own. `redis://[:password@]host:6379/db`.
    pub redis_url: Option<SecretString>,
    /// The master key that seals the installation's secrets (evidence issuer
    /// keys, later runtime secrets): base64 of 32 random bytes. Unset:
    /// `data_dir/keys/master.key`, created on first use (dev).
    pub master_key: Option<SecretString>,
    /// Where credential documents are stored. Unset: `data_dir/evidence`.
    pub evidence_dir: Option<PathBuf>,
    /// Store credential documents in S3-compatible object storage instead.
    pub evidence_s3: Option<S3Settings>,
    /// Webhook destinations allowed although loopback, private or link-local:
    /// comma-separated host names and CIDRs (`ANCHOR_WEBHOOK_ALLOWED_HOSTS`,
    /// e.g. `localhost,127.0.0.1` for local development).
    pub webhook_allowed_hosts: Option<String>,
    /// Webhook endpoints a workspace may have (each costs a delivery per
    /// subscribed event); creating one more is answered 409
    /// `webhook_limit_reached`.
    pub webhook_max_endpoints: u32,
    /// Telemetry batches one edge agent may send per minute (a burst of this
    /// many, refilled evenly; one at a time). More are answered 429 with
    /// `Retry-After`. Counted per gateway process.
    pub agent_batches_per_minute: u32,
    /// Series (a metric's name and labels, or a check's name) one edge agent
    /// may have. A batch's new series beyond it are not stored, and its
    /// acknowledgement says how many; series silent for 30 days are forgotten.
    pub agent_max_series: u32,
    /// Alerts one telemetry batch may open (or re-open); conditions beyond it
    /// open with the agent's later batches.
    pub agent_max_alerts_per_batch: u32,
    /// A language model behind an OpenAI-compatible chat completions
    /// endpoint that refines the ticket triage rules. Unset: the rules alone
    /// (they also stand whenever the model fails).
    pub reasoner_llm: Option<LlmSettings>,
    /// The mail server the portal's e-mail (invitations, replies,
    /// resolutions, quotes, invoices) goes through. Unset: no e-mail is
    /// sent, and invitation links are copied from the page.
    pub smtp: Option<SmtpSettings>,
}

/// An SMTP server that relays the portal's e-mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://[user:password@]host[:port][?tls=required]` (STARTTLS when
    /// asked for) or `smtps://...` (TLS from the first byte, port 465).
    pub url: SecretString,
    /// The From header, e.g. `Acme IT <help@acme-it.example>`.
    pub from: String,
    /// How long one exchange with the server may take.
    #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

/// An OpenAI-compatible chat completions endpoint (OpenAI, Azure OpenAI's
/// compatible API, vLLM, Ollama, llama.cpp server ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// The API base: `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
    /// How long a triage waits for the model before the rules stand alone.
    #[serde(default = "default_llm_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_llm_timeout() -> Duration {
    Duration::from_secs(5)
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph, Garage ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or `http://minio:9000`.
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// `endpoint/bucket/key` URLs (true, what most S3-compatible servers
    /// expect) or `bucket.endpoint/key` (false).
    #[serde(default = "default_true")]
    pub path_style: bool,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_true() -> bool {
    true
}

/// The OIDC provider staff sign in with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Its issuer URL; `/.well-known/openid-configuration` is read from it.
    pub issuer: String,
    pub client_id: String,
    /// For confidential clients; public clients rely on PKCE alone.
    pub client_secret: Option<SecretString>,
    /// Label of the sign-in button.
    #[serde(default = "default_oidc_label")]
    pub label: String,
}

fn default_oidc_label() -> String {
    "Sign in with single sign-on".to_owned()
}

/// An external OIDC issuer (Keycloak, Entra ID, Okta, Zitadel ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Exactly the `iss` claim of its tokens.
    pub issuer: String,
    /// Where its signing keys are published. Pinned: keys come from here only.
    pub jwks_uri: String,
    /// The `aud` its access tokens carry for Anchor.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Accepted JWT `typ` header values. RFC 9068 access tokens are `at+jwt`;
    /// add `JWT` only for a provider that cannot issue RFC 9068 tokens.
    #[serde(default = "default_token_types")]
    pub token_types: Vec<String>,
    /// Longest accepted token lifetime (`exp` - `iat`).
    #[serde(default = "default_max_lifetime", with = "humantime_serde")]
    pub max_lifetime: Duration,
}

fn default_audience() -> String {
    "anchor".to_owned()
}

fn default_token_types() -> Vec<String> {
    vec!["at+jwt".to_owned()]
}

fn default_max_lifetime() -> Duration {
    Duration::from_secs(15 * 60)
}

/// The defaults, written out so that `anchor dev` needs nothing configured.
#[derive(Serialize)]
struct Defaults {
    http_addr: &'static str,
    metrics_addr: &'static str,
    data_dir: &'static str,
    database_max_connections: u32,
    database_max_lifetime: &'static str,
    database_max_uses: u32,
    log_format: LogFormat,
    log_filter: &'static str,
    request_timeout: &'static str,
    body_limit_bytes: usize,
    migration_concurrency: usize,
    access_audit_retention: &'static str,
    alert_escalate_after: &'static str,
    webhook_max_endpoints: u32,
    agent_node_id: &'static str,
    agent_node_addr: &'static str,
    agent_batches_per_minute: u32,
    agent_max_series: u32,
    agent_max_alerts_per_batch: u32,
}

const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:8080",
    metrics_addr: "127.0.0.1:0",
    data_dir: ".anchor",
    database_max_connections: 16,
    database_max_lifetime: "30m",
    database_max_uses: 200,
    log_format: LogFormat::Text,
    log_filter: "info",
    request_timeout: "30s",
    body_limit_bytes: 1024 * 1024,
    migration_concurrency: 8,
    access_audit_retention: "365days",
    alert_escalate_after: "15m",
    webhook_max_endpoints: 50,
    agent_node_id: "anchor",
    agent_node_addr: "127.0.0.1:8090",
    agent_batches_per_minute: 60,
    agent_max_series: 1000,
    agent_max_alerts_per_batch: 10,
};

/// Keys read from `ANCHOR_*` variables. Other `ANCHOR_*` variables (test and
/// benchmark knobs, `ANCHOR_CONFIG` itself) are not settings and are ignored.
const SETTING_KEYS: &[&str] = &[
    "http_addr",
    "metrics_addr",
    "data_dir",
    "database_url",
    "database_max_connections",
    "database_max_lifetime",
    "database_max_uses",
    "postgres_bin_dir",
    "log_format",
    "log_filter",
    "request_timeout",
    "body_limit_bytes",
    "migration_concurrency",
    "dev_issuer",
    "issuers",
    "trusted_proxies",
    "password_hash_concurrency",
    "access_audit_retention",
    "alert_escalate_after",
    "public_url",
    "oidc",
    "agentfield_url",
    "agentfield_api_key",
    "agent_node_id",
    "agent_node_addr",
    "agent_node_token",
    "agent_node_url",
    "command_keys",
    "nats_url",
    "redis_url",
    "master_key",
    "evidence_dir",
    "evidence_s3",
    "webhook_allowed_hosts",
    "webhook_max_endpoints",
    "agent_batches_per_minute",
    "agent_max_series",
    "agent_max_alerts_per_batch",
    "reasoner_llm",
    "smtp",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration error: {0}")]
    Parse(String),
    #[error("configuration error: setting `{setting}` (ANCHOR_{env}): {reason}")]
    Invalid { setting: &'static str, env: String, reason: String },
}

impl ConfigError {
    fn invalid(setting: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { setting, env: setting.to_uppercase(), reason: reason.into() }
    }
}

impl Settings {
    /// Whether the built-in dev issuer is trusted: as configured; unset, only
    /// on the private dev cluster (no `database_url`), where `anchor dev`
    /// runs. `anchor dev` itself trusts it unless it is set to `false`.
    pub fn dev_issuer_trusted(&self) -> bool {
        self.dev_issuer.unwrap_or(self.database_url.is_none())
    }

    /// The issuers whose tokens this installation trusts: the dev issuer (if
    /// trusted) and the external `issuers`, in that order.
    pub fn trusted_issuers(&self) -> Vec<&str> {
        let dev = self.dev_issuer_trusted().then_some(DEV_ISSUER_ID);
        dev.into_iter().chain(self.issuers.iter().map(|i| i.issuer.as_str())).collect()
    }

    /// Loads the layers in order. `file` is the `--config` flag; without it
    /// `ANCHOR_CONFIG` is consulted; without either no file is read.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let env_file = std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let mut figment = Figment::from(Serialized::defaults(DEFAULTS));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL", "NATS_URL", "REDIS_URL"])
                    .map(|key| key.as_str().to_lowercase().into()),
            )
            .merge(Env::prefixed("ANCHOR_").only(SETTING_KEYS))
            .merge(Serialized::defaults(overrides));
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Parse(e.into_iter().map(|e| describe(&e)).collect::<Vec<_>>().join("; ")))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            // The value itself is never echoed: it may carry a password.
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::invalid(
                    "database_url",
                    "must be a PostgreSQL URL starting with postgres:// or postgresql://",
                ));
            }
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            return Err(ConfigError::invalid("database_max_connections", "must be between 1 and 1000"));
        }
        if self.database_max_lifetime < Duration::from_secs(1)
            || self.database_max_lifetime > Duration::from_secs(86_400)
        {
            return Err(ConfigError::invalid("database_max_lifetime", "must be between 1s and 24h (e.g. \"30m\")"));
        }
        if self.request_timeout < Duration::from_secs(1) || self.request_timeout > Duration::from_secs(600) {
            return Err(ConfigError::invalid("request_timeout", "must be between 1s and 10m (e.g. \"30s\")"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.body_limit_bytes) {
            return Err(ConfigError::invalid("body_limit_bytes", "must be between 1024 and 67108864"));
        }
        if !(1..=64).contains(&self.migration_concurrency) {
            return Err(ConfigError::invalid("migration_concurrency", "must be between 1 and 64"));
        }
        if self.password_hash_concurrency.is_some_and(|n| !(1..=1024).contains(&n)) {
            return Err(ConfigError::invalid("password_hash_concurrency", "must be between 1 and 1024"));
        }
        if self.access_audit_retention < Duration::from_secs(24 * 60 * 60) {
            return Err(ConfigError::invalid("access_audit_retention", "must be at least a day (e.g. \"365days\")"));
        }
        if self.alert_escalate_after < Duration::from_secs(60) {
            return Err(ConfigError::invalid("alert_escalate_after", "must be at least a minute (e.g. \"15m\")"));
        }
        if !(1..=10_000).contains(&self.webhook_max_endpoints) {
            return Err(ConfigError::invalid("webhook_max_endpoints", "must be between 1 and 10000"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            if !https_or_loopback(&issuer.jwks_uri) {
                return Err(ConfigError::invalid(
                    "issuers",
                    format!(
                        "issuer #{} ({}): jwks_uri must use https (plain http only on loopback)",
                        i + 1,
                        issuer.issuer
                    ),
                ));
            }
            if issuer.issuer.starts_with("urn:anchor:") {
                return Err(ConfigError::invalid(
                    "issuers",
                    format!("issuer #{}: urn:anchor: names are Anchor's own and cannot be trusted from outside", i + 1),
                ));
            }
            if issuer.issuer.trim().is_empty() || issuer.token_types.is_empty() || issuer.audience.is_empty() {
                return Err(ConfigError::invalid(
                    "issuers",
                    format!("issuer #{}: issuer, audience and token_types must not be empty", i + 1),
                ));
            }
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::invalid("public_url", "must start with http:// or https://"));
        }
        if let Some(url) = &self.nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            return Err(ConfigError::invalid("nats_url", "must start with nats:// or tls://"));
        }
        if let Some(url) = &self.redis_url
            && !url.expose_secret().starts_with("redis://")
        {
            // The value itself is never echoed: it may carry a password.
            return Err(ConfigError::invalid("redis_url", "must start with redis://"));
        }
        if let Some(url) = &self.agentfield_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::invalid("agentfield_url", "must start with http:// or https://"));
        }
        if let Some(url) = &self.agent_node_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::invalid("agent_node_url", "must start with http:// or https://"));
        }
        let node_id_ok = !self.agent_node_id.is_empty()
            && self.agent_node_id.len() <= 64
            && self.agent_node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !node_id_ok {
            return Err(ConfigError::invalid("agent_node_id", "must be 1-64 of a-z, A-Z, 0-9, - and _"));
        }
        if !(1..=6000).contains(&self.agent_batches_per_minute) {
            return Err(ConfigError::invalid("agent_batches_per_minute", "must be between 1 and 6000"));
        }
        if !(1..=1_000_000).contains(&self.agent_max_series) {
            return Err(ConfigError::invalid("agent_max_series", "must be between 1 and 1000000"));
        }
        if !(1..=10_000).contains(&self.agent_max_alerts_per_batch) {
            return Err(ConfigError::invalid("agent_max_alerts_per_batch", "must be between 1 and 10000"));
        }
        if let Some(llm) = &self.reasoner_llm
            && (!(llm.base_url.starts_with("http://") || llm.base_url.starts_with("https://"))
                || llm.model.trim().is_empty()
                || llm.timeout.is_zero())
        {
            return Err(ConfigError::invalid(
                "reasoner_llm",
                "base_url must be an http(s) URL, model must be set and timeout must be positive",
            ));
        }
        if let Some(smtp) = &self.smtp {
            let url = smtp.url.expose_secret();
            // The value itself is never echoed: it may carry a password.
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError::invalid("smtp", "url must start with smtp:// or smtps://"));
            }
            // Links in these e-mails sign people in: they do not cross a
            // network in the clear. Plain SMTP only to this machine.
            let host = url
                .split_once("://")
                .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, host)| host))
                .unwrap_or_default();
            let loopback = ["localhost", "127.", "[::1]"].iter().any(|h| host.starts_with(h));
            if url.starts_with("smtp://") && !url.contains("tls=required") && !loopback {
                return Err(ConfigError::invalid(
                    "smtp",
                    "url must use TLS: smtp://host:587?tls=required (STARTTLS) or smtps://host:465; plain SMTP only to a loopback host",
                ));
            }
            if smtp.timeout > Duration::from_secs(30) {
                return Err(ConfigError::invalid("smtp", "timeout must be at most 30s"));
            }
            if !(smtp.from.contains('@') && smtp.from.len() <= 320) || smtp.timeout.is_zero() {
                return Err(ConfigError::invalid(
                    "smtp",
                    "from must be an address (e.g. \"Acme IT <help@acme-it.example>\") and timeout positive",
                ));
            }
        }
        if let Some(s3) = &self.evidence_s3
            && (!(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://")) || s3.bucket.is_empty())
        {
            return Err(ConfigError::invalid("evidence_s3", "endpoint must be an http(s) URL and bucket must be set"));
        }
        if let Some(oidc) = &self.oidc
            && (!https_or_loopback(&oidc.issuer) || oidc.client_id.is_empty())
        {
            return Err(ConfigError::invalid(
                "oidc",
                "issuer must be an https URL (http only on a loopback host) and client_id is required",
            ));
        }
        if self.log_filter.trim().is_empty() {
            return Err(ConfigError::invalid("log_filter", "must not be empty (e.g. \"info\")"));
        }
        Ok(())
    }
}

/// Whether keys or sign-ins may be fetched from `raw`: an `https` URL, or
/// plain `http` to a loopback host named exactly (`localhost`, an address
/// of 127.0.0.0/8, `[::1]`), for development and tests. The host is the
/// URL's own, as a URL parser reads it: `http://localhost.evil.example` and
/// `http://127.0.0.1:80@evil.example/` are not loopback. The OIDC sign-in
/// applies the same rule to the endpoints its provider's discovery names.
pub fn https_or_loopback(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else { return false };
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(name))) => name.eq_ignore_ascii_case("localhost"),
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}

/// One problem as "setting `key` (from SOURCE): what is wrong". The value
/// is not repeated: it may be a secret.
fn describe(error: &figment::Error) -> String {
    let key = error.path.join(".").to_lowercase();
    let source = match &error.metadata {
        Some(meta) if meta.name.contains("environment") => {
            if key == "database_url" && std::env::var_os("ANCHOR_DATABASE_URL").is_none() {
                "DATABASE_URL".to_owned()
            } else {
                format!("ANCHOR_{}", key.to_uppercase())
            }
        }
        Some(meta) => match &meta.source {
            Some(figment::Source::File(path)) => format!("file {}", path.display()),
            _ => meta.name.to_string(),
        },
        None => "defaults".to_owned(),
    };
    if key.is_empty() {
        format!("{} (from {source})", error.kind)
    } else {
        format!("setting `{key}` (from {source}): {}", error.kind)
    }
}

#[cfg(test)]
// figment's `Jail` closures must return `figment::Error`, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(jail_overrides: &Overrides) -> Result<Settings, ConfigError> {
        Settings::load(None, jail_overrides)
    }

    #[test]
    fn defaults_need_nothing_configured() {
        Jail::expect_with(|_| {
            let s = load(&Overrides::default()).expect("defaults are valid");
            assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
            assert_eq!(s.data_dir, PathBuf::from(".anchor"));
            assert!(s.database_url.is_none());
            assert_eq!(s.request_timeout, Duration::from_secs(30));
            Ok(())
        });
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "anchor.toml",
                "http_addr = \"127.0.0.1:1000\"\nlog_format = \"json\"\nbody_limit_bytes = 4096\n",
            )?;
            jail.set_env("ANCHOR_CONFIG", "anchor.toml");
            jail.set_env("ANCHOR_HTTP_ADDR", "127.0.0.1:2000");
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!(s.http_addr.port(), 2000, "env beats file");
            assert_eq!(s.log_format, LogFormat::Json, "file beats defaults");
            assert_eq!(s.body_limit_bytes, 4096);
            let flags = Overrides { http_addr: Some("127.0.0.1:3000".parse().expect("addr")), ..Default::default() };
            assert_eq!(load(&flags).expect("valid").http_addr.port(), 3000, "flags beat env");
            Ok(())
        });
    }

    #[test]
    fn database_url_comes_from_either_variable_and_is_redacted() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://u:hunter2@db/anchor");
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!(
                s.database_url.as_ref().map(|u| u.expose_secret().to_owned()).as_deref(),
                Some("postgres://u:hunter2@db/anchor")
            );
            assert!(!format!("{s:?}").contains("hunter2"), "Debug must redact the URL");
            jail.set_env("ANCHOR_DATABASE_URL", "postgres://other@db/anchor");
            let s = load(&Overrides::default()).expect("valid");
            assert!(s.database_url.expect("set").expose_secret().contains("other"), "ANCHOR_ wins");
            Ok(())
        });
    }

    #[test]
    fn the_dev_issuer_is_trusted_only_in_development_unless_configured() {
        Jail::expect_with(|jail| {
            let dev = load(&Overrides::default()).expect("valid");
            assert!(dev.dev_issuer_trusted(), "the private dev cluster: trusted");
            assert_eq!(dev.trusted_issuers(), [DEV_ISSUER_ID]);
            jail.set_env("DATABASE_URL", "postgres://db/anchor");
            let production = load(&Overrides::default()).expect("valid");
            assert!(!production.dev_issuer_trusted(), "a database of its own: production, not trusted");
            assert!(production.trusted_issuers().is_empty());
            jail.set_env("ANCHOR_DEV_ISSUER", "true");
            assert!(load(&Overrides::default()).expect("valid").dev_issuer_trusted(), "unless turned on");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_setting() {
        Jail::expect_with(|jail| {
            jail.set_env("ANCHOR_HTTP_ADDR", "not-an-address");
            let err = load(&Overrides::default()).expect_err("invalid").to_string();
            assert!(err.contains("http_addr") && err.contains("ANCHOR_HTTP_ADDR"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("ANCHOR_REQUEST_TIMEOUT", "0s");
            let err = load(&Overrides::default()).expect_err("invalid").to_string();
            assert!(err.contains("request_timeout") && err.contains("ANCHOR_REQUEST_TIMEOUT"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "mysql://root:s3cret@db");
            let err = load(&Overrides::default()).expect_err("invalid").to_string();
            assert!(err.contains("database_url") && !err.contains("s3cret"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn agent_limits_have_defaults_and_bounds() {
        Jail::expect_with(|jail| {
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!((s.agent_batches_per_minute, s.agent_max_series, s.agent_max_alerts_per_batch), (60, 1000, 10));
            jail.set_env("ANCHOR_AGENT_MAX_SERIES", "250");
            assert_eq!(load(&Overrides::default()).expect("valid").agent_max_series, 250);
            jail.set_env("ANCHOR_AGENT_BATCHES_PER_MINUTE", "0");
            let err = load(&Overrides::default()).expect_err("invalid").to_string();
            assert!(err.contains("agent_batches_per_minute"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn pooled_connections_are_recycled_by_default() {
        Jail::expect_with(|jail| {
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!((s.database_max_lifetime, s.database_max_uses), (Duration::from_secs(30 * 60), 200));
            jail.set_env("ANCHOR_DATABASE_MAX_LIFETIME", "5m");
            jail.set_env("ANCHOR_DATABASE_MAX_USES", "0");
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!((s.database_max_lifetime, s.database_max_uses), (Duration::from_secs(300), 0));
            jail.set_env("ANCHOR_DATABASE_MAX_LIFETIME", "0s");
            let err = load(&Overrides::default()).expect_err("invalid").to_string();
            assert!(err.contains("database_max_lifetime"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn external_issuers_from_file_and_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "anchor.toml",
                "[[issuers]]\nissuer = \"https://id.example.com/realms/msp\"\njwks_uri = \"https://id.example.com/realms/msp/certs\"\n",
            )?;
            let s = Settings::load(Some(Path::new("anchor.toml")), &Overrides::default()).expect("valid");
            assert_eq!(s.issuers.len(), 1);
            assert_eq!(s.issuers[0].audience, "anchor");
            assert_eq!(s.issuers[0].token_types, ["at+jwt"]);
            jail.set_env("ANCHOR_ISSUERS", "[{issuer=\"https://x\", jwks_uri=\"http://10.0.0.1/jwks\"}]");
            let err = load(&Overrides::default()).expect_err("plain http off loopback").to_string();
            assert!(err.contains("issuers") && err.contains("https"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn plain_http_is_for_loopback_hosts_named_exactly() {
        for url in [
            "https://id.example.com/realms/msp",
            "http://localhost:8080/realms/msp",
            "http://LOCALHOST/jwks",
            "http://127.0.0.1:9/jwks.json",
            "http://127.8.9.10/jwks.json",
            "http://[::1]:9/jwks.json",
        ] {
            assert!(https_or_loopback(url), "{url}");
        }
        for url in [
            "http://localhost.evil",
            "http://localhost.evil:8080/jwks",
            "http://localhostevil/jwks",
            "http://127.0.0.1.evil.example/jwks",
            "http://127.0.0.1:80@evil.example/jwks",
            "http://[::1]@evil.example/jwks",
            "http://id.example.com/jwks",
            "ftp://localhost/jwks",
            "localhost:8080",
            "https://",
        ] {
            assert!(!https_or_loopback(url), "{url}");
        }
        Jail::expect_with(|jail| {
            jail.set_env("ANCHOR_OIDC", "{issuer=\"http://localhost.evil\", client_id=\"anchor\"}");
            let err = load(&Overrides::default()).expect_err("not loopback").to_string();
            assert!(err.contains("oidc") && err.contains("https"), "{err}");
            jail.set_env("ANCHOR_OIDC", "{issuer=\"http://localhost:8080/realms/msp\", client_id=\"anchor\"}");
            assert!(load(&Overrides::default()).is_ok(), "loopback");
            jail.set_env("ANCHOR_ISSUERS", "[{issuer=\"https://x\", jwks_uri=\"http://localhost.evil/jwks\"}]");
            let err = load(&Overrides::default()).expect_err("not loopback").to_string();
            assert!(err.contains("issuers") && err.contains("https"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn webhook_endpoints_per_workspace_are_bounded() {
        Jail::expect_with(|jail| {
            assert_eq!(load(&Overrides::default()).expect("valid").webhook_max_endpoints, 50);
            jail.set_env("ANCHOR_WEBHOOK_MAX_ENDPOINTS", "3");
            assert_eq!(load(&Overrides::default()).expect("valid").webhook_max_endpoints, 3);
            jail.set_env("ANCHOR_WEBHOOK_MAX_ENDPOINTS", "0");
            let err = load(&Overrides::default()).expect_err("zero").to_string();
            assert!(err.contains("webhook_max_endpoints"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_reasoner_language_model_from_file_or_environment() {
        Jail::expect_with(|jail| {
            assert!(load(&Overrides::default()).expect("valid").reasoner_llm.is_none(), "off by default");
            jail.create_file(
                "anchor.toml",
                "[reasoner_llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"gpt-4o-mini\"\napi_key = \"sk-hunter2\"\n",
            )?;
            let s = Settings::load(Some(Path::new("anchor.toml")), &Overrides::default()).expect("valid");
            let llm = s.reasoner_llm.as_ref().expect("set");
            assert_eq!((llm.model.as_str(), llm.timeout), ("gpt-4o-mini", Duration::from_secs(5)));
            assert!(!format!("{s:?}").contains("hunter2"), "Debug must redact the key");
            jail.set_env(
                "ANCHOR_REASONER_LLM",
                "{base_url=\"http://127.0.0.1:11434/v1\", model=\"llama3\", timeout=\"2s\"}",
            );
            let llm = load(&Overrides::default()).expect("valid").reasoner_llm.expect("set");
            assert_eq!((llm.base_url.as_str(), llm.timeout), ("http://127.0.0.1:11434/v1", Duration::from_secs(2)));
            jail.set_env("ANCHOR_REASONER_LLM", "{base_url=\"ftp://models\", model=\"x\"}");
            let err = load(&Overrides::default()).expect_err("not http").to_string();
            assert!(err.contains("reasoner_llm") && err.contains("base_url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn redis_is_off_by_default_and_read_from_redis_url() {
        Jail::expect_with(|jail| {
            assert!(load(&Overrides::default()).expect("valid").redis_url.is_none(), "in process by default");
            jail.set_env("REDIS_URL", "redis://:hunter2@cache:6379/2");
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!(
                s.redis_url.as_ref().map(|u| u.expose_secret().to_owned()).as_deref(),
                Some("redis://:hunter2@cache:6379/2")
            );
            assert!(!format!("{s:?}").contains("hunter2"), "Debug must redact the password");
            jail.set_env("REDIS_URL", "http://cache:6379");
            let err = load(&Overrides::default()).expect_err("not redis").to_string();
            assert!(err.contains("redis_url") && !err.contains("cache"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_mail_server_is_off_by_default_and_checked_when_set() {
        Jail::expect_with(|jail| {
            assert!(load(&Overrides::default()).expect("valid").smtp.is_none(), "off by default");
            jail.set_env(
                "ANCHOR_SMTP",
                "{url=\"smtp://relay:hunter2@mail.example:587?tls=required\", from=\"Acme IT <help@acme-it.example>\"}",
            );
            let s = load(&Overrides::default()).expect("valid");
            let smtp = s.smtp.as_ref().expect("set");
            assert_eq!((smtp.from.as_str(), smtp.timeout), ("Acme IT <help@acme-it.example>", Duration::from_secs(30)));
            assert!(!format!("{s:?}").contains("hunter2"), "Debug must redact the password");
            jail.set_env(
                "ANCHOR_SMTP",
                "{url=\"smtp://relay:hunter2@mail.example:25\", from=\"help@acme-it.example\"}",
            );
            let err = load(&Overrides::default()).expect_err("no TLS").to_string();
            assert!(err.contains("tls=required") && !err.contains("hunter2"), "{err}");
            jail.set_env("ANCHOR_SMTP", "{url=\"smtp://127.0.0.1:2525\", from=\"help@acme-it.example\"}");
            assert!(load(&Overrides::default()).is_ok(), "plain SMTP to this machine");
            jail.set_env("ANCHOR_SMTP", "{url=\"http://mail.example\", from=\"help@acme-it.example\"}");
            let err = load(&Overrides::default()).expect_err("not smtp").to_string();
            assert!(err.contains("smtp") && err.contains("url") && !err.contains("mail.example"), "{err}");
            jail.set_env("ANCHOR_SMTP", "{url=\"smtps://mail.example\", from=\"nobody\"}");
            let err = load(&Overrides::default()).expect_err("no address").to_string();
            assert!(err.contains("from"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn access_limits_have_safe_defaults_and_are_checked() {
        Jail::expect_with(|jail| {
            let s = load(&Overrides::default()).expect("valid");
            assert!(s.trusted_proxies.is_none(), "no proxy is believed unless named");
            assert!(s.password_hash_concurrency.is_none(), "one per core");
            assert_eq!(s.access_audit_retention, Duration::from_secs(365 * 24 * 60 * 60));
            jail.set_env("ANCHOR_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7");
            jail.set_env("ANCHOR_ACCESS_AUDIT_RETENTION", "90days");
            let s = load(&Overrides::default()).expect("valid");
            assert_eq!(s.trusted_proxies.as_deref(), Some("10.0.0.0/8, 192.0.2.7"));
            assert_eq!(s.access_audit_retention, Duration::from_secs(90 * 24 * 60 * 60));
            jail.set_env("ANCHOR_ACCESS_AUDIT_RETENTION", "1h");
            let err = load(&Overrides::default()).expect_err("too short").to_string();
            assert!(err.contains("access_audit_retention"), "{err}");
            jail.set_env("ANCHOR_ACCESS_AUDIT_RETENTION", "90days");
            jail.set_env("ANCHOR_PASSWORD_HASH_CONCURRENCY", "0");
            let err = load(&Overrides::default()).expect_err("zero").to_string();
            assert!(err.contains("password_hash_concurrency"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_file_keys_are_refused_but_other_anchor_variables_are_not_settings() {
        Jail::expect_with(|jail| {
            jail.set_env("ANCHOR_TEST_DATABASE_URL", "postgres://x");
            assert!(load(&Overrides::default()).is_ok());
            jail.create_file("typo.toml", "htp_addr = \"127.0.0.1:1\"\n")?;
            let err =
                Settings::load(Some(Path::new("typo.toml")), &Overrides::default()).expect_err("typo").to_string();
            assert!(err.contains("htp_addr"), "{err}");
            Ok(())
        });
    }
}
