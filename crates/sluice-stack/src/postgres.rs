//! An own PostgreSQL cluster: `initdb` into a folder, run with logical WAL.

use crate::{Launch, StackError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server binaries (`initdb`, `postgres`): `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin`.
pub fn bindir() -> Result<PathBuf, StackError> {
    if let Some(dir) = std::env::var_os("SLUICE_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates.into_iter().find(|d| d.join("initdb").exists() && d.join("postgres").exists()).ok_or_else(|| {
        StackError::MissingTool {
            tool: "PostgreSQL server (initdb, postgres)".into(),
            looked: "SLUICE_PG_BINDIR, pg_config --bindir, /usr/lib/postgresql/*/bin".into(),
        }
    })
}

/// PostgreSQL refuses to run as root: when we are root, run as `postgres`.
pub fn server_user() -> Result<Option<(u32, u32)>, StackError> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam returns a pointer into static storage, read at once.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return Err(StackError::Failed(
            "running as root and there is no `postgres` user to run PostgreSQL as; run `make setup`".into(),
        ));
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some((uid, gid)))
}

/// Hands `path` to the server user.
pub fn chown_to(path: &Path, user: Option<(u32, u32)>) -> Result<(), StackError> {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(StackError::io(format!("chown {} to postgres", path.display())))?;
    }
    Ok(())
}

/// `initdb` with trust auth for local connections and superuser `postgres`.
pub fn init(bindir: &Path, data_dir: &Path, user: Option<(u32, u32)>, log: &Path) -> Result<(), StackError> {
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D").arg(data_dir).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
    if let Some((uid, gid)) = user {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().map_err(StackError::io("run initdb"))?;
    let _ = std::fs::write(log, [&out.stdout[..], &out.stderr[..]].concat());
    if !out.status.success() {
        return Err(StackError::Failed(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// The server on 127.0.0.1:`port` with `wal_level=logical`; its socket in `socket_dir`.
pub fn launch(bindir: &Path, data_dir: &Path, socket_dir: &Path, port: u16, fast_unsafe: bool, log: &Path) -> Launch {
    let mut launch = Launch::new(bindir.join("postgres"), log)
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", socket_dir.display()))
        .args([
            "-c",
            "wal_level=logical",
            "-c",
            "max_wal_senders=20",
            "-c",
            "max_replication_slots=20",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ]);
    if fast_unsafe {
        // Test clusters are throw-away: trade durability for speed.
        launch = launch.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
    }
    launch
}

/// `postgres://postgres@127.0.0.1:port/db`
pub fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}
