//! `anchor-edge-agent`, the agent on a managed machine.
//!
//! - `enroll --server URL --token T`: makes an Ed25519 device key (kept in
//!   the state directory, mode 0600; only its public half leaves the
//!   machine) and enrolls it with the enrollment token;
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

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

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
        /// The enrollment token (anchor_enroll_...)
        #[arg(long)]
        token: String,
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
        /// An enrollment token allowing at least `--agents` uses
        #[arg(long)]
        token: String,
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Enroll { server, token } => state::enroll(&cli.state_dir, &server, &token),
        Command::Run { interval } => run(&cli.state_dir, interval.map(Duration::from_secs)),
        Command::Status => state::print_status(&cli.state_dir),
        Command::Simulate { server, token, agents, interval, duration, threads } => simulate::run(
            &server,
            &token,
            agents,
            Duration::from_secs(interval.max(1)),
            Duration::from_secs(duration),
            threads,
        ),
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
                    let wait = backoff.next();
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
