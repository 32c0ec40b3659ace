//! The private PostgreSQL cluster that `anchor` runs in `ANCHOR_DATA_DIR`
//! when no `DATABASE_URL` is configured.
//!
//! It uses the OS's own PostgreSQL binaries (`initdb`, `pg_ctl`), listens on
//! 127.0.0.1 at a free port chosen at each start (no Unix socket, so it never
//! meets another cluster's socket), and requires a password that is generated
//! at init and kept in the data directory. PostgreSQL refuses to run as root;
//! when we are root, its processes run as the `postgres` OS user, which owns
//! the cluster's data directory (and nothing else we make).
//!
//! Layout of the data directory:
//! - `postgres/`: the cluster's directory, ours (0711 when the server runs as
//!   `postgres`, else 0700): a directory we did not make or that someone else
//!   owns is refused;
//! - `postgres/data/`: the cluster (PGDATA, 0700, the server's);
//! - `postgres/server.log`: the server's log;
//! - `postgres.password`: the `anchor` superuser's password (mode 0600);
//! - `postgres.lock`: serialises start, stop and the copies below between
//!   `anchor` processes;
//! - `postgres.location`: while the cluster runs from a copy (below), where.
//!
//! When we are root and the `postgres` user cannot walk down to the data
//! directory (a checkout under /root, say), the cluster runs from a copy of
//! `postgres/`: a directory made fresh at each start with an unpredictable
//! name, `anchor-pg-<16 random hex digits>` in the temporary directory, ours
//! (0711), its identity (device and inode) recorded in `postgres.location`.
//! Stopping the cluster copies its data back into `postgres/data` and removes
//! the copy, so nothing stays behind in the temporary directory and the data
//! outlives it. A recorded directory that is not the one we made (another
//! owner or mode, another inode, a symbolic link) is never used.
//!
//! Everything we write as root in a place the `postgres` user can change is
//! written without following symbolic links: new files are created
//! exclusively with `O_NOFOLLOW` and given away through their descriptor, and
//! the copies walk directory descriptors (`openat`), so a link planted by
//! that user is copied as a link, never read or written through.

use std::{
    fs,
    io::Write,
    os::{
        fd::{AsFd, BorrowedFd},
        unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    process::Output,
};

use anyhow::{Context, bail};
use nix::{
    libc,
    unistd::{Gid, Uid, User},
};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

/// The superuser and database the private cluster is created with.
const ROLE: &str = "anchor";
const DATABASE: &str = "anchor";

/// The name of a copy outside the data directory starts with this.
const COPY_PREFIX: &str = "anchor-pg-";

#[derive(Debug, Clone)]
pub struct PrivateCluster {
    data_dir: PathBuf,
    /// `<data dir>/postgres`: where the cluster lives, or rests while it
    /// runs from a copy.
    home: PathBuf,
    bin_dir: PathBuf,
    /// The unprivileged user the server runs as, when we are root.
    run_as: Option<(Uid, Gid)>,
    /// Why the server's user cannot reach `home`, when it cannot: the
    /// cluster then runs from a copy.
    unreachable: Option<String>,
}

/// Whether [`PrivateCluster::ensure_running`] had to start the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Now,
    AlreadyRunning,
}

