//! The runtime state machine of every layer (not saved): when its phrase goes to the model,
//! which model answer is the newest, and when its display plane needs a full composite.
//!
//! One loop per layer, from a typed phrase to the overlay:
//! 1. [`LayerRuntimes::phrase_edited`] starts the typing debounce; [`LayerRuntimes::due`] says
//!    when it has run out.
//! 2. [`LayerRuntimes::start_request`] hands out an increasing request id (or parks the layer
//!    until the model is ready).
//! 3. [`LayerRuntimes::accept_mask`] takes only the newest request's answer (older ones were
//!    superseded by further typing), and [`LayerRuntimes::changed`] bumps the layer's generation
//!    and asks for a full composite.
//! 4. [`LayerRuntimes::composites_to_start`] hands out one composite job per layer at a time;
//!    [`LayerRuntimes::accept_composite`] keeps a result only if the layer did not change
//!    meanwhile (else it asks again).
//!
//! Edge-aware refinement runs beside step 4: a model result drops the layer's refined map (the
//! composite shows the bilinear one meanwhile), [`LayerRuntimes::refine_started`] allows one
//! refinement task per layer at a time, and each accepted result ([`LayerRuntimes::refine_done`])
//! is a change like any other, so a preview and then the full map are composited in turn.
//!
//! Worker events for the layer under the brush wait in [`LayerRuntimes::defer`] until the
//! stroke ends. The shape follows rerun's long-lived runtime pieces (`re_viewer`'s
//! `BackgroundTasks`, `TimeControl`): one type, its own tests, no egui.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::display::{self, LayerPixels, SharedDisplay};
use super::worker::Event;
use crate::pipeline::Stage;

/// Delay between the last keystroke in a phrase and the model request.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Runtime state of one layer.
#[derive(Clone, Debug, Default)]
pub struct LayerRuntime {
    /// Bumped on every change of the layer's pixels.
    pub generation: u64,
    /// The generation of the last edit composited on the spot ([`LayerRuntimes::touched`]):
    /// a full composite started before it would undo those pixels on screen.
    pub touched_at: u64,
    /// A full composite is wanted.
    pub needs_full: bool,
    /// A full composite task is running.
    pub composite_in_flight: bool,
    /// An edge-aware refinement task is running.
    pub refine_in_flight: bool,
    /// The running refinement's refine epoch and its cancel flag ([`LayerRuntimes::refine_started`]).
    pub refine_cancel: Option<(u64, Arc<AtomicBool>)>,
    /// The refine epoch whose refinement failed (not tried again until the inputs change).
    pub refine_failed: Option<u64>,
    /// The newest model request for this layer, until it is answered.
    pub latest_request: Option<u64>,
    /// The cancel flag of the model request in flight (set when it is superseded).
    pub cancel: Option<Arc<AtomicBool>>,
    /// The last network the request in flight finished ([`Event::Progress`]).
    pub stage_done: Option<Stage>,
    /// The newest draft preview request (one per keystroke), until it is answered.
    pub latest_preview: Option<u64>,
    /// A model request fires at this time (typing debounce).
    pub debounce_until: Option<Instant>,
    /// A request waits for the model to load.
    pub waiting_for_model: bool,
    /// The last model error for this layer.
    pub error: Option<String>,
}

impl LayerRuntime {
    /// True while the model works (or is about to) on this layer.
    pub fn computing(&self) -> bool {
        self.latest_request.is_some()
            || self.debounce_until.is_some()
            || self.latest_preview.is_some()
    }

    /// Stops the model request in flight (it ends at its next stage boundary) and forgets it.
    fn supersede(&mut self) {
        if let Some(flag) = self.cancel.take() {
            flag.store(true, Ordering::Relaxed);
        }
        self.latest_request = None;
    }
}

/// The runtime state of all layers of the open document, with the counters that must stay
/// increasing across layers (request ids, plane versions) and the events held back by a stroke.
#[derive(Debug)]
pub struct LayerRuntimes {
    layers: HashMap<u64, LayerRuntime>,
    /// Typing pause before a phrase's request ([`DEBOUNCE`] unless set).
    debounce: Duration,
    next_request_id: u64,
    next_plane_version: u64,
    deferred: Vec<Event>,
}

