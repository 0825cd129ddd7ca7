//! A suggested ADE20K class for a region's phrase, by CLIP text similarity (research note
//! "training-free-and-regions" §0.3: "as a suggestion, nearest neighbour by CLIP text
//! embedding; always confirmed by the artist"). The regions export's `controlnet-seg.png` needs
//! every phrase mapped to one of ADE20K's 150 classes; the app shows this suggestion and applies
//! it only when the artist clicks.
//!
//! **The embedding** of a text is the final-LayerNorm hidden state of the loaded model's CLIP
//! text encoder at the text's first `<|endoftext|>` token: what transformers'
//! `CLIPTextModel` returns as `pooler_output`, the one vector CLIP's contrastive training
//! shapes into a summary of the whole text (SD v1 checkpoints do not carry CLIP's
//! `text_projection`, so the unprojected vector is used). The mean over the phrase's tokens was
//! not chosen: with the causal mask every token state sees only the words before it, so the mean
//! is dominated by partial prefixes ("the", "the girl's"), not the phrase. Phrase and class name
//! are embedded bare (`"the sky"`, `"sky"`), the same way.
//!
//! **The similarity** is the cosine between the phrase's embedding and each class name's; the
//! suggestion is the class with the largest (ties: the lower class id).
//!
//! **Cost**: a text's EOS state depends only on the ids up to it (causal attention, absolute
//! positions), so the ids are cut after the batch's last EOS instead of running all 77
//! positions: the 150 class names (a few tokens each) run as one batch a few positions long.
//! The class embeddings are computed once per loaded model and cached by the caller (the app's
//! model worker).

use burn::prelude::*;

use crate::device::DeviceFault;
use crate::mask::region_palette::ADE20K;
use crate::model::clip::CLIPTextTransformer;
use crate::tokenizer::{ClipTokenizer, EOS_ID, TokenizerError};

/// A CLIP text encoder as the suggestions read it.
#[derive(Clone, Copy, Debug)]
pub struct TextEncoder<'a> {
    /// The text transformer.
    pub clip: &'a CLIPTextTransformer,
    /// Its tokenizer.
    pub tokenizer: &'a ClipTokenizer,
    /// The device it is on.
    pub device: &'a Device,
}

/// Why a suggestion could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    /// A phrase or class name cannot be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The embeddings could not be read back from the device.
    #[error("cannot read the text embeddings back from the device: {0}")]
    Readback(String),
    /// The GPU failed while the text encoder ran.
    #[error(transparent)]
    Device(#[from] DeviceFault),
}

/// A suggested class for a phrase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion {
    /// The class id (index into [`ADE20K`]).
    pub class: usize,
    /// Cosine similarity of the phrase and the class name, `-1..=1`.
    pub similarity: f32,
}

impl Suggestion {
    /// The class name.
    pub fn name(&self) -> &'static str {
        ADE20K.get(self.class).map_or("?", |(name, _)| *name)
    }
}

/// The embeddings of `texts` (see the module docs): one row of `hidden` values per text.
///
/// # Shapes
/// - returns `texts.len()` rows of `[hidden]`
pub fn pooled_embeddings(
    encoder: TextEncoder<'_>,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, SuggestError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let ids = encoder.tokenizer.encode_batch(texts)?;
    // `encode` always writes an EOS after the (truncated) content.
    let eos: Vec<usize> = ids
        .iter()
        .map(|row| {
            row.iter()
                .position(|&id| id == EOS_ID)
                .unwrap_or(row.len() - 1)
        })
        .collect();
    let seq = eos.iter().max().map_or(1, |&e| e + 1);
    let batch = texts.len();
    let flat: Vec<i64> = ids
        .iter()
        .flat_map(|row| row[..seq].iter().map(|&id| i64::from(id)))
        .collect();
    let input = Tensor::<1, Int>::from_data(TensorData::new(flat, [batch * seq]), encoder.device)
        .reshape([batch, seq]); // [batch, seq]
    let hidden = encoder.clip.forward_prefix(input); // [batch, seq, hidden]
    let [_, _, dim] = hidden.dims();
    let values: Vec<f32> = hidden
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| SuggestError::Readback(format!("{e:?}")))?;
    Ok(eos
        .iter()
        .enumerate()
        .map(|(b, &e)| {
            let start = (b * seq + e) * dim;
            values[start..start + dim].to_vec()
        })
        .collect())
}

