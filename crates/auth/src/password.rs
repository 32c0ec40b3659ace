//! Local account passwords: Argon2id (OWASP's recommended parameters are the
//! crate's defaults: 19 MiB, 2 passes, 1 lane), PHC strings in the database.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

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
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| hash("decoy-password-never-matches").unwrap_or_default());
    let candidate = if password.len() > MAX_LENGTH * 4 { "" } else { password };
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(decoy)) else { return false };
    let matches = Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok();
    matches && stored.is_some()
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
}
