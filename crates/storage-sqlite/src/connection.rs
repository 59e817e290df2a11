//! Opening connections: where the database lives, refusing network filesystems, creating
//! files readable by their owner only, PRAGMAs, and a small pool.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::StoreError;
use crate::pragmas;
use crate::SqliteOptions;

/// The environment variable naming the database file.
pub const DB_PATH_ENV: &str = "PRISMQ_QUEUE_DB_PATH";

/// The database path: `PRISMQ_QUEUE_DB_PATH` if set, else `queue.db` in the platform's data
/// directory (`$XDG_DATA_HOME/prismq` on Linux, `%LOCALAPPDATA%\PrismQ` on Windows).
///
/// # Errors
/// `NoDataDir` when neither is available.
pub fn default_db_path() -> Result<PathBuf, StoreError> {
    if let Some(p) = std::env::var_os(DB_PATH_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let dirs = directories::ProjectDirs::from("", "", "PrismQ").ok_or(StoreError::NoDataDir)?;
    // data_local_dir: %LOCALAPPDATA%\PrismQ\data on Windows; on Linux $XDG_DATA_HOME/prismq.
    let base = if cfg!(windows) {
        dirs.data_local_dir()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.data_local_dir().to_path_buf())
    } else {
        dirs.data_local_dir().to_path_buf()
    };
    Ok(base.join("queue.db"))
}

/// Refuses locations where SQLite's locking is unreliable.
pub(crate) fn check_local(path: &Path) -> Result<(), StoreError> {
    let text = path.to_string_lossy();
    if cfg!(windows)
        && (text.starts_with(r"\\") || text.starts_with("//"))
        && !text.starts_with(r"\\?\")
        && !text.starts_with(r"\\.\")
    {
        return Err(StoreError::NetworkPath {
            path: path.to_path_buf(),
            fs: "a UNC network share".into(),
        });
    }
    if let Some(fs) = network_fs_of(path) {
        return Err(StoreError::NetworkPath {
            path: path.to_path_buf(),
            fs,
        });
    }
    Ok(())
}

/// Filesystem types on which SQLite's POSIX locks cannot be trusted.
const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "afs",
    "9p",
    "fuse.sshfs",
    "glusterfs",
    "ceph",
    "lustre",
];

/// The network filesystem type holding `path`, from `/proc/self/mountinfo` (Linux).
fn network_fs_of(path: &Path) -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).ok()?;
    fs_type_for(&mountinfo, &dir).filter(|fs| NETWORK_FS.contains(&fs.as_str()))
}

/// Finds the filesystem type of the longest mount point containing `dir`.
pub(crate) fn fs_type_for(mountinfo: &str, dir: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mount-point options [optional…] - fstype source …
        let mut parts = line.split(" - ");
        let (Some(left), Some(right)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let Some(fs) = right.split(' ').next() else {
            continue;
        };
        let mount_point = unescape_mount(mount_point);
        if dir.starts_with(&mount_point) {
            let len = mount_point.len();
            if best.as_ref().is_none_or(|(l, _)| len >= *l) {
                best = Some((len, fs.to_owned()));
            }
        }
    }
    best.map(|(_, fs)| fs)
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

/// Creates missing directories and a new database file readable by its owner only.
pub(crate) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "creating directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if path.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            action: "creating database file",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Opens one connection with the configured PRAGMAs.
pub(crate) fn open_connection(options: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(&options.path, flags)
        .map_err(|e| classify_open_error(e, &options.path))?;
    if conn
        .is_readonly(rusqlite::DatabaseName::Main)
        .unwrap_or(false)
    {
        return Err(StoreError::ReadOnly {
            path: options.path.clone(),
        });
    }
    pragmas::apply(&conn, options).map_err(|e| classify_open_error(e, &options.path))?;
    pragmas::verify(&conn, options)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(crate) fn classify_open_error(e: rusqlite::Error, path: &Path) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly {
            path: path.to_path_buf(),
        },
        _ => StoreError::Port(crate::error::map_err(e)),
    }
}

/// A few idle connections to reuse. Each blocking operation takes one and puts it back.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Pool {
    pub(crate) fn new(first: Connection, max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(vec![first]),
            max_idle,
        }
    }

    pub(crate) fn take(&self, options: &SqliteOptions) -> Result<Connection, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match pooled {
            Some(c) => Ok(c),
            None => open_connection(options),
        }
    }

    pub(crate) fn put(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle && conn.is_autocommit() {
            idle.push(conn);
        }
    }
}

/// Bounded exponential backoff for SQLITE_BUSY beyond SQLite's own busy handler.
pub(crate) fn busy_backoff(attempt: u32) -> Duration {
    Duration::from_millis((1u64 << attempt.min(6)).min(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /mnt/nas rw,relatime shared:2 - nfs4 server:/export rw
31 22 0:41 / /mnt/my\\040share rw - cifs //srv/share rw
32 30 8:2 / /mnt/nas/local rw - ext4 /dev/sdb1 rw
";

    #[test]
    fn finds_the_longest_mount_point() {
        assert_eq!(
            fs_type_for(MOUNTINFO, Path::new("/home/u")).as_deref(),
            Some("ext4")
        );
        assert_eq!(
            fs_type_for(MOUNTINFO, Path::new("/mnt/nas/q")).as_deref(),
            Some("nfs4")
        );
        assert_eq!(
            fs_type_for(MOUNTINFO, Path::new("/mnt/my share/x")).as_deref(),
            Some("cifs")
        );
        assert_eq!(
            fs_type_for(MOUNTINFO, Path::new("/mnt/nas/local/q")).as_deref(),
            Some("ext4")
        );
        assert!(NETWORK_FS.contains(&"nfs4") && NETWORK_FS.contains(&"cifs"));
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(busy_backoff(0), Duration::from_millis(1));
        assert_eq!(busy_backoff(100), Duration::from_millis(50));
    }
}
