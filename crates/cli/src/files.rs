//! The files the CLI writes and reads, decided in one place: what an output path (`--out`)
//! may be and how it is written (a new or `--force`d regular file through a hidden temporary
//! file renamed into place; a FIFO or character device written through, never replaced; `-`
//! for stdout; anything else refused), and how an input file (`--file`) is read (`-` for
//! stdin, never more than a size cap).

use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::exit::{CliError, CliResult};

/// What an output path may be, as the refusals say it.
const OUT_ACCEPTED: &str = "accepted: a new file, an existing regular file with --force, \
a FIFO or character device (written through), or - for stdout";

/// Where an output goes, decided (with `lstat`, never following a link) before anything is
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: the process's stdout.
    Stdout,
    /// An existing FIFO or character device: opened and written, never replaced or renamed
    /// over. `id` is its (device, inode), checked again once it is open.
    Through {
        /// The path given.
        path: PathBuf,
        /// (device, inode) at classification.
        id: (u64, u64),
    },
    /// A regular file written whole to a hidden temporary file beside it and renamed into
    /// place: `replace` is true when an existing regular file may be replaced (`--force`).
    File {
        /// The path given.
        path: PathBuf,
        /// Whether an existing regular file is replaced.
        replace: bool,
    },
}

impl Target {
    /// Classifies `path` given to `flag`: `-`, nothing there, a regular file (only with
    /// `force`), a FIFO or a character device; `protected` paths (the database and its
    /// -wal/-shm) are refused even with `force`.
    ///
    /// # Errors
    /// Exit 2 for a path that may not be written (naming what it is and what is accepted);
    /// exit 1 when it cannot be inspected.
    pub fn classify(
        flag: &str,
        path: &Path,
        force: bool,
        protected: &[PathBuf],
    ) -> CliResult<Self> {
        if path.as_os_str() == "-" {
            return Ok(Target::Stdout);
        }
        if path.as_os_str().is_empty() {
            return Err(CliError::usage(format!(
                "invalid {flag}: the path is empty; {OUT_ACCEPTED}"
            )));
        }
        let shown = shown(path);
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Target::File {
                    path: path.to_path_buf(),
                    replace: false,
                })
            }
            Err(e) => {
                return Err(
                    CliError::from(e).context(format!("invalid {flag}: cannot inspect {shown}"))
                )
            }
        };
        let kind = kind_of(&meta);
        match kind {
            Kind::Regular if is_protected(path, protected) => Err(CliError::usage(format!(
                "invalid {flag}: {shown} is the database itself (or its -wal/-shm file); choose another file"
            ))),
            Kind::Regular if force => Ok(Target::File {
                path: path.to_path_buf(),
                replace: true,
            }),
            Kind::Regular => Err(CliError::usage(format!(
                "{shown} already exists; choose another {flag} or pass --force to replace it"
            ))),
            Kind::Fifo | Kind::CharDevice => Ok(Target::Through {
                path: path.to_path_buf(),
                id: file_id(&meta),
            }),
            Kind::Directory => Err(CliError::usage(format!(
                "invalid {flag}: {shown} already exists and is a directory; {OUT_ACCEPTED}"
            ))),
            other => Err(CliError::usage(format!(
                "invalid {flag}: {shown} is {}; {OUT_ACCEPTED}",
                other.described()
            ))),
        }
    }

    /// Where the output goes, for messages: the path, or `stdout`.
    pub fn describe(&self) -> String {
        match self {
            Target::Stdout => "stdout".into(),
            Target::Through { path, .. } | Target::File { path, .. } => shown(path),
        }
    }

    /// True when the output is a stream (stdout, a FIFO, a device) rather than a file that is
    /// renamed into place.
    pub fn is_stream(&self) -> bool {
        !matches!(self, Target::File { .. })
    }

    /// Opens the output: stdout, the FIFO or device itself (checked to be the same one that
    /// was classified), or a new owner-only temporary file beside the target.
    ///
    /// # Errors
    /// Exit 1 (exit 3 for a missing directory) when it cannot be opened; exit 2 when a
    /// FIFO or device was swapped for something else since it was classified.
    pub fn open(self) -> CliResult<Output> {
        match self {
            Target::Stdout => Ok(Output {
                sink: Sink::Stdout(io::stdout()),
                reader_gone: false,
            }),
            Target::Through { path, id } => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| {
                        CliError::from(e).context(format!("cannot open {}", shown(&path)))
                    })?;
                let meta = file.metadata().map_err(CliError::from)?;
                if !matches!(kind_of(&meta), Kind::Fifo | Kind::CharDevice) || file_id(&meta) != id
                {
                    return Err(CliError::usage(format!(
                        "{} changed while it was being opened; nothing was written",
                        shown(&path)
                    )));
                }
                Ok(Output {
                    sink: Sink::Through(file),
                    reader_gone: false,
                })
            }
            Target::File { path, replace } => {
                let dir = parent_dir(&path);
                let name = path
                    .file_name()
                    .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
                // tempfile creates it exclusively, readable and writable by its owner only
                // (an export or a backup holds what the queue holds), and removes it when
                // dropped unless it was moved into place.
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".partial")
                    .tempfile_in(dir)
                    .map_err(|e| {
                        CliError::from(e)
                            .context(format!("cannot create a temporary file in {}", shown(dir)))
                    })?;
                Ok(Output {
                    sink: Sink::File { tmp, path, replace },
                    reader_gone: false,
                })
            }
        }
    }
}

