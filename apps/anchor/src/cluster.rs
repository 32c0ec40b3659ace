//! The private PostgreSQL cluster that `anchor` runs in `ANCHOR_DATA_DIR`
//! when no `DATABASE_URL` is configured.
//!
//! It uses the OS's own PostgreSQL binaries (`initdb`, `pg_ctl`), listens on
//! 127.0.0.1 at a free port chosen at each start (no Unix socket, so it never
//! meets another cluster's socket), and requires a password that is generated
//! at init and kept in the data directory. PostgreSQL refuses to run as root;
//! when we are root, its processes run as the `postgres` OS user, which owns
//! the cluster's directory.
//!
//! Layout of the data directory:
//! - `postgres/data/`: the cluster (PGDATA) (when we are root and the
//!   `postgres` user cannot reach the data directory, the cluster lives in
//!   `$TMPDIR/anchor-pg-<hash of the data directory>` instead, recorded in
//!   `postgres.location`);
//! - `postgres/server.log`: the server's log;
//! - `postgres.password`: the `anchor` superuser's password (mode 0600);
//! - `postgres.lock`: serialises start and stop between `anchor` processes.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Output,
};

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};
use secrecy::SecretString;
use sha2::Digest;
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

/// The superuser and database the private cluster is created with.
const ROLE: &str = "anchor";
const DATABASE: &str = "anchor";

#[derive(Debug)]
pub struct PrivateCluster {
    data_dir: PathBuf,
    root: PathBuf,
    pgdata: PathBuf,
    bin_dir: PathBuf,
    /// The unprivileged user the server runs as, when we are root.
    run_as: Option<(Uid, Gid)>,
}

/// Whether [`PrivateCluster::ensure_running`] had to start the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Now,
    AlreadyRunning,
}