/// What `postgres.location` says.
#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    Nothing,
    /// The copy we made, checked.
    Copy(PathBuf),
    /// A recorded directory that no longer exists.
    Gone(PathBuf),
    /// A recorded path that is not the directory we made: never used.
    NotOurs(PathBuf, String),
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
        // cannot walk down to it: then it runs from a copy (see the module's
        // documentation).
        let unreachable =
            run_as.and_then(|(uid, gid)| check_reachable(&data_dir, uid, gid).err()).map(|e| e.to_string());
        let mut cluster =
            Self { home: data_dir.join("postgres"), data_dir, bin_dir: PathBuf::new(), run_as, unreachable };
        let wanted_major = fs::read_to_string(cluster.cluster_dir().join("data/PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        cluster.bin_dir = match configured_bin_dir {
            Some(dir) if has_binaries(dir) => dir.to_path_buf(),
            Some(dir) => bail!(
                "postgres_bin_dir {} does not contain initdb and pg_ctl (setting ANCHOR_POSTGRES_BIN_DIR)",
                dir.display()
            ),
            None => find_binaries(wanted_major)?,
        };
        Ok(cluster)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the cluster's files are now: `<data dir>/postgres`, or the copy
    /// it runs from.
    pub fn cluster_dir(&self) -> PathBuf {
        match self.recorded() {
            Ok(Recorded::Copy(dir)) => dir,
            _ => self.home.clone(),
        }
    }

    /// Initialises the cluster on first use, starts it unless it is running,
    /// and makes sure the `anchor` database exists.
    pub async fn ensure_running(&self) -> anyhow::Result<Started> {
        let _lock = self.lock().await?;
        let root = match self.recorded()? {
            Recorded::Copy(dir) => dir,
            other => {
                self.forget(other)?;
                self.prepare_home()?;
                match &self.unreachable {
                    Some(reason) => {
                        let reason = reason.clone();
                        self.blocking(move |this| this.make_copy(&reason)).await?
                    }
                    None => self.home.clone(),
                }
            }
        };
        let result = async {
            if !root.join("data/PG_VERSION").is_file() {
                self.init(&root).await?;
            }
            if self.port(&root)?.is_some() && self.is_running(&root).await? {
                return Ok(Started::AlreadyRunning);
            }
            self.start(&root).await?;
            Ok(Started::Now)
        }
        .await;
        let started = match result {
            Ok(started) => started,
            Err(e) => return Err(self.clean_up_after(&root, e).await),
        };
        if let Err(e) = self.ensure_database(&root).await {
            if started == Started::Now {
                let _ = self.stop_locked(&root).await;
            }
            return Err(e);
        }
        Ok(started)
    }

    /// Stops the server if it runs, and waits until it has exited. A
    /// cluster that ran from a copy is folded back into the data directory,
    /// and the copy removed.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let _lock = self.lock().await?;
        let root = self.cluster_dir();
        self.stop_locked(&root).await
    }

    async fn stop_locked(&self, root: &Path) -> anyhow::Result<()> {
        if self.is_running(root).await? {
            let out = self.pg_ctl(root, &["stop", "-m", "fast", "-w", "-t", "60"]).await?;
            if !out.status.success() {
                bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        if root != self.home {
            let root = root.to_path_buf();
            self.blocking(move |this| this.fold_back(&root)).await?;
        }
        Ok(())
    }

    /// After a failed start from a copy: the copy goes back where it rests,
    /// unless the server runs after all.
    async fn clean_up_after(&self, root: &Path, error: anyhow::Error) -> anyhow::Error {
        if root == self.home || self.is_running(root).await.unwrap_or(true) {
            return error;
        }
        let copy = root.to_path_buf();
        match self.blocking(move |this| this.fold_back(&copy)).await {
            Ok(()) => error,
            Err(fold) => error.context(format!("the copy in {} is kept: {fold:#}", root.display())),
        }
    }

    /// The URL of the running cluster's `anchor` database.
    pub fn url(&self) -> anyhow::Result<SecretString> {
        self.url_for(&self.cluster_dir(), DATABASE)
    }

    fn url_for(&self, root: &Path, database: &str) -> anyhow::Result<SecretString> {
        let port = self.port(root)?.context("the private PostgreSQL cluster is not running")?;
        let password = fs::read_to_string(self.password_file())
            .with_context(|| format!("read {}", self.password_file().display()))?;
        Ok(SecretString::from(format!("postgres://{ROLE}:{}@127.0.0.1:{port}/{database}", password.trim())))
    }

    fn password_file(&self) -> PathBuf {
        self.data_dir.join("postgres.password")
    }

    fn location_file(&self) -> PathBuf {
        self.data_dir.join("postgres.location")
    }

    /// The port of the running server, from `postmaster.pid` (line 4).
    fn port(&self, root: &Path) -> anyhow::Result<Option<u16>> {
        match fs::read_to_string(root.join("data/postmaster.pid")) {
            Ok(pid_file) => Ok(pid_file.lines().nth(3).and_then(|l| l.trim().parse().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("read postmaster.pid"),
        }
    }

    async fn is_running(&self, root: &Path) -> anyhow::Result<bool> {
        if !root.join("data/PG_VERSION").is_file() {
            return Ok(false);
        }
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        let out = self.pg_ctl(root, &["status"]).await?;
        Ok(out.status.success())
    }

    /// Reads `postgres.location` and checks that it names the directory we
    /// made: a directory (not a link) that we own, closed to others, with
    /// the recorded device and inode.
    fn recorded(&self) -> anyhow::Result<Recorded> {
        let text = match fs::read_to_string(self.location_file()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recorded::Nothing),
            Err(e) => return Err(e).context("read postgres.location"),
        };
        let mut lines = text.lines();
        let path = PathBuf::from(lines.next().unwrap_or_default());
        let id = lines.find_map(|l| {
            let mut words = l.strip_prefix("id ")?.split(' ');
            Some((words.next()?.parse::<u64>().ok()?, words.next()?.parse::<u64>().ok()?))
        });
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recorded::Gone(path)),
            Err(e) => return Ok(Recorded::NotOurs(path, e.to_string())),
        };
        let mode = meta.mode() & 0o7777;
        let why = if !meta.is_dir() {
            "not a directory".to_owned()
        } else if meta.uid() != Uid::effective().as_raw() {
            format!("owned by uid {}, not by us", meta.uid())
        } else if mode != 0o711 && mode != 0o700 {
            format!("mode {mode:o}, not the 0711 we gave it")
        } else if id != Some((meta.dev(), meta.ino())) {
            "not the directory we made (another device and inode than recorded)".to_owned()
        } else if !path.is_absolute() {
            "not an absolute path".to_owned()
        } else {
            return Ok(Recorded::Copy(path));
        };
        Ok(Recorded::NotOurs(path, why))
    }

    /// Drops a record that names no copy of ours (under the lock). What it
    /// names is left alone.
    fn forget(&self, recorded: Recorded) -> anyhow::Result<()> {
        match recorded {
            Recorded::Nothing | Recorded::Copy(_) => return Ok(()),
            Recorded::Gone(path) => tracing::warn!(
                copy = %path.display(),
                "the recorded copy of the private cluster is gone (a reboot empties the temporary directory); \
                 starting from the data kept in the data directory"
            ),
            Recorded::NotOurs(path, why) => tracing::warn!(
                recorded = %path.display(),
                reason = %why,
                "postgres.location names a directory this anchor did not make; it is not used"
            ),
        }
        fs::remove_file(self.location_file()).context("remove postgres.location")
    }

    /// Makes `<data dir>/postgres` ours and closed to others (a cluster made
    /// by an older anchor gave it to the server's user: it is taken back),
    /// and finishes a fold-back that was interrupted between its renames.
    fn prepare_home(&self) -> anyhow::Result<()> {
        let mode = if self.run_as.is_some() { 0o711 } else { 0o700 };
        private_dir(&self.home, mode, self.run_as.map(|(uid, _)| uid))?;
        let (data, old, incoming) =
            (self.home.join("data"), self.home.join("data.old"), self.home.join("data.incoming"));
        if !exists(&data) && exists(&old) && exists(&incoming) {
            fs::rename(&incoming, &data).context("finish an interrupted copy back")?;
        }
        if exists(&data) {
            remove_tree(&old)?;
        }
        Ok(())
    }

    /// A fresh directory with an unpredictable name in a temporary directory
    /// the server's user can reach, holding a copy of the cluster at rest,
    /// recorded in `postgres.location`.
    fn make_copy(&self, reason: &str) -> anyhow::Result<PathBuf> {
        let copy = fresh_dir(&self.copy_parent()?)?;
        let filled = (|| {
            let dir = open_dir(&copy)?;
            if self.home.join("data/PG_VERSION").is_file() {
                let from = open_dir(&self.home.join("data"))?;
                copy_into(from.as_fd(), dir.as_fd(), "data", self.owner())?;
            }
            fs::File::from(dir).set_permissions(fs::Permissions::from_mode(0o711))?;
            anyhow::Ok(())
        })();
        if let Err(e) = filled {
            let _ = remove_tree(&copy);
            return Err(e.context(format!("copy the private cluster to {}", copy.display())));
        }
        let meta = fs::symlink_metadata(&copy)?;
        let record = format!(
            "{}\nid {} {}\n# a copy of {}: {reason}; stopping the cluster copies it back and removes it\n",
            copy.display(),
            meta.dev(),
            meta.ino(),
            self.home.display()
        );
        if let Err(e) = write_replacing(&self.location_file(), record.as_bytes()) {
            let _ = remove_tree(&copy);
            return Err(e.context("record where the private cluster runs"));
        }
        tracing::info!(copy = %copy.display(), reason, "the private cluster runs from a copy outside the data directory");
        Ok(copy)
    }

    /// Copies the stopped cluster in `copy` back into `<data dir>/postgres`,
    /// then removes the copy and its record.
    fn fold_back(&self, copy: &Path) -> anyhow::Result<()> {
        self.prepare_home()?;
        let (data, old, incoming) =
            (self.home.join("data"), self.home.join("data.old"), self.home.join("data.incoming"));
        if copy.join("data/PG_VERSION").is_file() {
            remove_tree(&incoming)?;
            let from = open_dir(&copy.join("data"))?;
            let home = open_dir(&self.home)?;
            copy_into(from.as_fd(), home.as_fd(), "data.incoming", self.owner())
                .with_context(|| format!("copy the private cluster back from {}", copy.display()))?;
            if exists(&data) {
                remove_tree(&old)?;
                fs::rename(&data, &old)?;
            }
            fs::rename(&incoming, &data)?;
            rustix::fs::fsync(&home)?;
            remove_tree(&old)?;
        }
        append_log(&copy.join("server.log"), &self.home.join("server.log"), self.owner())?;
        remove_tree(copy).with_context(|| format!("remove {}", copy.display()))?;
        match fs::remove_file(self.location_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).context("remove postgres.location"),
            _ => Ok(()),
        }
    }

    /// The first temporary directory that the server's user can reach and
    /// in which nobody else can remove or replace what we make.
    fn copy_parent(&self) -> anyhow::Result<PathBuf> {
        let mut refusals = Vec::new();
        for candidate in [std::env::temp_dir(), PathBuf::from("/tmp"), PathBuf::from("/var/tmp")] {
            let checked = candidate.canonicalize().map_err(anyhow::Error::from).and_then(|dir| {
                check_safe_parent(&dir)?;
                if let Some((uid, gid)) = self.run_as {
                    check_reachable(&dir, uid, gid)?;
                }
                Ok(dir)
            });
            match checked {
                Ok(dir) => return Ok(dir),
                Err(e) => refusals.push(format!("{}: {e:#}", candidate.display())),
            }
        }
        bail!("no temporary directory can hold a copy of the private cluster ({})", refusals.join("; "))
    }

    fn owner(&self) -> Option<(u32, u32)> {
        self.run_as.map(|(uid, gid)| (uid.as_raw(), gid.as_raw()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this)).await?
    }

    async fn init(&self, root: &Path) -> anyhow::Result<()> {
        let pgdata = root.join("data");
        tracing::info!(dir = %pgdata.display(), "initialising the private PostgreSQL cluster");
        // initdb into a scratch directory and rename on success, so an
        // interrupted init never leaves a half-made cluster behind. The
        // scratch directory is made here, in a directory that only we can
        // write, and given to the server's user.
        let partial = root.join("data.partial");
        remove_tree(&partial)?;
        fs::DirBuilder::new().mode(0o700).create(&partial).context("create the cluster's data directory")?;
        if let Some((uid, gid)) = self.owner() {
            std::os::unix::fs::fchown(open_dir(&partial)?, Some(uid), Some(gid))?;
        }
        let password = random_password();
        let pwfile = root.join("initdb.pw");
        remove_file_if_any(&pwfile)?;
        create_private_file(&pwfile, self.owner())?.write_all(password.as_bytes())?;
        let partial_arg = partial.to_string_lossy().into_owned();
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        let out = self
            .run(
                root,
                "initdb",
                &[
                    "-D",
                    &partial_arg,
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
        // The server's user owns this file: open it without following a link.
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(partial.join("postgresql.conf"))
            .context("open the new cluster's postgresql.conf")?;
        writeln!(
            conf,
            "\n# anchor private cluster: loopback TCP only, no Unix socket; the port is chosen at each start\n\
             listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200"
        )?;
        write_replacing(&self.password_file(), password.as_bytes())?;
        fs::rename(&partial, &pgdata).context("move the new cluster into place")?;
        Ok(())
    }

    async fn start(&self, root: &Path) -> anyhow::Result<()> {
        let port = free_port()?;
        let log = root.join("server.log");
        if !exists(&log) {
            create_private_file(&log, self.owner())?;
        }
        let log_arg = log.to_string_lossy().into_owned();
        let opts = format!("-p {port}");
        let out = self.pg_ctl(root, &["start", "-w", "-t", "60", "-l", &log_arg, "-o", &opts]).await?;
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

    async fn ensure_database(&self, root: &Path) -> anyhow::Result<()> {
        let url = self.url_for(root, "postgres")?;
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

    async fn pg_ctl(&self, root: &Path, args: &[&str]) -> anyhow::Result<Output> {
        let pgdata = root.join("data").to_string_lossy().into_owned();
        let mut full = vec![args[0], "-D", &pgdata];
        full.extend_from_slice(&args[1..]);
        self.run(root, "pg_ctl", &full).await
    }

    async fn run(&self, root: &Path, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        let path = self.bin_dir.join(program);
        let mut command = Command::new(&path);
        command.args(args).current_dir(root).kill_on_drop(false);
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
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .with_context(|| format!("open {}", path.display()))?;
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, errno)| anyhow::anyhow!("lock {}: {errno}", path.display()))
        })
        .await?
    }
}

