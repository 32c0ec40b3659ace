//! A workspace's webhook endpoints, messages and delivery attempts.

use anchor_domain::{MessageId, WebhookId};
use sqlx::{Row, postgres::PgRow};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub message_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub at: OffsetDateTime,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// A new attempt's outcome.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub endpoint: WebhookId,
    pub message: &'a str,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
    pub response: Option<&'a str>,
}

fn decode(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

const ENDPOINT_COLUMNS: &str = "id, url, description, events, enabled, disabled_reason, secret_sealed, secret_nonce,
    previous_sealed, previous_nonce, previous_until, master_key_id, failing_since, created_at, updated_at";

/// The previous secret of a rotation, with the end of its overlap.
fn previous_secret(row: &PgRow, master_key_id: &str) -> Result<Option<(SealedSecret, OffsetDateTime)>, StoreError> {
    Ok(match (row.try_get("previous_sealed")?, row.try_get("previous_nonce")?, row.try_get("previous_until")?) {
        (Some(ciphertext), Some(nonce), Some(until)) => {
            Some((SealedSecret { ciphertext, nonce, master_key_id: master_key_id.to_owned() }, until))
        }
        _ => None,
    })
}

fn endpoint_from_row(row: &PgRow) -> Result<Endpoint, StoreError> {
    let id: String = row.try_get("id")?;
    let master_key_id: String = row.try_get("master_key_id")?;
    let previous = previous_secret(row, &master_key_id)?;
    Ok(Endpoint {
        id: id.parse().map_err(|e: anchor_domain::IdError| decode(e.to_string()))?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events: row.try_get("events")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        secret: SealedSecret {
            ciphertext: row.try_get("secret_sealed")?,
            nonce: row.try_get("secret_nonce")?,
            master_key_id,
        },
        previous,
        failing_since: row.try_get("failing_since")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl WorkspaceTx {
    pub async fn insert_endpoint(
        &mut self,
        id: WebhookId,
        url: &str,
        description: &str,
        events: &[String],
        secret: &SealedSecret,
    ) -> Result<Endpoint, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret_sealed, secret_nonce, master_key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id.to_string())
        .bind(url)
        .bind(description)
        .bind(events)
        .bind(&secret.ciphertext)
        .bind(&secret.nonce)
        .bind(&secret.master_key_id)
        .fetch_one(self.conn())
        .await?;
        endpoint_from_row(&row)
    }

    pub async fn endpoint(&mut self, id: WebhookId) -> Result<Option<Endpoint>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1")))
                .bind(id.to_string())
                .fetch_optional(self.conn())
                .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// All endpoints, oldest first.
    pub async fn endpoints(&mut self) -> Result<Vec<Endpoint>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id")))
                .fetch_all(self.conn())
                .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// Enabled endpoints subscribed to `event_type`.
    pub async fn subscribed_endpoints(&mut self, event_type: &str) -> Result<Vec<WebhookId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE enabled AND $1 = ANY(events) ORDER BY id")
                .bind(event_type)
                .fetch_all(self.conn())
                .await?;
        ids.iter().map(|id| id.parse().map_err(|e: anchor_domain::IdError| decode(e.to_string()))).collect()
    }

    /// Applies `change`; re-enabling clears the failure state.
    pub async fn update_endpoint(
        &mut self,
        id: WebhookId,
        change: &EndpointChange,
    ) -> Result<Option<Endpoint>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints
                SET url = coalesce($2, url), description = coalesce($3, description), events = coalesce($4, events),
                    enabled = coalesce($5, enabled),
                    disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                    failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
                    updated_at = now()
              WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id.to_string())
        .bind(&change.url)
        .bind(&change.description)
        .bind(&change.events)
        .bind(change.enabled)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// Deletes the endpoint and its attempts; returns whether it existed.
    pub async fn delete_endpoint(&mut self, id: WebhookId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.to_string())
            .execute(self.conn())
            .await?;
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
        .bind(id.to_string())
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
        .bind(id.to_string())
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
        .bind(id.to_string())
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
        let id = MessageId::new();
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO webhook_messages (id, source_event_id, event_type, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source_event_id) DO NOTHING RETURNING id",
        )
        .bind(id.to_string())
        .bind(source_event_id)
        .bind(event_type)
        .bind(body)
        .fetch_optional(self.conn())
        .await?;
        if inserted.is_some() {
            return Ok((id, true));
        }
        let existing: String = sqlx::query_scalar("SELECT id FROM webhook_messages WHERE source_event_id = $1")
            .bind(source_event_id)
            .fetch_one(self.conn())
            .await?;
        Ok((existing.parse().map_err(|e: anchor_domain::IdError| decode(e.to_string()))?, false))
    }

    /// The body and type of a message.
    pub async fn message(&mut self, id: MessageId) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT event_type, body FROM webhook_messages WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| Ok((r.try_get("event_type")?, r.try_get("body")?))).transpose()
    }

    pub async fn record_attempt(&mut self, attempt: &NewAttempt<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_attempts (endpoint_id, message_id, attempt, status_code, latency_ms, error, response)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(attempt.endpoint.to_string())
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
        let rows = sqlx::query(
            "SELECT a.id, a.message_id, m.event_type, a.attempt, a.at, a.status_code, a.latency_ms, a.error, a.response
               FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id
              WHERE a.endpoint_id = $1 AND ($2::bigint IS NULL OR a.id < $2)
              ORDER BY a.id DESC LIMIT $3",
        )
        .bind(endpoint.to_string())
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    Attempt {
                        message_id: r.try_get("message_id")?,
                        event_type: r.try_get("event_type")?,
                        attempt: r.try_get("attempt")?,
                        at: r.try_get("at")?,
                        status_code: r.try_get("status_code")?,
                        latency_ms: r.try_get("latency_ms")?,
                        error: r.try_get("error")?,
                        response: r.try_get("response")?,
                    },
                ))
            })
            .collect()
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

fn source_from_row(row: &PgRow) -> Result<InboundSource, StoreError> {
    let master_key_id: String = row.try_get("master_key_id")?;
    let previous = previous_secret(row, &master_key_id)?;
    Ok(InboundSource {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        secret: SealedSecret {
            ciphertext: row.try_get("secret_sealed")?,
            nonce: row.try_get("secret_nonce")?,
            master_key_id,
        },
        previous,
        created_at: row.try_get("created_at")?,
    })
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
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
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
        row.as_ref().map(source_from_row).transpose()
    }

    pub async fn source(&mut self, name: &str) -> Result<Option<InboundSource>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SOURCE_COLUMNS} FROM inbound_sources WHERE name = $1")))
                .bind(name)
                .fetch_optional(self.conn())
                .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    pub async fn sources(&mut self) -> Result<Vec<InboundSource>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SOURCE_COLUMNS} FROM inbound_sources ORDER BY name")))
                .fetch_all(self.conn())
                .await?;
        rows.iter().map(source_from_row).collect()
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
