//! Durable file writing, the bottom layer every module that writes a file uses: exports,
//! sessions, autosaves, settings, recipes, weight configs, converted bundles and downloads.
//!
//! * [`write_atomic`]: bytes to a hidden temp file in the destination folder, `fsync`, then
//!   renamed (or hard-linked, to never clobber) into place, and the folder synced.
//! * [`AtomicDir`]: a hidden scratch folder beside the destination for writers that stream a
//!   large file themselves (a safetensors bundle); [`AtomicDir::commit`] syncs the file and
//!   renames it into place.
//! * [`rename_durably`]: `fsync` a finished file, rename it, sync the folder (downloads).
//!
//! A killed writer leaves only hidden `.{name}.{pid}-{n}.tmp` files or folders, which no loader
//! takes for a real file and which the next write into the same folder removes
//! ([`remove_stale_temps`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of a durable write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The destination exists and `overwrite` was false.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// Creating, writing, syncing or renaming failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// File concerned (the destination the user chose, not the hidden temp file).
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl From<WriteError> for std::io::Error {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Exists(_) => std::io::Error::new(std::io::ErrorKind::AlreadyExists, e),
            WriteError::Io { source, .. } => source,
        }
    }
}

/// Distinguishes temp files of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Test hook (tests/suite/kill.rs): when set to a file path, every atomic write stops after its temp
/// file is written and synced, creates that file (naming the temp file) and sleeps for up to a
/// minute before the rename, so a test can kill the process exactly mid-write. Never set
/// otherwise.
pub const PAUSE_BEFORE_RENAME_ENV: &str = "LDZMASK_TEST_PAUSE_BEFORE_RENAME";

/// Test hook beside [`PAUSE_BEFORE_RENAME_ENV`]: how many writes go through before the pause
/// (default 0), so a test can kill a batch after its first images are written.
pub const PAUSE_AFTER_WRITES_ENV: &str = "LDZMASK_TEST_PAUSE_AFTER_WRITES";

/// Writes that reached the pause hook in this process.
static HOOKED_WRITES: AtomicU64 = AtomicU64::new(0);

/// Folders this process cleared of stale temp files, and when ([`remove_stale_temps`] lists a
/// folder at most once a minute: a batch writing thousands of masks into one folder does not
/// list it for every file).
static SWEPT_DIRS: std::sync::Mutex<Vec<(PathBuf, std::time::Instant)>> =
    std::sync::Mutex::new(Vec::new());

/// How often one folder is listed for stale temp files.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The temp file name [`write_atomic`] uses for `name`: hidden, with the writer's process id
/// and a counter, so leftovers of a killed writer can be recognised ([`stale_temp_pid`]).
fn temp_name(name: &str) -> String {
    format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The writer's process id if `file_name` is a temp file of [`write_atomic`].
fn stale_temp_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tag) = rest.rsplit_once('.')?;
    let (pid, counter) = tag.split_once('-')?;
    counter.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// True if the process that wrote a temp file is gone. Linux asks `/proc`; elsewhere a temp
