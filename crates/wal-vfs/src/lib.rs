//! A SQLite VFS shim that hands each WAL commit's frames to the operating system in one write.
//!
//! SQLite writes a commit to the write-ahead log one frame at a time, each frame as two
//! writes: its 24-byte header, then its page. A claim that changes five pages is ten
//! `pwrite` calls, and on Linux each one takes the inode lock and walks the page cache for
//! the two or three pages a 4,120-byte frame straddles. This shim, registered as
//! [`NAME`] over the platform's default VFS, changes nothing but that: the frames a
//! transaction appends to the WAL are kept in a buffer and written with one call when the
//! commit frame's page arrives (the frame whose header holds the database size after the
//! commit, as the WAL format defines it). Everything else passes through unchanged: the
//! database file, the shared-memory index, locks, syncs, and every WAL write that is not a
//! frame appended where the previous write ended (the WAL's own header after a restart,
//! pages rewritten in place, checksums rewritten).
//!
//! Why it is safe: SQLite publishes a commit to other connections (the wal-index header in
//! shared memory) only after its frame writes return, and the last of those returns only
//! after the whole buffer has reached the operating system, so every reader and every
//! process sees what it would have seen without the shim. Buffered frames of a transaction
//! that fails before its commit frame are the same uncommitted tail the default VFS would
//! have written: recovery ignores frames after the last valid commit. The buffer is written
//! out before anything reads, syncs, sizes, truncates or closes the WAL, and when it passes
//! [`MAX_BUFFER`] bytes, so a large transaction holds no more than that in memory and no
//! write is larger than the Unix VFS takes (under 128 KiB).

use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The name the shim is registered under; pass it to `Connection::open_with_flags_and_vfs`.
pub const NAME: &str = "prismq-wal";
const NAME_C: &CStr = c"prismq-wal";

/// A WAL frame's header, before its page.
const FRAME_HEADER: usize = 24;
/// The WAL file's own header: frames start after it.
const WAL_HEADER: i64 = 32;
/// Bytes of frames after which the buffer is written even without a commit frame. A frame
/// of the largest page (65,560 bytes) on top still makes a write under 128 KiB.
pub const MAX_BUFFER: usize = 32 * 1024;
/// The most one write hands down: the Unix VFS takes at most 128 KiB - 1 bytes a call.
const MAX_WRITE: usize = 64 * 1024;

/// What the shim did with the WAL writes of this process, since it started: how many of
/// SQLite's writes it kept, how many writes it made of them, and how many it passed
/// through unchanged. Benchmarks print it; tests check that commits are grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Writes (frame headers and pages) SQLite asked for and the shim kept in a buffer.
    pub kept: u64,
    /// Writes the shim made of kept bytes (one a commit, or more for a buffer past
    /// [`MAX_BUFFER`]).
    pub written: u64,
    /// WAL writes passed through as SQLite asked (the WAL's header, rewrites, the first
    /// frame a connection appends).
    pub passed: u64,
}

static KEPT: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static PASSED: AtomicU64 = AtomicU64::new(0);

/// The process's [`Counters`] so far.
pub fn counters() -> Counters {
    Counters {
        kept: KEPT.load(Ordering::Relaxed),
        written: WRITTEN.load(Ordering::Relaxed),
        passed: PASSED.load(Ordering::Relaxed),
    }
}

/// Registers the shim (once per process; later calls return the first call's outcome) and
/// returns its name. Fails only when SQLite has no default VFS or refuses the registration.
pub fn register() -> Result<&'static str, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find initialises SQLite and returns the default VFS, which
            // lives as long as the process; it is only read here.
            let inner = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
            if inner.is_null() {
                return Err("SQLite has no default VFS to wrap".to_owned());
            }
            // SAFETY: `inner` is the registered default VFS (checked non-null above).
            let mut base = unsafe { ptr::read(inner) };
            let inner_file_size = usize::try_from(base.szOsFile).unwrap_or(0);
            base.szOsFile = c_int::try_from(INNER_OFFSET + inner_file_size)
                .map_err(|_| "the default VFS's file object is too large".to_owned())?;
            base.pNext = ptr::null_mut();
            base.zName = NAME_C.as_ptr();
            base.xOpen = Some(shim_open);
            // Every other method is the default VFS's own, called with this VFS's pointer:
            // they read at most its mxPathname and pAppData, both copied.
            let shim = Box::into_raw(Box::new(ShimVfs { base, inner }));
            // SAFETY: `shim` is leaked, so it outlives every connection; SQLite keeps the
            // pointer in its list of VFSes and never frees it.
            let rc = unsafe { ffi::sqlite3_vfs_register(shim.cast::<ffi::sqlite3_vfs>(), 0) };
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(format!(
                    "SQLite refused to register the {NAME} VFS (code {rc})"
                ))
            }
        })
        .clone()
        .map(|()| NAME)
}

