//! Autosave of the open document and recovery of the autosaves a crash left behind.
//!
//! * **Where**: `LDZMASK_AUTOSAVE_DIR`; else, when the settings folder was moved
//!   (`LDZMASK_CONFIG_DIR` or [`super::Options::config_dir`]: tests, portable setups), its
//!   `autosave` subfolder; else `<platform data dir>/ldzmask/autosave`
//!   (`$XDG_DATA_HOME/ldzmask/autosave`, by default `~/.local/share/ldzmask/autosave`, on
//!   Linux).
//! * **Ownership**: every running app holds an exclusive lock ([`File::try_lock`]) on
//!   `<instance>.lock` for as long as it runs, and names its autosaves
//!   `<instance>-<image id>.ldzmask.json`. The operating system drops the lock when the process
//!   ends, however it ends (`kill -9`, a crash), so autosaves whose lock can be taken were left
//!   behind, and autosaves whose lock is held belong to a running app and are never touched
//!   (two apps never take each other's work).
//! * **Self-sufficient**: the autosave is a normal session file ([`crate::mask::session`]).
//!   Sessions name their image; an image without a file (pasted) is copied once per document
//!   as `<instance>-<image id>.png` next to the autosave, which names the copy.
//! * **When**: the document's edit mark (every edit, model result, undo or redo moves it) and
//!   its layer settings (a name being typed or a slider dragged merge into one undo step
//!   without moving the mark) are polled each frame. A change is written once the document has been quiet for [`QUIET`],
//!   and at most [`MAX_DELAY`] after the first unwritten change, so a change is on disk within
//!   10 s. Never in the middle of a brush stroke (the stroke is not a document step yet).
//! * **Off the UI thread**: the UI thread only copies the document ([`SessionSnapshot`]); the
//!   `ldzmask-autosave` thread encodes and writes it atomically
//!   ([`crate::fsutil::write_atomic`]). The same thread removes retired autosaves, in
//!   order, so a removal never races a write of the same file.
//! * **Retired** (removed): after an explicit session save with nothing changed since, when
//!   another document replaces this one (after the user saved or chose to discard), and at a
//!   clean exit.
//! * **Parked** (kept): a batch review keeps each image's masks open while another image is on
//!   screen. Leaving an image with edits not exported parks its autosave ([`Autosaver::park`]:
//!   written at once if a change is pending) instead of retiring it, so a crash leaves every
//!   such image for recovery; the file goes when its masks are exported, when the image comes
//!   back on screen (after its new autosave is written) and at a clean exit.
//! * **Pruned** at start-up: crash leftovers older than [`KEEP_DAYS`] days, and all but the
//!   newest [`KEEP_MAX`].
//! * **Recovery**: the leftovers found at start-up are offered one by one (newest first) in a
//!   Restore / Discard window ([`super::ui::notices::recovery_ui`]). A restored leftover stays
//!   on disk (its lock held by this app) until this app has written its own autosave of the
//!   restored document, so a second crash loses nothing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::imageio::LoadedImage;
use crate::mask::session::{SessionSummary, peek};
use crate::mask::{LayerOps, LayerProps, SessionSnapshot};

use super::state::Document;

mod recovery;

pub use recovery::Orphan;

/// Environment variable that moves the autosave folder (tests).
pub const AUTOSAVE_DIR_ENV: &str = "LDZMASK_AUTOSAVE_DIR";

/// A change is written once the document has been this long without another change…
pub const QUIET: Duration = Duration::from_secs(2);
/// …and at most this long after the first change not written yet.
pub const MAX_DELAY: Duration = Duration::from_secs(8);
/// Crash leftovers older than this many days are removed at start-up.
pub const KEEP_DAYS: u64 = 14;
/// At most this many crash leftovers are kept (the newest).
pub const KEEP_MAX: usize = 20;

