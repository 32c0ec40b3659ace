//! What the agent measures, from the kernel's own files (Linux): CPU,
//! memory, swap, load, per-mount disk usage, network counters, uptime,
//! process count; an inventory (machine id, OS, kernel, hardware from the
//! firmware's tables, interfaces with their addresses, packages); and the
//! configured checks. Everything stays within the protocol's bounds
//! (`anchor_edge_protocol::limits`): long texts are cut, the package list
//! stops at [`MAX_PACKAGES`].

use std::{fs, path::Path, time::Duration};

use anchor_edge_protocol::{
    Batch, Check, Inventory, Labels, Metric,
    limits::{MAX_CHECK_NAME, MAX_CHECK_OUTPUT},
    truncate,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::state::CheckSpec;

/// Real file systems (not proc, sysfs, tmpfs ...); overlay is a container's root.
const DISK_TYPES: [&str; 9] = ["ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "f2fs", "overlay"];
/// Inventory goes with the first batch and then every this many.
const INVENTORY_EVERY: u64 = 20;
/// Packages listed in the inventory at most (`installed` counts them all).
const MAX_PACKAGES: usize = 10_000;

pub(crate) struct Collector {
    checks: Vec<CheckSpec>,
    previous_cpu: Option<(u64, u64)>,
    batches: u64,
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn metric(name: &str, value: f64, at: OffsetDateTime, labels: Option<Labels>) -> Metric {
    Metric { name: name.to_owned(), value, at, labels }
}

/// One label, its value cut to the protocol's bound.
fn label(name: &str, value: &str) -> Option<Labels> {
    Some(Labels::from([(name, truncate(value, Labels::MAX_VALUE))]))
}

/// The package list within [`MAX_PACKAGES`]: `installed` counts them all,
/// `truncated` says when the list is shorter.
fn package_list(manager: &str, mut list: Vec<Value>) -> Value {
    let installed = list.len();
    let truncated = installed > MAX_PACKAGES;
    list.truncate(MAX_PACKAGES);
    let mut packages = json!({"manager": manager, "installed": installed, "list": list});
    if truncated {
        packages["truncated"] = true.into();
    }
    packages
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
        return package_list("dpkg", list);
    }
    let rpm =
        std::process::Command::new("rpm").args(["-qa", "--queryformat", "%{NAME} %{VERSION}-%{RELEASE}\\n"]).output();
    match rpm {
        Ok(out) if out.status.success() => {
            let list: Vec<Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once(' ').map(|(name, version)| json!({"name": name, "version": version})))
                .collect();
            package_list("rpm", list)
        }
        _ => Value::Null,
    }
}

/// SMBIOS chassis types by code (DMTF DSP0134, 7.4.1).
const CHASSIS_TYPES: [&str; 37] = [
    "Unknown",
    "Other",
    "Unknown",
    "Desktop",
    "Low Profile Desktop",
    "Pizza Box",
    "Mini Tower",
    "Tower",
    "Portable",
    "Laptop",
    "Notebook",
    "Hand Held",
    "Docking Station",
    "All in One",
    "Sub Notebook",
    "Space-saving",
    "Lunch Box",
    "Main Server Chassis",
    "Expansion Chassis",
    "SubChassis",
    "Bus Expansion Chassis",
    "Peripheral Chassis",
    "RAID Chassis",
    "Rack Mount Chassis",
    "Sealed-case PC",
    "Multi-system Chassis",
    "Compact PCI",
    "Advanced TCA",
    "Blade",
    "Blade Enclosure",
    "Tablet",
    "Convertible",
    "Detachable",
    "IoT Gateway",
    "Embedded PC",
    "Mini PC",
    "Stick PC",
];

/// The first line of a small file, if it has one.
fn first_line(path: impl AsRef<Path>) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// The installation's identity (systemd's, else D-Bus's): it stays when the
/// agent is reinstalled or the machine enrolls again, so the server can tell
/// a machine it knows from a new one.
pub(crate) fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .into_iter()
        .filter_map(first_line)
        .find(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An object of the members that have a value (an empty object is none).
fn present(members: &[(&str, Option<Value>)]) -> Value {
    Value::Object(
        members
            .iter()
            .filter(|(_, v)| v.as_ref().is_some_and(|v| v.as_object().is_none_or(|o| !o.is_empty())))
            .map(|(k, v)| ((*k).to_owned(), v.clone().unwrap_or_default()))
            .collect(),
    )
}

/// Where the kernel exposes the firmware's SMBIOS (DMI) identification.
const DMI: &str = "/sys/class/dmi/id";

/// The machine as its firmware describes it (files of [`DMI`] in `dmi`):
/// manufacturer, model, serial number, board, BIOS, chassis. Virtual
/// machines have these too; containers may not.
fn firmware_facts(dmi: &Path) -> Value {
    let field = |name: &str| first_line(dmi.join(name)).map(Value::from);
    let chassis = first_line(dmi.join("chassis_type"))
        .and_then(|c| c.parse::<usize>().ok())
        .map(|code| json!({"code": code, "name": CHASSIS_TYPES.get(code).copied().unwrap_or("Unknown")}));
    present(&[
        ("manufacturer", field("sys_vendor")),
        ("model", field("product_name")),
        ("model_version", field("product_version")),
        // Readable by root only: absent when the agent runs unprivileged.
        ("serial_number", field("product_serial")),
        ("system_uuid", field("product_uuid")),
        ("board", Some(present(&[("manufacturer", field("board_vendor")), ("model", field("board_name"))]))),
        ("bios", Some(present(&[("vendor", field("bios_vendor")), ("version", field("bios_version"))]))),
        ("chassis", chassis),
    ])
}

/// The machine, its CPU and memory.
fn hardware() -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned());
    let mut hardware = firmware_facts(Path::new(DMI));
    hardware["cpu"] = json!({"count": cpus, "model": model});
    hardware["memory_bytes"] = meminfo().get("MemTotal").copied().unwrap_or_default().into();
    hardware
}

