//! The evidence store: credential documents, content-addressed
//! (`<workspace>/<sha256 hex>.json`), so a stored document cannot change
//! without its name no longer matching it. A local directory by default;
//! S3-compatible object storage when configured (requests signed with AWS
//! SigV4 by `rusty-s3`, sent with the process's HTTP client).

use std::{path::PathBuf, sync::Arc, time::Duration};

use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("evidence store {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("evidence store s3://{bucket}/{key}: {reason}")]
    S3 { bucket: String, key: String, reason: String },
    #[error("evidence store: {0}")]
    Config(String),
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// `https://endpoint/bucket/key` (most S3-compatible servers) rather than
    /// `https://bucket.endpoint/key`.
    pub path_style: bool,
}

/// A connected bucket.
pub struct S3Bucket {
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Bucket").field("bucket", &self.bucket.name()).finish_non_exhaustive()
    }
}

/// How long a signed request stays valid (it is sent at once).
const SIGNATURE_TTL: Duration = Duration::from_secs(60);

impl S3Bucket {
    pub fn new(config: &S3Config) -> Result<Self, StoreError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = config.endpoint.parse().map_err(|e| StoreError::Config(format!("endpoint: {e}")))?;
        let style = if config.path_style { rusty_s3::UrlStyle::Path } else { rusty_s3::UrlStyle::VirtualHost };
        let bucket = rusty_s3::Bucket::new(endpoint, style, config.bucket.clone(), config.region.clone())
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let credentials = rusty_s3::Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.expose_secret().to_owned(),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self { bucket, credentials, http })
    }

    fn failed(&self, key: &str, reason: impl Into<String>) -> StoreError {
        StoreError::S3 { bucket: self.bucket.name().to_owned(), key: key.to_owned(), reason: reason.into() }
    }

    /// Creates the bucket (tests and first-time setup; an existing bucket is fine).
    pub async fn create_bucket(&self) -> Result<(), StoreError> {
        use rusty_s3::S3Action;
        let url = self.bucket.create_bucket(&self.credentials).sign(SIGNATURE_TTL);
        let response = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(|e| self.failed("", e.to_string()))?;
        match response.status().as_u16() {
            200..=299 | 409 => Ok(()),
            status => Err(self.failed("", format!("create bucket: HTTP {status}"))),
        }
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        use rusty_s3::S3Action;
        let url = self.bucket.put_object(Some(&self.credentials), key).sign(SIGNATURE_TTL);
        let response = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "application/vc+json")
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| self.failed(key, e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.failed(key, format!("PUT: HTTP {}", response.status())))
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        use rusty_s3::S3Action;
        let url = self.bucket.get_object(Some(&self.credentials), key).sign(SIGNATURE_TTL);
        let response = self.http.get(url).send().await.map_err(|e| self.failed(key, e.to_string()))?;
        match response.status().as_u16() {
            200 => Ok(Some(response.bytes().await.map_err(|e| self.failed(key, e.to_string()))?.to_vec())),
            404 => Ok(None),
            status => Err(self.failed(key, format!("GET: HTTP {status}"))),
        }
    }
}

/// Where credential documents live.
#[derive(Debug, Clone)]
pub enum EvidenceStore {
    /// A directory (default: `data_dir/evidence`).
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(Arc<S3Bucket>),
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
            Self::S3(bucket) => bucket.put(key, bytes).await,
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
            Self::S3(bucket) => bucket.get(key).await,
        }
    }
}