/// File name ending of an autosave.
pub const SESSION_SUFFIX: &str = ".ldzmask.json";
/// File name ending of the copy of an image that has no file.
const IMAGE_SUFFIX: &str = ".png";
/// File name ending of an instance's lock file.
const LOCK_SUFFIX: &str = ".lock";

/// The autosave folder (see the module docs); `config_dir` is a settings folder given on the
/// command line or by a test. `None` if no folder is known on this system.
pub fn autosave_dir(config_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(AUTOSAVE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let moved_config = config_dir.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(super::state::CONFIG_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    });
    if let Some(config) = moved_config {
        return Some(config.join("autosave"));
    }
    dirs::data_dir().map(|d| d.join("ldzmask").join("autosave"))
}

/// [`super::state::Document::edit_mark`].
type Mark = (usize, usize, usize);

/// Each layer's settings: what a merged undo step (typing a name, dragging a slider) changes
/// without moving the edit mark.
type LayerSettings = Vec<(u64, LayerProps, LayerOps)>;

/// The document's layer settings now.
fn layer_settings(doc: &Document) -> LayerSettings {
    doc.masks
        .layers()
        .iter()
        .map(|e| (e.id, e.props.clone(), e.layer.ops))
        .collect()
}

/// True if `seen` still describes the document's layer settings (compared without copying).
fn same_settings(seen: &LayerSettings, doc: &Document) -> bool {
    let layers = doc.masks.layers();
    seen.len() == layers.len()
        && seen
            .iter()
            .zip(layers)
            .all(|((id, props, ops), e)| *id == e.id && *props == e.props && *ops == e.layer.ops)
}

/// `session` with [`SESSION_SUFFIX`] replaced by `suffix`.
fn with_suffix(session: &Path, suffix: &str) -> PathBuf {
    let name = session
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(SESSION_SUFFIX).unwrap_or(&name);
    session.with_file_name(format!("{stem}{suffix}"))
}

/// The instance that wrote an autosave or image copy named `<instance>-<image id><suffix>`.
fn owner_of(file_name: &str, suffix: &str) -> Option<String> {
    let stem = file_name.strip_suffix(suffix)?;
    let (instance, image_id) = stem.rsplit_once('-')?;
    image_id.parse::<u64>().ok()?;
    Some(instance.to_owned())
}

/// Work for the `ldzmask-autosave` thread.
enum Job {
    /// Encode and write one autosave (and the image copy, the first time).
    Write {
        snapshot: Box<SessionSnapshot>,
        path: PathBuf,
        image_copy: Option<(Arc<LoadedImage>, PathBuf)>,
        image_id: u64,
    },
    /// Remove files (missing ones are fine), then remove and unlock a dead instance's lock.
    Remove {
        paths: Vec<PathBuf>,
        lock: Option<(File, PathBuf)>,
    },
    /// Read the summaries of leftover autosaves for the recovery window (off the UI thread:
    /// a start-up with many big leftovers shows its window at once).
    Peek { sessions: Vec<PathBuf> },
}

/// What the `ldzmask-autosave` thread sends back.
enum Done {
    /// A [`Job::Write`] finished.
    Written(Written),
    /// A leftover's summary was read ([`Job::Peek`]).
    Peeked {
        session: PathBuf,
        summary: Result<SessionSummary, String>,
    },
}

/// A finished [`Job::Write`].
struct Written {
    image_id: u64,
    wrote_image_copy: bool,
    result: Result<(), String>,
}

/// The document being autosaved.
#[derive(Debug)]
struct Tracked {
    image_id: u64,
    /// The edit mark seen last frame.
    seen: Mark,
    /// The layer settings seen last frame.
    seen_settings: LayerSettings,
    /// The latest change.
    changed_at: Instant,
    /// The first change not written yet.
    dirty_since: Option<Instant>,
    /// The image copy (pasted image) is on disk.
    image_copy_written: bool,
    /// The leftover this document was restored from, removed once this app's own autosave
    /// of it is written (or the document is saved or closed).
    recovered_from: Option<Orphan>,
}