/// The registered VFS: SQLite's struct first, so a pointer to one is a pointer to the other.
#[repr(C)]
struct ShimVfs {
    base: ffi::sqlite3_vfs,
    inner: *mut ffi::sqlite3_vfs,
}

/// An open file: SQLite's struct first, then the default VFS's file object at
/// [`INNER_OFFSET`] in the same allocation (SQLite allocates `szOsFile` bytes).
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    /// The buffer of a WAL file; null for every other file.
    wal: *mut WalBuffer,
}

/// Where the default VFS's file object starts, aligned for any of its fields.
const INNER_OFFSET: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

/// Frames appended to the WAL and not yet written.
#[derive(Debug, Default)]
struct WalBuffer {
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    start: i64,
    /// Where the last write that reached the file ended; `None` until one has, or after an
    /// error. A frame header is buffered only when it starts here, which is where SQLite
    /// appends: a rewrite of an earlier frame's header never does.
    next: Option<i64>,
    /// The buffer ends with a frame header whose page has not come yet.
    header_open: bool,
    /// The last header buffered is a commit frame's.
    commit: bool,
}

impl WalBuffer {
    fn end(&self) -> i64 {
        self.start + self.bytes.len() as i64
    }

    fn push_header(&mut self, header: &[u8]) {
        KEPT.fetch_add(1, Ordering::Relaxed);
        self.bytes.extend_from_slice(header);
        self.header_open = true;
        // Bytes 4..8 of a frame header: the database's size in pages after the commit for
        // a commit frame, zero for every other frame.
        self.commit = header[4..8] != [0, 0, 0, 0];
    }
}

/// The default VFS's file object behind `file`.
///
/// # Safety
/// `file` must be a file this shim opened.
unsafe fn inner_of(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the caller passes a ShimFile, which starts with the sqlite3_file.
    unsafe { (*file.cast::<ShimFile>()).inner }
}

/// The default VFS's methods for its file object.
///
/// # Safety
/// `inner` must be an open file of the default VFS.
unsafe fn methods_of(inner: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: an open file's pMethods points at its VFS's static method table.
    unsafe { &*(*inner).pMethods }
}

/// Writes out whatever `file` has buffered. A no-op for files that are not a WAL.
///
/// # Safety
/// `file` must be a file this shim opened, and no reference to its buffer may be live.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: the caller passes a ShimFile; `wal` is null or the buffer this file owns, and
    // SQLite never calls one file's methods from two threads at once.
    unsafe {
        let wal = (*file.cast::<ShimFile>()).wal;
        if wal.is_null() {
            return ffi::SQLITE_OK;
        }
        write_out(&mut *wal, inner_of(file))
    }
}

/// Writes `wal`'s bytes to `inner` with one call and empties the buffer, whatever the
/// outcome: bytes that failed to reach the file are an uncommitted tail SQLite gives up on.
///
/// # Safety
/// `inner` must be an open file of the default VFS.
unsafe fn write_out(wal: &mut WalBuffer, inner: *mut ffi::sqlite3_file) -> c_int {
    if wal.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    let mut rc = ffi::SQLITE_OK;
    let mut offset = wal.start;
    for chunk in wal.bytes.chunks(MAX_WRITE) {
        let amount = c_int::try_from(chunk.len()).expect("a chunk is at most 64 KiB");
        // SAFETY: `inner` is open; the pointer and length describe part of the buffer.
        rc = unsafe {
            match methods_of(inner).xWrite {
                Some(write) => write(inner, chunk.as_ptr().cast(), amount, offset),
                None => ffi::SQLITE_IOERR_WRITE,
            }
        };
        WRITTEN.fetch_add(1, Ordering::Relaxed);
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += ffi::sqlite3_int64::from(amount);
    }
    wal.next = (rc == ffi::SQLITE_OK).then(|| wal.end());
    wal.bytes.clear();
    wal.header_open = false;
    wal.commit = false;
    rc
}