/// `v / |v|` (zeros stay zeros, so a degenerate vector is similar to nothing).
fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
    } else {
        vec![0.0; v.len()]
    }
}

/// The class names' embeddings, unit length, one row per class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassEmbeddings {
    dim: usize,
    rows: Vec<Vec<f32>>,
}

impl ClassEmbeddings {
    /// The embeddings of ADE20K's 150 class names (class id = row).
    pub fn ade20k(encoder: TextEncoder<'_>) -> Result<Self, SuggestError> {
        let names: Vec<&str> = ADE20K.iter().map(|(name, _)| *name).collect();
        Ok(Self::from_rows(&pooled_embeddings(encoder, &names)?))
    }

    /// Class embeddings from rows of one width (row = class id); normalised here.
    pub fn from_rows(rows: &[Vec<f32>]) -> Self {
        Self {
            dim: rows.first().map_or(0, Vec::len),
            rows: rows.iter().map(|r| unit(r)).collect(),
        }
    }

    /// How many classes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without classes.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The cosine similarity of `embedding` with every class, by class id; empty when its
    /// width is not the classes'.
    pub fn similarities(&self, embedding: &[f32]) -> Vec<f32> {
        if embedding.len() != self.dim {
            return Vec::new();
        }
        let e = unit(embedding);
        self.rows
            .iter()
            .map(|row| row.iter().zip(&e).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// The most similar class (ties: the lower id); `None` without classes or when the
    /// embedding's width is not the classes'.
    pub fn suggest(&self, embedding: &[f32]) -> Option<Suggestion> {
        let mut best: Option<Suggestion> = None;
        for (class, similarity) in self.similarities(embedding).into_iter().enumerate() {
            if best.is_none_or(|b| similarity > b.similarity) {
                best = Some(Suggestion { class, similarity });
            }
        }
        best
    }
}

/// A suggestion for each phrase (in order), by [`ClassEmbeddings::suggest`]; `None` for a
/// phrase that has none (an empty phrase, or classes of another width).
pub fn suggest_classes(
    encoder: TextEncoder<'_>,
    classes: &ClassEmbeddings,
    phrases: &[&str],
) -> Result<Vec<Option<Suggestion>>, SuggestError> {
    Ok(pooled_embeddings(encoder, phrases)?
        .iter()
        .map(|e| classes.suggest(e))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn the_suggestion_is_the_largest_cosine() {
        // Three classes in 2-D: along x, along y, and diagonal (lengths do not matter).
        let classes = ClassEmbeddings::from_rows(&[vec![2.0, 0.0], vec![0.0, 5.0], vec![1.0, 1.0]]);
        assert_eq!(classes.len(), 3);
        let s = classes.similarities(&[3.0, 1.0]);
        let norm = 10f32.sqrt();
        assert!((s[0] - 3.0 / norm).abs() < 1e-6);
        assert!((s[1] - 1.0 / norm).abs() < 1e-6);
        assert!((s[2] - 4.0 / (norm * 2f32.sqrt())).abs() < 1e-6);
        let best = classes.suggest(&[3.0, 1.0]).unwrap();
        assert_eq!(best.class, 0);
        assert_eq!(best.name(), "wall");
        assert_eq!(classes.suggest(&[1.0, 3.0]).unwrap().class, 1);
        assert_eq!(classes.suggest(&[1.0, 1.1]).unwrap().class, 2);
        // Ties go to the lower id; a zero vector ties everything at 0.
        assert_eq!(
            classes.suggest(&[0.0, 0.0]),
            Some(Suggestion {
                class: 0,
                similarity: 0.0
            })
        );
        // Wrong width or no classes: no suggestion, no panic.
        assert_eq!(classes.suggest(&[1.0, 2.0, 3.0]), None);
        assert_eq!(ClassEmbeddings::from_rows(&[]).suggest(&[1.0]), None);
    }
}
