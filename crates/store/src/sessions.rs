//! Local staff accounts, web sessions, OIDC logins in flight, and the
//! sign-in attempt counts that throttle guessing.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{Database, StoreError};

/// The issuer of local accounts' subjects.
pub const LOCAL_ISSUER: &str = "urn:anchor:local";

/// How stale a session's `last_seen_at` may be before a request writes it
/// again: the idle timeout is exact to within this.
pub const SEEN_PRECISION: Duration = Duration::from_secs(60);

/// A session as the web app sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebSession {
    pub issuer: String,
    pub subject: String,
    pub csrf_token: String,
}

/// Whether a sign-in attempt may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigninAttempt {
    Admitted,
    /// These keys are at their limit, each until the given time has passed.
    Refused {
        over: Vec<(String, Duration)>,
    },
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

    /// Starts a sign-in attempt: counts one attempt under every key, all or
    /// none, unless a key is at its limit (`(key, limit)`). An attempt counts
    /// from the moment it starts, so attempts still running count toward the
    /// limit: concurrent attempts cannot all pass. A key's window starts with
    /// its first attempt and lasts `window`. Keys are locked in one order, so
    /// concurrent attempts never deadlock.
    pub async fn begin_signin_attempt(
        &self,
        keys: &[(&str, i32)],
        window: Duration,
    ) -> Result<SigninAttempt, StoreError> {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        let (names, limits): (Vec<&str>, Vec<i32>) = keys.into_iter().unzip();
        let mut tx = self.begin().await?;
        let counted: Vec<(String, bool, f64)> = sqlx::query_as(
            "WITH wanted AS (SELECT * FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS w(key, max_attempts, n)),
                  counted AS (
                      INSERT INTO platform.signin_attempts AS a (key, attempts, resets_at)
                      SELECT key, 1, now() + make_interval(secs => $3) FROM wanted ORDER BY n
                      ON CONFLICT (key) DO UPDATE SET
                          attempts = CASE WHEN a.resets_at <= now() THEN 1 ELSE a.attempts + 1 END,
                          resets_at = CASE WHEN a.resets_at <= now() THEN EXCLUDED.resets_at ELSE a.resets_at END
                      RETURNING key, attempts, resets_at)
             SELECT c.key, c.attempts <= w.max_attempts, extract(epoch FROM c.resets_at - now())::float8
               FROM counted c JOIN wanted w USING (key)",
        )
        .bind(&names)
        .bind(&limits)
        .bind(window.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        let over: Vec<(String, Duration)> = counted
            .into_iter()
            .filter(|(_, admitted, _)| !admitted)
            .map(|(key, _, wait)| (key, Duration::from_secs_f64(wait.max(1.0))))
            .collect();
        if over.is_empty() {
            tx.commit().await?;
            Ok(SigninAttempt::Admitted)
        } else {
            tx.rollback().await?;
            Ok(SigninAttempt::Refused { over })
        }
    }

    /// Ends an attempt that did not fail: the `reset` keys start afresh (the
    /// password was right), the `give_back` keys count one attempt less (it
    /// was right, or never checked).
    pub async fn end_signin_attempt(&self, reset: &[&str], give_back: &[&str]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE platform.signin_attempts
                SET attempts = CASE WHEN key = ANY($1) THEN 0 ELSE greatest(attempts - 1, 0) END
              WHERE key = ANY($1) OR key = ANY($2)",
        )
        .bind(reset)
        .bind(give_back)
        .execute(self.pool())
        .await?;
        Ok(())
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

    /// The live session for a cookie value: not past its absolute expiry,
    /// used within `idle`, and, for a local account, of an account that
    /// still exists and is not disabled (checked on every request, however
    /// the account was disabled). Using it extends the idle window, written
    /// at most once per [`SEEN_PRECISION`] (a page and its fragments and
    /// streams are many requests: one row version a minute, not one each).
    pub async fn session(&self, token: &str, idle: Duration) -> Result<Option<WebSession>, StoreError> {
        Ok(sqlx::query_as(
            "WITH live AS (
                SELECT token_hash, issuer, subject, csrf_token, last_seen_at FROM platform.web_sessions s
                 WHERE token_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)
                   AND (s.issuer <> $3 OR EXISTS (
                           SELECT 1 FROM platform.local_accounts a WHERE a.username = s.subject AND NOT a.disabled))),
             seen AS (
                UPDATE platform.web_sessions s SET last_seen_at = now() FROM live
                 WHERE s.token_hash = live.token_hash AND live.last_seen_at < now() - make_interval(secs => $4))
             SELECT issuer, subject, csrf_token FROM live",
        )
        .bind(digest(token))
        .bind(idle.as_secs_f64())
        .bind(LOCAL_ISSUER)
        .bind(SEEN_PRECISION.as_secs_f64())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Disables or enables a local account; disabling ends its sessions.
    /// False when there is no such account.
    pub async fn set_local_account_disabled(&self, username: &str, disabled: bool) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE platform.local_accounts SET disabled = $2 WHERE username = $1")
            .bind(username)
            .bind(disabled)
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM platform.web_sessions WHERE issuer = $1 AND subject = $2")
                .bind(LOCAL_ISSUER)
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM platform.web_sessions WHERE token_hash = $1")
            .bind(digest(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Drops sessions (staff and portal) past their absolute expiry, portal sign-in
    /// links a month past theirs, OIDC logins never
    /// finished, and sign-in attempt counts whose window has ended.
    pub async fn prune_sessions(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM platform.web_sessions WHERE expires_at < now()").execute(self.pool()).await?;
        sqlx::query("DELETE FROM platform.portal_sessions WHERE expires_at < now()").execute(self.pool()).await?;
        sqlx::query("DELETE FROM platform.portal_links WHERE expires_at < now() - interval '30 days'")
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM platform.oidc_logins WHERE created_at < now() - interval '1 hour'")
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM platform.signin_attempts WHERE resets_at < now()").execute(self.pool()).await?;
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
