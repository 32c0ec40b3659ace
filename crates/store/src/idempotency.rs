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

/// A response as kept for replay. The body is sealed by the caller (it may
/// carry a secret shown only once); the store never sees it in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: StoredBody,
    /// The authorization decision the answer was given under (a permission
    /// name, or "authenticated"), made again before a replay. `None` on keys
    /// kept before decisions were recorded.
    pub decided_by: Option<String>,
}

/// A kept response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredBody {
    /// Sealed with the master key `master_key_id`.
    Sealed { ciphertext: Vec<u8>, nonce: Vec<u8>, master_key_id: String },
    /// Kept before sealing (an upgrade dropped those that held a secret).
    Plain(Vec<u8>),
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
    response_nonce: Option<Vec<u8>>,
    response_key_id: Option<String>,
    decided_by: Option<String>,
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
                    response_status = NULL, response_headers = NULL, response_body = NULL,
                    response_nonce = NULL, response_key_id = NULL, decided_by = NULL
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
            "SELECT fingerprint, state, response_status, response_headers, response_body,
                    response_nonce, response_key_id, decided_by
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
        let body = match (record.response_nonce, record.response_key_id) {
            (Some(nonce), Some(master_key_id)) => StoredBody::Sealed { ciphertext: body, nonce, master_key_id },
            _ => StoredBody::Plain(body),
        };
        let decided_by = record.decided_by;
        Ok(Some(Claim::Replay(StoredResponse { status: status as u16, headers, body, decided_by })))
    }

    /// Keeps the response of the request that held the key.
    pub async fn complete_idempotency_key(
        &self,
        scope: KeyScope<'_>,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let (body, nonce, key_id) = match &response.body {
            StoredBody::Sealed { ciphertext, nonce, master_key_id } => {
                (ciphertext.as_slice(), Some(nonce.as_slice()), Some(master_key_id.as_str()))
            }
            StoredBody::Plain(body) => (body.as_slice(), None, None),
        };
        sqlx::query(
            "UPDATE platform.idempotency_keys
                SET state = 'completed', response_status = $5, response_headers = $6, response_body = $7,
                    response_nonce = $8, response_key_id = $9, decided_by = $10
              WHERE issuer = $1 AND subject = $2 AND workspace = $3 AND key = $4 AND state = 'in_flight'",
        )
        .bind(scope.issuer)
        .bind(scope.subject)
        .bind(scope.workspace)
        .bind(scope.key)
        .bind(response.status as i16)
        .bind(Json(&response.headers))
        .bind(body)
        .bind(nonce)
        .bind(key_id)
        .bind(response.decided_by.as_deref())
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