impl Tracked {
    /// `doc` as it is now, with nothing to write.
    fn unchanged(doc: &Document) -> Self {
        Self {
            image_id: doc.image_id,
            seen: doc.edit_mark(),
            seen_settings: layer_settings(doc),
            changed_at: Instant::now(),
            dirty_since: None,
            image_copy_written: false,
            recovered_from: None,
        }
    }

    /// True when `doc` changed since the last frame looked at it (an edit, or a layer setting
    /// merged into an undo step without moving the edit mark).
    fn sees_change(&self, doc: &Document) -> bool {
        doc.edit_mark() != self.seen || !same_settings(&self.seen_settings, doc)
    }
}

/// Autosave and recovery for one running app (see the module docs). Dropped without
/// [`Autosaver::shutdown`] (a test, a panic), it keeps its autosaves, as a crash would: only a
/// clean exit retires them. Its lock goes with its file handle, the writer thread with the
/// job channel.
#[derive(Debug)]
pub struct Autosaver {
    dir: PathBuf,
    instance: String,
    /// Our own lock, held for the app's lifetime.
    lock: Option<(File, PathBuf)>,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done>,
    writer: Option<JoinHandle<()>>,
    /// Writes sent and not finished.
    in_flight: usize,
    tracked: Option<Tracked>,
    /// Leftovers not answered yet, newest first.
    orphans: Vec<Orphan>,
    /// A leftover being restored (its session is being read).
    restoring: Option<Orphan>,
    /// Locks of dead instances whose leftovers are offered or being restored.
    claimed: Vec<(String, File, PathBuf)>,
    /// The last write failed (reported once until one succeeds).
    failing: bool,
    /// Autosaves of documents kept open off screen (batch review, see [`Self::park`]).
    parked: Vec<PathBuf>,
    ctx: egui::Context,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Write { path, .. } => write!(f, "Write({})", path.display()),
            Job::Remove { paths, .. } => write!(f, "Remove({paths:?})"),
            Job::Peek { sessions } => write!(f, "Peek({sessions:?})"),
        }
    }
}

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Written({}, {:?})", self.image_id, self.result)
    }
}

