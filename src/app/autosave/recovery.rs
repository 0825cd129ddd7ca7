//! Recovery of the autosaves that crashed apps left behind: found and claimed at start-up
//! (their summaries read on the autosave thread), offered newest first, restored or discarded;
//! old ones pruned.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Autosaver, IMAGE_SUFFIX, Job, KEEP_DAYS, KEEP_MAX, LOCK_SUFFIX, SESSION_SUFFIX};
use super::{owner_of, with_suffix};
use crate::mask::session::SessionSummary;

/// An autosave a crashed app left behind, offered for recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct Orphan {
    /// The autosave (a session file).
    pub session: PathBuf,
    /// When it was written.
    pub saved_at: SystemTime,
    /// Its image and layers, or why it cannot be read; `None` while the autosave thread
    /// reads it (a big autosave takes a moment, and start-up never waits for it).
    pub summary: Option<Result<SessionSummary, String>>,
    /// The instance that wrote it.
    pub(super) instance: String,
}

impl Orphan {
    /// One line for the recovery window: image, layers, age.
    pub fn describe(&self) -> String {
        let age = self
            .saved_at
            .elapsed()
            .map(|d| format_age(d.as_secs()))
            .unwrap_or_else(|_| "just now".into());
        match &self.summary {
            None => format!("an autosave from {age} (reading what it holds…)"),
            Some(Ok(s)) => {
                let image = s
                    .image_path
                    .as_deref()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "an image".into());
                let n = s.layer_names.len();
                let names = s.layer_names.join(", ");
                let layers = if n == 1 { "layer" } else { "layers" };
                format!(
                    "{image} ({}×{}), {n} {layers}{}{names}{}, autosaved {age}",
                    s.width,
                    s.height,
                    if n > 0 { " (" } else { "" },
                    if n > 0 { ")" } else { "" },
                )
            }
            Some(Err(e)) => format!("an autosave from {age} that cannot be read: {e}"),
        }
    }

    /// The copy of a pasted image that belongs to this autosave.
    pub(super) fn image_copy(&self) -> PathBuf {
        with_suffix(&self.session, IMAGE_SUFFIX)
    }
}

/// "12 s ago", "5 min ago", "3 h ago", "2 days ago".
pub(super) fn format_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