/// file untouched for a day counts as abandoned (no portable liveness check without `unsafe`).
fn writer_is_gone(pid: u32, meta: &std::fs::Metadata) -> bool {
    if pid == std::process::id() {
        return false; // one of our own writes in progress
    }
    if cfg!(target_os = "linux") {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    meta.modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
}

/// Removes the temp files (and [`AtomicDir`] folders) that killed writers (a crash, `kill -9`, a power cut between write
/// and rename) left in `dir` (at most once a minute per folder and process). A write that is
/// killed cannot clean up after itself; the next write into the same folder does. Returns
/// how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    {
        let now = std::time::Instant::now();
        let mut swept = SWEPT_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        swept.retain(|(_, at)| now.duration_since(*at) < SWEEP_INTERVAL);
        if swept.iter().any(|(d, _)| d == dir) {
            return 0;
        }
        swept.push((dir.to_path_buf(), now));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_temp_pid) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if writer_is_gone(pid, &meta) {
            let removed_it = if meta.is_dir() {
                std::fs::remove_dir_all(entry.path())
            } else {
                std::fs::remove_file(entry.path())
            };
            match removed_it {
                Ok(()) => {
                    log::info!(
                        "removed {} (left by a killed write)",
                        entry.path().display()
                    );
                    removed += 1;
                }
                Err(e) => log::debug!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
    removed
}

/// The [`PAUSE_BEFORE_RENAME_ENV`] hook.
fn pause_before_rename(tmp: &Path) {
    let Some(marker) = std::env::var_os(PAUSE_BEFORE_RENAME_ENV) else {
        return;
    };
    let let_through: u64 = std::env::var(PAUSE_AFTER_WRITES_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if HOOKED_WRITES.fetch_add(1, Ordering::Relaxed) < let_through {
        return;
    }
    if let Err(e) = std::fs::write(&marker, tmp.to_string_lossy().as_bytes()) {
        log::warn!(
            "test hook: cannot write {}: {e}",
            Path::new(&marker).display()
        );
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory (same file system,
/// so the final step is a rename, not a copy), `fsync`, then into place.
///
/// * `overwrite = true`: `rename`, which atomically replaces an existing file.
/// * `overwrite = false`: a hard link, which fails if `path` exists, so a file created
///   meanwhile is never clobbered; where hard links are unsupported (some FAT or network
///   drives) it falls back to check-then-rename.
///
/// Readers never see a half-written file, and a failed write leaves no temp file behind; a
/// killed one leaves a hidden `.{name}.{pid}-{n}.tmp` that the next write into the folder
/// removes ([`remove_stale_temps`]). Every file the app and the CLI write (exports, sessions,
/// autosaves, settings, `segment`/`refine` masks) goes through here.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), WriteError> {
    if !overwrite && path.exists() {
        return Err(WriteError::Exists(path.to_path_buf()));
    }
    place_atomic(path, bytes, overwrite)
}

/// [`write_atomic`] without the up-front existence check (the no-clobber link still refuses).
fn place_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), WriteError> {
    // Errors name the destination the user chose, not the hidden temp file.
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WriteError::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    remove_stale_temps(&dir);
    let tmp = dir.join(temp_name(&name));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(path))?;
        f.write_all(bytes).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        drop(f);
        pause_before_rename(&tmp);
        if overwrite {
            std::fs::rename(&tmp, path).map_err(io_err(path))?;
            sync_dir(&dir);
            return Ok(());
        }
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                // The link is in place; the temp name is just removed.
                let _ = std::fs::remove_file(&tmp);
                sync_dir(&dir);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(WriteError::Exists(path.to_path_buf()))
            }
            Err(e) => {
                log::debug!("hard link unsupported ({e}); falling back to check-then-rename");
                if path.exists() {
                    return Err(WriteError::Exists(path.to_path_buf()));
                }
                std::fs::rename(&tmp, path).map_err(io_err(path))
            }
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Syncs a folder after a rename so the new name survives a power cut (best effort: not every
/// platform can open a folder as a file).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir)
        && let Err(e) = d.sync_all()
    {
        log::debug!("cannot sync {}: {e}", dir.display());
    }
}

/// Renames a finished file into place durably: the file is synced, renamed (replacing
/// `to`), and the folder synced, so after a power cut either the old or the whole new file is
/// there under `to`.
pub fn rename_durably(from: &Path, to: &Path) -> Result<(), WriteError> {
    let io_err = |source| WriteError::Io {
        path: to.to_path_buf(),
        source,
    };
    std::fs::File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(io_err)?;
    pause_before_rename(from);
    std::fs::rename(from, to).map_err(io_err)?;
    if let Some(dir) = to.parent() {
        sync_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        });
    }
    Ok(())
}