impl Autosaver {
    /// Takes the folder: creates it, locks this app's lock file, finds and prunes the
    /// leftovers of crashed apps, starts the writer thread. `ctx` is asked to repaint when a
    /// write finishes and when a debounced write falls due.
    pub fn start(dir: &Path, ctx: egui::Context) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the autosave folder {}: {e}", dir.display()))?;
        crate::fsutil::remove_stale_temps(dir);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let instance = format!("{}-{nanos:x}", std::process::id());
        let lock_path = dir.join(format!("{instance}{LOCK_SUFFIX}"));
        let lock = File::create(&lock_path)
            .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
        lock.try_lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
        let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(4);
        let (result_tx, results) = std::sync::mpsc::channel();
        let writer_ctx = ctx.clone();
        let writer = std::thread::Builder::new()
            .name("ldzmask-autosave".into())
            .spawn(move || writer_loop(&job_rx, &result_tx, &writer_ctx))
            .map_err(|e| format!("cannot start the autosave thread: {e}"))?;
        let mut saver = Self {
            dir: dir.to_path_buf(),
            instance,
            lock: Some((lock, lock_path)),
            jobs: Some(job_tx),
            results,
            writer: Some(writer),
            in_flight: 0,
            tracked: None,
            orphans: Vec::new(),
            restoring: None,
            claimed: Vec::new(),
            failing: false,
            parked: Vec::new(),
            ctx,
        };
        saver.find_orphans();
        Ok(saver)
    }

    /// Where the document with `image_id` is autosaved.
    pub fn path_for(&self, image_id: u64) -> PathBuf {
        self.dir
            .join(format!("{}-{image_id}{SESSION_SUFFIX}", self.instance))
    }

    /// True if `path` is in the autosave folder (an autosave or an image copy).
    pub fn contains(&self, path: &Path) -> bool {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        path.parent()
            .is_some_and(|parent| canon(parent) == canon(&self.dir))
    }

    /// Leftovers of crashed apps not answered yet, newest first.
    pub fn orphans(&self) -> &[Orphan] {
        &self.orphans
    }

    /// Writes in progress or queued.
    pub fn pending_writes(&self) -> usize {
        self.in_flight
    }

    // ---- autosaving ----------------------------------------------------------------------

    /// A new document is open: the previous one's autosave is retired, the new one is
    /// watched from its current state (see [`Self::mark_recovered`] for restored work).
    pub fn track(&mut self, doc: &Document) {
        self.retire();
        self.tracked = Some(Tracked::unchanged(doc));
    }

    /// The tracked document holds recovered work (restored from `orphan`, or opened from an
    /// autosave file): it counts as changed, so this app's own autosave of it is written at
    /// once, after which `orphan` is removed.
    pub fn mark_recovered(&mut self, image_id: u64, orphan: Option<Orphan>) {
        let Some(t) = self.tracked.as_mut().filter(|t| t.image_id == image_id) else {
            if let Some(orphan) = orphan {
                self.orphans.insert(0, orphan); // not restored after all: offer it again
            }
            return;
        };
        let now = Instant::now();
        t.changed_at = now.checked_sub(QUIET).unwrap_or(now);
        t.dirty_since = Some(now);
        t.recovered_from = orphan;
        self.ctx.request_repaint();
    }

    /// Removes the tracked document's autosave (and a leftover it was restored from); the
    /// document stays tracked, as unchanged since now.
    fn retire(&mut self) {
        let Some(t) = self.tracked.take() else {
            return;
        };
        self.remove_autosave(&self.path_for(t.image_id));
        if let Some(orphan) = &t.recovered_from {
            self.remove_orphan(orphan);
        }
    }

    /// An explicit session save of `doc` succeeded: with nothing changed since, its autosave
    /// is retired (the saved session holds the work).
    pub fn saved(&mut self, doc: &Document) {
        if self
            .tracked
            .as_ref()
            .is_none_or(|t| t.image_id != doc.image_id)
        {
            return;
        }
        if doc.has_unsaved_edits() {
            return; // changed while saving: the autosave keeps the newer state
        }
        self.retire();
        self.tracked = Some(Tracked::unchanged(doc));
    }

    /// Once per frame: collects finished writes (returns errors to show once) and, when a
    /// change is due, copies the document and sends it to the writer. `painting`: a brush
    /// stroke is open (wait for its end).
    pub fn tick(&mut self, doc: Option<&mut Document>, painting: bool) -> Vec<String> {
        let mut errors = Vec::new();
        while let Ok(done) = self.results.try_recv() {
            match done {
                Done::Written(written) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.finish_write(written, &mut errors);
                }
                Done::Peeked { session, summary } => {
                    if let Some(o) = self.orphans.iter_mut().find(|o| o.session == session) {
                        o.summary = Some(summary);
                    }
                }
            }
        }
        let now = Instant::now();
        let Some(doc) = doc else {
            return errors;
        };
        let Some(t) = self.tracked.as_mut().filter(|t| t.image_id == doc.image_id) else {
            return errors;
        };
        if t.sees_change(doc) {
            t.seen = doc.edit_mark();
            t.seen_settings = layer_settings(doc);
            t.changed_at = now;
            t.dirty_since.get_or_insert(now);
        }
        let Some(since) = t.dirty_since else {
            return errors;
        };
        let due = (t.changed_at + QUIET).min(since + MAX_DELAY);
        if now < due {
            self.ctx.request_repaint_after(due - now);
            return errors;
        }
        let copy_written = t.image_copy_written;
        if painting || self.in_flight > 0 {
            // Checked again soon: the stroke ends or the write finishes (which repaints).
            self.ctx.request_repaint_after(Duration::from_millis(250));
            return errors;
        }
        let job = self.write_job(doc, copy_written);
        match self.jobs.as_ref().map(|tx| tx.try_send(job)) {
            Some(Ok(())) => {
                self.in_flight += 1;
                if let Some(t) = &mut self.tracked {
                    t.dirty_since = None;
                }
            }
            Some(Err(TrySendError::Full(_))) => {
                self.ctx.request_repaint_after(Duration::from_millis(250));
            }
            Some(Err(TrySendError::Disconnected(_))) | None => {
                if !self.failing {
                    errors.push("Autosave stopped: its thread is gone".into());
                }
                self.failing = true;
            }
        }
        errors
    }

    /// The write of `doc`'s autosave (and of its image copy when it has no file and the copy
    /// is not written yet).
    fn write_job(&self, doc: &mut Document, copy_written: bool) -> Job {
        let path = self.path_for(doc.image_id);
        let copy_path = doc
            .source
            .is_none()
            .then(|| with_suffix(&path, IMAGE_SUFFIX));
        let image_copy = copy_path
            .clone()
            .filter(|_| !copy_written)
            .map(|p| (Arc::clone(&doc.image), p));
        let snapshot = doc
            .masks
            .session_snapshot()
            .with_image_path(copy_path.or_else(|| doc.source.clone()));
        Job::Write {
            snapshot: Box::new(snapshot),
            path,
            image_copy,
            image_id: doc.image_id,
        }
    }

    /// The tracked document leaves the screen but stays open (an image of a batch review).
    /// With edits not exported, its autosave is kept (written now if a change is pending)
    /// instead of retired, and its path returned for [`Self::resume`] or [`Self::unpark`];
    /// otherwise it is retired.
    pub fn park(&mut self, doc: &mut Document) -> Option<PathBuf> {
        let tracked = self.tracked.as_ref().filter(|t| t.image_id == doc.image_id);
        let Some(t) = tracked.filter(|_| doc.has_unsaved_edits()) else {
            self.retire();
            return None;
        };
        let pending = t.dirty_since.is_some() || t.sees_change(doc);
        let copy_written = t.image_copy_written;
        if pending {
            let job = self.write_job(doc, copy_written);
            self.in_flight += 1;
            self.send(job);
        }
        // A leftover this work was restored from stays until the next start prunes it when
        // a write was needed just now: should that write fail, the leftover still holds it.
        if let Some(orphan) = self.tracked.take().and_then(|t| t.recovered_from)
            && !pending
        {
            self.remove_orphan(&orphan);
        }
        let path = self.path_for(doc.image_id);
        self.parked.push(path.clone());
        Some(path)
    }

    /// A parked document is on screen again as `image_id` (just tracked): its new autosave is
    /// written at once, and the parked file removed after that write.
    pub fn resume(&mut self, image_id: u64, parked: &Path) {
        self.parked.retain(|p| p != parked);
        let orphan = Orphan {
            session: parked.to_path_buf(),
            saved_at: SystemTime::now(),
            summary: Some(Err("parked by this app".into())),
            instance: self.instance.clone(),
        };
        self.mark_recovered(image_id, Some(orphan));
    }

    /// A parked document's work is safe elsewhere (its masks were exported) or the user let
    /// it go: its autosave is removed.
    pub fn unpark(&mut self, parked: &Path) {
        self.parked.retain(|p| p != parked);
        self.remove_autosave(parked);
    }

    /// Removes one of this app's autosaves and its image copy, in order with the writes.
    fn remove_autosave(&self, session: &Path) {
        self.send(Job::Remove {
            paths: vec![with_suffix(session, IMAGE_SUFFIX), session.to_path_buf()],
            lock: None,
        });
    }

    fn finish_write(&mut self, done: Written, errors: &mut Vec<String>) {
        let current = self
            .tracked
            .as_mut()
            .filter(|t| t.image_id == done.image_id);
        match done.result {
            Ok(()) => {
                self.failing = false;
                let Some(t) = current else {
                    return;
                };
                t.image_copy_written |= done.wrote_image_copy;
                // This app's own copy of restored work is on disk: the leftover can go.
                if let Some(orphan) = t.recovered_from.take() {
                    self.remove_orphan(&orphan);
                }
            }
            Err(e) => {
                log::error!("autosave failed: {e}");
                if !self.failing {
                    errors.push(format!("Autosave failed: {e}"));
                }
                self.failing = true;
                // Try again after the quiet time.
                if let Some(t) = current {
                    t.changed_at = Instant::now();
                    t.dirty_since.get_or_insert(t.changed_at);
                    self.ctx.request_repaint_after(QUIET);
                }
            }
        }
    }

    /// Sends a job to the writer (a removal waits for a free slot: removals are quick).
    fn send(&self, job: Job) {
        let nothing = match &job {
            Job::Remove { paths, lock } => paths.is_empty() && lock.is_none(),
            Job::Peek { sessions } => sessions.is_empty(),
            Job::Write { .. } => false,
        };
        if nothing {
            return;
        }
        if let Some(tx) = &self.jobs
            && let Err(e) = tx.send(job)
        {
            log::warn!("autosave thread gone; not done: {:?}", e.0);
        }
    }

    /// Clean exit: retires the document's autosave, gives up this app's lock and the claimed
    /// ones (their leftovers stay for the next start) and waits (a few seconds at most) for
    /// the writer to finish.
    pub fn shutdown(&mut self) {
        self.retire();
        for parked in std::mem::take(&mut self.parked) {
            self.unpark(&parked);
        }
        if let Some(lock) = self.lock.take() {
            self.send(Job::Remove {
                paths: Vec::new(),
                lock: Some(lock),
            });
        }
        self.claimed.clear();
        self.jobs = None; // the writer ends after the queued jobs
        let Some(writer) = self.writer.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !writer.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if writer.is_finished() {
            let _ = writer.join();
        } else {
            log::warn!("the autosave thread did not finish within 5 s");
        }
    }
}

