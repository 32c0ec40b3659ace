//! What people who are not signed in can make the server do.
//!
//! **Sign-in attempts** are counted in the platform store
//! (`platform.signin_attempts`, shared by every replica) under two keys:
//! the account from one source ([`MAX_FAILURES_PER_ACCOUNT_AND_SOURCE`])
//! and the source whatever the account ([`MAX_FAILURES_PER_SOURCE`]), per
//! [`FAILURE_WINDOW`]. An attempt counts from the moment it starts, so
//! concurrent guesses cannot all pass; a right password gives its attempt
//! back and clears its account-and-source count. There is no account-wide
//! lock: an attacker's wrong guesses stop the attacker's source, never the
//! account's owner signing in from elsewhere. Guessing from many sources is
//! bounded by the per-source limits and by the cost of each guess (Argon2id,
//! a bounded number at once). A source is an IPv4 address or an IPv6 /64.
//!
//! Keys found at their limit are remembered here until their window ends,
//! so a throttled caller is answered from memory, without a database
//! connection (the map is bounded). **OIDC starts** (each writes the login in
//! flight, [`OIDC_STARTS_PER_MINUTE`]) and **portal links** are limited per
//! source by the gateway's `anchor_ratelimit::Limiter`: in process, or
//! shared by every replica through Redis.
//!
//! [`MAX_FAILURES_PER_ACCOUNT_AND_SOURCE`]: crate::MAX_FAILURES_PER_ACCOUNT_AND_SOURCE
//! [`MAX_FAILURES_PER_SOURCE`]: crate::MAX_FAILURES_PER_SOURCE
//! [`FAILURE_WINDOW`]: crate::FAILURE_WINDOW
//! [`OIDC_STARTS_PER_MINUTE`]: crate::OIDC_STARTS_PER_MINUTE

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Entries each map holds at most (a few MB).
const CAPACITY: usize = 100_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Throttle keys known to be at their limit, and until when.
#[derive(Debug, Default)]
pub(crate) struct Refused {
    until: Mutex<HashMap<String, Instant>>,
}

impl Refused {
    /// How long the longest-refused of `keys` stays refused, if any is.
    pub(crate) fn remaining(&self, keys: &[&str]) -> Option<Duration> {
        let now = Instant::now();
        let until = lock(&self.until);
        keys.iter().filter_map(|k| until.get(*k)).filter(|u| **u > now).map(|u| *u - now).max()
    }

    pub(crate) fn remember(&self, key: String, for_: Duration) {
        let now = Instant::now();
        let mut until = lock(&self.until);
        if until.len() >= CAPACITY {
            until.retain(|_, u| *u > now);
        }
        // Full of live entries: the store still refuses, only with a connection.
        if until.len() < CAPACITY {
            until.insert(key, now + for_);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_at_their_limit_are_remembered_until_their_window_ends() {
        let refused = Refused::default();
        assert_eq!(refused.remaining(&["a", "b"]), None);
        refused.remember("b".to_owned(), Duration::from_secs(60));
        assert!(refused.remaining(&["a", "b"]).is_some());
        refused.remember("c".to_owned(), Duration::ZERO);
        assert_eq!(refused.remaining(&["c"]), None, "expired");
    }
}