/// An open output; [`Output::finish`] completes it. Dropped unfinished, a temporary file is
/// removed and the target is untouched.
#[derive(Debug)]
pub struct Output {
    sink: Sink,
    reader_gone: bool,
}

#[derive(Debug)]
enum Sink {
    Stdout(io::Stdout),
    Through(File),
    File {
        tmp: NamedTempFile,
        path: PathBuf,
        replace: bool,
    },
}

impl Output {
    /// The temporary file a regular-file output is written to (for writers that need a path,
    /// such as SQLite's backup); `None` for a stream.
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File { tmp, .. } => Some(tmp.path()),
            _ => None,
        }
    }

    /// True when a write to stdout or a FIFO failed because its reader went away (`| head`):
    /// the reader has what it wanted, which is not an error.
    pub fn reader_gone(&self) -> bool {
        self.reader_gone
    }

    /// Flushes the output; a regular file is synced, then renamed over its target (replacing
    /// only a regular file, and only when forced: without `--force` a file that appeared
    /// meanwhile is not replaced), and its directory synced.
    ///
    /// # Errors
    /// Exit 2 when the target appeared or changed kind meanwhile, exit 1 for write errors.
    pub fn finish(mut self) -> CliResult<()> {
        self.flush()
            .map_err(|e| CliError::failure(format!("writing the output: {e}")))?;
        let Sink::File { tmp, path, replace } = self.sink else {
            return Ok(());
        };
        tmp.as_file()
            .sync_all()
            .map_err(|e| CliError::failure(format!("syncing {}: {e}", shown(tmp.path()))))?;
        let placed = if replace {
            // The target was a regular file when classified; make sure it still is (or is
            // gone) so a FIFO, device or link swapped in since is not renamed over.
            match std::fs::symlink_metadata(&path) {
                Ok(m) if !matches!(kind_of(&m), Kind::Regular) => {
                    return Err(CliError::usage(format!(
                        "{} changed into {} while the output was written; nothing was replaced",
                        shown(&path),
                        kind_of(&m).described()
                    )))
                }
                _ => tmp.persist(&path),
            }
        } else {
            tmp.persist_noclobber(&path)
        };
        placed.map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                CliError::usage(format!(
                    "{} appeared while the output was written; it was left alone (pass --force to replace a regular file)",
                    shown(&path)
                ))
            } else {
                CliError::failure(format!("cannot move the output to {}: {}", shown(&path), e.error))
            }
        })?;
        if let Ok(d) = File::open(parent_dir(&path)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = match &mut self.sink {
            Sink::Stdout(s) => s.write(buf),
            Sink::Through(f) => f.write(buf),
            Sink::File { tmp, .. } => tmp.write(buf),
        };
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = match &mut self.sink {
            Sink::Stdout(s) => s.flush(),
            Sink::Through(f) => f.flush(),
            Sink::File { tmp, .. } => tmp.flush(),
        };
        self.note(r)
    }
}

impl Output {
    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if e.kind() == io::ErrorKind::BrokenPipe && !matches!(self.sink, Sink::File { .. }) {
                self.reader_gone = true;
            }
        }
        r
    }
}

/// A path as messages show it: control characters (an ESC in a file name) escaped, at most
/// 200 characters, so a name cannot forge terminal output.
pub fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The directory a path's temporary file goes to.
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether `out` is one of `protected` (even through `..` or a link).
fn is_protected(out: &Path, protected: &[PathBuf]) -> bool {
    let Ok(out) = out.canonicalize() else {
        return false; // it does not exist, so it is none of them
    };
    protected
        .iter()
        .any(|p| p.canonicalize().is_ok_and(|c| c == out))
}

/// The database file and its -wal/-shm, which no output may replace.
pub fn database_files(db: Option<PathBuf>) -> Vec<PathBuf> {
    let Some(db) = db else {
        return Vec::new();
    };
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        })
        .collect()
}

/// What a path is, as far as writing to it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Other,
}

impl Kind {
    fn described(self) -> &'static str {
        match self {
            Kind::Regular => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symbolic link (write to its target's path, or - for stdout)",
            Kind::Fifo => "a FIFO",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Socket => "a socket",
            Kind::Other => "neither a file, a FIFO nor a character device",
        }
    }
}