impl Autosaver {
    /// Finds the autosaves of apps that are not running any more, claims their locks (so
    /// another app starting now does not offer them too) and removes the old ones.
    pub(super) fn find_orphans(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut live = Vec::new();
        let mut sessions = Vec::new();
        let mut copies = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(instance) = name.strip_suffix(LOCK_SUFFIX) {
                if instance == self.instance {
                    continue;
                }
                match self.claim(instance, entry.path()) {
                    true => {}
                    false => live.push(instance.to_owned()),
                }
            } else if let Some(instance) = owner_of(&name, SESSION_SUFFIX) {
                let saved_at = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                sessions.push((instance, entry.path(), saved_at));
            } else if let Some(instance) = owner_of(&name, IMAGE_SUFFIX) {
                copies.push((instance, entry.path()));
            }
        }
        let orphaned =
            |instance: &str| instance != self.instance && !live.iter().any(|l| l == instance);
        let mut orphans: Vec<Orphan> = sessions
            .into_iter()
            .filter(|(instance, _, _)| orphaned(instance))
            .map(|(instance, session, saved_at)| Orphan {
                summary: None,
                session,
                saved_at,
                instance,
            })
            .collect();
        orphans.sort_by_key(|o| std::cmp::Reverse(o.saved_at));
        let max_age = Duration::from_secs(KEEP_DAYS * 24 * 3600);
        let mut expired = Vec::new();
        for (i, orphan) in orphans.into_iter().enumerate() {
            let old = orphan.saved_at.elapsed().is_ok_and(|age| age > max_age);
            if old || i >= KEEP_MAX {
                expired.push(orphan);
            } else {
                self.orphans.push(orphan);
            }
        }
        // Image copies whose autosave is gone (a crash between the two writes).
        let stray: Vec<PathBuf> = copies
            .into_iter()
            .filter(|(instance, copy)| {
                orphaned(instance) && !self.orphans.iter().any(|o| o.image_copy() == *copy)
            })
            .map(|(_, copy)| copy)
            .collect();
        if !expired.is_empty() || !stray.is_empty() {
            log::info!(
                "removing {} old autosave(s) and {} stray image copies in {}",
                expired.len(),
                stray.len(),
                self.dir.display()
            );
        }
        self.send(Job::Peek {
            sessions: self.orphans.iter().map(|o| o.session.clone()).collect(),
        });
        let mut paths = stray;
        for o in &expired {
            paths.push(o.session.clone());
            paths.push(o.image_copy());
        }
        self.send(Job::Remove { paths, lock: None });
        // Locks of dead instances with nothing left to offer go.
        let instances: Vec<String> = self.claimed.iter().map(|c| c.0.clone()).collect();
        for instance in instances {
            self.release_if_done(&instance);
        }
    }

    /// Tries to take a lock file: true if its app is gone (the lock is now ours), false if it
    /// is running (or the file cannot be opened: treated as running, never touched).
    pub(super) fn claim(&mut self, instance: &str, path: PathBuf) -> bool {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                log::debug!("cannot open {}: {e}", path.display());
                return false;
            }
        };
        match file.try_lock() {
            Ok(()) => {
                self.claimed.push((instance.to_owned(), file, path));
                true
            }
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => {
                log::debug!("cannot lock {}: {e}", path.display());
                false
            }
        }
    }

    /// Removes a dead instance's lock once none of its leftovers is offered or restored.
    pub(super) fn release_if_done(&mut self, instance: &str) {
        let lock = self.take_lock_if_done(instance);
        self.send(Job::Remove {
            paths: Vec::new(),
            lock,
        });
    }

    /// A dead instance's lock, taken out of the claimed ones, once none of its leftovers is
    /// offered or restored.
    pub(super) fn take_lock_if_done(&mut self, instance: &str) -> Option<(File, PathBuf)> {
        let busy = self.orphans.iter().any(|o| o.instance == instance)
            || self
                .restoring
                .as_ref()
                .is_some_and(|o| o.instance == instance)
            || self
                .tracked
                .as_ref()
                .and_then(|t| t.recovered_from.as_ref())
                .is_some_and(|o| o.instance == instance);
        if busy {
            return None;
        }
        let i = self.claimed.iter().position(|c| c.0 == instance)?;
        let (_, file, path) = self.claimed.swap_remove(i);
        Some((file, path))
    }

    /// Removes a leftover's files (the user discarded it, or its work is safe elsewhere), and
    /// its app's lock after the last one.
    pub(super) fn remove_orphan(&mut self, orphan: &Orphan) {
        let lock = self.take_lock_if_done(&orphan.instance);
        self.send(Job::Remove {
            paths: vec![orphan.session.clone(), orphan.image_copy()],
            lock,
        });
    }

    /// The user chose Discard: the leftover is removed.
    pub fn discard(&mut self, session: &Path) {
        if let Some(i) = self.orphans.iter().position(|o| o.session == session) {
            let orphan = self.orphans.remove(i);
            log::info!("discarding the autosave {}", orphan.session.display());
            self.remove_orphan(&orphan);
        }
    }

    /// The user chose Restore: the leftover leaves the list and waits for its session to be
    /// read ([`Self::finish_restore`]). False if it is not offered.
    pub fn begin_restore(&mut self, session: &Path) -> bool {
        let Some(i) = self.orphans.iter().position(|o| o.session == session) else {
            return false;
        };
        let orphan = self.orphans.remove(i);
        if let Some(previous) = self.restoring.replace(orphan) {
            self.orphans.insert(0, previous);
        }
        true
    }

    /// The session read for `path` arrived: the leftover being restored from it, if any. On
    /// failure the leftover is offered again (so it can be discarded).
    pub fn finish_restore(&mut self, path: &Path, ok: bool) -> Option<Orphan> {
        if self.restoring.as_ref().is_none_or(|o| o.session != path) {
            return None;
        }
        let orphan = self.restoring.take()?;
        if ok {
            Some(orphan)
        } else {
            self.orphans.insert(0, orphan);
            None
        }
    }
}
