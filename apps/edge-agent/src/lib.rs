//! `anchor-edge-agent`, the agent on a managed machine.
//!
//! - `enroll --server URL --token-file PATH`: makes an Ed25519 device key
//!   (kept in the state directory, mode 0600; only its public half leaves
//!   the machine) and enrolls it with the enrollment token, read from a
//!   file (`-`: standard input) or from `ANCHOR_ENROLL_TOKEN` (`--token T`
//!   also works, but puts the token in the process list);
//! - `run [--interval S]`: every interval, collects host metrics and
//!   inventory, runs the configured checks, writes the batch to a bounded
//!   disk spool, and delivers the spool oldest first; a batch leaves the
//!   spool only once the server acknowledged it, so server outages, agent
//!   restarts and kills lose nothing, and the server stores each sequence
//!   once. A batch the agent gives up on (the spool's bound reached, or the
//!   server refusing it as invalid or as too large even when split) is
//!   logged, counted in `dropped.json` and reported to the server as an
//!   `agent.batches_dropped` event until a batch carrying the report is
//!   acknowledged;
//! - `status`: what the agent knows about itself;
//! - `simulate`: many agents from one process, for load and scale tests.
//!
//! All state lives in `--state-dir` (default `/var/lib/anchor-edge-agent`),
//! so several agents can run side by side. No async runtime: one thread,
//! blocking I/O, small.

mod collect;
mod send;
mod simulate;
mod spool;
mod state;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "anchor-edge-agent", version, about = "Anchor's agent for managed machines")]
pub struct Cli {
    /// Where the agent keeps its key, identity, configuration and spool
    #[arg(long, global = true, default_value = "/var/lib/anchor-edge-agent", env = "ANCHOR_AGENT_STATE_DIR")]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this machine with an enrollment token
    Enroll {
        /// The Anchor server, e.g. https://anchor.example.com
        #[arg(long)]
        server: String,
        #[command(flatten)]
        token: TokenSource,
    },
    /// Collect, spool and deliver until stopped (SIGTERM or Ctrl-C)
    Run {
        /// Seconds between batches (overrides the configuration file)
        #[arg(long)]
        interval: Option<u64>,
    },
    /// Show the agent's identity, spool and last delivery
    Status,
    /// Many simulated agents from one process, for load and scale tests
    Simulate {
        /// The Anchor server
        #[arg(long)]
        server: String,
        #[command(flatten)]
        token: TokenSource,
        /// Agents to run (the enrollment token must allow at least as many uses)
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Seconds between each agent's batches
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Seconds to run
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Sending threads (enrollment runs on up to 8 at once)
        #[arg(long, default_value_t = 32)]
        threads: usize,
    },
}

/// The environment variable an enrollment token may come in.
pub const TOKEN_ENV: &str = "ANCHOR_ENROLL_TOKEN";

/// Where the enrollment token comes from: `--token-file`, else `--token`,
/// else `ANCHOR_ENROLL_TOKEN`.
#[derive(Debug, Args)]
struct TokenSource {
    /// A file holding the enrollment token (anchor_enroll_...); `-` reads it
    /// from standard input. Without it (and without --token), the token is
    /// taken from the environment variable ANCHOR_ENROLL_TOKEN
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The enrollment token itself. Discouraged: every local user can read a
    /// command line (ps, /proc); use --token-file or ANCHOR_ENROLL_TOKEN
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

impl TokenSource {
    fn resolve(self) -> anyhow::Result<String> {
        let token = match (self.token_file, self.token) {
            (Some(path), _) => read_token_file(&path)?,
            (None, Some(token)) => {
                warn("--token shows the token to every local user (ps); prefer --token-file or ANCHOR_ENROLL_TOKEN");
                token
            }
            (None, None) => match std::env::var(TOKEN_ENV) {
                Ok(token) => token,
                Err(_) => {
                    bail!("no enrollment token: give --token-file PATH (or - for standard input) or set {TOKEN_ENV}")
                }
            },
        };
        let token = token.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            bail!("the enrollment token must be one word (anchor_enroll_...)");
        }
        Ok(token.to_owned())
    }
}

fn read_token_file(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut token = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut token)
            .context("read the enrollment token from standard input")?;
        return Ok(token);
    }
    let token =
        std::fs::read_to_string(path).with_context(|| format!("read the enrollment token from {}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path)
        && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0
    {
        warn(&format!("{} can be read by other users; the token in it is a secret (chmod 600)", path.display()));
    }
    Ok(token)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Enroll { server, token } => {
            token.resolve().and_then(|token| state::enroll(&cli.state_dir, &server, &token))
        }
        Command::Run { interval } => run(&cli.state_dir, interval.map(Duration::from_secs)),
        Command::Status => state::print_status(&cli.state_dir),
        Command::Simulate { server, token, agents, interval, duration, threads } => token.resolve().and_then(|token| {
            simulate::run(
                &server,
                &token,
                agents,
                Duration::from_secs(interval.max(1)),
                Duration::from_secs(duration),
                threads,
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &std::path::Path, interval: Option<Duration>) -> anyhow::Result<()> {
    let identity = state::Identity::load(dir)?;
    let config = state::Config::load(dir)?;
    let interval = interval.unwrap_or(Duration::from_secs(config.interval_secs)).max(Duration::from_secs(1));
    let stop = state::stop_flag()?;
    let mut spool = spool::Spool::open(&dir.join("spool"), &dir.join("dropped.json"), config.spool_max_bytes)?;
    let mut collector = collect::Collector::new(config.checks.clone());
    let sender = send::Sender::new(&identity, dir);
    let mut backoff = send::Backoff::new((interval * 4).min(Duration::from_secs(300)));
    let mut next_collect = std::time::Instant::now();
    let mut next_send = std::time::Instant::now();
    eprintln!(
        "anchor-edge-agent {} running: agent {}, every {interval:?}",
        env!("CARGO_PKG_VERSION"),
        identity.agent_id
    );
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let now = std::time::Instant::now();
        if now >= next_collect {
            let sequence = state::next_sequence(dir)?;
            spool.push(sequence, collector.collect(sequence))?;
            next_collect = now + interval;
        }
        if now >= next_send {
            match sender.deliver(&mut spool, &stop) {
                Ok(()) => {
                    backoff.reset();
                    next_send = next_collect;
                }
                Err(e) => {
                    let wait = backoff.next().max(e.retry_after.unwrap_or_default());
                    warn(&format!("delivery failed ({e}); {} batches kept, retrying in {wait:?}", spool.len()));
                    next_send = std::time::Instant::now() + wait;
                }
            }
        }
        let until = next_collect.min(next_send);
        std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()).min(Duration::from_millis(200)));
    }
    eprintln!(
        "anchor-edge-agent stopping; {} batches kept for next time, {} dropped batches still to report",
        spool.len(),
        spool.dropped().count()
    );
    Ok(())
}

/// Logs a warning on stderr. Under systemd (which sets `JOURNAL_STREAM`)
/// the line starts with the syslog priority `<4>` so the journal files it
/// as a warning; elsewhere it reads "warning: ".
pub(crate) fn warn(message: &str) {
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        eprintln!("<4>{message}");
    } else {
        eprintln!("warning: {message}");
    }
}