/// The `ldzmask-autosave` thread: runs jobs in order until the app drops its sender.
fn writer_loop(jobs: &Receiver<Job>, results: &Sender<Done>, ctx: &egui::Context) {
    for job in jobs {
        match job {
            Job::Write {
                snapshot,
                path,
                image_copy,
                image_id,
            } => {
                let wrote_image_copy = image_copy.is_some();
                let result = image_copy
                    .map_or(Ok(()), |(image, copy)| write_image_copy(&image, &copy))
                    .and_then(|()| snapshot.write(&path).map_err(|e| e.to_string()));
                if results
                    .send(Done::Written(Written {
                        image_id,
                        wrote_image_copy,
                        result,
                    }))
                    .is_err()
                {
                    return; // the app is gone
                }
                super::wake::wake(ctx);
            }
            Job::Peek { sessions } => {
                for session in sessions {
                    let summary = peek(&session).map_err(|e| e.to_string());
                    if results.send(Done::Peeked { session, summary }).is_err() {
                        return; // the app is gone
                    }
                    super::wake::wake(ctx);
                }
            }
            Job::Remove { paths, lock } => {
                for path in paths {
                    match std::fs::remove_file(&path) {
                        Ok(()) => log::debug!("removed {}", path.display()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => log::warn!("cannot remove {}: {e}", path.display()),
                    }
                }
                if let Some((file, path)) = lock {
                    if let Err(e) = std::fs::remove_file(&path) {
                        log::debug!("cannot remove {}: {e}", path.display());
                    }
                    drop(file);
                }
            }
        }
    }
}

/// Writes the copy of an image that has no file (replacing an older copy).
fn write_image_copy(image: &LoadedImage, path: &Path) -> Result<(), String> {
    let image = image.to_dynamic().ok_or("bad image buffer")?;
    crate::mask::export::write_png(&image, path, true)
        .map_err(|e| format!("cannot save a copy of the image: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::recovery::format_age;
    use super::*;

    #[test]
    fn names_and_ages() {
        assert_eq!(
            owner_of("123abc-4.ldzmask.json", SESSION_SUFFIX).as_deref(),
            Some("123abc")
        );
        assert_eq!(
            owner_of("123abc-4.png", IMAGE_SUFFIX).as_deref(),
            Some("123abc")
        );
        assert_eq!(owner_of("123abc.lock", SESSION_SUFFIX), None);
        assert_eq!(owner_of("notes-x.ldzmask.json", SESSION_SUFFIX), None);
        assert_eq!(
            with_suffix(Path::new("/a/i-3.ldzmask.json"), IMAGE_SUFFIX),
            PathBuf::from("/a/i-3.png")
        );
        assert_eq!(format_age(5), "5 s ago");
        assert_eq!(format_age(125), "2 min ago");
        assert_eq!(format_age(7300), "2 h ago");
        assert_eq!(format_age(3 * 86400), "3 days ago");
    }

    #[test]
    fn folder_follows_the_overrides() {
        // The env override is process-wide; only the explicit config folder is checked here
        // (no test sets AUTOSAVE_DIR_ENV).
        if std::env::var_os(AUTOSAVE_DIR_ENV).is_none() {
            assert_eq!(
                autosave_dir(Some(Path::new("/x/config"))),
                Some(PathBuf::from("/x/config/autosave"))
            );
        }
    }

    /// A leftover of a dead app, a live app's autosave, and locks: only the dead one is offered,
    /// and a second app started meanwhile does not offer it again.
    #[test]
    fn only_dead_apps_leftovers_are_offered() {
        let dir =
            std::env::temp_dir().join(format!("ldzmask-autosave-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ctx = egui::Context::default();
        // A running app: its lock is held.
        let live = Autosaver::start(&dir, ctx.clone()).unwrap();
        let live_autosave = live.path_for(1);
        std::fs::write(&live_autosave, b"{}").unwrap();
        // A crashed app: lock file present but not held, one autosave, one stray image copy.
        std::fs::write(dir.join("dead1.lock"), b"").unwrap();
        let dead = dir.join("dead1-7.ldzmask.json");
        let mut doc = crate::mask::MaskDocument::new(4, 3, None);
        doc.add_layer("sky");
        doc.save_session(&dead).unwrap();
        std::fs::write(dir.join("dead1-9.png"), b"stray").unwrap();

        let mut first = Autosaver::start(&dir, ctx.clone()).unwrap();
        assert_eq!(first.orphans().len(), 1, "{:?}", first.orphans());
        // The summary is read on the autosave thread, not during start-up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while first.orphans()[0].summary.is_none() {
            assert!(Instant::now() < deadline, "the summary was never read");
            std::thread::sleep(Duration::from_millis(5));
            first.tick(None, false);
        }
        let orphan = first.orphans()[0].clone();
        assert_eq!(orphan.session, dead);
        assert!(
            orphan.describe().contains("1 layer (sky)"),
            "{}",
            orphan.describe()
        );
        // The first app claimed the dead lock: a second app does not offer the same leftover.
        let second = Autosaver::start(&dir, ctx.clone()).unwrap();
        assert!(second.orphans().is_empty(), "{:?}", second.orphans());
        first.discard(&dead);
        first.shutdown();
        assert!(!dead.exists());
        assert!(!dir.join("dead1-9.png").exists());
        assert!(!dir.join("dead1.lock").exists());
        assert!(
            live_autosave.exists(),
            "a running app's autosave is never touched"
        );
        drop((live, second));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
