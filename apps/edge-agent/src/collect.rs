//! What the agent measures, from the kernel's own files (Linux): CPU,
//! memory, swap, load, per-mount disk usage, network counters, uptime,
//! process count; an inventory (OS, kernel, hardware, interfaces,
//! packages); and the configured checks.

use std::{fs, time::Duration};

use anchor_edge_protocol::{Batch, Check, Metric};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::state::CheckSpec;

/// Real file systems (not proc, sysfs, tmpfs ...); overlay is a container's root.
const DISK_TYPES: [&str; 9] = ["ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "f2fs", "overlay"];
/// Inventory goes with the first batch and then every this many.
const INVENTORY_EVERY: u64 = 20;

pub(crate) struct Collector {
    checks: Vec<CheckSpec>,
    previous_cpu: Option<(u64, u64)>,
    batches: u64,
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn metric(name: &str, value: f64, at: OffsetDateTime, labels: Option<Value>) -> Metric {
    Metric { name: name.to_owned(), value, at, labels }
}

/// (idle, total) jiffies from /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = read("/proc/stat");
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((idle, fields.iter().sum()))
}

/// kB values of /proc/meminfo.
fn meminfo() -> std::collections::HashMap<String, f64> {
    read("/proc/meminfo")
        .lines()
        .filter_map(|l| {
            let (key, rest) = l.split_once(':')?;
            Some((key.to_owned(), rest.split_whitespace().next()?.parse::<f64>().ok()? * 1024.0))
        })
        .collect()
}

/// Mount points of real file systems.
fn mounts() -> Vec<String> {
    let mut seen = Vec::new();
    for line in read("/proc/mounts").lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, mount, fstype, ..] = fields[..]
            && DISK_TYPES.contains(&fstype)
            && !seen.iter().any(|m| m == mount)
        {
            seen.push(mount.to_owned());
        }
    }
    seen
}

/// (used %, free bytes) of a mount.
fn disk_usage(mount: &str) -> Option<(f64, f64)> {
    let stat = nix::sys::statvfs::statvfs(mount).ok()?;
    let block = stat.fragment_size() as f64;
    let total = stat.blocks() as f64 * block;
    let free = stat.blocks_available() as f64 * block;
    let used = total - stat.blocks_free() as f64 * block;
    (total > 0.0).then(|| (used / (used + free) * 100.0, free))
}

fn os_release() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

/// Installed packages with their versions, from dpkg or rpm.
fn packages() -> Value {
    let dpkg = read("/var/lib/dpkg/status");
    if !dpkg.is_empty() {
        let list: Vec<Value> = dpkg
            .split("\n\n")
            .filter(|p| p.contains("Status: install ok installed"))
            .filter_map(|p| {
                let field = |name: &str| p.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
                Some(json!({"name": field("Package:")?, "version": field("Version:").unwrap_or_default()}))
            })
            .collect();
        return json!({"manager": "dpkg", "installed": list.len(), "list": list});
    }
    let rpm =
        std::process::Command::new("rpm").args(["-qa", "--queryformat", "%{NAME} %{VERSION}-%{RELEASE}\\n"]).output();
    match rpm {
        Ok(out) if out.status.success() => {
            let list: Vec<Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once(' ').map(|(name, version)| json!({"name": name, "version": version})))
                .collect();
            json!({"manager": "rpm", "installed": list.len(), "list": list})
        }
        _ => Value::Null,
    }
}

/// Facts about the machine.
pub(crate) fn inventory() -> Value {
    let cpus = read("/proc/cpuinfo").lines().filter(|l| l.starts_with("processor")).count();
    let model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned());
    let interfaces: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    json!({
        "os": os_release(),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpu": {"count": cpus, "model": model},
        "memory_bytes": meminfo().get("MemTotal").copied().unwrap_or_default(),
        "interfaces": interfaces,
        "packages": packages(),
        "mounts": mounts(),
    })
}

