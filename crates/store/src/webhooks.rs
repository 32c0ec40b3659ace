//! A workspace's webhook endpoints, messages and delivery attempts.

use std::time::Duration;

use anchor_domain::{MessageId, WebhookId};
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// An endpoint as stored (secrets still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: SealedSecret,
    /// The previous secret and until when it still signs (rotation).
    pub previous: Option<(SealedSecret, OffsetDateTime)>,
    pub failing_since: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A sealed signing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub master_key_id: String,
}

/// What can change on an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempt {
    pub message_id: MessageId,
    pub event_type: String,
    pub attempt: i32,
    pub at: OffsetDateTime,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// An attempt with its place in the log (the cursor of the next page).
#[derive(Debug, sqlx::FromRow)]
struct NumberedAttempt {
    id: i64,
    #[sqlx(flatten)]
    attempt: Attempt,
}

/// A new attempt's outcome.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub endpoint: WebhookId,
    pub message: MessageId,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
    pub response: Option<&'a str>,
}

/// The columns a secret and its rotation are stored in, shared by endpoints
/// and inbound sources.
#[derive(Debug, sqlx::FromRow)]
struct SecretColumns {
    secret_sealed: Vec<u8>,
    secret_nonce: Vec<u8>,
    previous_sealed: Option<Vec<u8>>,
    previous_nonce: Option<Vec<u8>>,
    previous_until: Option<OffsetDateTime>,
    master_key_id: String,
}

impl SecretColumns {
    /// The current secret, and the previous one of a rotation with the end
    /// of its overlap.
    fn into_secrets(self) -> (SealedSecret, Option<(SealedSecret, OffsetDateTime)>) {
        let previous = match (self.previous_sealed, self.previous_nonce, self.previous_until) {
            (Some(ciphertext), Some(nonce), Some(until)) => {
                Some((SealedSecret { ciphertext, nonce, master_key_id: self.master_key_id.clone() }, until))
            }
            _ => None,
        };
        let secret = SealedSecret {
            ciphertext: self.secret_sealed,
            nonce: self.secret_nonce,
            master_key_id: self.master_key_id,
        };
        (secret, previous)
    }
}

#[derive(Debug, sqlx::FromRow)]
struct EndpointRow {
    id: WebhookId,
    url: String,
    description: String,
    events: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    #[sqlx(flatten)]
    secrets: SecretColumns,
    failing_since: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<EndpointRow> for Endpoint {
    fn from(row: EndpointRow) -> Self {
        let (secret, previous) = row.secrets.into_secrets();
        Self {
            id: row.id,
            url: row.url,
            description: row.description,
            events: row.events,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            secret,
            previous,
            failing_since: row.failing_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, description, events, enabled, disabled_reason, secret_sealed, secret_nonce,
    previous_sealed, previous_nonce, previous_until, master_key_id, failing_since, created_at, updated_at";

/// Whether a test message may be sent to an endpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestAdmission {
    Admitted,
    /// The endpoint's window is full until this much time has passed.
    Limited(Duration),
    /// No such endpoint.
    Missing,
}

impl WorkspaceTx {
    /// Adds an endpoint unless the workspace has `limit` already (`None`).
    /// Additions are counted one at a time per workspace (an advisory lock
    /// held to the end of the unit of work), so concurrent ones cannot
    /// together pass the limit.
    pub async fn insert_endpoint(
        &mut self,
        id: WebhookId,
        url: &str,
        description: &str,
        events: &[String],
        secret: &SealedSecret,
        limit: u32,
    ) -> Result<Option<Endpoint>, StoreError> {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('anchor.webhook_endpoints.' || current_schema(), 0))",
        )
        .execute(self.conn())
        .await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints").fetch_one(self.conn()).await?;
        if count >= i64::from(limit) {
            return Ok(None);
        }
        let row: EndpointRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret_sealed, secret_nonce, master_key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id)
        .bind(url)
        .bind(description)
        .bind(events)
        .bind(&secret.ciphertext)
        .bind(&secret.nonce)
        .bind(&secret.master_key_id)
        .fetch_one(self.conn())
        .await?;
        Ok(Some(row.into()))
    }

