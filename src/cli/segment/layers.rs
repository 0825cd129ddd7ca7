//! `ldzmask segment` with phrase layers: `--phrase` / `--subtract` / `--intersect` in command
//! line order, `--recipe` / `--save-recipe`, one combined mask per image (`O/<stem>.png`, the
//! layout A1111/Forge batch inpainting and IOPaint read) and `--per-layer` files.
//!
//! The combined mask is the app's (see [`Recipe::combined`]), so a recipe re-applied to the
//! same image with the same weights writes the same bytes.

use std::path::Path;

use anyhow::{Context, bail};
use clap::ArgMatches;
use ldzmask::discovery::find_weights;
use ldzmask::engine::Engine;
use ldzmask::imageio::RgbImage;
use ldzmask::mask::refine::RgbView;
use ldzmask::mask::{CombineOp, EdgeOps, LayerOps, MaskBuf};
use ldzmask::pipeline::{StageTimings, split_alternatives};
use ldzmask::recipe::{ModelIdentity, Recipe, RecipeLayer};

use super::{Masks, SegmentArgs};

/// Whether the arguments ask for the layer/recipe outputs (one combined mask per image) rather
/// than one file per phrase.
pub fn uses_layers(args: &SegmentArgs) -> bool {
    !args.subtract.is_empty()
        || !args.intersect.is_empty()
        || args.recipe.is_some()
        || args.save_recipe.is_some()
        || args.per_layer
        || args.regions_out.is_some()
}

/// The phrase layers of `segment`'s matches in command line order: clap keeps each flag's
/// values apart, so their indices put `--phrase`, `--subtract` and `--intersect` back in the
/// order they were typed.
pub fn ordered_layers(matches: &ArgMatches) -> Vec<(CombineOp, String)> {
    let mut layers: Vec<(usize, CombineOp, String)> = Vec::new();
    for (id, op) in [
        ("phrases", CombineOp::Union),
        ("subtract", CombineOp::Subtract),
        ("intersect", CombineOp::Intersect),
    ] {
        if let (Some(indices), Some(values)) =
            (matches.indices_of(id), matches.get_many::<String>(id))
        {
            layers.extend(indices.zip(values).map(|(i, v)| (i, op, v.clone())));
        }
    }
    layers.sort_by_key(|(i, _, _)| *i);
    layers.into_iter().map(|(_, op, v)| (op, v)).collect()
}

/// Checks every phrase flag (`a ||` is an error naming the phrase) before any model loads.
pub fn check_phrases(args: &SegmentArgs) -> anyhow::Result<()> {
    for (flag, phrases) in [
        ("--phrase", &args.phrases),
        ("--subtract", &args.subtract),
        ("--intersect", &args.intersect),
    ] {
        for phrase in phrases {
            split_alternatives(phrase).with_context(|| format!("{flag} {phrase:?}"))?;
        }
    }
    Ok(())
}

/// The recipe the phrase flags describe (layers in command line order).
fn recipe_from_args(args: &SegmentArgs) -> Recipe {
    // `layers` is filled by main.rs from the matches; the fallback (phrases, then subtract,
    // then intersect) only serves callers that build the arguments themselves.
    let layers = if args.layers.is_empty() {
        let ops = [
            (CombineOp::Union, &args.phrases),
            (CombineOp::Subtract, &args.subtract),
            (CombineOp::Intersect, &args.intersect),
        ];
        ops.into_iter()
            .flat_map(|(op, phrases)| phrases.iter().map(move |p| (op, p.clone())))
            .collect()
    } else {
        args.layers.clone()
    };
    // `--refine` is the layers' edge-aware refinement with its default settings (what the
    // app gives a new layer); without it the edges stay the model's.
    let edge = if args.refine {
        EdgeOps::default()
    } else {
        EdgeOps::off()
    };
    Recipe {
        mode: args.mode,
        seed: args.seed,
        template: args.template.into(),
        layers: layers
            .into_iter()
            .map(|(combine, phrase)| RecipeLayer {
                phrase,
                combine,
                ops: LayerOps {
                    threshold: args.threshold,
                    edge,
                    ..LayerOps::default()
                },
                ..RecipeLayer::default()
            })
            .collect(),
        ..Recipe::default()
    }
}