fn run_check(spec: &CheckSpec) -> (String, &'static str, String) {
    match spec {
        CheckSpec::DiskFree { mount, min_free_percent } => {
            let name = format!("disk free {mount}");
            match disk_usage(mount) {
                Some((used, _)) if 100.0 - used >= *min_free_percent => {
                    (name, "passing", format!("{:.1}% free", 100.0 - used))
                }
                Some((used, _)) => (name, "failing", format!("{:.1}% free, below {min_free_percent}%", 100.0 - used)),
                None => (name, "failing", format!("cannot read {mount}")),
            }
        }
        CheckSpec::Service { unit } => {
            let out = std::process::Command::new("systemctl").args(["is-active", unit]).output();
            let state =
                out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_else(|e| e.to_string());
            (format!("service {unit}"), if state == "active" { "passing" } else { "failing" }, state)
        }
        CheckSpec::Process { name } => {
            let running = fs::read_dir("/proc")
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .any(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
                })
                .unwrap_or(false);
            (
                format!("process {name}"),
                if running { "passing" } else { "failing" },
                if running { "running" } else { "not running" }.into(),
            )
        }
        CheckSpec::Tcp { address } => {
            let ok = std::net::ToSocketAddrs::to_socket_addrs(address.as_str())
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok());
            (
                format!("tcp {address}"),
                if ok { "passing" } else { "failing" },
                if ok { "connected" } else { "no connection" }.into(),
            )
        }
        CheckSpec::Http { url } => {
            let answer = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .http_status_as_error(false)
                .build()
                .new_agent()
                .get(url)
                .call();
            match answer {
                Ok(r) if r.status().is_success() => (format!("http {url}"), "passing", r.status().to_string()),
                Ok(r) => (format!("http {url}"), "failing", r.status().to_string()),
                Err(e) => (format!("http {url}"), "failing", e.to_string()),
            }
        }
    }
}

impl Collector {
    pub(crate) fn new(checks: Vec<CheckSpec>) -> Self {
        Self { checks, previous_cpu: cpu_times(), batches: 0 }
    }

    pub(crate) fn collect(&mut self, sequence: i64) -> Batch {
        let at = OffsetDateTime::now_utc();
        let mut metrics = Vec::new();
        if let (Some((idle0, total0)), Some((idle1, total1))) = (self.previous_cpu, cpu_times())
            && total1 > total0
        {
            let busy = 1.0 - (idle1 - idle0) as f64 / (total1 - total0) as f64;
            metrics.push(metric("cpu.usage_percent", (busy * 100.0).clamp(0.0, 100.0), at, None));
        }
        self.previous_cpu = cpu_times();
        let memory = meminfo();
        if let (Some(total), Some(available)) = (memory.get("MemTotal"), memory.get("MemAvailable")) {
            metrics.push(metric("memory.used_percent", (1.0 - available / total) * 100.0, at, None));
            metrics.push(metric("memory.available_bytes", *available, at, None));
        }
        if let (Some(total), Some(free)) = (memory.get("SwapTotal"), memory.get("SwapFree"))
            && *total > 0.0
        {
            metrics.push(metric("swap.used_percent", (1.0 - free / total) * 100.0, at, None));
        }
        let load: Vec<f64> = read("/proc/loadavg").split_whitespace().take(3).filter_map(|v| v.parse().ok()).collect();
        for (name, value) in ["load.1m", "load.5m", "load.15m"].iter().zip(load) {
            metrics.push(metric(name, value, at, None));
        }
        for mount in mounts() {
            if let Some((used, free)) = disk_usage(&mount) {
                metrics.push(metric("disk.used_percent", used, at, Some(json!({"mount": mount}))));
                metrics.push(metric("disk.free_bytes", free, at, Some(json!({"mount": mount}))));
            }
        }
        for line in read("/proc/net/dev").lines().skip(2) {
            let Some((iface, rest)) = line.split_once(':') else { continue };
            let fields: Vec<f64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            if let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) {
                let labels = Some(json!({"interface": iface.trim()}));
                metrics.push(metric("net.rx_bytes", *rx, at, labels.clone()));
                metrics.push(metric("net.tx_bytes", *tx, at, labels));
            }
        }
        if let Some(uptime) = read("/proc/uptime").split_whitespace().next().and_then(|v| v.parse().ok()) {
            metrics.push(metric("uptime.seconds", uptime, at, None));
        }
        let processes = fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                    .count()
            })
            .unwrap_or_default();
        metrics.push(metric("processes.count", processes as f64, at, None));
        let checks = self
            .checks
            .iter()
            .map(|spec| {
                let (name, status, output) = run_check(spec);
                Check { name, status: status.to_owned(), output, at }
            })
            .collect();
        let inventory = self.batches.is_multiple_of(INVENTORY_EVERY).then(inventory);
        self.batches += 1;
        Batch { sequence, sent_at: Some(at), metrics, checks, inventory, events: Vec::new() }
    }
}
