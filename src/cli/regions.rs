//! `segment --regions-out DIR`: one regions folder per image (`DIR/<stem>.regions/`, see
//! [`ldzmask::mask::regions`]) from the image's layers (phrase flags or a recipe), in stack
//! order: the first layer is the top one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use image::DynamicImage;
use ldzmask::mask::MaskLayer;
use ldzmask::mask::partition::{PartitionRule, RegionSource, partition};
use ldzmask::mask::region_palette::ade20k_class;
use ldzmask::mask::regions::{RegionsOptions, regions_dir, write_regions};
use ldzmask::recipe::Recipe;

/// The regions flags of `segment`.
#[derive(Clone, Copy, Debug)]
pub struct RegionsArgs<'a> {
    /// `--regions-out`: the folder the regions folders go in.
    pub out: &'a Path,
    /// `--regions-rule`.
    pub rule: PartitionRule,
    /// `--ade20k` values, `PHRASE=CLASS`.
    pub ade20k: &'a [String],
    /// `--overwrite`.
    pub overwrite: bool,
}

/// `--regions-rule`'s value.
pub fn parse_rule(name: &str) -> Result<PartitionRule, String> {
    PartitionRule::from_name(name)
        .ok_or_else(|| format!("unknown rule {name:?}: use stack-order or most-confident"))
}

/// `--ade20k PHRASE=CLASS` values as a phrase → class id map; a class that is not one of
/// ADE20K's 150 names (or ids) is an error naming it.
pub fn ade20k_map(pairs: &[String]) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((phrase, class)) = pair.rsplit_once('=') else {
            bail!("--ade20k {pair:?}: write PHRASE=CLASS, e.g. --ade20k \"the sky=sky\"");
        };
        let Some(id) = ade20k_class(class) else {
            bail!(
                "--ade20k {pair:?}: {class:?} is not an ADE20K class name or id (0..149), e.g. \
                 sky, tree, person, building, road, grass, water"
            );
        };
        map.insert(phrase.trim().to_owned(), id);
    }
    Ok(map)
}

/// Checks the regions flags (`--ade20k` values, `--regions-out`) before any model loads.
pub fn check_args(ade20k: &[String], regions_out: Option<&Path>) -> anyhow::Result<()> {
    ade20k_map(ade20k)?;
    if !ade20k.is_empty() && regions_out.is_none() {
        bail!("--ade20k maps phrases for the regions export: add --regions-out DIR");
    }
    Ok(())
}

/// Partitions one image's layers (`recipe.layers` built as `layers`, top first) and writes its
/// regions folder under `args.out`; `mask_name` is the image's unique batch name
/// (`<stem>.png`). Returns the folder; its warnings go to stderr.
pub fn write_image_regions(
    args: &RegionsArgs<'_>,
    recipe: &Recipe,
    layers: &[MaskLayer],
    image: &DynamicImage,
    image_path: &Path,
    mask_name: &str,
) -> anyhow::Result<PathBuf> {
    let sources: Vec<RegionSource<'_>> = recipe
        .layers
        .iter()
        .zip(layers)
        .map(|(recipe_layer, layer)| RegionSource {
            layer_id: 0,
            phrase: recipe_layer.phrase.trim(),
            layer,
        })
        .collect();
    let rgba = image.to_rgba8();
    // The layers were refined when they were built (Recipe::combined).
    let part = partition(rgba.width(), rgba.height(), &sources, args.rule, None)?;
    let stem = Path::new(mask_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let dir = regions_dir(args.out, &stem);
    let options = RegionsOptions {
        ade20k: ade20k_map(args.ade20k)?,
        nothing_ade20k: None,
        source_name: image_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
        overwrite: args.overwrite,
    };
    let written = write_regions(&dir, &part, &rgba, &options)
        .with_context(|| format!("regions of {}", image_path.display()))?;
    for note in &written.notes {
        eprintln!("warning: {}: {note}", image_path.display());
    }
    Ok(written.dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn ade20k_pairs_parse_and_bad_classes_are_named() {
        let map = ade20k_map(&["the sky = sky".into(), "a=b=12".into()]).unwrap();
        assert_eq!(map.get("the sky"), Some(&2));
        assert_eq!(map.get("a=b"), Some(&12));
        let err = ade20k_map(&["the sky=heaven".into()]).unwrap_err();
        assert!(err.to_string().contains("\"heaven\""), "{err}");
        assert!(ade20k_map(&["sky".into()]).is_err());
    }
}
