//! `anchor token issue` and `anchor member set`.

use std::time::Duration;

use anchor_auth::{DevIssuer, dev_issuer::DEV_ISSUER};
use anchor_config::Settings;
use anchor_domain::{Role, WorkspaceSlug};
use anchor_store::{
    Database, StoreError,
    access::{AuditContext, SubjectRef},
    sessions::LOCAL_ISSUER,
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
pub enum AccountCommand {
    /// Create a local staff account for web sign-in; prints a generated password
    Create {
        /// Username: lowercase letters, digits and . _ @ -
        username: String,
        /// Read the password from standard input instead of generating one
        #[arg(long)]
        password_stdin: bool,
        /// Also make the account a platform admin
        #[arg(long)]
        platform_admin: bool,
    },
    /// Disable a local account: it cannot sign in, and its sessions end at once
    Disable { username: String },
    /// Enable a disabled local account again
    Enable { username: String },
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
        /// The subject's issuer [default: the only issuer the installation trusts]
        #[arg(long, conflicts_with = "local")]
        issuer: Option<String>,
        /// The subject is a local account (web sign-in)
        #[arg(long)]
        local: bool,
    },
}

/// Who acts when the CLI changes access: the operator's OS account.
fn cli_audit() -> AuditContext {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_owned());
    AuditContext { issuer: Some("anchor-cli".to_owned()), subject: Some(user), request_id: None }
}

pub(crate) fn dev_issuer(settings: &Settings) -> anyhow::Result<DevIssuer> {
    if !settings.dev_issuer_trusted() {
        bail!(
            "this installation does not trust the dev issuer (it is off outside `anchor dev` unless the setting \
             dev_issuer / ANCHOR_DEV_ISSUER is true); tokens come from the external issuers"
        );
    }
    Ok(DevIssuer::load_or_create(&settings.data_dir)?)
}

/// The issuer a member is bound to: local accounts, an issuer the
/// installation trusts, or (unnamed) the only one it trusts.
fn member_issuer(trusted: &[String], issuer: Option<String>, local: bool) -> anyhow::Result<String> {
    match (issuer, local) {
        (_, true) => Ok(LOCAL_ISSUER.to_owned()),
        (Some(issuer), false) if trusted.contains(&issuer) => Ok(issuer),
        (Some(issuer), false) => {
            bail!("the installation does not trust the issuer {issuer}; trusted: {}", list(trusted))
        }
        (None, false) => match trusted {
            [only] => Ok(only.clone()),
            [] => bail!("the installation trusts no token issuer; use --local for a local account"),
            _ => bail!("name the subject's issuer with --issuer (trusted: {}) or use --local", list(trusted)),
        },
    }
}

fn list(issuers: &[String]) -> String {
    if issuers.is_empty() { "none".to_owned() } else { issuers.join(", ") }
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

/// `trusted`: the installation's trusted issuers ([`Settings::trusted_issuers`]).
pub(crate) async fn set_member(db: &Database, command: MemberCommand, trusted: &[String]) -> anyhow::Result<()> {
    let MemberCommand::Set { slug, subject, role, issuer, local } = command;
    validate_subject(&subject)?;
    let workspace = db.workspace(&slug).await?.ok_or(StoreError::WorkspaceNotFound(slug))?;
    let issuer = member_issuer(trusted, issuer, local)?;
    let who = SubjectRef { issuer: &issuer, subject: &subject };
    let (member, created) = db.set_member(&workspace, who, role, &cli_audit()).await?;
    let verb = if created { "added" } else { "set" };
    println!("{verb} {} ({}) as {} of workspace {}", member.subject, member.issuer, member.role, workspace.slug());
    Ok(())
}

/// The account `anchor dev` creates on an installation that has none.
const FIRST_ADMIN: &str = "admin";

/// Creates the first platform admin account when no local account exists;
/// returns its generated password, to be shown once.
pub(crate) async fn bootstrap_admin(db: &Database) -> anyhow::Result<Option<String>> {
    if db.local_account_count().await? > 0 {
        return Ok(None);
    }
    let password = anchor_auth::password::generate();
    let hash = hash_blocking(password.clone()).await?;
    if !db.create_local_account(FIRST_ADMIN, &hash).await? {
        return Ok(None);
    }
    let who = SubjectRef { issuer: LOCAL_ISSUER, subject: FIRST_ADMIN };
    db.grant_platform_role(who, Role::PlatformAdmin, &cli_audit()).await?;
    Ok(Some(password))
}

async fn hash_blocking(password: String) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || anchor_auth::password::hash(&password)).await??)
}

fn valid_username(username: &str) -> bool {
    let bytes = username.as_bytes();
    (1..=64).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(b))
}

/// `anchor account ...`.
pub(crate) async fn account(db: &Database, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create { username, password_stdin, platform_admin } => {
            create_account(db, username, password_stdin, platform_admin).await
        }
        AccountCommand::Disable { username } => set_account_disabled(db, &username, true).await,
        AccountCommand::Enable { username } => set_account_disabled(db, &username, false).await,
    }
}

async fn set_account_disabled(db: &Database, username: &str, disabled: bool) -> anyhow::Result<()> {
    if !db.set_local_account_disabled(username, disabled).await? {
        bail!("there is no account {username:?}");
    }
    if disabled {
        println!("disabled account {username}; its sessions have ended");
    } else {
        println!("enabled account {username}");
    }
    Ok(())
}

async fn create_account(
    db: &Database,
    username: String,
    password_stdin: bool,
    platform_admin: bool,
) -> anyhow::Result<()> {
    if !valid_username(&username) {
        bail!(
            "username {username:?} is invalid: use 1-64 of lowercase letters, digits and . _ @ -, starting with a letter or digit"
        );
    }
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("read the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (anchor_auth::password::generate(), true)
    };
    let hash = hash_blocking(password.clone()).await?;
    if !db.create_local_account(&username, &hash).await? {
        bail!("account {username:?} already exists");
    }
    if platform_admin {
        db.grant_platform_role(
            SubjectRef { issuer: LOCAL_ISSUER, subject: &username },
            Role::PlatformAdmin,
            &cli_audit(),
        )
        .await?;
    }
    if generated {
        println!("created account {username}; password (shown once): {password}");
    } else {
        println!("created account {username}");
    }
    Ok(())
}
