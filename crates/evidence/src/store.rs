//! The evidence store: credential documents, content-addressed
//! (`<workspace>/<sha256 hex>.json`), so a stored document cannot change
//! without its name no longer matching it. A local directory by default.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("evidence store {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Where credential documents live.
#[derive(Debug, Clone)]
pub enum EvidenceStore {
    /// A directory (default: `data_dir/evidence`).
    Local(PathBuf),
}

impl EvidenceStore {
    /// The object key of a document with `digest` (`sha256:<hex>`).
    pub fn object_key(workspace: &str, digest: &str) -> String {
        format!("{workspace}/{}.json", digest.trim_start_matches("sha256:"))
    }

    /// Stores `bytes` under `key` (durably: written aside, synced, renamed).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Self::Local(root) => {
                let path = root.join(key);
                let io = |source| StoreError::Io { path: path.display().to_string(), source };
                let dir = path.parent().expect("an object key has a directory").to_path_buf();
                tokio::fs::create_dir_all(&dir).await.map_err(io)?;
                let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("object")));
                let file = tokio::fs::File::create(&tmp).await.map_err(io)?;
                let mut file = file;
                tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await.map_err(io)?;
                file.sync_all().await.map_err(io)?;
                tokio::fs::rename(&tmp, &path).await.map_err(io)
            }
        }
    }

    /// The document under `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Local(root) => {
                let path = root.join(key);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::Io { path: path.display().to_string(), source }),
                }
            }
        }
    }
}
