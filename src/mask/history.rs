//! Undo/redo with a memory budget in bytes.
//!
//! [`History`] is a generic pair of stacks of *swap steps*: each step holds "the other
//! version" of whatever it changed (the pre-stroke pixels of the 64×64 tiles a stroke
//! touched, the previous ops, the previous probability map, a deleted layer). Undo applies the
//! step by swapping that version with the document's, which leaves the step holding the undone
//! version, so redo is the very same swap. One copy per step, never a whole-document snapshot:
//! a 100-px dab on a 4096² image costs ~4 tiles × 64² × 2 planes ≈ 33–80 KB, not 32 MB.
//!
//! Memory: every step reports [`HistoryStep::size_bytes`]. When the total exceeds the budget,
//! the oldest undo steps are dropped first, then the farthest redo steps. The newest step is
//! always kept, even if it alone is over budget, so the last action can always be undone.

use std::collections::VecDeque;

/// Default budget: 256 MiB (about eight full-layer steps at 4096², or thousands of strokes).
pub const DEFAULT_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// A step the history can account for.
pub trait HistoryStep {
    /// Heap plus inline bytes held by this step.
    fn size_bytes(&self) -> usize;
}

/// Undo and redo stacks of swap steps under a byte budget (see the module docs).
#[derive(Debug)]
pub struct History<S> {
    /// Oldest at the front, newest at the back.
    undo: VecDeque<S>,
    /// Next step to redo at the back.
    redo: Vec<S>,
    budget_bytes: usize,
    used_bytes: usize,
    /// Steps dropped to stay within the budget (for diagnostics).
    evicted: usize,
}