/// A hidden scratch folder beside a destination, for a writer that streams a large file by
/// itself (safetensors' `serialize_to_file` makes its own temp file in the folder it writes
/// to). Whatever it leaves there when the process is killed is hidden, never named like the
/// destination, and removed by the next write into the folder ([`remove_stale_temps`]).
/// Dropped without [`AtomicDir::commit`], the folder is removed.
#[derive(Debug)]
pub struct AtomicDir {
    dir: PathBuf,
    dest: PathBuf,
}

impl AtomicDir {
    /// Creates the scratch folder for `dest` (refused up front if `dest` exists and
    /// `overwrite` is false).
    pub fn new(dest: &Path, overwrite: bool) -> Result<Self, WriteError> {
        if !overwrite && dest.exists() {
            return Err(WriteError::Exists(dest.to_path_buf()));
        }
        let parent = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        remove_stale_temps(&parent);
        let dir = parent.join(temp_name(&name));
        std::fs::create_dir(&dir).map_err(|source| WriteError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir,
            dest: dest.to_path_buf(),
        })
    }

    /// Where the writer should write the file (inside the scratch folder).
    pub fn file_path(&self) -> PathBuf {
        self.dir.join("file")
    }

    /// Syncs the written file and renames it to the destination (replacing it), then removes
    /// the scratch folder.
    pub fn commit(self) -> Result<(), WriteError> {
        rename_durably(&self.file_path(), &self.dest)
        // `drop` removes the now empty scratch folder.
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            log::debug!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ldzmask-fsutil-{tag}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temps_of_killed_writers_are_removed_by_the_next_write() {
        let dir = temp_dir("stale");
        assert_eq!(stale_temp_pid(".m.png.123-4.tmp"), Some(123));
        assert_eq!(stale_temp_pid(".a.b.png.7-0.tmp"), Some(7));
        assert_eq!(stale_temp_pid("m.png.123-4.tmp"), None);
        assert_eq!(stale_temp_pid(".m.png.x-4.tmp"), None);
        // Above Linux's largest pid: no such process.
        let dead = dir.join(".m.png.999999999-0.tmp");
        let dead_dir = dir.join(".b.safetensors.999999998-0.tmp");
        let ours = dir.join(format!(".m.png.{}-999.tmp", std::process::id()));
        let foreign = dir.join(".notes.tmp");
        for p in [&dead, &ours, &foreign] {
            std::fs::write(p, b"partial").unwrap();
        }
        std::fs::create_dir(&dead_dir).unwrap();
        std::fs::write(dead_dir.join(".tmpXYZ"), b"half a bundle").unwrap();
        write_atomic(&dir.join("m.png"), b"new", true).unwrap();
        assert_eq!(std::fs::read(dir.join("m.png")).unwrap(), b"new");
        assert_eq!(!dead.exists(), cfg!(target_os = "linux"));
        assert_eq!(!dead_dir.exists(), cfg!(target_os = "linux"));
        assert!(ours.exists(), "a temp of a live writer is never touched");
        assert!(foreign.exists(), "only our own temp names are touched");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_final_link_refuses_a_file_that_appeared_meanwhile() {
        let dir = temp_dir("link");
        let path = dir.join("mask.png");
        std::fs::write(&path, b"first").unwrap();
        assert!(matches!(
            place_atomic(&path, b"x", false),
            Err(WriteError::Exists(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert!(matches!(
            write_atomic(&dir.join("no-such-dir").join("m.png"), b"x", false),
            Err(WriteError::Io { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn atomic_dir_commits_or_leaves_nothing() {
        let dir = temp_dir("adir");
        let dest = dir.join("bundle.safetensors");
        let scratch = AtomicDir::new(&dest, false).unwrap();
        std::fs::write(scratch.file_path(), b"data").unwrap();
        scratch.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        assert!(matches!(
            AtomicDir::new(&dest, false),
            Err(WriteError::Exists(_))
        ));
        let dropped = AtomicDir::new(&dir.join("other.safetensors"), false).unwrap();
        std::fs::write(dropped.file_path(), b"half").unwrap();
        drop(dropped);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("bundle.safetensors")]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