/// Whether anything (a link included) is at `path`.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Removes the tree at `path` if there is one; a link is removed, never
/// followed (`remove_dir_all` walks by descriptor).
fn remove_tree(path: &Path) -> anyhow::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.with_context(|| format!("remove {}", path.display()))
}

fn remove_file_if_any(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Opens the directory at `path`, refusing a link in its last component.
fn open_dir(path: &Path) -> anyhow::Result<std::os::fd::OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .with_context(|| format!("open directory {}", path.display()))
}

/// Creates a new file of mode 0600 at `path`, failing if anything is there
/// (a link included), and gives it to `owner` through its descriptor.
fn create_private_file(path: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
    }
    Ok(file)
}

/// Replaces the file at `path` with `contents` (mode 0600): written beside
/// it under a fresh name, then renamed over it, so a link at `path` is
/// replaced, never written through.
fn write_replacing(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().context("a file name")?.to_string_lossy();
    let scratch = path.with_file_name(format!(".{name}.{:016x}", rand::random::<u64>()));
    let written = (|| {
        let mut file = create_private_file(&scratch, None)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&scratch, path).with_context(|| format!("replace {}", path.display()))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&scratch);
    }
    written
}

/// Makes `path` a directory of ours with `mode`: created when missing;
/// refused when it is a link or someone else's, except `adopt`, whose
/// directory (a cluster's directory made by an older anchor) is taken over.
fn private_dir(path: &Path, mode: u32, adopt: Option<Uid>) -> anyhow::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(e).with_context(|| format!("create {}", path.display()));
        }
        _ => {}
    }
    let dir = fs::File::from(open_dir(path).with_context(|| format!("{} is not a directory of ours", path.display()))?);
    let owner = dir.metadata()?.uid();
    let me = Uid::effective();
    if owner != me.as_raw() {
        if adopt.is_none_or(|uid| uid.as_raw() != owner) {
            bail!("refusing {}: it is owned by uid {owner}, not by us", path.display());
        }
        std::os::unix::fs::fchown(&dir, Some(me.as_raw()), Some(Gid::effective().as_raw()))?;
    }
    dir.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Makes a directory of mode 0700 with a fresh unpredictable name in