impl PrivateCluster {
    /// Finds the PostgreSQL binaries and the user to run them as. Fails with
    /// install instructions when PostgreSQL is not installed.
    pub fn new(data_dir: &Path, configured_bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize().with_context(|| format!("data directory {}", data_dir.display()))?;
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name("postgres")?.context(
                "PostgreSQL refuses to run as root and there is no `postgres` OS user to run it as; \
                 install the OS's PostgreSQL package (it creates the user) or set DATABASE_URL",
            )?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        // The cluster lives in the data directory, unless the `postgres` user
        // cannot walk down to it (a checkout under /root, say): then in a
        // directory of its own under /var/tmp, named after the data directory
        // so that every run finds it again.
        let mut root = data_dir.join("postgres");
        if let Some((uid, gid)) = run_as
            && let Err(unreachable) = check_reachable(&data_dir, uid, gid)
        {
            let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
            root = std::env::temp_dir().join(format!("anchor-pg-{}", hex_prefix(&digest)));
            fs::write(data_dir.join("postgres.location"), format!("{}\n# {unreachable}\n", root.display()))
                .context("record where the private cluster lives")?;
            if !root.exists() {
                tracing::warn!(cluster = %root.display(), reason = %unreachable, "the private cluster lives outside the data directory");
            }
        }
        let pgdata = root.join("data");
        let wanted_major =
            fs::read_to_string(pgdata.join("PG_VERSION")).ok().and_then(|v| v.trim().parse::<u32>().ok());
        let bin_dir = match configured_bin_dir {
            Some(dir) if has_binaries(dir) => dir.to_path_buf(),
            Some(dir) => bail!(
                "postgres_bin_dir {} does not contain initdb and pg_ctl (setting ANCHOR_POSTGRES_BIN_DIR)",
                dir.display()
            ),
            None => find_binaries(wanted_major)?,
        };
        Ok(Self { data_dir, root, pgdata, bin_dir, run_as })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the cluster's files are (normally `<data dir>/postgres`).
    pub fn cluster_dir(&self) -> &Path {
        &self.root
    }

    /// Initialises the cluster on first use, starts it unless it is running,
    /// and makes sure the `anchor` database exists.
    pub async fn ensure_running(&self) -> anyhow::Result<Started> {
        let _lock = self.lock().await?;
        if !self.pgdata.join("PG_VERSION").is_file() {
            self.init().await?;
        }
        let started = if self.port()?.is_some() && self.is_running().await? {
            Started::AlreadyRunning
        } else {
            self.start().await?;
            Started::Now
        };
        self.ensure_database().await?;
        Ok(started)
    }

    /// Stops the server if it runs. Waits until it has exited.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let _lock = self.lock().await?;
        if !self.is_running().await? {
            return Ok(());
        }
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"]).await?;
        if !out.status.success() {
            bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// The URL of the running cluster's `anchor` database.
    pub fn url(&self) -> anyhow::Result<SecretString> {
        self.url_for(DATABASE)
    }

    fn url_for(&self, database: &str) -> anyhow::Result<SecretString> {
        let port = self.port()?.context("the private PostgreSQL cluster is not running")?;
        let password = fs::read_to_string(self.password_file())
            .with_context(|| format!("read {}", self.password_file().display()))?;
        Ok(SecretString::from(format!("postgres://{ROLE}:{}@127.0.0.1:{port}/{database}", password.trim())))
    }

    fn password_file(&self) -> PathBuf {
        self.data_dir.join("postgres.password")
    }

    /// The port of the running server, from `postmaster.pid` (line 4).
    fn port(&self) -> anyhow::Result<Option<u16>> {
        match fs::read_to_string(self.pgdata.join("postmaster.pid")) {
            Ok(pid_file) => Ok(pid_file.lines().nth(3).and_then(|l| l.trim().parse().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("read postmaster.pid"),
        }
    }

    async fn is_running(&self) -> anyhow::Result<bool> {
        if !self.pgdata.join("PG_VERSION").is_file() {
            return Ok(false);
        }
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        let out = self.pg_ctl(&["status"]).await?;
        Ok(out.status.success())
    }

    async fn init(&self) -> anyhow::Result<()> {
        tracing::info!(dir = %self.pgdata.display(), "initialising the private PostgreSQL cluster");
        // initdb into a scratch directory and rename on success, so an
        // interrupted init never leaves a half-made cluster behind.
        let partial = self.root.join("data.partial");
        self.make_owned_dir(&self.root)?;
        if partial.exists() {
            fs::remove_dir_all(&partial).context("remove an interrupted initdb")?;
        }
        let password = random_password();
        let pwfile = self.root.join("initdb.pw");
        self.write_owned(&pwfile, &password)?;
        let pgdata = partial.to_string_lossy().into_owned();
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        let out = self
            .run(
                "initdb",
                &[
                    "-D",
                    &pgdata,
                    "-U",
                    ROLE,
                    &pwfile_arg,
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
            )
            .await;
        let _ = fs::remove_file(&pwfile);
        let out = out?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let mut conf = fs::OpenOptions::new().append(true).open(partial.join("postgresql.conf"))?;
        writeln!(
            conf,
            "\n# anchor private cluster: loopback TCP only, no Unix socket; the port is chosen at each start\n\
             listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200"
        )?;
        let mut pw = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(self.password_file())?;
        pw.write_all(password.as_bytes())?;
        fs::rename(&partial, &self.pgdata).context("move the new cluster into place")?;
        Ok(())
    }

    async fn start(&self) -> anyhow::Result<()> {
        let port = free_port()?;
        let log = self.root.join("server.log");
        let log_arg = log.to_string_lossy().into_owned();
        let opts = format!("-p {port}");
        let out = self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log_arg, "-o", &opts]).await?;
        if !out.status.success() {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            bail!(
                "the private PostgreSQL cluster did not start ({}); its log says: {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        tracing::info!(port, "private PostgreSQL cluster started");
        Ok(())
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        let url = self.url_for("postgres")?;
        let mut conn = PgConnection::connect(secrecy::ExposeSecret::expose_secret(&url))
            .await
            .context("connect to the private PostgreSQL cluster")?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}"))).execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(())
    }

    async fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        let mut full = vec![args[0], "-D", &pgdata];
        full.extend_from_slice(&args[1..]);
        self.run("pg_ctl", &full).await
    }

    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        let path = self.bin_dir.join(program);
        let mut command = Command::new(&path);
        command.args(args).current_dir(&self.root).kill_on_drop(false);
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS"] {
            command.env_remove(var);
        }
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        // The server's stdio must not be our pipes: pg_ctl start leaves the
        // server running after it returns, and a pipe held open would keep
        // our read waiting.
        command.stdin(std::process::Stdio::null());
        command.output().await.with_context(|| format!("run {}", path.display()))
    }

    /// Serialises cluster management between `anchor` processes.
    async fn lock(&self) -> anyhow::Result<nix::fcntl::Flock<fs::File>> {
        let path = self.data_dir.join("postgres.lock");
        tokio::task::spawn_blocking(move || {
            let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, errno)| anyhow::anyhow!("lock {}: {errno}", path.display()))
        })
        .await?
    }

    fn make_owned_dir(&self, dir: &Path) -> anyhow::Result<()> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(dir, Some(uid.as_raw()), Some(gid.as_raw()))?;
        }
        Ok(())
    }

    fn write_owned(&self, path: &Path, contents: &str) -> anyhow::Result<()> {
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        file.write_all(contents.as_bytes())?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))?;
        }
        Ok(())
    }
}

fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn random_password() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn has_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| fs::metadata(dir.join(b)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Looks where the OS packages put PostgreSQL, newest major version first,
/// preferring the version an existing cluster was made with.
fn find_binaries(wanted_major: Option<u32>) -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<(u32, PathBuf)> = Vec::new();
    // (directory, prefix of its versioned entries): Debian/Ubuntu, RHEL (PGDG), Homebrew.
    let versioned = [
        ("/usr/lib/postgresql", ""),
        ("/usr", "pgsql-"),
        ("/opt/homebrew/opt", "postgresql@"),
        ("/usr/local/opt", "postgresql@"),
    ];
    for (parent, prefix) in versioned {
        let Ok(entries) = fs::read_dir(parent) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix(prefix) else { continue };
            let Ok(major) = version.split('.').next().unwrap_or("").parse::<u32>() else { continue };
            let bin = entry.path().join("bin");
            if has_binaries(&bin) {
                candidates.push((major, bin));
            }
        }
    }
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    for dir in path_dirs.into_iter().chain(["/usr/local/pgsql/bin".into(), "/opt/homebrew/bin".into()]) {
        if has_binaries(&dir) {
            candidates.push((0, dir));
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    if let Some(major) = wanted_major {
        if let Some((_, dir)) = candidates.iter().find(|(m, _)| *m == major) {
            return Ok(dir.clone());
        }
        if let Some((_, dir)) = candidates.iter().find(|(m, _)| *m == 0) {
            return Ok(dir.clone());
        }
        if !candidates.is_empty() {
            bail!(
                "the private cluster was made with PostgreSQL {major}, but only other versions are installed; \
                 install PostgreSQL {major} ({}) or move the data directory aside",
                install_hint()
            );
        }
    }
    candidates.into_iter().next().map(|(_, dir)| dir).with_context(|| {
        format!(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with `{}`, \
             set ANCHOR_POSTGRES_BIN_DIR to their directory, or set DATABASE_URL to use an existing server",
            install_hint()
        )
    })
}

/// The install command for this OS's PostgreSQL server package.
fn install_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        return "brew install postgresql@17";
    }
    let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let ids: Vec<String> = os_release
        .lines()
        .filter_map(|l| l.strip_prefix("ID=").or_else(|| l.strip_prefix("ID_LIKE=")))
        .flat_map(|v| v.trim_matches('"').split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let has = |id: &str| ids.iter().any(|i| i == id);
    if has("debian") || has("ubuntu") {
        "apt-get install postgresql"
    } else if has("fedora") || has("rhel") || has("centos") {
        "dnf install postgresql-server"
    } else if has("alpine") {
        "apk add postgresql"
    } else if has("arch") {
        "pacman -S postgresql"
    } else if has("opensuse") || has("suse") {
        "zypper install postgresql-server"
    } else {
        "your OS's PostgreSQL server package (e.g. apt-get install postgresql)"
    }
}

/// Whether the `postgres` user can walk down to `dir`.
fn check_reachable(dir: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor)?;
        let mode = meta.mode();
        let can_enter = if meta.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            bail!(
                "the `postgres` OS user cannot enter {} (mode {:o}); to keep the cluster in the data directory, \
                 allow it in (chmod o+x {}) or choose an ANCHOR_DATA_DIR it can reach",
                ancestor.display(),
                mode & 0o777,
                ancestor.display()
            );
        }
    }
    Ok(())
}