impl<S: HistoryStep> Default for History<S> {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

impl<S: HistoryStep> History<S> {
    /// An empty history with the given budget in bytes.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            undo: VecDeque::new(),
            redo: Vec::new(),
            budget_bytes,
            used_bytes: 0,
            evicted: 0,
        }
    }

    /// Records a new edit: clears the redo stack, then evicts to the budget.
    pub fn push(&mut self, step: S) {
        for s in self.redo.drain(..) {
            self.used_bytes -= s.size_bytes();
        }
        self.used_bytes += step.size_bytes();
        self.undo.push_back(step);
        self.enforce_budget();
    }

    /// Lets the newest step absorb a continuing edit (e.g. a slider drag) instead of pushing a
    /// new one. `f` returns whether it merged. Refused (false) when there is something to redo,
    /// since then the last action was an undo and a new edit must be a new step.
    pub fn amend_last(&mut self, f: impl FnOnce(&mut S) -> bool) -> bool {
        if !self.redo.is_empty() {
            return false;
        }
        let Some(last) = self.undo.back_mut() else {
            return false;
        };
        let before = last.size_bytes();
        let merged = f(last);
        self.used_bytes = self.used_bytes - before + last.size_bytes();
        self.enforce_budget();
        merged
    }

    /// Undoes the newest step by calling `apply` on it (which swaps its state with the
    /// document's), then moves it to the redo stack. False when there is nothing to undo.
    pub fn undo(&mut self, apply: impl FnOnce(&mut S)) -> bool {
        let Some(mut step) = self.undo.pop_back() else {
            return false;
        };
        let before = step.size_bytes();
        apply(&mut step);
        self.used_bytes = self.used_bytes - before + step.size_bytes();
        self.redo.push(step);
        self.enforce_budget();
        true
    }

    /// Redoes the last undone step (same swap as undo). False when there is nothing to redo.
    pub fn redo(&mut self, apply: impl FnOnce(&mut S)) -> bool {
        let Some(mut step) = self.redo.pop() else {
            return false;
        };
        let before = step.size_bytes();
        apply(&mut step);
        self.used_bytes = self.used_bytes - before + step.size_bytes();
        self.undo.push_back(step);
        self.enforce_budget();
        true
    }

    /// True if [`Self::undo`] would do something.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// True if [`Self::redo`] would do something.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Number of steps that can be undone.
    pub fn undo_len(&self) -> usize {
        self.undo.len()
    }

    /// Number of steps that can be redone.
    pub fn redo_len(&self) -> usize {
        self.redo.len()
    }

    /// The newest undoable step, if any.
    pub fn last(&self) -> Option<&S> {
        self.undo.back()
    }

    /// The step [`Self::redo`] would apply next, if any.
    pub fn next_redo(&self) -> Option<&S> {
        self.redo.last()
    }

    /// Bytes held by all steps.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// The budget in bytes.
    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Steps dropped so far to stay within the budget.
    pub fn evicted(&self) -> usize {
        self.evicted
    }

    /// Changes the budget (evicting at once if needed).
    pub fn set_budget_bytes(&mut self, budget_bytes: usize) {
        self.budget_bytes = budget_bytes;
        self.enforce_budget();
    }

    /// Forgets every step.
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
        self.used_bytes = 0;
    }

    fn enforce_budget(&mut self) {
        while self.used_bytes > self.budget_bytes && self.undo.len() + self.redo.len() > 1 {
            let dropped = if self.undo.len() > 1 {
                self.undo.pop_front()
            } else if !self.redo.is_empty() {
                // Farthest future step first: redo stays possible up to the one before it.
                Some(self.redo.remove(0))
            } else {
                None
            };
            match dropped {
                Some(s) => {
                    self.used_bytes -= s.size_bytes();
                    self.evicted += 1;
                    log::debug!("history over budget: dropped a {} B step", s.size_bytes());
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    /// A test step: swaps a value into a document `i64`, with a fake size.
    #[derive(Debug)]
    struct Set {
        other: i64,
        size: usize,
    }

    impl HistoryStep for Set {
        fn size_bytes(&self) -> usize {
            self.size
        }
    }

    fn swap(doc: &mut i64) -> impl FnOnce(&mut Set) + '_ {
        move |s: &mut Set| std::mem::swap(doc, &mut s.other)
    }

    fn edit(doc: &mut i64, h: &mut History<Set>, value: i64, size: usize) {
        let other = std::mem::replace(doc, value);
        h.push(Set { other, size });
    }

    #[test]
    fn undo_redo_and_new_edit_clears_redo() {
        let mut doc = 0i64;
        let mut h = History::new(1000);
        edit(&mut doc, &mut h, 1, 10);
        edit(&mut doc, &mut h, 2, 10);
        edit(&mut doc, &mut h, 3, 10);
        assert!(h.undo(swap(&mut doc)));
        assert!(h.undo(swap(&mut doc)));
        assert_eq!(doc, 1);
        assert!(h.redo(swap(&mut doc)));
        assert_eq!(doc, 2);
        assert_eq!((h.undo_len(), h.redo_len()), (2, 1));
        edit(&mut doc, &mut h, 7, 10);
        assert!(!h.can_redo(), "a new edit clears redo");
        assert!(!h.redo(swap(&mut doc)));
        assert!(h.undo(swap(&mut doc)));
        assert!(h.undo(swap(&mut doc)));
        assert!(h.undo(swap(&mut doc)));
        assert_eq!(doc, 0);
        assert!(!h.undo(swap(&mut doc)));
        assert_eq!(h.used_bytes(), 30);
    }

    #[test]
    fn budget_drops_oldest_but_keeps_newest() {
        let mut doc = 0i64;
        let mut h = History::new(100);
        for v in 1..=10 {
            edit(&mut doc, &mut h, v, 30);
        }
        assert_eq!(h.undo_len(), 3, "3 × 30 B fit in 100 B");
        assert_eq!(h.used_bytes(), 90);
        assert_eq!(h.evicted(), 7);
        while h.undo(swap(&mut doc)) {}
        assert_eq!(doc, 7, "only the last three steps can be undone");
        // One huge step alone is kept.
        edit(&mut doc, &mut h, 99, 10_000);
        assert_eq!(h.undo_len(), 1);
        assert!(h.undo(swap(&mut doc)));
        assert_eq!(doc, 7);
    }

    #[test]
    fn amend_merges_and_is_refused_after_undo() {
        let mut doc = 0i64;
        let mut h = History::new(1000);
        edit(&mut doc, &mut h, 1, 10);
        doc = 2; // slider moved on; the step still holds 0 as the "before".
        assert!(h.amend_last(|_| true));
        assert_eq!(h.undo_len(), 1);
        assert!(h.undo(swap(&mut doc)));
        assert_eq!(doc, 0);
        assert!(!h.amend_last(|_| true));
    }
}