/// "address/prefix" of an interface address, IPv4 or IPv6.
fn cidr(
    address: &nix::sys::socket::SockaddrStorage,
    netmask: Option<&nix::sys::socket::SockaddrStorage>,
) -> Option<String> {
    if let Some(v4) = address.as_sockaddr_in() {
        let prefix = netmask.and_then(|m| m.as_sockaddr_in()).map_or(32, |m| u32::from(m.ip()).count_ones());
        Some(format!("{}/{prefix}", v4.ip()))
    } else if let Some(v6) = address.as_sockaddr_in6() {
        let prefix = netmask.and_then(|m| m.as_sockaddr_in6()).map_or(128, |m| u128::from(m.ip()).count_ones());
        Some(format!("{}/{prefix}", v6.ip()))
    } else {
        // The link-layer entries: the MAC address comes from sysfs.
        None
    }
}

/// Network interfaces: name, MAC address, MTU, operational state and IP
/// addresses.
fn interfaces() -> Value {
    let mut addresses: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in nix::ifaddrs::getifaddrs().into_iter().flatten() {
        if let Some(cidr) = entry.address.as_ref().and_then(|a| cidr(a, entry.netmask.as_ref())) {
            addresses.entry(entry.interface_name).or_default().push(cidr);
        }
    }
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| {
            let sys = |file: &str| first_line(format!("/sys/class/net/{name}/{file}"));
            json!({
                "name": name,
                // Loopback and tunnels have no hardware address; sysfs shows zeros.
                "mac": sys("address").filter(|m| m.bytes().any(|b| b != b'0' && b != b':')),
                "mtu": sys("mtu").and_then(|m| m.parse::<u64>().ok()),
                "state": sys("operstate"),
                "addresses": addresses.remove(&name).unwrap_or_default(),
            })
        })
        .collect()
}