/// `parent`; `mkdir` fails on anything already there, so what it returns
/// is ours.
fn fresh_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    for _ in 0..16 {
        let path = parent.join(format!("{COPY_PREFIX}{:016x}", rand::random::<u64>()));
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
    }
    bail!("could not make a fresh directory in {}", parent.display())
}

/// Copies the directory `from` as `name` in the directory `to` (which must
/// not hold `name` yet), giving everything to `owner`. It walks directory
/// descriptors and never follows a symbolic link: a link is copied as a
/// link, and anything but directories, files and links is refused. Files
/// and directories are on disk before it returns (one `syncfs` of the
/// destination's filesystem: an `fsync` per file costs ten times the copy).
fn copy_into(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &str, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    let mode = Mode::from_raw_mode(rustix::fs::fstat(from)?.st_mode);
    rustix::fs::mkdirat(to, name, Mode::RWXU)?;
    let dir = rustix::fs::openat(
        to,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    copy_entries(from, dir.as_fd(), owner)?;
    give(dir.as_fd(), mode, owner)?;
    sync_filesystem(dir.as_fd())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sync_filesystem(fd: BorrowedFd<'_>) -> anyhow::Result<()> {
    Ok(rustix::fs::syncfs(fd)?)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sync_filesystem(_: BorrowedFd<'_>) -> anyhow::Result<()> {
    rustix::fs::sync();
    Ok(())
}

fn copy_entries(from: BorrowedFd<'_>, to: BorrowedFd<'_>, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    for entry in rustix::fs::Dir::read_from(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let stat = rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(stat.st_mode);
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                let source = rustix::fs::openat(from, name, dir_flags, Mode::empty())?;
                rustix::fs::mkdirat(to, name, Mode::RWXU)?;
                let target = rustix::fs::openat(to, name, dir_flags, Mode::empty())?;
                copy_entries(source.as_fd(), target.as_fd(), owner)?;
                give(target.as_fd(), mode, owner)?;
            }
            FileType::RegularFile => {
                // O_NONBLOCK: a fifo put in its place must not hang us.
                let source = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                if FileType::from_raw_mode(rustix::fs::fstat(&source)?.st_mode) != FileType::RegularFile {
                    bail!("{} changed while being copied", name.to_string_lossy());
                }
                let target = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::RUSR | Mode::WUSR,
                )?;
                let mut target = fs::File::from(target);
                std::io::copy(&mut fs::File::from(source), &mut target)?;
                give(target.as_fd(), mode, owner)?;
            }
            FileType::Symlink => {
                let link = rustix::fs::readlinkat(from, name, Vec::new())?;
                rustix::fs::symlinkat(link.as_c_str(), to, name)?;
                if let Some((uid, gid)) = owner {
                    rustix::fs::chownat(
                        to,
                        name,
                        Some(rustix::fs::Uid::from_raw(uid)),
                        Some(rustix::fs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                }
            }
            other => bail!("{} is a {other:?}: only directories, files and links are copied", name.to_string_lossy()),
        }
    }
    Ok(())
}

/// Sets the mode and owner of what `fd` is open on.
fn give(fd: BorrowedFd<'_>, mode: Mode, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(fd, Some(uid), Some(gid))?;
    }
    rustix::fs::fchmod(fd, mode)?;
    Ok(())
}

/// Appends the server's log at `from` (if any) to `to`, created for
/// `owner` when missing; neither is followed if it is a link.
fn append_log(from: &Path, to: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    let mut source =
        match fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(from) {
            Ok(file) if file.metadata()?.is_file() => file,
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("open {}", from.display())),
        };
    let mut target = match fs::OpenOptions::new().append(true).custom_flags(libc::O_NOFOLLOW).open(to) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut file = create_private_file(to, owner)?;
            std::io::copy(&mut source, &mut file)?;
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("open {}", to.display())),
    };
    std::io::copy(&mut source, &mut target)?;
    Ok(())
}

