//! Local account passwords: Argon2id (OWASP's recommended parameters are the
//! crate's defaults: 19 MiB, 2 passes, 1 lane), PHC strings in the database.
//! A server checks passwords through [`PasswordHashing`], which bounds how
//! many of these run at once.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use tokio::sync::Semaphore;

/// Shortest password accepted for a local account (ASVS 6.2.1).
pub const MIN_LENGTH: usize = 12;
/// Longest password hashed, to bound the work an attacker can ask for.
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs {MIN_LENGTH} to {MAX_LENGTH} characters")]
    Length,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hashes a new password. Slow by design: call from a blocking task.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let length = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(PasswordError::Length);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored hash. With no hash (unknown account)
/// it still does the same work, so timing does not reveal which accounts exist.
/// Slow by design: a server calls it through [`PasswordHashing::verify`].
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| hash("decoy-password-never-matches").unwrap_or_default());
    let candidate = if password.len() > MAX_LENGTH * 4 { "" } else { password };
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(decoy)) else { return false };
    let matches = Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok();
    matches && stored.is_some()
}

/// The password hashing a server does for people who are not signed in yet,
/// bounded: at most `concurrency` Argon2 computations at once (each holds
/// 19 MiB and a core), on the blocking pool, never on the async threads. A
/// burst waits for a slot at most `max_wait`, and at most 32 callers per slot
/// wait at all; the rest are told to come back ([`Busy`]).
#[derive(Debug)]
pub struct PasswordHashing {
    slots: Arc<Semaphore>,
    concurrency: usize,
    max_wait: Duration,
    waiting: AtomicUsize,
    gauge: Arc<Gauge>,
}

/// How many hashes run now, and the most that ever ran at once.
#[derive(Debug, Default)]
struct Gauge {
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// Every hashing slot is taken and the wait would be too long.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("password checks are busy; try again in {retry_after:?}")]
pub struct Busy {
    pub retry_after: Duration,
}

/// Longest a sign-in waits for a hashing slot by default.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);
/// Callers that may wait, per slot.
const WAITING_PER_SLOT: usize = 32;

impl PasswordHashing {
    /// `concurrency` 0 means one slot per core.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        let concurrency = if concurrency == 0 { cores() } else { concurrency };
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            max_wait,
            waiting: AtomicUsize::new(0),
            gauge: Arc::default(),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Hashes running now.
    pub fn running(&self) -> usize {
        self.gauge.running.load(SeqCst)
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.gauge.peak.load(SeqCst)
    }

    /// [`verify`] in a slot. The slot is held until the computation ends,
    /// even when the caller stops waiting for it (a closed connection).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        let busy = Busy { retry_after: self.max_wait.max(Duration::from_secs(1)) };
        let slot = {
            // Counted while waiting, also when the caller gives up (dropped future).
            let _waiting = Waiting::enter(&self.waiting);
            if self.waiting.load(SeqCst) > self.concurrency * WAITING_PER_SLOT {
                return Err(busy);
            }
            tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned()).await
        };
        let Ok(Ok(slot)) = slot else { return Err(busy) };
        let gauge = Arc::clone(&self.gauge);
        let checked = tokio::task::spawn_blocking(move || {
            let running = gauge.running.fetch_add(1, SeqCst) + 1;
            gauge.peak.fetch_max(running, SeqCst);
            let matches = verify(&password, stored.as_deref());
            gauge.running.fetch_sub(1, SeqCst);
            drop(slot);
            matches
        })
        .await;
        Ok(checked.unwrap_or(false))
    }
}

/// One caller waiting for a slot, for as long as it is alive.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Default for PasswordHashing {
    /// One slot per core, [`DEFAULT_MAX_WAIT`].
    fn default() -> Self {
        Self::new(0, DEFAULT_MAX_WAIT)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A random password for generated accounts (the first-run admin): 24
/// characters from an alphabet without look-alikes.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let stored = hash("correct horse battery").expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&stored)));
        assert!(!verify("correct horse batterz", Some(&stored)));
        assert!(!verify("correct horse battery", None), "no account, no match");
        assert!(matches!(hash("short"), Err(PasswordError::Length)));
        assert_ne!(generate(), generate());
        assert_eq!(generate().len(), 24);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_runs_at_most_its_slots_at_once_and_refuses_a_long_wait() {
        let stored = hash("correct horse battery").expect("hash");
        let hashing = Arc::new(PasswordHashing::new(2, Duration::from_secs(600)));
        let checks = (0..8).map(|i| {
            let (hashing, stored) = (Arc::clone(&hashing), stored.clone());
            let password = if i == 0 { "correct horse battery" } else { "wrong horse battery" };
            tokio::spawn(async move { hashing.verify(password.to_owned(), Some(stored)).await })
        });
        let checks: Vec<_> = checks.collect();
        let mut matched = 0;
        for check in checks {
            matched += usize::from(check.await.expect("task").expect("not busy"));
        }
        assert_eq!(matched, 1);
        assert_eq!(hashing.peak(), 2, "never more than the slots, and the burst used them");
        assert_eq!(hashing.running(), 0);

        // Every slot taken and little patience: told to come back, with when.
        let impatient = PasswordHashing::new(1, Duration::from_millis(10));
        let taken = Arc::clone(&impatient.slots).acquire_owned().await.expect("slot");
        let busy = impatient.verify("wrong horse battery".to_owned(), Some(stored.clone())).await;
        assert!(busy.is_err_and(|b| b.retry_after >= Duration::from_secs(1)));
        drop(taken);
        assert_eq!(impatient.verify("correct horse battery".to_owned(), Some(stored)).await.ok(), Some(true));
    }
}
