//! The model worker's side of the ADE20K class suggestions ([`Job::SuggestClasses`], see
//! [`crate::class_suggest`]) with the engines' shared CLIP text encoder (LD-ZNet's or the
//! draft's, so a draft-only model suggests too): the 150 class names are embedded once per
//! loaded model (kept in [`Worker`]'s cache until another model is loaded) and each phrase is
//! compared with them. An unloaded model is loaded again first, as for a phrase; a GPU failure
//! moves the model to the CPU and the suggestion runs there.
//!
//! [`Job::SuggestClasses`]: super::Job::SuggestClasses

use std::time::Instant;

use crate::class_suggest::{ClassEmbeddings, SuggestError, Suggestion, suggest_classes};
use crate::device::{catch_device_fault, is_gpu};

use super::{Event, Worker};

impl Worker {
    /// Answers [`super::Job::SuggestClasses`]; false when the UI is gone.
    pub(super) fn suggest_classes(&mut self, request_id: u64, phrases: Vec<String>) -> bool {
        if matches!(self.engines_loaded(), Err(false)) {
            return false;
        }
        let mut result = self.run_suggestions(&phrases);
        if let Some(Err(SuggestError::Device(fault))) = &result {
            if !self.move_to_cpu(fault.to_string()) {
                return false;
            }
            result = self.run_suggestions(&phrases);
        }
        let result = match result {
            Some(Ok(suggestions)) => Ok(phrases.into_iter().zip(suggestions).collect()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the model is not loaded".to_owned()),
        };
        self.emit(Event::ClassSuggestions { request_id, result })
    }

    /// The suggestions for `phrases` with the loaded model (`None` without one), computing
    /// the class embeddings first if this model has none yet.
    fn run_suggestions(
        &mut self,
        phrases: &[String],
    ) -> Option<Result<Vec<Option<Suggestion>>, SuggestError>> {
        let encoder = self.engines.as_ref()?.text_encoder()?;
        let cache = &mut self.class_embeddings;
        let mut run = || -> Result<Vec<Option<Suggestion>>, SuggestError> {
            if cache.is_none() {
                let start = Instant::now();
                *cache = Some(ClassEmbeddings::ade20k(encoder)?);
                log::info!(
                    "ADE20K class embeddings computed in {:.2} s",
                    start.elapsed().as_secs_f64()
                );
            }
            let Some(classes) = cache.as_ref() else {
                return Ok(vec![None; phrases.len()]);
            };
            let texts: Vec<&str> = phrases.iter().map(String::as_str).collect();
            suggest_classes(encoder, classes, &texts)
        };
        Some(if is_gpu(encoder.device) {
            catch_device_fault(encoder.device, run).unwrap_or_else(|f| Err(f.into()))
        } else {
            run()
        })
    }
}
