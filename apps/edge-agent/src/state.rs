//! The agent's state directory: `device.key` (PKCS#8, 0600), `agent.json`
//! (server, agent id, workspace), `config.json` (optional), `sequence`
//! (the next batch number), `status.json` (last delivery), `dropped.json`
//! (batches given up on, until the server acknowledged their report) and
//! `spool/`.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::Path,
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::{Context, bail};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use serde::{Deserialize, Serialize};

/// Who the agent is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) server: String,
    pub(crate) agent_id: String,
    pub(crate) workspace: String,
    #[serde(skip)]
    pub(crate) key: Option<SigningKey>,
}

/// A check to run each interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum CheckSpec {
    /// Fails below `min_free_percent` free on `mount`.
    DiskFree { mount: String, min_free_percent: f64 },
    /// `systemctl is-active <unit>`.
    Service { unit: String },
    /// A process with this name runs.
    Process { name: String },
    /// A TCP connection to `address` (host:port) succeeds.
    Tcp { address: String },
    /// An HTTP GET of `url` answers 2xx.
    Http { url: String },
}

/// `config.json`; every member has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) interval_secs: u64,
    pub(crate) spool_max_bytes: u64,
    pub(crate) checks: Vec<CheckSpec>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval_secs: 30,
            spool_max_bytes: 64 * 1024 * 1024,
            checks: vec![CheckSpec::DiskFree { mount: "/".into(), min_free_percent: 10.0 }],
        }
    }
}

impl Config {
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("config.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("{}", path.display())),
        }
    }
}

/// Writes `bytes` to `path` durably: aside, synced, renamed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}

impl Identity {
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("agent.json");
        let bytes =
            fs::read(&path).with_context(|| format!("{} (run `anchor-edge-agent enroll` first)", path.display()))?;
        let mut identity: Identity = serde_json::from_slice(&bytes).with_context(|| path.display().to_string())?;
        let der = fs::read(dir.join("device.key")).context("device.key")?;
        identity.key = Some(SigningKey::from_pkcs8_der(&der).map_err(|e| anyhow::anyhow!("device.key: {e}"))?);
        Ok(identity)
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn enroll(dir: &Path, server: &str, token: &str) -> anyhow::Result<()> {
    if dir.join("agent.json").exists() {
        bail!("{} already holds an enrolled agent; use another --state-dir or remove it", dir.display());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| dir.display().to_string())?;
    use rand::Rng;
    let key = SigningKey::from_bytes(&rand::rng().random::<[u8; 32]>());
    let der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encode the device key: {e}"))?;
    write_atomic(&dir.join("device.key"), der.as_bytes(), 0o600)?;
    let public = {
        let bytes = [&[0xed, 0x01][..], key.verifying_key().as_bytes()].concat();
        format!("z{}", bs58::encode(&bytes).into_string())
    };
    let inventory = crate::collect::inventory();
    let mut facts = inventory.clone();
    facts["hostname"] = hostname().into();
    let body = serde_json::json!({"token": token.trim(), "public_key": public, "facts": facts});
    let url = format!("{}/api/v1/agents/enroll", server.trim_end_matches('/'));
    let mut response = crate::send::agent()
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("enroll at {url}"))?;
    let status = response.status().as_u16();
    let answer: serde_json::Value =
        response.body_mut().read_to_string().ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    if status != 201 {
        bail!("the server refused the enrollment ({status}): {}", answer["detail"].as_str().unwrap_or("no detail"));
    }
    let identity = Identity {
        server: server.trim_end_matches('/').to_owned(),
        agent_id: answer["agent_id"].as_str().context("agent_id in the answer")?.to_owned(),
        workspace: answer["workspace"].as_str().unwrap_or_default().to_owned(),
        key: None,
    };
    write_atomic(&dir.join("agent.json"), &serde_json::to_vec_pretty(&identity)?, 0o600)?;
    println!("enrolled as {} in workspace {}", identity.agent_id, identity.workspace);
    Ok(())
}

/// The next batch number, made durable before the batch exists: a crash
/// can skip a number, never reuse one.
pub(crate) fn next_sequence(dir: &Path) -> anyhow::Result<i64> {
    let path = dir.join("sequence");
    let current: i64 = fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    write_atomic(&path, (current + 1).to_string().as_bytes(), 0o600)?;
    Ok(current)
}

/// Set by SIGTERM or SIGINT.
pub(crate) fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&flag)).context("install the signal handler")?;
    }
    Ok(flag)
}

pub(crate) fn print_status(dir: &Path) -> anyhow::Result<()> {
    let identity = Identity::load(dir)?;
    let (spooled, spooled_bytes, ledger) = crate::spool::Spool::inspect(&dir.join("spool"), &dir.join("dropped.json"))?;
    let dropped = ledger.total();
    let next: i64 = fs::read_to_string(dir.join("sequence")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let last: serde_json::Value =
        fs::read(dir.join("status.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    println!("agent:      {}", identity.agent_id);
    println!("workspace:  {}", identity.workspace);
    println!("server:     {}", identity.server);
    println!("next batch: {next}");
    println!("spooled:    {spooled} batches, {spooled_bytes} bytes");
    println!("last ack:   {}", last["acknowledged_at"].as_str().unwrap_or("never"));
    println!(
        "dropped:    {} batches whose report the server has not acknowledged yet (spool full {}, invalid {}, too large {})",
        dropped.count(),
        dropped.spool_full,
        dropped.invalid,
        dropped.too_large
    );
    Ok(())
}
