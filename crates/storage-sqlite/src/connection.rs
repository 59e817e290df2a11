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

/// Refuses what cannot be a database path before anything is created: nothing, a `file:`
/// URI (SQLite would take it as one; the directory code as a relative `file:` directory) and
/// SQLite's `:memory:` name (a queue in memory would vanish with the process).
pub fn check_path(path: &Path) -> Result<(), StoreError> {
    let text = path.to_string_lossy();
    let problem = if text.trim().is_empty() {
        "it is empty"
    } else if text.starts_with("file:") {
        "it is a URI (file:…), which PrismQ does not take; give the file's path (./file:… for a file really named so)"
    } else if text == ":memory:" {
        "an in-memory database would lose the queue when the process exits"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidPath {
        path: path.to_path_buf(),
        problem,
    })
}

/// What a database path holds before anything is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing: the file does not exist.
    Missing,
    /// An empty file, or a SQLite database with no schema objects.
    Empty,
    /// A PrismQ database (it has PrismQ's `schema_migrations` table).
    Prismq,
}

/// Looks at `path` without changing anything: refuses a path that cannot be a database, a
/// directory, device, FIFO or socket, a file that is not SQLite, a damaged one, and a SQLite
/// database made by another application (read through a read-only connection, so not even
/// its journal mode changes).
pub(crate) fn inspect(path: &Path, busy_timeout: Duration) -> Result<Found, StoreError> {
    check_path(path)?;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(source) => {
            return Err(StoreError::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_file() {
        return Err(StoreError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    if meta.len() == 0 {
        return Ok(Found::Empty);
    }
    crate::check_header(path)?;
    let conn = open_to_inspect(path)?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| classify_open_error(e, path))?;
    let tables = |conn: &Connection| -> rusqlite::Result<(i64, Vec<String>, Vec<String>)> {
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 6",
        )?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('schema_migrations')")?;
        let columns = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((objects, names, columns))
    };
    let (objects, names, columns) = tables(&conn).map_err(|e| classify_open_error(e, path))?;
    drop(conn);
    if objects == 0 {
        return Ok(Found::Empty);
    }
    // PrismQ's own table, with the columns it writes: another tool's `schema_migrations`
    // (Rails and golang-migrate keep one too) has a `version` column but not these.
    let ours = ["version", "name", "checksum", "applied_at"]
        .iter()
        .all(|c| columns.iter().any(|have| have == c));
    if ours {
        return Ok(Found::Prismq);
    }
    let mut tables = names
        .iter()
        .take(5)
        .map(|n| sanitize(n))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 5 {
        tables.push_str(", …");
    }
    if tables.is_empty() {
        tables = "no tables, other schema objects".into();
    }
    Err(StoreError::Foreign {
        path: path.to_path_buf(),
        tables,
    })
}

/// A read-only connection to look at `path`. A read-only connection to a file in WAL mode
/// still creates its -wal and -shm files; when the file is in WAL mode and has no -wal (no
/// process has it open, and the file alone holds every committed page), it is opened
/// `immutable` instead, which creates nothing. Unix only: elsewhere the plain read-only
/// connection is used.
fn open_to_inspect(path: &Path) -> Result<Connection, StoreError> {
    let plain = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let immutable = cfg!(unix) && in_wal_mode(path) && !Path::new(&wal).exists();
    let opened = if immutable {
        // A URI only here, built from the path (never from input taken as a URI): the
        // characters a URI gives meaning to are escaped.
        let mut uri = String::from("file:");
        for c in path.to_string_lossy().chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                c => uri.push(c),
            }
        }
        uri.push_str("?immutable=1");
        Connection::open_with_flags(uri, plain | OpenFlags::SQLITE_OPEN_URI)
    } else {
        Connection::open_with_flags(path, plain)
    };
    opened.map_err(|e| classify_open_error(e, path))
}

/// True when the file's header says WAL (bytes 18 and 19, the read and write versions, are 2).
fn in_wal_mode(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2 && header[19] == 2)
}

/// A table name from someone else's file, bounded and without control characters.
fn sanitize(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// What a non-regular file is, for the refusal.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Creates `dir` and its missing parents, each new one readable by its owner only (0700 on
/// Unix, whatever the umask): they hold the queue's files, and nobody else should list them
/// or plant a -wal, -shm or symlink in them. Existing directories are left as they are.
pub(crate) fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates missing directories (owner-only) and a new database file readable by its owner
/// only.
pub(crate) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dirs(dir).map_err(|source| StoreError::Io {
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

/// The identity of the file at `path` (device and inode on Unix), to notice later that the
/// path no longer names the file this process opened. `None` where there is no such notion.
pub(crate) fn file_identity(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(Some((meta.dev(), meta.ino())))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

/// Opens one connection with the configured PRAGMAs.
pub(crate) fn open_connection(options: &SqliteOptions) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_URI: the path is a file's path, never a URI (see `check_path`).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let opened = if options.batch_wal_writes {
        let vfs = prismq_wal_vfs::register().map_err(|message| StoreError::Io {
            action: "registering the WAL VFS",
            path: options.path.clone(),
            source: std::io::Error::other(message),
        })?;
        Connection::open_with_flags_and_vfs(&options.path, flags, vfs)
    } else {
        Connection::open_with_flags(&options.path, flags)
    };
    let conn = opened.map_err(|e| classify_open_error(e, &options.path))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
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
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
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