fn kind_of(m: &Metadata) -> Kind {
    let t = m.file_type();
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_file() {
        Kind::Regular
    } else if t.is_dir() {
        Kind::Directory
    } else {
        special_kind(&t)
    }
}

/// What a file that is neither a link, a regular file nor a directory is.
#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> Kind {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        Kind::Fifo
    } else if t.is_char_device() {
        Kind::CharDevice
    } else if t.is_block_device() {
        Kind::BlockDevice
    } else if t.is_socket() {
        Kind::Socket
    } else {
        Kind::Other
    }
}

/// Elsewhere no other kind is told apart.
#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> Kind {
    Kind::Other
}

#[cfg(unix)]
fn file_id(m: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn file_id(_: &Metadata) -> (u64, u64) {
    (0, 0)
}

/// An input opened for reading: `-` (stdin), a regular file, a FIFO or a character device,
/// read through [`Capped`] so that no more than the cap is ever read.
pub struct Input {
    /// The reader, buffered and capped.
    pub reader: BufReader<Capped<Box<dyn Read + Send>>>,
    /// The size when known up front (a regular file, or stdin redirected from one).
    pub len: Option<u64>,
    /// How messages name it: the path, or `stdin`.
    pub name: String,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// Opens `path` given to `flag` (`-` for stdin), refusing a directory, a socket or a block
    /// device, and a regular file larger than `cap` bytes before reading any of it.
    ///
    /// # Errors
    /// Exit 3 when it does not exist, exit 2 when it is not something to read or too large,
    /// exit 1 when it cannot be opened.
    pub fn open(flag: &str, path: &Path, cap: u64) -> CliResult<Input> {
        let (file, name, len): (Box<dyn Read + Send>, String, Option<u64>) =
            if path.as_os_str() == "-" {
                (Box::new(io::stdin()), "stdin".into(), stdin_len())
            } else {
                let shown = shown(path);
                let file = File::open(path)
                    .map_err(|e| CliError::from(e).context(format!("cannot open {shown}")))?;
                let meta = file
                    .metadata()
                    .map_err(|e| CliError::from(e).context(format!("cannot inspect {shown}")))?;
                match kind_of(&meta) {
                    Kind::Regular | Kind::Fifo | Kind::CharDevice => {}
                    other => {
                        return Err(CliError::usage(format!(
                        "invalid {flag}: {shown} is {}; accepted: a file, a FIFO, or - for stdin",
                        other.described()
                    )))
                    }
                }
                let len = meta.is_file().then_some(meta.len());
                (Box::new(file), shown, len)
            };
        if let Some(n) = len.filter(|n| *n > cap) {
            return Err(too_large(flag, &format!("{name} ({n} bytes)"), cap));
        }
        Ok(Input {
            reader: BufReader::new(Capped::new(file, cap)),
            len,
            name,
        })
    }
}

/// The size of stdin when it is redirected from a regular file.
#[cfg(unix)]
fn stdin_len() -> Option<u64> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let m = File::from(fd).metadata().ok()?;
    m.is_file().then_some(m.len())
}

#[cfg(not(unix))]
fn stdin_len() -> Option<u64> {
    None
}

/// The refusal of an input larger than `cap`.
pub fn too_large(flag: &str, name: &str, cap: u64) -> CliError {
    CliError::usage(format!(
        "invalid {flag}: {name} is larger than {mib} MiB; accepted: at most {mib} MiB (split it into several files)",
        mib = cap / (1024 * 1024)
    ))
}

/// The error kind a [`Capped`] reader reports when its input goes past the cap.
pub const TOO_LARGE: io::ErrorKind = io::ErrorKind::FileTooLarge;

/// A reader that yields at most `cap` bytes and then fails with [`TOO_LARGE`] if the input
/// has more: `/dev/zero` or an endless pipe is refused after `cap` bytes, never read whole.
pub struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R> std::fmt::Debug for Capped<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capped")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Capped<R> {
    /// Caps `inner` at `cap` bytes.
    pub fn new(inner: R, cap: u64) -> Self {
        Capped { inner, left: cap }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    TOO_LARGE,
                    "the input is larger than its cap",
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_stops_at_the_cap_and_says_so() {
        let mut out = Vec::new();
        let e = Capped::new(io::repeat(0), 1000)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.kind(), TOO_LARGE);
        assert_eq!(out.len(), 1000);
        let mut exact = Vec::new();
        Capped::new(&b"exactly"[..], 7)
            .read_to_end(&mut exact)
            .unwrap();
        assert_eq!(exact, b"exactly");
        let e = Capped::new(&b"eight by"[..], 7).read_to_end(&mut Vec::new());
        assert_eq!(e.unwrap_err().kind(), TOO_LARGE);
    }
}