    /// Counts a test message to endpoint `id`: at most `limit` in a window
    /// of `window` that starts with the first test after the last window
    /// ended. The count lives on the endpoint's row, whose lock orders
    /// concurrent tests, so every gateway process shares one count. A
    /// refused test is not counted (the caller rolls back, or nothing was
    /// changed).
    pub async fn admit_endpoint_test(
        &mut self,
        id: WebhookId,
        limit: u32,
        window: Duration,
    ) -> Result<TestAdmission, StoreError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // One statement: under concurrent tests, PostgreSQL re-evaluates it
        // on the row as the previous test left it. SET reads the old values.
        let counted: Option<WebhookId> = sqlx::query_scalar(
            "UPDATE webhook_endpoints
                SET tests_in_window = CASE WHEN tests_window_start IS NULL
                                             OR tests_window_start <= now() - make_interval(secs => $3)
                                           THEN 1 ELSE tests_in_window + 1 END,
                    tests_window_start = CASE WHEN tests_window_start IS NULL
                                                OR tests_window_start <= now() - make_interval(secs => $3)
                                              THEN now() ELSE tests_window_start END
              WHERE id = $1
                AND (tests_window_start IS NULL OR tests_window_start <= now() - make_interval(secs => $3)
                     OR tests_in_window < $2)
             RETURNING id",
        )
        .bind(id)
        .bind(limit)
        .bind(window.as_secs_f64())
        .fetch_optional(self.conn())
        .await?;
        if counted.is_some() {
            return Ok(TestAdmission::Admitted);
        }
        let ends: Option<Option<f64>> = sqlx::query_scalar(
            "SELECT extract(epoch FROM tests_window_start + make_interval(secs => $2) - now())::float8
               FROM webhook_endpoints WHERE id = $1",
        )
        .bind(id)
        .bind(window.as_secs_f64())
        .fetch_optional(self.conn())
        .await?;
        Ok(match ends {
            None => TestAdmission::Missing,
            Some(wait) => TestAdmission::Limited(Duration::from_secs_f64(wait.unwrap_or(0.0).clamp(0.0, 86_400.0))),
        })
    }

    pub async fn endpoint(&mut self, id: WebhookId) -> Result<Option<Endpoint>, StoreError> {
        let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(Into::into))
    }

    /// All endpoints, oldest first.
    pub async fn endpoints(&mut self) -> Result<Vec<Endpoint>, StoreError> {
        let rows: Vec<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
        )))
        .fetch_all(self.conn())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Enabled endpoints subscribed to `event_type`.
    pub async fn subscribed_endpoints(&mut self, event_type: &str) -> Result<Vec<WebhookId>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE enabled AND $1 = ANY(events) ORDER BY id")
            .bind(event_type)
            .fetch_all(self.conn())
            .await?)
    }

    /// Applies `change`; re-enabling clears the failure state.
    pub async fn update_endpoint(
        &mut self,
        id: WebhookId,
        change: &EndpointChange,
    ) -> Result<Option<Endpoint>, StoreError> {
        let row: Option<EndpointRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints
                SET url = coalesce($2, url), description = coalesce($3, description), events = coalesce($4, events),
                    enabled = coalesce($5, enabled),
                    disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                    failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
                    updated_at = now()
              WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id)
        .bind(&change.url)
        .bind(&change.description)
        .bind(&change.events)
        .bind(change.enabled)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(Into::into))
    }

    /// Deletes the endpoint and its attempts; returns whether it existed.
    pub async fn delete_endpoint(&mut self, id: WebhookId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Installs a new secret; the current one keeps signing until `overlap_until`.
    pub async fn rotate_endpoint_secret(
        &mut self,
        id: WebhookId,
        secret: &SealedSecret,
        overlap_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints
                SET previous_sealed = secret_sealed, previous_nonce = secret_nonce, previous_until = $5,
                    secret_sealed = $2, secret_nonce = $3, master_key_id = $4, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(&secret.ciphertext)
        .bind(&secret.nonce)
        .bind(&secret.master_key_id)
        .bind(overlap_until)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Disables an endpoint with a reason (410 Gone, failing for days).
    pub async fn disable_endpoint(&mut self, id: WebhookId, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1 AND enabled",
        )
        .bind(id)
        .bind(reason)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the outcome of delivering to `id`: success clears the failure
    /// clock, failure starts it (if not running). Returns when it started.
    pub async fn record_endpoint_health(
        &mut self,
        id: WebhookId,
        ok: bool,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let since: Option<Option<OffsetDateTime>> = sqlx::query_scalar(
            "UPDATE webhook_endpoints
                SET failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(failing_since, now()) END
              WHERE id = $1 RETURNING failing_since",
        )
        .bind(id)
        .bind(ok)
        .fetch_optional(self.conn())
        .await?;
        Ok(since.flatten())
    }

    /// Stores a message once per source outbox event; returns its id and
    /// whether it is new.
    pub async fn insert_message(
        &mut self,
        source_event_id: Option<i64>,
        event_type: &str,
        body: &str,
    ) -> Result<(MessageId, bool), StoreError> {
        let inserted: Option<MessageId> = sqlx::query_scalar(
            "INSERT INTO webhook_messages (id, source_event_id, event_type, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source_event_id) DO NOTHING RETURNING id",
        )
        .bind(MessageId::new())
        .bind(source_event_id)
        .bind(event_type)
        .bind(body)
        .fetch_optional(self.conn())
        .await?;
        if let Some(id) = inserted {
            return Ok((id, true));
        }
        let existing = sqlx::query_scalar("SELECT id FROM webhook_messages WHERE source_event_id = $1")
            .bind(source_event_id)
            .fetch_one(self.conn())
            .await?;
        Ok((existing, false))
    }

    /// The type and body of a message.
    pub async fn message(&mut self, id: MessageId) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT event_type, body FROM webhook_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    pub async fn record_attempt(&mut self, attempt: &NewAttempt<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_attempts (endpoint_id, message_id, attempt, status_code, latency_ms, error, response)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(attempt.endpoint)
        .bind(attempt.message)
        .bind(attempt.attempt)
        .bind(attempt.status_code)
        .bind(attempt.latency_ms)
        .bind(attempt.error)
        .bind(attempt.response)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Attempts of an endpoint, newest first, before the cursor `before`.
    pub async fn attempts(
        &mut self,
        endpoint: WebhookId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, Attempt)>, StoreError> {
        let rows: Vec<NumberedAttempt> = sqlx::query_as(
            "SELECT a.id, a.message_id, m.event_type, a.attempt, a.at, a.status_code, a.latency_ms, a.error, a.response
               FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id
              WHERE a.endpoint_id = $1 AND ($2::bigint IS NULL OR a.id < $2)
              ORDER BY a.id DESC LIMIT $3",
        )
        .bind(endpoint)
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.attempt)).collect())
    }
}

