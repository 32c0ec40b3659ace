//! `anchor webhook verify`: the receiver's side of a Standard Webhooks
//! delivery, for customers checking what Anchor sends them.

use std::io::Read;

use anchor_webhooks::signature::{self, Secret};
use anyhow::{Context, anyhow};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Verify a delivery's signature (the body on stdin); exit 0 only when valid
    Verify {
        /// The endpoint's secret (`whsec_...`)
        #[arg(long)]
        secret: String,
        /// The `webhook-id` header
        #[arg(long)]
        id: String,
        /// The `webhook-timestamp` header (unix seconds; must be within five minutes of now)
        #[arg(long)]
        timestamp: String,
        /// The `webhook-signature` header (`v1,<base64>`, space-separated)
        #[arg(long)]
        signature: String,
    },
}

pub(crate) fn run(command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Verify { secret, id, timestamp, signature: header } => {
            let secret = Secret::parse(&secret).map_err(|e| anyhow!("--secret: {e}"))?;
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body).context("read the body from stdin")?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            signature::verify(&[secret], Some(&id), Some(&timestamp), Some(&header), &body, now)
                .map_err(|e| anyhow!("invalid: {e}"))?;
            println!("valid: message {id}");
            Ok(())
        }
    }
}
