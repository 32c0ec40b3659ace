//! `anchor evidence verify | verify-chain | rotate-key`.

use anchor_domain::WorkspaceSlug;
use anchor_evidence::{EvidenceSetup, keys::IssuerKeys, verify};
use anchor_store::Database;
use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Verify one credential offline, from the document alone (exit 0 only when valid)
    Verify {
        /// A file, `-` for stdin, or an http(s) URL (sent with `Authorization: Bearer $ANCHOR_TOKEN` when set)
        source: String,
        /// Also require the signer to be one of these published issuer keys (a file or the URL of an
        /// installation's `/api/v1/evidence/keys`); a credential fetched by URL is checked against its
        /// installation's keys unless this names others
        #[arg(long)]
        keys: Option<String>,
    },
    /// Check a workspace's whole chain: signatures, sequence, links, stored documents, key validity
    VerifyChain {
        #[arg(long, value_parser = WorkspaceSlug::parse)]
        workspace: WorkspaceSlug,
    },
    /// Retire the current issuer key (it stays published) and sign with a new one from now on
    RotateKey,
}

async fn read(source: &str) -> anyhow::Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut request = reqwest::Client::new().get(source);
        if let Ok(token) = std::env::var("ANCHOR_TOKEN") {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("fetch {source}"))?;
        if !response.status().is_success() {
            bail!("fetch {source}: HTTP {}", response.status());
        }
        Ok(response.bytes().await.with_context(|| format!("fetch {source}"))?.to_vec())
    } else if source == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("read stdin")?;
        Ok(bytes)
    } else {
        std::fs::read(source).with_context(|| format!("read {source}"))
    }
}

/// The published keys of the installation a credential URL belongs to.
fn keys_of(source: &str) -> Option<String> {
    let url = url::Url::parse(source).ok()?;
    Some(format!("{}/api/v1/evidence/keys", url.origin().ascii_serialization()))
}

/// `verify`: needs no database and no configuration.
pub(crate) async fn verify_one(source: &str, keys: Option<&str>) -> anyhow::Result<()> {
    let bytes = read(source).await?;
    let document: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("invalid: not JSON ({e})"))?;
    let verified = verify::verify_credential(&document).map_err(|e| anyhow::anyhow!("invalid: {e}"))?;
    let keys = keys.map(str::to_owned).or_else(|| keys_of(source).filter(|_| source.starts_with("http")));
    let signer = match &keys {
        Some(keys) => {
            let document: serde_json::Value = serde_json::from_slice(&read(keys).await?)
                .with_context(|| format!("{keys} is not a list of published issuer keys"))?;
            let published: Vec<anchor_evidence::keys::PublishedKey> = serde_json::from_value(document["keys"].clone())
                .with_context(|| format!("{keys} is not a list of published issuer keys"))?;
            if !verify::signed_by_published_key(&verified, &published) {
                bail!(
                    "invalid: signed by {}, which is not an issuer key published by {keys} (valid at {})",
                    verified.verification_method,
                    verified.valid_from.as_deref().unwrap_or("?")
                );
            }
            format!("; the signer is an issuer key published by {keys}")
        }
        None => "; the signer was not compared with published keys (see --keys)".to_owned(),
    };
    println!(
        "valid: issued by {} at {}{}{signer}",
        verified.issuer,
        verified.valid_from.as_deref().unwrap_or("(no validFrom)"),
        verified.subject.map(|s| format!(", about {s}")).unwrap_or_default()
    );
    Ok(())
}

pub(crate) async fn run(db: &Database, setup: &EvidenceSetup, command: EvidenceCommand) -> anyhow::Result<()> {
    let keys = IssuerKeys::new(db.clone(), setup.master.clone());
    match command {
        EvidenceCommand::Verify { .. } => unreachable!("verified without a database"),
        EvidenceCommand::VerifyChain { workspace } => {
            let ws =
                db.workspace(&workspace).await?.with_context(|| format!("workspace {workspace} does not exist"))?;
            let published = keys.published().await?;
            let report = verify::verify_chain(db, &setup.store, &published, &ws).await?;
            match report.problem {
                None => {
                    let plural = if report.checked == 1 { "" } else { "s" };
                    println!("chain of {workspace} is valid: {} credential{plural}", report.checked);
                    Ok(())
                }
                Some(problem) => bail!("chain of {workspace} is broken at #{}: {}", problem.sequence, problem.reason),
            }
        }
        EvidenceCommand::RotateKey => {
            let key = keys.rotate().await?;
            println!("new issuer key {} (earlier keys stay published with their validity)", key.did);
            Ok(())
        }
    }
}
