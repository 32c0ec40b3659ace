//! Integration tests of the store against the real PostgreSQL server, a fresh
//! database per test.

mod hot_paths;
mod isolation;
mod migrations;
mod pool;
mod provisioning;

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_store::{Database, Workspace};

pub(crate) fn slug(s: &str) -> WorkspaceSlug {
    WorkspaceSlug::parse(s).expect("valid slug")
}

pub(crate) async fn provision(db: &Database, s: &str) -> Workspace {
    db.create_workspace(&slug(s), &WorkspaceName::parse(s).expect("valid name")).await.expect("provision")
}

/// The SQLSTATE of a failed query.
pub(crate) fn sqlstate<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let err = result.expect_err("the query must fail");
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| panic!("not a database error: {err}"))
}
