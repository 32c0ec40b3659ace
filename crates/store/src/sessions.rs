//! Local staff accounts, web sessions and OIDC logins in flight.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{Database, StoreError};

/// The issuer of local accounts' subjects.
pub const LOCAL_ISSUER: &str = "urn:anchor:local";

/// A session as the web app sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebSession {
    pub issuer: String,
    pub subject: String,
    pub csrf_token: String,
}

/// A local account's stored credentials.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LocalAccount {
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl Database {
    /// Creates a local account. False when the username is taken.
    pub async fn create_local_account(&self, username: &str, password_hash: &str) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO platform.local_accounts (username, password_hash) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .execute(self.pool())
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn local_account_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM platform.local_accounts").fetch_one(self.pool()).await?)
    }

    pub async fn local_account(&self, username: &str) -> Result<Option<LocalAccount>, StoreError> {
        Ok(sqlx::query_as("SELECT username, password_hash, disabled FROM platform.local_accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Failed sign-ins in the last `window`, for an account and for an address.
    pub async fn recent_signin_failures(
        &self,
        username: &str,
        address: &str,
        window: Duration,
    ) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT count(*) FILTER (WHERE subject = $1) AS by_account,
                    count(*) FILTER (WHERE detail->>'address' = $2) AS by_address
               FROM platform.access_audit
              WHERE action = 'signin' AND outcome = 'failure'
                AND occurred_at > now() - make_interval(secs => $3)",
        )
        .bind(username)
        .bind(address)
        .bind(window.as_secs_f64())
        .fetch_one(self.pool())
        .await?)
    }

    /// Stores a new session under the digest of its cookie value.
    pub async fn create_session(
        &self,
        token: &str,
        issuer: &str,
        subject: &str,
        csrf_token: &str,
        absolute: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO platform.web_sessions (token_hash, issuer, subject, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        )
        .bind(digest(token))
        .bind(issuer)
        .bind(subject)
        .bind(csrf_token)
        .bind(absolute.as_secs_f64())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The live session for a cookie value: not past its absolute expiry and
    /// used within `idle`. Using it extends the idle window.
    pub async fn session(&self, token: &str, idle: Duration) -> Result<Option<WebSession>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE platform.web_sessions SET last_seen_at = now()
              WHERE token_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)
             RETURNING issuer, subject, csrf_token",
        )
        .bind(digest(token))
        .bind(idle.as_secs_f64())
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM platform.web_sessions WHERE token_hash = $1")
            .bind(digest(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Drops sessions past their absolute expiry.
    pub async fn prune_sessions(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM platform.web_sessions WHERE expires_at < now()").execute(self.pool()).await?;
        sqlx::query("DELETE FROM platform.oidc_logins WHERE created_at < now() - interval '1 hour'")
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Remembers an OIDC login in flight, keyed by the digest of its `state`.
    pub async fn begin_oidc_login(&self, state: &str, code_verifier: &str, nonce: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO platform.oidc_logins (state_hash, code_verifier, nonce) VALUES ($1, $2, $3)")
            .bind(digest(state))
            .bind(code_verifier)
            .bind(nonce)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes (and forgets) the login for `state`, if it is at most ten minutes old:
    /// (code_verifier, nonce). A state is usable once.
    pub async fn take_oidc_login(&self, state: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "DELETE FROM platform.oidc_logins WHERE state_hash = $1 AND created_at > now() - interval '10 minutes'
             RETURNING code_verifier, nonce",
        )
        .bind(digest(state))
        .fetch_optional(self.pool())
        .await?)
    }
}