unsafe extern "C" fn shim_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes the VFS registered by `register` (a ShimVfs) and `szOsFile`
    // bytes at `file`, enough for a ShimFile and the default VFS's object after it.
    unsafe {
        let inner_vfs = (*vfs.cast::<ShimVfs>()).inner;
        let inner = file
            .cast::<u8>()
            .add(INNER_OFFSET)
            .cast::<ffi::sqlite3_file>();
        ptr::write(
            file.cast::<ShimFile>(),
            ShimFile {
                base: ffi::sqlite3_file {
                    pMethods: ptr::null(),
                },
                inner,
                wal: ptr::null_mut(),
            },
        );
        (*inner).pMethods = ptr::null();
        let Some(open) = (*inner_vfs).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = open(inner_vfs, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // A file object whose pMethods is set must be closed even when opening failed.
            if let Some(close) = (*inner).pMethods.as_ref().and_then(|m| m.xClose) {
                close(inner);
            }
            return rc;
        }
        (*file).pMethods = match methods_of(inner).iVersion {
            1 => &METHODS_V1,
            2 => &METHODS_V2,
            _ => &METHODS_V3,
        };
        if flags & ffi::SQLITE_OPEN_WAL != 0 {
            (*file.cast::<ShimFile>()).wal = Box::into_raw(Box::default());
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn shim_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file this shim opened, once; the buffer is freed after its
    // bytes are written.
    unsafe {
        let flushed = flush(file);
        let inner = inner_of(file);
        let rc = methods_of(inner)
            .xClose
            .map_or(ffi::SQLITE_OK, |close| close(inner));
        let shim = file.cast::<ShimFile>();
        if !(*shim).wal.is_null() {
            drop(Box::from_raw((*shim).wal));
            (*shim).wal = ptr::null_mut();
        }
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            rc
        }
    }
}

unsafe extern "C" fn shim_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: a file this shim opened; SQLite passes `amount` readable bytes at `buf`, and
    // the buffer is this file's alone (see `flush`).
    unsafe {
        let inner = inner_of(file);
        let wal = (*file.cast::<ShimFile>()).wal;
        let len = usize::try_from(amount).unwrap_or(0);
        if wal.is_null() || len == 0 {
            return methods_of(inner)
                .xWrite
                .map_or(ffi::SQLITE_IOERR_WRITE, |write| {
                    write(inner, buf, amount, offset)
                });
        }
        let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
        let w = &mut *wal;
        if !w.bytes.is_empty() && offset == w.end() {
            if w.header_open && len != FRAME_HEADER {
                // The page of the frame whose header is buffered.
                KEPT.fetch_add(1, Ordering::Relaxed);
                w.bytes.extend_from_slice(data);
                w.header_open = false;
                if w.commit || w.bytes.len() >= MAX_BUFFER {
                    return write_out(w, inner);
                }
                return ffi::SQLITE_OK;
            }
            if !w.header_open && len == FRAME_HEADER {
                w.push_header(data);
                return ffi::SQLITE_OK;
            }
        }
        let rc = write_out(w, inner);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if len == FRAME_HEADER && offset >= WAL_HEADER && w.next == Some(offset) {
            w.start = offset;
            w.push_header(data);
            return ffi::SQLITE_OK;
        }
        PASSED.fetch_add(1, Ordering::Relaxed);
        let rc = methods_of(inner)
            .xWrite
            .map_or(ffi::SQLITE_IOERR_WRITE, |write| {
                write(inner, buf, amount, offset)
            });
        w.next = (rc == ffi::SQLITE_OK).then_some(offset + ffi::sqlite3_int64::from(amount));
        rc
    }
}

unsafe extern "C" fn shim_truncate(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: a file this shim opened; buffered frames are written before the truncation,
    // and appends are not buffered again until a write reaches the new end.
    unsafe {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let shim = file.cast::<ShimFile>();
        if !(*shim).wal.is_null() {
            (*(*shim).wal).next = None;
        }
        let inner = inner_of(file);
        methods_of(inner)
            .xTruncate
            .map_or(ffi::SQLITE_IOERR_TRUNCATE, |truncate| truncate(inner, size))
    }
}