impl Default for LayerRuntimes {
    fn default() -> Self {
        Self::with_debounce(DEBOUNCE)
    }
}

impl LayerRuntimes {
    /// Runtimes whose phrase requests wait `debounce` after the last keystroke.
    pub fn with_debounce(debounce: Duration) -> Self {
        Self {
            layers: HashMap::new(),
            debounce,
            next_request_id: 1,
            next_plane_version: 1,
            deferred: Vec::new(),
        }
    }
}

impl LayerRuntimes {
    /// One layer's state.
    pub fn get(&self, id: u64) -> Option<&LayerRuntime> {
        self.layers.get(&id)
    }

    /// Forgets every layer (a new document); their running refinements are cancelled.
    pub fn clear(&mut self) {
        for rt in self.layers.values_mut() {
            cancel_refine(rt);
            rt.supersede();
        }
        self.layers.clear();
    }

    /// True while some layer waits for a composite or a model answer (not for the model to
    /// load).
    pub fn busy(&self) -> bool {
        self.layers.values().any(|rt| {
            rt.needs_full
                || rt.composite_in_flight
                || rt.refine_in_flight
                || (rt.computing() && !rt.waiting_for_model)
        })
    }

    /// True when the layer's request waits for the model to load.
    pub fn waiting_for_model(&self, id: u64) -> bool {
        self.layers.get(&id).is_some_and(|rt| rt.waiting_for_model)
    }

    /// Keeps runtimes and display planes for exactly `ids`; a new layer gets an empty plane
    /// of the display size and asks for a full composite.
    pub fn sync(&mut self, ids: &[u64], display: &SharedDisplay, image_size: (u32, u32)) {
        self.layers.retain(|id, rt| {
            let keep = ids.contains(id);
            if !keep {
                cancel_refine(rt); // a deleted layer's result would be refused
                rt.supersede();
            }
            keep
        });
        let mut disp = display.lock();
        disp.layers.retain(|id, _| ids.contains(id));
        let (dw, dh) = display::display_size(image_size.0, image_size.1, disp.factor);
        for &id in ids {
            if disp.layers.contains_key(&id) {
                continue;
            }
            disp.layers.insert(
                id,
                LayerPixels {
                    width: dw,
                    height: dh,
                    data: vec![0; dw as usize * dh as usize],
                    dirty: None,
                    version: self.next_plane_version,
                },
            );
            self.next_plane_version += 1;
            self.changed(id);
        }
    }

    // ---- model requests ------------------------------------------------------------------

    /// The layer's phrase changed to a non-empty one: its request fires after [`DEBOUNCE`],
    /// and the request in flight for the old phrase stops at its next stage boundary.
    pub fn phrase_edited(&mut self, id: u64, now: Instant) {
        let rt = self.layers.entry(id).or_default();
        rt.supersede();
        rt.debounce_until = Some(now + self.debounce);
    }

    /// The layer's phrase was emptied: nothing to run, and a pending answer is dropped.
    pub fn phrase_cleared(&mut self, id: u64) {
        let rt = self.layers.entry(id).or_default();
        rt.supersede();
        rt.debounce_until = None;
        rt.latest_preview = None;
    }

    /// A draft preview of the layer's phrase as typed is sent now: its request id (the
    /// newest preview wins).
    pub fn start_preview(&mut self, id: u64) -> u64 {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        self.layers.entry(id).or_default().latest_preview = Some(request_id);
        request_id
    }

    /// A preview arrived: true when it is the layer's newest and no final result came after
    /// it.
    pub fn accept_preview(&mut self, layer_id: u64, request_id: u64) -> bool {
        match self.layers.get_mut(&layer_id) {
            Some(rt) if rt.latest_preview == Some(request_id) => {
                rt.latest_preview = None;
                true
            }
            _ => false,
        }
    }

    /// A request stopped early: it is no longer in flight.
    pub fn request_cancelled(&mut self, layer_id: u64, request_id: u64) {
        if let Some(rt) = self.layers.get_mut(&layer_id)
            && rt.latest_request == Some(request_id)
        {
            rt.latest_request = None;
            rt.cancel = None;
        }
    }

