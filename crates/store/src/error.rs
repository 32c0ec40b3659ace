use anchor_domain::WorkspaceSlug;

/// Errors of the storage layer. Messages are fit for operators; they never
/// carry connection strings or passwords.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Unreachable(#[source] sqlx::Error),
    #[error("workspace \"{0}\" already exists")]
    WorkspaceExists(WorkspaceSlug),
    #[error("workspace \"{0}\" does not exist")]
    WorkspaceNotFound(WorkspaceSlug),
    #[error("workspace \"{0}\" would be left without an MSP admin")]
    LastAdmin(WorkspaceSlug),
    #[error("{0} is not a role that can be granted here")]
    WrongKindOfRole(anchor_domain::Role),
    #[error(
        "the platform schema is not migrated to this version of Anchor (at {applied}, expected {expected}); run `anchor migrate`"
    )]
    PlatformBehind { applied: i32, expected: i32 },
    #[error("{target}: migration {version} ({name}) was changed after it was applied; migrations are append-only")]
    ChecksumMismatch { target: String, version: i32, name: String },
    #[error("{target}: schema is at migration {applied}, newer than this binary knows ({known}); upgrade Anchor")]
    SchemaNewerThanBinary { target: String, applied: i32, known: i32 },
    #[error("{target}: migration {version} ({name}) failed: {source}")]
    MigrationFailed {
        target: String,
        version: i32,
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// PostgreSQL's SQLSTATE, when the error came from the server.
    pub fn sqlstate(&self) -> Option<String> {
        let sqlx_error = match self {
            Self::Database(e) | Self::Unreachable(e) | Self::MigrationFailed { source: e, .. } => e,
            _ => return None,
        };
        sqlx_error.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned())
    }
}