/// Facts about the machine.
pub(crate) fn inventory() -> Value {
    json!({
        "machine_id": machine_id(),
        "os": os_release(),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "hardware": hardware(),
        "interfaces": interfaces(),
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
                metrics.push(metric("disk.used_percent", used, at, label("mount", &mount)));
                metrics.push(metric("disk.free_bytes", free, at, label("mount", &mount)));
            }
        }
        for line in read("/proc/net/dev").lines().skip(2) {
            let Some((iface, rest)) = line.split_once(':') else { continue };
            let fields: Vec<f64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            if let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) {
                let labels = label("interface", iface.trim());
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
                let (name, output) = (truncate(&name, MAX_CHECK_NAME), truncate(&output, MAX_CHECK_OUTPUT));
                Check { name: name.to_owned(), status: status.to_owned(), output: output.to_owned(), at }
            })
            .collect();
        let inventory = self.batches.is_multiple_of(INVENTORY_EVERY).then(inventory).and_then(|facts| {
            Inventory::new(&facts)
                .map_err(|e| crate::warn(&format!("the inventory is not sent: it is out of bounds ({e})")))
                .ok()
        });
        self.batches += 1;
        Batch { sequence, sent_at: Some(at), metrics, checks, inventory, events: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_names_the_installation_its_hardware_and_interfaces_with_addresses() {
        let inventory = inventory();
        if let Some(id) = first_line("/etc/machine-id") {
            assert_eq!(inventory["machine_id"], id.as_str());
        }
        let hardware = &inventory["hardware"];
        assert!(hardware["cpu"]["count"].as_u64() >= Some(1), "{hardware}");
        assert!(hardware["memory_bytes"].as_f64() > Some(0.0), "{hardware}");
        if let Some(vendor) = first_line(Path::new(DMI).join("sys_vendor")) {
            assert_eq!(hardware["manufacturer"], vendor.as_str());
        }
        // Without root the serial number is unreadable and then absent, not null.
        assert!(hardware.get("serial_number").is_none_or(Value::is_string), "{hardware}");
        let interfaces = inventory["interfaces"].as_array().expect("a list");
        let lo = interfaces.iter().find(|i| i["name"] == "lo").expect("loopback");
        assert!(lo["addresses"].as_array().expect("list").iter().any(|a| a == "127.0.0.1/8"), "{lo}");
        assert!(lo["mtu"].as_u64() > Some(0), "{lo}");
        assert!(lo["mac"].is_null(), "loopback has no hardware address: {lo}");
        assert!(lo["state"].is_string(), "{lo}");
        for interface in interfaces {
            for address in interface["addresses"].as_array().expect("list") {
                let (ip, prefix) = address.as_str().and_then(|a| a.split_once('/')).expect("address/prefix");
                let ip: std::net::IpAddr = ip.parse().expect("an IP address");
                assert!(prefix.parse::<u32>().expect("prefix") <= if ip.is_ipv4() { 32 } else { 128 });
            }
        }
    }

    #[test]
    fn firmware_facts_come_from_dmi_and_unreadable_or_empty_fields_are_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, value) in [
            ("sys_vendor", "LENOVO\n"),
            ("product_name", "20XW0026GE\n"),
            ("product_version", "ThinkPad X1 Carbon Gen 9\n"),
            ("board_vendor", "LENOVO\n"),
            ("board_name", "20XW0026GE\n"),
            ("bios_vendor", "LENOVO\n"),
            ("bios_version", "N32ET86W (1.62 )\n"),
            ("chassis_type", "10\n"),
            ("product_uuid", "\n"),
        ] {
            fs::write(dir.path().join(name), value).expect("write");
        }
        assert_eq!(
            firmware_facts(dir.path()),
            serde_json::json!({
                "manufacturer": "LENOVO", "model": "20XW0026GE", "model_version": "ThinkPad X1 Carbon Gen 9",
                "board": {"manufacturer": "LENOVO", "model": "20XW0026GE"},
                "bios": {"vendor": "LENOVO", "version": "N32ET86W (1.62 )"},
                "chassis": {"code": 10, "name": "Notebook"},
            })
        );
        fs::write(dir.path().join("product_serial"), "PF3ABCDE\n").expect("write");
        assert_eq!(firmware_facts(dir.path())["serial_number"], "PF3ABCDE");
        assert_eq!(firmware_facts(&dir.path().join("absent")), serde_json::json!({}));
    }

    #[test]
    fn a_batch_has_the_host_metrics_and_the_inventory_first() {
        let mut collector = Collector::new(vec![CheckSpec::DiskFree { mount: "/".into(), min_free_percent: 0.0 }]);
        let first = collector.collect(7);
        assert_eq!(first.sequence, 7);
        assert!(first.inventory.is_some());
        for name in ["memory.used_percent", "load.1m", "uptime.seconds", "processes.count"] {
            assert!(first.metrics.iter().any(|m| m.name == name), "{name}");
        }
        assert_eq!(first.checks[0].status, "passing");
        assert!(collector.collect(8).inventory.is_none(), "not every batch");
    }
}
