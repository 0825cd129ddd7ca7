//! Which engine masks the phrases: LD-ZNet ([`Segmenter`]) or the training-free draft
//! ([`DraftEngine`]), behind one [`Engine`] so the CLI (and later the app and `eval`) switch
//! between them with one flag. Both return the same [`PhraseMask`].
//!
//! The default: LD-ZNet when its weights are present, else the draft (with a notice saying so).

use crate::discovery::FoundWeights;
use crate::draft::{DraftEngine, DraftSettings, DraftSetupError};
use crate::imageio::RgbImage;
use crate::pipeline::{
    LoadProgress, PhraseMask, Randomness, SegmentError, Segmenter, SetupError, weights_label,
};
use crate::weights::WeightFiles;

use burn::prelude::Device;

/// The two engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EngineKind {
    /// LD-ZNet: CLIP + SD UNet features + the LD-ZNet UNet per phrase.
    Ldznet,
    /// Training-free draft: one SD UNet pass per image, CLIP + matrix products per phrase.
    Draft,
}

impl EngineKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ldznet => "ldznet",
            Self::Draft => "draft",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ldznet" | "ld-znet" => Ok(Self::Ldznet),
            "draft" => Ok(Self::Draft),
            other => Err(format!(
                "unknown engine `{other}` (expected ldznet or draft)"
            )),
        }
    }
}

/// Errors of choosing and loading an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The LD-ZNet pipeline could not be set up.
    #[error(transparent)]
    Ldznet(#[from] SetupError),
    /// The draft engine could not be set up.
    #[error(transparent)]
    Draft(#[from] DraftSetupError),
}

/// A loaded engine (boxed: the networks' module trees are large).
#[derive(Debug)]
pub enum Engine {
    /// LD-ZNet.
    Ldznet(Box<Segmenter>),
    /// The draft.
    Draft(Box<DraftEngine>),
}

/// The engine a run uses: `requested`, or LD-ZNet when the files provide its UNet and the draft
/// otherwise; the message says why the draft was chosen when nobody asked for it.
pub fn choose_engine(
    found: &FoundWeights,
    requested: Option<EngineKind>,
) -> Result<(EngineKind, Option<String>), SetupError> {
    if let Some(kind) = requested {
        return Ok((kind, None));
    }
    let files = WeightFiles::open(&found.files).map_err(|source| SetupError::Load {
        weights: weights_label(found),
        source,
    })?;
    if files.has_ldznet_unet() {
        Ok((EngineKind::Ldznet, None))
    } else {
        Ok((
            EngineKind::Draft,
            Some(format!(
                "no LD-ZNet checkpoint in {}: using the training-free draft engine (coarser masks; --engine draft)",
                weights_label(found)
            )),
        ))
    }
}

impl Engine {
    /// Loads the engine of `kind` from the weights `found` on `device`.
    pub fn load(
        found: &FoundWeights,
        device: &Device,
        kind: EngineKind,
        draft: DraftSettings,
        progress: LoadProgress<'_>,
    ) -> Result<Self, EngineError> {
        Ok(match kind {
            EngineKind::Ldznet => {
                Self::Ldznet(Box::new(Segmenter::from_found(found, device, progress)?))
            }
            EngineKind::Draft => Self::Draft(Box::new(DraftEngine::from_found(
                found, device, draft, progress,
            )?)),
        })
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        match self {
            Self::Ldznet(_) => EngineKind::Ldznet,
            Self::Draft(_) => EngineKind::Draft,
        }
    }

    /// One probability map per phrase at the image's size (`randomness` is LD-ZNet's; the
    /// draft's noise comes from its settings' seed).
    pub fn segment(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
        randomness: &Randomness,
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        match self {
            Self::Ldznet(segmenter) => segmenter.segment(image, phrases, randomness),
            Self::Draft(draft) => draft.segment(image, phrases),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_parse_both_ways() {
        for kind in [EngineKind::Ldznet, EngineKind::Draft] {
            assert_eq!(kind.name().parse::<EngineKind>(), Ok(kind));
        }
        assert_eq!("LD-ZNet".parse::<EngineKind>(), Ok(EngineKind::Ldznet));
        assert!("fast".parse::<EngineKind>().is_err());
    }
}