    /// Layers whose debounce has run out at `now`.
    pub fn due(&self, now: Instant) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .layers
            .iter()
            .filter_map(|(id, rt)| rt.debounce_until.filter(|t| *t <= now).map(|_| *id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// When the next debounce runs out.
    pub fn next_due(&self) -> Option<Instant> {
        self.layers
            .values()
            .filter_map(|rt| rt.debounce_until)
            .min()
    }

    /// A request for the layer is being made now: the debounce ends. With the model ready,
    /// returns the new request id (older answers will be dropped); otherwise the layer waits
    /// for the model and `None` is returned.
    pub fn start_request(&mut self, id: u64, model_ready: bool) -> Option<(u64, Arc<AtomicBool>)> {
        let rt = self.layers.entry(id).or_default();
        rt.debounce_until = None;
        if !model_ready {
            rt.waiting_for_model = true;
            return None;
        }
        rt.supersede();
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        rt.latest_request = Some(request_id);
        rt.cancel = Some(Arc::clone(&cancel));
        rt.stage_done = None;
        rt.waiting_for_model = false;
        rt.error = None;
        Some((request_id, cancel))
    }

    /// The phrase's request ends without a request (an empty phrase): only the debounce stops.
    pub fn cancel_debounce(&mut self, id: u64) {
        self.layers.entry(id).or_default().debounce_until = None;
    }

    /// The model failed to load: pending debounces will not fire.
    pub fn model_unavailable(&mut self) {
        for rt in self.layers.values_mut() {
            rt.debounce_until = None;
        }
    }

    /// A mask arrived for `request_id`: true when it answers the layer's newest request (the
    /// request is then done); false for a deleted layer or a superseded request.
    pub fn accept_mask(&mut self, layer_id: u64, request_id: u64) -> bool {
        let Some(rt) = self.layers.get_mut(&layer_id) else {
            return false; // layer deleted meanwhile
        };
        if rt.latest_request != Some(request_id) {
            log::debug!("dropping outdated result {request_id} for layer {layer_id}");
            return false;
        }
        rt.latest_request = None;
        rt.cancel = None;
        // Previews sent before this result are older than it.
        rt.latest_preview = rt.latest_preview.filter(|&p| p > request_id);
        true
    }

    /// The request `request_id` finished `stage`: kept when it is the layer's newest request.
    pub fn request_progress(&mut self, layer_id: u64, request_id: u64, stage: Stage) {
        if let Some(rt) = self.layers.get_mut(&layer_id)
            && rt.latest_request == Some(request_id)
        {
            rt.stage_done = Some(stage);
        }
    }

    /// The model failed on `request_id`: true (and the error is kept) when it was the layer's
    /// newest request, so the failure is worth showing.
    pub fn segment_failed(&mut self, layer_id: u64, request_id: u64, message: &str) -> bool {
        match self.layers.get_mut(&layer_id) {
            Some(rt) if rt.latest_request == Some(request_id) => {
                rt.latest_request = None;
                rt.cancel = None;
                rt.error = Some(message.to_owned());
                true
            }
            Some(rt) if rt.latest_preview == Some(request_id) => {
                rt.latest_preview = None;
                false // a failed preview is no news: the layer's own result follows
            }
            _ => false,
        }
    }

    /// Holds an event back until the stroke on its layer ends.
    pub fn defer(&mut self, event: Event) {
        self.deferred.push(event);
    }

    /// The events held back, oldest first.
    pub fn take_deferred(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.deferred)
    }

    // ---- composites ----------------------------------------------------------------------

    /// The layer changed in ways that may move pixels anywhere: a full composite is wanted.
    pub fn changed(&mut self, id: u64) {
        let rt = self.layers.entry(id).or_default();
        rt.generation += 1;
        rt.needs_full = true;
    }

    /// Part of the layer was recomposited on the spot: a running full composite is stale.
    pub fn touched(&mut self, id: u64) {
        let rt = self.layers.entry(id).or_default();
        rt.generation += 1;
        rt.touched_at = rt.generation;
    }

    /// Layers whose full composite can start now, with their generation: those that need one,
    /// have none running, are not `painting` and still exist (`exists`). They are marked in
    /// flight.
    pub fn composites_to_start(
        &mut self,
        painting: Option<u64>,
        exists: impl Fn(u64) -> bool,
    ) -> Vec<(u64, u64)> {
        let mut jobs = Vec::new();
        for (&id, rt) in &mut self.layers {
            if !rt.needs_full || rt.composite_in_flight || painting == Some(id) || !exists(id) {
                continue;
            }
            rt.needs_full = false;
            rt.composite_in_flight = true;
            jobs.push((id, rt.generation));
        }
        jobs.sort_unstable();
        jobs
    }

    /// A full composite finished: true when it may be shown. It may not when it was for
    /// another image, or for an older generation or display factor (then a new one is asked
    /// for).
    pub fn accept_composite(
        &mut self,
        layer_id: u64,
        generation: u64,
        same_image: bool,
        same_factor: bool,
    ) -> bool {
        let Some(rt) = self.layers.get_mut(&layer_id) else {
            return false;
        };
        rt.composite_in_flight = false;
        if !same_image {
            return false;
        }
        if !same_factor || rt.touched_at > generation {
            rt.needs_full = true; // stale in a way the screen would show: compute again
            return false;
        }
        if rt.generation != generation {
            // Changed meanwhile by a model result or a setting (a draft per keystroke): this
            // composite is still newer than what the screen shows, so it is shown, and the
            // newest state is composited next. Refusing it would freeze the overlay for as
            // long as the user types.
            rt.needs_full = true;
        }
        true
    }

    // ---- edge-aware refinement --------------------------------------------------------------

    /// True when a refinement for the layer (of refine epoch `epoch`) may start now: none is
    /// running, the layer is not being painted, and this epoch did not fail already.
    pub fn may_refine(&self, id: u64, epoch: u64, painting: Option<u64>) -> bool {
        painting != Some(id)
            && self
                .layers
                .get(&id)
                .is_none_or(|rt| !rt.refine_in_flight && rt.refine_failed != Some(epoch))
    }

    /// A refinement task started for the layer's refine epoch `epoch`: the flag the task
    /// polls ([`crate::mask::refine::refine_cancellable`]), set when the work is superseded.
    pub fn refine_started(&mut self, id: u64, epoch: u64) -> Arc<AtomicBool> {
        let rt = self.layers.entry(id).or_default();
        let cancel = Arc::new(AtomicBool::new(false));
        rt.refine_in_flight = true;
        rt.refine_cancel = Some((epoch, Arc::clone(&cancel)));
        cancel
    }

    /// Cancels running refinements that are no longer wanted: `due(id)` is the refine epoch
    /// the layer needs now ([`crate::mask::MaskLayer::refine_due`]); a task for another epoch
    /// (new model map, new band, edge settings changed or turned off) stops at its next step
    /// instead of running to the end only to be refused. Returns how many were cancelled.
    pub fn cancel_superseded_refines(&mut self, due: impl Fn(u64) -> Option<u64>) -> usize {
        let mut cancelled = 0;
        for (&id, rt) in &self.layers {
            if let Some((epoch, flag)) = &rt.refine_cancel
                && due(id) != Some(*epoch)
                && !flag.swap(true, Ordering::Relaxed)
            {
                cancelled += 1;
            }
        }
        cancelled
    }

    /// The layer's refinement task finished; `failed_epoch` when it failed (that epoch is not
    /// tried again).
    pub fn refine_done(&mut self, id: u64, failed_epoch: Option<u64>) {
        if let Some(rt) = self.layers.get_mut(&id) {
            rt.refine_in_flight = false;
            rt.refine_cancel = None;
            if failed_epoch.is_some() {
                rt.refine_failed = failed_epoch;
            }
        }
    }

    /// A refinement task died: no layer may wait for it forever.
    pub fn refine_lost(&mut self) {
        for rt in self.layers.values_mut() {
            rt.refine_in_flight = false;
            rt.refine_cancel = None;
        }
    }

    /// A composite task died: no layer may wait for it forever.
    pub fn composite_lost(&mut self) {
        for rt in self.layers.values_mut() {
            rt.composite_in_flight = false;
        }
    }
}

/// Sets a layer's running refinement's cancel flag, if one runs.
fn cancel_refine(rt: &LayerRuntime) {
    if let Some((_, flag)) = &rt.refine_cancel {
        flag.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_debounces_and_only_the_newest_answer_counts() {
        let mut rts = LayerRuntimes::default();
        let t0 = Instant::now();
        rts.phrase_edited(7, t0);
        assert!(rts.get(7).is_some_and(LayerRuntime::computing));
        assert!(rts.due(t0).is_empty(), "not before the debounce");
        assert_eq!(rts.next_due(), Some(t0 + DEBOUNCE));
        assert_eq!(rts.due(t0 + DEBOUNCE), vec![7]);

        let (first, first_cancel) = rts.start_request(7, true).expect("model ready");
        assert_eq!(rts.get(7).and_then(|rt| rt.debounce_until), None);
        // More typing: a second request supersedes the first, whose run is told to stop.
        let (second, _) = rts.start_request(7, true).expect("model ready");
        assert!(second > first);
        assert!(
            first_cancel.load(Ordering::Relaxed),
            "the superseded run stops"
        );
        rts.request_progress(7, first, Stage::Clip);
        assert_eq!(
            rts.get(7).and_then(|rt| rt.stage_done),
            None,
            "not the newest"
        );
        rts.request_progress(7, second, Stage::SdUnet);
        assert_eq!(rts.get(7).and_then(|rt| rt.stage_done), Some(Stage::SdUnet));
        assert!(!rts.accept_mask(7, first), "superseded answer dropped");
        assert!(rts.busy());
        assert!(rts.accept_mask(7, second));
        assert!(!rts.accept_mask(7, second), "answered once");
        assert!(!rts.accept_mask(99, second), "unknown layer");
        assert!(!rts.get(7).is_some_and(LayerRuntime::computing));
    }

    #[test]
    fn requests_wait_for_the_model_and_errors_stick_to_the_newest_request() {
        let mut rts = LayerRuntimes::default();
        assert!(rts.start_request(3, false).is_none());
        assert!(rts.waiting_for_model(3));
        assert!(!rts.busy(), "waiting for the model is not background work");
        let (id, _) = rts.start_request(3, true).expect("ready now");
        assert!(!rts.waiting_for_model(3));
        assert!(!rts.segment_failed(3, id + 1, "other"), "not this request");
        assert!(rts.segment_failed(3, id, "boom"));
        assert_eq!(rts.get(3).and_then(|rt| rt.error.as_deref()), Some("boom"));
        rts.start_request(3, true);
        assert_eq!(rts.get(3).and_then(|rt| rt.error.as_deref()), None);

        rts.phrase_edited(3, Instant::now());
        rts.phrase_cleared(3);
        assert!(!rts.get(3).is_some_and(LayerRuntime::computing));
        rts.phrase_edited(4, Instant::now());
        rts.model_unavailable();
        assert_eq!(rts.next_due(), None);
    }

    #[test]
    fn each_keystroke_previews_and_stops_the_run_of_the_old_phrase() {
        let mut rts = LayerRuntimes::default();
        let t0 = Instant::now();
        rts.phrase_edited(5, t0);
        let p1 = rts.start_preview(5);
        let (r1, cancel) = rts.start_request(5, true).expect("ready");
        rts.phrase_edited(5, t0 + DEBOUNCE);
        assert!(
            cancel.load(Ordering::Relaxed),
            "typing stops the old phrase's run"
        );
        assert!(!rts.accept_mask(5, r1), "and its answer would be dropped");
        let p2 = rts.start_preview(5);
        assert!(!rts.accept_preview(5, p1), "an older preview is dropped");
        assert!(rts.busy(), "a preview in flight is work");
        assert!(rts.accept_preview(5, p2));
        let p3 = rts.start_preview(5);
        let (r2, _) = rts.start_request(5, true).expect("ready");
        assert!(rts.accept_mask(5, r2));
        assert!(
            !rts.accept_preview(5, p3),
            "a preview older than the final result"
        );
        assert!(!rts.get(5).is_some_and(LayerRuntime::computing));
    }

    #[test]
    fn one_composite_per_layer_and_stale_results_ask_again() {
        let mut rts = LayerRuntimes::default();
        rts.changed(1);
        rts.changed(2);
        rts.changed(3);
        let jobs = rts.composites_to_start(Some(2), |id| id != 3);
        assert_eq!(
            jobs,
            vec![(1, 1)],
            "not the painted layer, not a deleted one"
        );
        assert!(
            rts.composites_to_start(None, |_| true)
                .iter()
                .all(|j| j.0 != 1)
        );

        // The layer was painted on the spot while its composite ran: the result would hide
        // the new paint, so it is dropped and redone.
        rts.touched(1);
        assert!(!rts.accept_composite(1, 1, true, true));
        let again = rts.composites_to_start(None, |_| true);
        assert!(again.contains(&(1, 2)), "{again:?}");
        assert!(rts.accept_composite(1, 2, true, true));
        assert!(!rts.get(1).is_some_and(|rt| rt.needs_full));

        // Another image or display factor: not shown.
        // A model result (a draft per keystroke) while it ran: shown, and composited again.
        rts.changed(1);
        let jobs = rts.composites_to_start(None, |_| true);
        assert_eq!(jobs, vec![(1, 3)]);
        rts.changed(1);
        assert!(
            rts.accept_composite(1, 3, true, true),
            "newer than the screen"
        );
        assert!(rts.get(1).is_some_and(|rt| rt.needs_full), "and redone");
        let _ = rts.composites_to_start(None, |_| true);
        assert!(rts.accept_composite(1, 4, true, true));

        rts.changed(1);
        let _ = rts.composites_to_start(None, |_| true);
        assert!(!rts.accept_composite(1, 5, false, true));
        assert!(
            !rts.get(1).is_some_and(|rt| rt.needs_full),
            "old image: no retry"
        );
        rts.changed(1);
        let _ = rts.composites_to_start(None, |_| true);
        assert!(!rts.accept_composite(1, 6, true, false));
        assert!(
            rts.get(1).is_some_and(|rt| rt.needs_full),
            "new factor: retry"
        );

        rts.composite_lost();
        assert!(!rts.get(2).is_some_and(|rt| rt.composite_in_flight));
    }

    #[test]
    fn one_refinement_per_layer_and_failures_wait_for_new_inputs() {
        let mut rts = LayerRuntimes::default();
        rts.changed(1);
        assert!(rts.may_refine(1, 0, None));
        assert!(!rts.may_refine(1, 0, Some(1)), "not while painting it");
        let flag = rts.refine_started(1, 0);
        assert!(!rts.may_refine(1, 0, None), "one at a time");
        assert_eq!(
            rts.cancel_superseded_refines(|_| Some(0)),
            0,
            "still wanted"
        );
        assert!(!flag.load(Ordering::Relaxed));
        assert_eq!(rts.cancel_superseded_refines(|_| Some(1)), 1, "new inputs");
        assert!(
            flag.load(Ordering::Relaxed),
            "the running task is told to stop"
        );
        assert_eq!(rts.cancel_superseded_refines(|_| None), 0, "told once");
        assert!(rts.busy());
        rts.refine_done(1, None);
        assert!(rts.may_refine(1, 1, None));
        rts.refine_started(1, 1);
        rts.refine_done(1, Some(1));
        assert!(!rts.may_refine(1, 1, None), "a failed epoch is not retried");
        assert!(rts.may_refine(1, 2, None), "new inputs: try again");
        rts.refine_started(1, 2);
        rts.refine_lost();
        assert!(rts.may_refine(1, 2, None));
    }

    #[test]
    fn sync_follows_the_document_layers() {
        let mut rts = LayerRuntimes::default();
        let display = SharedDisplay::default();
        rts.sync(&[1, 2], &display, (4, 3));
        {
            let disp = display.lock();
            assert_eq!(disp.layers.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
            let plane = &disp.layers[&1];
            assert_eq!((plane.width, plane.height, plane.data.len()), (4, 3, 12));
            assert_ne!(disp.layers[&1].version, disp.layers[&2].version);
        }
        assert!(rts.get(1).is_some_and(|rt| rt.needs_full));
        rts.sync(&[2], &display, (4, 3));
        assert!(rts.get(1).is_none());
        assert_eq!(display.lock().layers.len(), 1);
    }
}