/// The recipe of a layer run: `--recipe`'s, or the one the phrase flags describe, with the
/// weights' identity (a warning when a loaded recipe was made with other weights); written to
/// `--save-recipe` when asked.
pub fn recipe(args: &SegmentArgs, weights: Option<&Path>) -> anyhow::Result<Recipe> {
    if args.draws.is_some() {
        bail!("--draws cannot be combined with layers or recipes (a recipe holds a mode and seed)");
    }
    let mut recipe = match &args.recipe {
        Some(path) => Recipe::load(path)?,
        None => recipe_from_args(args),
    };
    if let Some(path) = &args.save_recipe
        && path.exists()
        && !args.overwrite
    {
        bail!(
            "{} already exists (add --overwrite to replace it)",
            path.display()
        );
    }
    let found = find_weights(weights)?;
    let identity = ModelIdentity::of_files(&found.files)?;
    if let (Some(path), Some(made_with)) = (&args.recipe, &recipe.model)
        && *made_with != identity
    {
        eprintln!(
            "warning: recipe {} was made with other weights ({}); loaded: {}. Masks may differ.",
            path.display(),
            made_with.describe(),
            identity.describe()
        );
    }
    recipe.model = Some(identity);
    if let Some(path) = &args.save_recipe {
        recipe.save(path)?;
        eprintln!("recipe → {}", path.display());
    }
    Ok(recipe)
}

/// Segments one image with every layer of `recipe` and folds them as the app does: the
/// combined mask and each layer's own.
pub(super) fn layer_masks(
    recipe: &Recipe,
    segmenter: &mut Engine,
    rgb: &RgbImage,
) -> anyhow::Result<(Masks, StageTimings)> {
    let randomness = recipe.randomness();
    // One run per layer, as the app sends them: each phrase gets the seed's first draws, so a
    // layer's mask does not depend on the layers before it and matches the app's. The image's
    // latent is cached, so this costs no more than one run with every phrase.
    let mut probabilities = Vec::with_capacity(recipe.layers.len());
    let mut timings = StageTimings::default();
    for phrase in recipe.phrases() {
        for mask in segmenter.segment(rgb, &[phrase], &randomness)? {
            timings = timings + mask.timings;
            probabilities.push(MaskBuf::from_vec(
                mask.width,
                mask.height,
                mask.probabilities,
            )?);
        }
    }
    let combined = recipe.combined(RgbView::from(rgb), probabilities)?;
    Ok((
        Masks {
            parts: combined.layers,
            combined: Some(combined.mask),
            layers: combined.mask_layers,
        },
        timings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SegmentArgs,
    }

    fn parse(argv: &[&str]) -> (SegmentArgs, Vec<(CombineOp, String)>) {
        let matches = Wrapper::command()
            .try_get_matches_from(argv)
            .unwrap_or_else(|e| panic!("{e}"));
        let layers = ordered_layers(&matches);
        let wrapper = Wrapper::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{e}"));
        (wrapper.args, layers)
    }

    #[test]
    fn layers_keep_the_command_line_order() {
        let (args, layers) = parse(&[
            "x",
            "--image",
            "i.png",
            "--out",
            "o.png",
            "--intersect",
            "c",
            "--phrase",
            "a",
            "--subtract",
            "b",
            "--phrase",
            "d",
        ]);
        assert_eq!(
            layers,
            vec![
                (CombineOp::Intersect, "c".to_string()),
                (CombineOp::Union, "a".to_string()),
                (CombineOp::Subtract, "b".to_string()),
                (CombineOp::Union, "d".to_string()),
            ]
        );
        assert!(uses_layers(&args));
        let recipe = recipe_from_args(&SegmentArgs { layers, ..args });
        assert_eq!(recipe.phrases(), vec!["c", "a", "b", "d"]);
    }

    #[test]
    fn plain_phrases_keep_the_per_phrase_outputs() {
        let (args, _) = parse(&[
            "x", "--image", "i.png", "--out", "o.png", "--phrase", "a", "--phrase", "b",
        ]);
        assert!(!uses_layers(&args));
    }

    #[test]
    fn recipe_excludes_phrase_flags_and_empty_parts_are_errors() {
        let err = Wrapper::command()
            .try_get_matches_from([
                "x", "--image", "i.png", "--out", "o.png", "--recipe", "r.json", "--phrase", "a",
            ])
            .expect_err("conflict");
        assert!(err.to_string().contains("--recipe"), "{err}");
        let (args, _) = parse(&[
            "x",
            "--image",
            "i.png",
            "--out",
            "o.png",
            "--phrase",
            "a",
            "--subtract",
            "b ||",
        ]);
        let err = check_phrases(&args).expect_err("empty part");
        assert!(
            format!("{err:#}").contains("--subtract \"b ||\""),
            "{err:#}"
        );
    }
}
