//! Idempotency keys: the first response to a (subject, workspace, key) is
//! kept and replayed; a racing duplicate finds the key in flight.

use std::time::Duration;

use sqlx::types::Json;

use crate::{Database, StoreError};

/// Whose key, where.
#[derive(Debug, Clone, Copy)]
pub struct KeyScope<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    /// Workspace slug of the request, or "" for platform routes.
    pub workspace: &'a str,
    pub key: &'a str,
}

/// A response as kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

anchor_domain::names!(
    /// Where a key is: its first request is running, or answered.
    pub enum KeyState {
        InFlight = "in_flight",
        Completed = "completed",
    }
);

/// A key as stored.
#[derive(Debug, sqlx::FromRow)]
struct KeyRecord {
    fingerprint: Vec<u8>,
    state: KeyState,
    response_status: Option<i16>,
    /// `[[name, value], ...]`.
    #[sqlx(json(nullable))]
    response_headers: Option<Vec<(String, String)>>,
    response_body: Option<Vec<u8>>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: run the request, then complete or release it.
    Proceed,
    /// The first request with this key is still running.
    InFlight,
    /// The key was used for a different request.
    Reused,
    /// The first request finished; answer with its response.
    Replay(StoredResponse),
}

impl Database {
    /// Claims a key atomically. An expired key, or one abandoned in flight by
    /// a process that died (lease over, same request), is claimed afresh.
    pub async fn claim_idempotency_key(
        &self,
        scope: KeyScope<'_>,
        fingerprint: &[u8],
        lease: Duration,
        retention: Duration,
    ) -> Result<Claim, StoreError> {
        // The key can be released between our insert and our read (the first
        // request answered "try again"); then it is free and we try again.
        for _ in 0..3 {
            if let Some(claim) = self.try_claim_idempotency_key(scope, fingerprint, lease, retention).await? {
                return Ok(claim);
            }
        }
        Ok(Claim::InFlight)
    }

    async fn try_claim_idempotency_key(
        &self,
        scope: KeyScope<'_>,
        fingerprint: &[u8],
        lease: Duration,
        retention: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO platform.idempotency_keys AS k
                 (issuer, subject, workspace, key, fingerprint, state, locked_until, expires_at)
             VALUES ($1, $2, $3, $4, $5, 'in_flight', now() + make_interval(secs => $6), now() + make_interval(secs => $7))
             ON CONFLICT (issuer, subject, workspace, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', locked_until = EXCLUDED.locked_until,
                    expires_at = EXCLUDED.expires_at, created_at = now(),
                    response_status = NULL, response_headers = NULL, response_body = NULL
              WHERE k.expires_at < now()
                 OR (k.state = 'in_flight' AND k.locked_until < now() AND k.fingerprint = EXCLUDED.fingerprint)
             RETURNING 1",
        )
        .bind(scope.issuer)
        .bind(scope.subject)
        .bind(scope.workspace)
        .bind(scope.key)
        .bind(fingerprint)
        .bind(lease.as_secs_f64())
        .bind(retention.as_secs_f64())
        .fetch_optional(self.pool())
        .await?;
        if claimed.is_some() {
            return Ok(Some(Claim::Proceed));
        }
        let record: Option<KeyRecord> = sqlx::query_as(
            "SELECT fingerprint, state, response_status, response_headers, response_body
               FROM platform.idempotency_keys WHERE issuer = $1 AND subject = $2 AND workspace = $3 AND key = $4",
        )
        .bind(scope.issuer)
        .bind(scope.subject)
        .bind(scope.workspace)
        .bind(scope.key)
        .fetch_optional(self.pool())
        .await?;
        let Some(record) = record else { return Ok(None) };
        if record.fingerprint != fingerprint {
            return Ok(Some(Claim::Reused));
        }
        if record.state == KeyState::InFlight {
            return Ok(Some(Claim::InFlight));
        }
        let (Some(status), Some(headers), Some(body)) =
            (record.response_status, record.response_headers, record.response_body)
        else {
            let what = "a completed idempotency key without its response";
            return Err(StoreError::Database(sqlx::Error::Decode(what.into())));
        };
        Ok(Some(Claim::Replay(StoredResponse { status: status as u16, headers, body })))
    }

    /// Keeps the response of the request that held the key.
    pub async fn complete_idempotency_key(
        &self,
        scope: KeyScope<'_>,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE platform.idempotency_keys
                SET state = 'completed', response_status = $5, response_headers = $6, response_body = $7
              WHERE issuer = $1 AND subject = $2 AND workspace = $3 AND key = $4 AND state = 'in_flight'",
        )
        .bind(scope.issuer)
        .bind(scope.subject)
        .bind(scope.workspace)
        .bind(scope.key)
        .bind(response.status as i16)
        .bind(Json(&response.headers))
        .bind(&response.body)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives the key back (the request failed in a way worth retrying).
    pub async fn release_idempotency_key(&self, scope: KeyScope<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM platform.idempotency_keys
              WHERE issuer = $1 AND subject = $2 AND workspace = $3 AND key = $4 AND state = 'in_flight'",
        )
        .bind(scope.issuer)
        .bind(scope.subject)
        .bind(scope.workspace)
        .bind(scope.key)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops keys past their retention.
    pub async fn prune_idempotency_keys(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM platform.idempotency_keys WHERE expires_at < now()").execute(self.pool()).await?;
        Ok(done.rows_affected())
    }
}