/// Defines `$name`, a file method that calls the default VFS's `$method` on the file object
/// behind the shim's with the same arguments (answering `$missing` when its method table
/// has none), after writing out the WAL's buffered frames when `flush` says so: every call
/// that reads, syncs, sizes or controls the file must see them.
macro_rules! forward {
    ($name:ident, $method:ident, $missing:expr, flush: $flush:literal $(, $arg:ident: $ty:ty)*) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite calls a file's methods only on a file this shim opened, one
            // call at a time, with the arguments the default VFS's method takes.
            unsafe {
                if $flush {
                    let rc = flush(file);
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                }
                let inner = inner_of(file);
                methods_of(inner)
                    .$method
                    .map_or($missing, |method| method(inner $(, $arg)*))
            }
        }
    };
}

forward!(shim_read, xRead, ffi::SQLITE_IOERR_READ, flush: true,
    buf: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64);
forward!(shim_sync, xSync, ffi::SQLITE_IOERR_FSYNC, flush: true, flags: c_int);
forward!(shim_file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, flush: true,
    size: *mut ffi::sqlite3_int64);
// A control that looks at the file (its size hint, persistence, a rename) sees the frames.
forward!(shim_file_control, xFileControl, ffi::SQLITE_NOTFOUND, flush: true,
    op: c_int, arg: *mut c_void);
forward!(shim_lock, xLock, ffi::SQLITE_IOERR_LOCK, flush: false, level: c_int);
forward!(shim_unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, flush: false, level: c_int);
forward!(shim_check_reserved_lock, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
    flush: false, out: *mut c_int);
forward!(shim_sector_size, xSectorSize, 4096, flush: false);
forward!(shim_device_characteristics, xDeviceCharacteristics, 0, flush: false);
// The shared-memory methods are only in a version 2 or 3 method table, and SQLite calls
// them only on the database file.
forward!(shim_shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, flush: false,
    region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void);
forward!(shim_shm_lock, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, flush: false,
    offset: c_int, n: c_int, flags: c_int);
forward!(shim_shm_unmap, xShmUnmap, ffi::SQLITE_OK, flush: false, delete: c_int);
forward!(shim_unfetch, xUnfetch, ffi::SQLITE_OK, flush: false,
    offset: ffi::sqlite3_int64, page: *mut c_void);

unsafe extern "C" fn shim_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: a file this shim opened.
    unsafe {
        let inner = inner_of(file);
        if let Some(barrier) = methods_of(inner).xShmBarrier {
            barrier(inner);
        }
    }
}

unsafe extern "C" fn shim_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: a file this shim opened (only the database file is ever memory-mapped).
    unsafe {
        let inner = inner_of(file);
        match methods_of(inner).xFetch {
            Some(fetch) => fetch(inner, offset, amount, out),
            None => {
                *out = ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}

const fn methods(version: c_int) -> ffi::sqlite3_io_methods {
    ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(shim_close),
        xRead: Some(shim_read),
        xWrite: Some(shim_write),
        xTruncate: Some(shim_truncate),
        xSync: Some(shim_sync),
        xFileSize: Some(shim_file_size),
        xLock: Some(shim_lock),
        xUnlock: Some(shim_unlock),
        xCheckReservedLock: Some(shim_check_reserved_lock),
        xFileControl: Some(shim_file_control),
        xSectorSize: Some(shim_sector_size),
        xDeviceCharacteristics: Some(shim_device_characteristics),
        xShmMap: if version >= 2 {
            Some(shim_shm_map)
        } else {
            None
        },
        xShmLock: if version >= 2 {
            Some(shim_shm_lock)
        } else {
            None
        },
        xShmBarrier: if version >= 2 {
            Some(shim_shm_barrier)
        } else {
            None
        },
        xShmUnmap: if version >= 2 {
            Some(shim_shm_unmap)
        } else {
            None
        },
        xFetch: if version >= 3 { Some(shim_fetch) } else { None },
        xUnfetch: if version >= 3 {
            Some(shim_unfetch)
        } else {
            None
        },
    }
}

static METHODS_V1: ffi::sqlite3_io_methods = methods(1);
static METHODS_V2: ffi::sqlite3_io_methods = methods(2);
static METHODS_V3: ffi::sqlite3_io_methods = methods(3);
