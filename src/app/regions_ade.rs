//! The ADE20K mapping of the Regions view: each region's layer gets an ADE20K class from the
//! artist (stored in its [`crate::mask::LayerProps::ade20k`], saved with the session), so the
//! regions export can write `controlnet-seg.png`. The model worker suggests a class per phrase
//! by CLIP text similarity ([`crate::class_suggest`], [`Job::SuggestClasses`]); a suggestion is
//! shown and applied only when the artist clicks ("Use", "Accept all suggestions").
//!
//! Suggestions are asked for while the view is on and the model is ready (never loading an
//! unloaded model for them), for the shown regions' phrases that have none yet; they are kept
//! per phrase until another model is loaded. This file holds the state and the logic; the app's
//! side (requests, answers, commands) is in `regions_export.rs`.

use std::collections::{BTreeMap, HashMap};

use crate::class_suggest::Suggestion;
use crate::mask::region_palette::ADE20K;
use crate::mask::{MaskDocument, Partition};

use super::worker::ModelStatus;

/// The suggestions the worker made for the shown phrases.
#[derive(Debug, Default)]
pub struct ClassSuggestions {
    /// The weights (label) the suggestions come from; another model clears them.
    weights: Option<String>,
    /// Per phrase: the suggestion, or `None` when the model had none.
    by_phrase: HashMap<String, Option<Suggestion>>,
    /// The request in flight.
    pending: Option<u64>,
    /// The last request id sent.
    last_request: u64,
    /// Why the last request failed (not retried until another model loads).
    error: Option<String>,
}

impl ClassSuggestions {
    /// The suggestion for a phrase, once the model made one.
    pub fn get(&self, phrase: &str) -> Option<Suggestion> {
        self.by_phrase.get(phrase).copied().flatten()
    }

    /// True while the worker computes suggestions.
    pub fn pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The phrases of `partition`'s regions without a suggestion from the model `weights`
    /// (another model clears the old ones), as a request id and its phrases, marked pending;
    /// `None` while a request runs, after a failure, or when nothing is missing.
    pub(super) fn next_request(
        &mut self,
        weights: &str,
        partition: &Partition,
    ) -> Option<(u64, Vec<String>)> {
        if self.weights.as_deref() != Some(weights) {
            *self = Self {
                weights: Some(weights.to_owned()),
                last_request: self.last_request,
                ..Self::default()
            };
        }
        if self.pending.is_some() || self.error.is_some() {
            return None;
        }
        let mut phrases: Vec<String> = Vec::new();
        for r in &partition.regions {
            if !self.by_phrase.contains_key(&r.phrase) && !phrases.contains(&r.phrase) {
                phrases.push(r.phrase.clone());
            }
        }
        if phrases.is_empty() {
            return None;
        }
        self.last_request += 1;
        self.pending = Some(self.last_request);
        Some((self.last_request, phrases))
    }

    /// Takes the worker's answer to request `request_id` (a stale one is dropped).
    pub(super) fn answer(
        &mut self,
        request_id: u64,
        result: Result<Vec<(String, Option<Suggestion>)>, String>,
    ) {
        if self.pending != Some(request_id) {
            return;
        }
        self.pending = None;
        match result {
            Ok(list) => self.by_phrase.extend(list),
            Err(e) => {
                log::warn!("ADE20K class suggestions: {e}");
                self.error = Some(e);
            }
        }
    }

    /// "Accept all suggestions": each region of `partition` whose layer has no class, with its
    /// suggested class.
    pub(super) fn to_accept(&self, partition: &Partition, doc: &MaskDocument) -> Vec<(u64, usize)> {
        partition
            .regions
            .iter()
            .filter(|r| {
                doc.layer(r.layer_id)
                    .is_some_and(|e| e.props.ade20k.is_none())
            })
            .filter_map(|r| Some((r.layer_id, self.get(&r.phrase)?.class)))
            .collect()
    }
}

/// "suggested: sky (0.83)".
pub fn suggestion_text(s: &Suggestion) -> String {
    format!("suggested: {} ({:.2})", s.name(), s.similarity)
}

/// Why the legend shows no suggestion (`None` when suggestions are there or coming).
pub fn suggestion_note(model: &ModelStatus, suggestions: &ClassSuggestions) -> Option<String> {
    match model {
        ModelStatus::Missing { .. } => Some(
            "No class suggestions: no model weights were found. Pick the classes yourself.".into(),
        ),
        ModelStatus::Failed { .. } => Some(
            "No class suggestions: the model could not be loaded. Pick the classes yourself."
                .into(),
        ),
        ModelStatus::NotStarted | ModelStatus::Loading { .. } => {
            Some("Class suggestions come when the model has loaded.".into())
        }
        ModelStatus::Unloaded { .. } => Some(
            "No class suggestions while the model is unloaded (the next phrase loads it).".into(),
        ),
        ModelStatus::Ready { .. } => match (&suggestions.error, suggestions.pending()) {
            (Some(e), _) => Some(format!("No class suggestions: {e}")),
            (None, true) => Some("Suggesting classes…".into()),
            (None, false) => None,
        },
    }
}