/// Refuses a directory in which someone else could remove or replace what
/// we make: each directory on its path must be root's or ours, and one that
/// others may write must be sticky (as /tmp is).
fn check_safe_parent(dir: &Path) -> anyhow::Result<()> {
    let me = Uid::effective().as_raw();
    for ancestor in dir.ancestors() {
        let meta = fs::symlink_metadata(ancestor)?;
        let mode = meta.mode();
        if meta.uid() != 0 && meta.uid() != me {
            bail!("{} is owned by uid {}", ancestor.display(), meta.uid());
        }
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            bail!("others may write in {} (mode {:o}) and it is not sticky", ancestor.display(), mode & 0o7777);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn cluster_in(data_dir: &Path) -> PrivateCluster {
        PrivateCluster {
            data_dir: data_dir.to_path_buf(),
            home: data_dir.join("postgres"),
            bin_dir: PathBuf::new(),
            run_as: None,
            unreachable: None,
        }
    }

    #[test]
    fn a_new_private_file_is_never_written_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").expect("write");
        let planted = dir.path().join("initdb.pw");
        symlink(&victim, &planted).expect("symlink");
        assert!(create_private_file(&planted, None).is_err(), "a link at the path is refused");
        // A dangling link would be created through, by O_CREAT alone.
        let dangling = dir.path().join("server.log");
        symlink(dir.path().join("elsewhere"), &dangling).expect("symlink");
        assert!(create_private_file(&dangling, None).is_err());
        assert!(!dir.path().join("elsewhere").exists());
        assert_eq!(fs::read_to_string(&victim).expect("read"), "untouched");

        let made = dir.path().join("fresh");
        create_private_file(&made, None).expect("create").write_all(b"secret").expect("write");
        assert_eq!(fs::metadata(&made).expect("stat").mode() & 0o777, 0o600);
    }

    #[test]
    fn a_replaced_file_replaces_a_link_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").expect("write");
        let path = dir.path().join("postgres.password");
        symlink(&victim, &path).expect("symlink");
        write_replacing(&path, b"new").expect("write");
        assert!(fs::symlink_metadata(&path).expect("stat").is_file());
        assert_eq!(fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(fs::read_to_string(&victim).expect("read"), "untouched");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 2, "no scratch file is left");
    }

    #[test]
    fn the_cluster_directory_is_refused_when_it_is_a_link_or_someone_elses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("mkdir");
        let before = fs::metadata(&elsewhere).expect("stat").mode();
        let planted = dir.path().join("postgres");
        symlink(&elsewhere, &planted).expect("symlink");
        assert!(private_dir(&planted, 0o700, None).is_err());
        assert_eq!(fs::metadata(&elsewhere).expect("stat").mode(), before, "the link's target is left alone");

        let ours = dir.path().join("ours");
        private_dir(&ours, 0o711, None).expect("created");
        assert_eq!(fs::symlink_metadata(&ours).expect("stat").mode() & 0o7777, 0o711);
        if Uid::effective().is_root() {
            let nobody = User::from_name("nobody").expect("users").expect("nobody");
            let theirs = dir.path().join("theirs");
            fs::create_dir(&theirs).expect("mkdir");
            std::os::unix::fs::chown(&theirs, Some(nobody.uid.as_raw()), None).expect("chown");
            assert!(private_dir(&theirs, 0o700, None).is_err(), "someone else's directory is refused");
            assert_eq!(fs::metadata(&theirs).expect("stat").uid(), nobody.uid.as_raw());
            // The server's user's directory, as an older anchor left it, is taken over.
            private_dir(&theirs, 0o711, Some(nobody.uid)).expect("adopted");
            assert_eq!(fs::metadata(&theirs).expect("stat").uid(), 0);
        }
    }

    #[test]
    fn only_the_recorded_directory_we_made_is_used() {
        let data = tempfile::tempdir().expect("tempdir");
        let temp = tempfile::tempdir().expect("tempdir");
        let cluster = cluster_in(data.path());
        assert_eq!(cluster.recorded().expect("read"), Recorded::Nothing);

        let copy = fresh_dir(temp.path()).expect("fresh");
        assert!(copy.file_name().expect("name").to_string_lossy().starts_with(COPY_PREFIX));
        assert!(fresh_dir(temp.path()).expect("another") != copy);
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o711)).expect("chmod");
        let meta = fs::symlink_metadata(&copy).expect("stat");
        let record = |path: &Path, id: Option<(u64, u64)>| {
            let id = id.map(|(dev, ino)| format!("id {dev} {ino}\n")).unwrap_or_default();
            fs::write(cluster.location_file(), format!("{}\n{id}", path.display())).expect("record");
        };
        let id = Some((meta.dev(), meta.ino()));
        record(&copy, id);
        assert_eq!(cluster.recorded().expect("read"), Recorded::Copy(copy.clone()));
        assert_eq!(cluster.cluster_dir(), copy);

        // Recorded the way an older anchor did (a predictable path, no identity).
        record(&copy, None);
        assert!(matches!(cluster.recorded().expect("read"), Recorded::NotOurs(..)));
        // Open to others.
        record(&copy, id);
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(matches!(cluster.recorded().expect("read"), Recorded::NotOurs(..)));
        assert_eq!(cluster.cluster_dir(), cluster.home);
        // Removed, then made again at the same path by someone: another inode.
        fs::remove_dir(&copy).expect("rmdir");
        assert_eq!(cluster.recorded().expect("read"), Recorded::Gone(copy.clone()));
        let decoy = temp.path().join("decoy");
        fs::create_dir(&decoy).expect("mkdir");
        fs::DirBuilder::new().mode(0o711).create(&copy).expect("mkdir");
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o711)).expect("chmod");
        if fs::symlink_metadata(&copy).expect("stat").ino() != meta.ino() {
            assert!(matches!(cluster.recorded().expect("read"), Recorded::NotOurs(..)));
        }
        // A link to a directory of ours is not the directory.
        fs::remove_dir(&copy).expect("rmdir");
        symlink(&decoy, &copy).expect("symlink");
        assert!(matches!(cluster.recorded().expect("read"), Recorded::NotOurs(..)));

        // Forgetting a record leaves what it names alone.
        cluster.forget(cluster.recorded().expect("read")).expect("forget");
        assert!(!cluster.location_file().exists());
        assert!(decoy.is_dir());
    }

    #[test]
    fn a_copy_keeps_modes_and_copies_links_as_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        fs::write(&secret, "root's").expect("write");
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("base/1")).expect("mkdir");
        fs::set_permissions(&from, fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::write(from.join("PG_VERSION"), "17\n").expect("write");
        fs::set_permissions(from.join("PG_VERSION"), fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(from.join("base/1/1259"), vec![7u8; 100_000]).expect("write");
        symlink(&secret, from.join("base/planted")).expect("symlink");

        let to = dir.path().join("to");
        fs::create_dir(&to).expect("mkdir");
        let (source, target) = (open_dir(&from).expect("open"), open_dir(&to).expect("open"));
        copy_into(source.as_fd(), target.as_fd(), "data", None).expect("copy");
        let data = to.join("data");
        assert_eq!(fs::symlink_metadata(&data).expect("stat").mode() & 0o7777, 0o700);
        assert_eq!(fs::symlink_metadata(data.join("PG_VERSION")).expect("stat").mode() & 0o7777, 0o600);
        assert_eq!(fs::read(data.join("base/1/1259")).expect("read"), vec![7u8; 100_000]);
        assert_eq!(fs::read_link(data.join("base/planted")).expect("a link"), secret);

        // A fifo is refused, not waited on.
        nix::unistd::mkfifo(&from.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let again = dir.path().join("again");
        fs::create_dir(&again).expect("mkdir");
        let target = open_dir(&again).expect("open");
        assert!(copy_into(source.as_fd(), target.as_fd(), "data", None).is_err());
    }
}
