//! Key material in the installation's data directory (`<data_dir>/keys`,
//! mode 0700; files 0600). A key is created on first use; processes that
//! start together (the roles of `anchor dev`, or `anchor token issue` beside
//! it) agree on one key because each writes aside and links into place, so
//! exactly one file wins and nobody reads a half-written one.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use rand::Rng;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("key file {0} does not hold the expected key")]
    Malformed(String),
}

/// The path of key `name` under `data_dir`.
pub fn path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("keys").join(name)
}

/// Reads the file, or creates it with `make()` first.
fn load_or_create_bytes(path: &Path, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, KeyError> {
    let io = |source| KeyError::Io { path: path.display().to_string(), source };
    if !path.exists() {
        let dir = path.parent().expect("a key path has a directory");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
        let tmp = dir.join(format!("{name}.{:08x}", rand::rng().random::<u32>()));
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        file.write_all(&make()).and_then(|()| file.sync_all()).map_err(io)?;
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    fs::read(path).map_err(io)
}

/// An Ed25519 signing key stored as PKCS#8 DER.
pub fn ed25519(data_dir: &Path, name: &str) -> Result<SigningKey, KeyError> {
    let path = path(data_dir, name);
    let der = load_or_create_bytes(&path, || {
        let seed: [u8; 32] = rand::rng().random();
        SigningKey::from_bytes(&seed).to_pkcs8_der().expect("an Ed25519 key encodes").as_bytes().to_vec()
    })?;
    SigningKey::from_pkcs8_der(&der).map_err(|_| KeyError::Malformed(path.display().to_string()))
}

/// 32 random bytes (an HMAC key).
pub fn secret(data_dir: &Path, name: &str) -> Result<[u8; 32], KeyError> {
    let path = path(data_dir, name);
    let bytes = load_or_create_bytes(&path, || rand::rng().random::<[u8; 32]>().to_vec())?;
    bytes.try_into().map_err(|_| KeyError::Malformed(path.display().to_string()))
}

/// Writes a public value (a public key, say) to `data_dir/keys/name` for
/// other roles to read, unless it already holds exactly that (mode 0644;
/// written aside and renamed into place).
pub fn publish(data_dir: &Path, name: &str, contents: &str) -> Result<(), KeyError> {
    let path = path(data_dir, name);
    let io = |source| KeyError::Io { path: path.display().to_string(), source };
    if fs::read_to_string(&path).is_ok_and(|current| current.trim() == contents) {
        return Ok(());
    }
    let dir = path.parent().expect("a key path has a directory");
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    let tmp = dir.join(format!("{name}.{:08x}", rand::rng().random::<u32>()));
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp).map_err(io)?;
    file.write_all(format!("{contents}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)
}

/// Reads a value [`publish`]ed by another role, if it is there.
pub fn published(data_dir: &Path, name: &str) -> Result<Option<String>, KeyError> {
    let path = path(data_dir, name);
    match fs::read_to_string(&path) {
        Ok(contents) => Ok(Some(contents.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io { path: path.display().to_string(), source }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_then_reused_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ed25519(dir.path(), "signer.p8").expect("create");
        let again = ed25519(dir.path(), "signer.p8").expect("load");
        assert_eq!(first.to_bytes(), again.to_bytes());
        let mode = fs::metadata(path(dir.path(), "signer.p8")).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(secret(dir.path(), "mac").expect("create"), secret(dir.path(), "mac").expect("load"));
        assert!(matches!(ed25519(dir.path(), "mac"), Err(KeyError::Malformed(_))), "a secret is not a PKCS#8 key");
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| secret(dir.path(), "shared").expect("key"))).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}