/// ADE20K class ids whose name contains `query` (case ignored): names starting with it first,
/// then the others, each in class id order; every class for an empty query.
pub fn class_search(query: &str) -> Vec<usize> {
    let query = query.trim().to_lowercase();
    let (mut starts, mut contains) = (Vec::new(), Vec::new());
    for (id, (name, _)) in ADE20K.iter().enumerate() {
        if name.starts_with(&query) {
            starts.push(id);
        } else if name.contains(&query) {
            contains.push(id);
        }
    }
    starts.extend(contains);
    starts
}

/// How many of the partition's regions have a class (their layer's mapping), and how many
/// regions there are.
pub fn mapped_count(partition: &Partition, doc: &MaskDocument) -> (usize, usize) {
    let mapped = partition
        .regions
        .iter()
        .filter(|r| {
            doc.layer(r.layer_id)
                .is_some_and(|e| e.props.ade20k.is_some())
        })
        .count();
    (mapped, partition.regions.len())
}

/// The regions export's phrase → class map from the layers' classes (`classes`: layer id →
/// class). Two regions with one phrase share its entry (the lower region's class wins), as the
/// export keys classes by phrase.
pub fn ade20k_by_phrase(
    partition: &Partition,
    classes: &HashMap<u64, usize>,
) -> BTreeMap<String, usize> {
    partition
        .regions
        .iter()
        .filter_map(|r| classes.get(&r.layer_id).map(|&c| (r.phrase.clone(), c)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::mask::PartitionRule;
    use crate::mask::partition::clean_up;

    #[test]
    fn class_search_puts_prefix_matches_first() {
        assert_eq!(class_search("").len(), 150);
        let sky = class_search("SKY");
        assert_eq!(sky, [2, 48], "sky, skyscraper");
        let tab: Vec<&str> = class_search("table").iter().map(|&c| ADE20K[c].0).collect();
        assert_eq!(tab, ["table", "pool table", "coffee table"]);
        assert!(class_search("unicorn").is_empty());
    }

    #[test]
    fn the_export_map_and_the_count_follow_the_layers() {
        let mut doc = MaskDocument::new(4, 1, None);
        let a = doc.add_layer("the sky");
        let b = doc.add_layer("a tree");
        let p = clean_up(
            4,
            1,
            vec![1, 1, 2, 2],
            &[(a, "the sky"), (b, "a tree")],
            PartitionRule::StackOrder,
        );
        assert_eq!(mapped_count(&p, &doc), (0, 2));
        doc.set_ade20k(a, Some(2)).unwrap();
        assert_eq!(mapped_count(&p, &doc), (1, 2));
        let classes = HashMap::from([(a, 2), (b, 4)]);
        let map = ade20k_by_phrase(&p, &classes);
        assert_eq!(map.get("the sky"), Some(&2));
        assert_eq!(map.get("a tree"), Some(&4));
    }

    #[test]
    fn requests_ask_once_per_phrase_and_model_and_drop_stale_answers() {
        let mut doc = MaskDocument::new(4, 1, None);
        let a = doc.add_layer("the sky");
        let b = doc.add_layer("a tree");
        let p = clean_up(
            4,
            1,
            vec![1, 1, 2, 2],
            &[(a, "the sky"), (b, "a tree")],
            PartitionRule::StackOrder,
        );
        let mut s = ClassSuggestions::default();
        let (id, phrases) = s.next_request("w1", &p).unwrap();
        assert_eq!(phrases, ["the sky", "a tree"]);
        assert!(s.pending());
        assert_eq!(s.next_request("w1", &p), None, "one request at a time");
        let sky = Suggestion {
            class: 2,
            similarity: 0.9,
        };
        s.answer(id + 7, Ok(vec![("the sky".into(), Some(sky))]));
        assert!(s.pending(), "a stale answer is dropped");
        s.answer(
            id,
            Ok(vec![("the sky".into(), Some(sky)), ("a tree".into(), None)]),
        );
        assert_eq!(s.get("the sky"), Some(sky));
        assert_eq!(s.get("a tree"), None);
        assert_eq!(s.next_request("w1", &p), None, "every phrase answered");
        assert_eq!(s.to_accept(&p, &doc), [(a, 2)]);
        doc.set_ade20k(a, Some(0)).unwrap();
        assert!(
            s.to_accept(&p, &doc).is_empty(),
            "the artist's choice stays"
        );
        // Another model: asked again.
        let (id2, phrases) = s.next_request("w2", &p).unwrap();
        assert!(id2 > id);
        assert_eq!(phrases.len(), 2);
        s.answer(id2, Err("no".into()));
        assert_eq!(s.next_request("w2", &p), None, "a failure is not retried");
    }

    #[test]
    fn the_note_says_why_there_is_no_suggestion() {
        let none = ClassSuggestions::default();
        let missing = ModelStatus::Missing {
            message: "no weights".into(),
        };
        assert!(
            suggestion_note(&missing, &none)
                .unwrap()
                .contains("no model weights")
        );
        let ready = ModelStatus::Ready {
            weights: "w".into(),
            load_time: std::time::Duration::ZERO,
            engines: Default::default(),
        };
        assert_eq!(suggestion_note(&ready, &none), None);
        let failed = ClassSuggestions {
            error: Some("boom".into()),
            ..ClassSuggestions::default()
        };
        assert!(suggestion_note(&ready, &failed).unwrap().contains("boom"));
        let s = Suggestion {
            class: 2,
            similarity: 0.834,
        };
        assert_eq!(suggestion_text(&s), "suggested: sky (0.83)");
    }
}
