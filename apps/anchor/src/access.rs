//! `anchor token issue` and `anchor member set`.

use std::time::Duration;

use anchor_auth::{DevIssuer, dev_issuer::DEV_ISSUER};
use anchor_config::Settings;
use anchor_domain::{Role, WorkspaceSlug};
use anchor_store::{
    Database, StoreError,
    access::{AuditContext, SubjectRef},
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print an access token from the dev issuer (key in the data directory)
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The token's subject (`sub`)
    #[arg(long, value_name = "NAME")]
    pub sub: String,
    /// Also make the subject a platform admin (recorded on the server, not in the token)
    #[arg(long)]
    pub platform_admin: bool,
    /// Lifetime, at most 15m
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a subject to a workspace, or change its role
    Set {
        /// Workspace slug
        #[arg(value_parser = WorkspaceSlug::parse)]
        slug: WorkspaceSlug,
        /// The subject's `sub`
        subject: String,
        /// msp_admin, technician, finance, auditor, client_admin or client_user
        #[arg(value_parser = Role::parse_workspace_role)]
        role: Role,
        /// The subject's issuer [default: the dev issuer]
        #[arg(long)]
        issuer: Option<String>,
    },
}

/// Who acts when the CLI changes access: the operator's OS account.
fn cli_audit() -> AuditContext {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_owned());
    AuditContext { issuer: Some("anchor-cli".to_owned()), subject: Some(user), request_id: None }
}

pub(crate) fn dev_issuer(settings: &Settings) -> anyhow::Result<DevIssuer> {
    if !settings.dev_issuer {
        bail!(
            "the dev issuer is turned off (setting dev_issuer, ANCHOR_DEV_ISSUER); tokens come from the external issuers"
        );
    }
    Ok(DevIssuer::load_or_create(&settings.data_dir)?)
}

pub(crate) fn validate_subject(subject: &str) -> anyhow::Result<()> {
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
        bail!("a subject is 1 to 255 characters without control characters");
    }
    Ok(())
}

pub(crate) async fn grant_platform_admin(db: &Database, subject: &str) -> anyhow::Result<()> {
    let who = SubjectRef { issuer: DEV_ISSUER, subject };
    db.grant_platform_role(who, Role::PlatformAdmin, &cli_audit()).await.context("grant platform_admin")
}

pub(crate) async fn set_member(db: &Database, command: MemberCommand) -> anyhow::Result<()> {
    let MemberCommand::Set { slug, subject, role, issuer } = command;
    validate_subject(&subject)?;
    let workspace = db.workspace(&slug).await?.ok_or(StoreError::WorkspaceNotFound(slug))?;
    let issuer = issuer.unwrap_or_else(|| DEV_ISSUER.to_owned());
    let who = SubjectRef { issuer: &issuer, subject: &subject };
    let (member, created) = db.set_member(&workspace, who, role, &cli_audit()).await?;
    let verb = if created { "added" } else { "set" };
    println!("{verb} {} ({}) as {} of workspace {}", member.subject, member.issuer, member.role, workspace.slug());
    Ok(())
}
