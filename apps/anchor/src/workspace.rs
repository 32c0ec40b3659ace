//! `anchor workspace create|list`: the same service code the API uses.

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_store::{Database, StoreError};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace: its registry entry, schema, database role and tables
    Create {
        /// URL and database identity: 3-40 of a-z, 0-9 and '-', starting with a letter
        #[arg(value_parser = WorkspaceSlug::parse)]
        slug: WorkspaceSlug,
        /// Display name, usually the client company's name [default: the slug]
        #[arg(long)]
        name: Option<String>,
    },
    /// List workspaces
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(db: &Database, command: WorkspaceCommand) -> anyhow::Result<()> {
    match command {
        WorkspaceCommand::Create { slug, name } => {
            let name = WorkspaceName::parse(name.as_deref().unwrap_or(slug.as_str()))?;
            match db.create_workspace(&slug, &name).await {
                Ok(ws) => {
                    println!("created workspace {} ({}) with schema {}", ws.slug(), ws.name(), ws.schema_name());
                    Ok(())
                }
                Err(e @ StoreError::WorkspaceExists(_)) => Err(e.into()),
                Err(e) => Err(anyhow::Error::new(e).context(format!("create workspace {slug}"))),
            }
        }
        WorkspaceCommand::List { json } => {
            let workspaces = db.workspaces().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&workspaces)?);
                return Ok(());
            }
            if workspaces.is_empty() {
                println!("no workspaces yet; create one with `anchor workspace create SLUG --name \"Client name\"`");
                return Ok(());
            }
            let width = workspaces.iter().map(|w| w.slug().as_str().len()).max().unwrap_or(4).max(4);
            let name_width = workspaces.iter().map(|w| w.name().chars().count()).max().unwrap_or(4).clamp(4, 40);
            println!("{:width$}  {:name_width$}  {:7}  CREATED", "SLUG", "NAME", "VERSION");
            for w in &workspaces {
                let created = w.created_at().format(&time::format_description::well_known::Rfc3339)?;
                println!("{:width$}  {:name_width$}  {:7}  {created}", w.slug().as_str(), w.name(), w.schema_version());
            }
            Ok(())
        }
    }
}