/// A sender of signed inbound deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSource {
    pub name: String,
    pub description: String,
    pub secret: SealedSecret,
    pub previous: Option<(SealedSecret, OffsetDateTime)>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
struct SourceRow {
    name: String,
    description: String,
    #[sqlx(flatten)]
    secrets: SecretColumns,
    created_at: OffsetDateTime,
}

impl From<SourceRow> for InboundSource {
    fn from(row: SourceRow) -> Self {
        let (secret, previous) = row.secrets.into_secrets();
        Self { name: row.name, description: row.description, secret, previous, created_at: row.created_at }
    }
}

const SOURCE_COLUMNS: &str = "name, description, secret_sealed, secret_nonce, previous_sealed, previous_nonce, previous_until, master_key_id, created_at";

impl WorkspaceTx {
    /// Registers a source; `None` when the name is taken.
    pub async fn insert_source(
        &mut self,
        name: &str,
        description: &str,
        secret: &SealedSecret,
    ) -> Result<Option<InboundSource>, StoreError> {
        let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO inbound_sources (name, description, secret_sealed, secret_nonce, master_key_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING {SOURCE_COLUMNS}"
        )))
        .bind(name)
        .bind(description)
        .bind(&secret.ciphertext)
        .bind(&secret.nonce)
        .bind(&secret.master_key_id)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(Into::into))
    }

    pub async fn source(&mut self, name: &str) -> Result<Option<InboundSource>, StoreError> {
        let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SOURCE_COLUMNS} FROM inbound_sources WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(Into::into))
    }

    pub async fn sources(&mut self) -> Result<Vec<InboundSource>, StoreError> {
        let rows: Vec<SourceRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SOURCE_COLUMNS} FROM inbound_sources ORDER BY name")))
                .fetch_all(self.conn())
                .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn delete_source(&mut self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM inbound_sources WHERE name = $1").bind(name).execute(self.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Installs a new secret; the current one is still accepted until `overlap_until`.
    pub async fn rotate_source_secret(
        &mut self,
        name: &str,
        secret: &SealedSecret,
        overlap_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE inbound_sources
                SET previous_sealed = secret_sealed, previous_nonce = secret_nonce, previous_until = $5,
                    secret_sealed = $2, secret_nonce = $3, master_key_id = $4
              WHERE name = $1",
        )
        .bind(name)
        .bind(&secret.ciphertext)
        .bind(&secret.nonce)
        .bind(&secret.master_key_id)
        .bind(overlap_until)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
