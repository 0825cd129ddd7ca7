//! ADE20K class suggestions by CLIP text similarity ([`ldzmask::class_suggest`]) on the tiny
//! fixture model, checked against an independent computation: every text through the padded
//! 77-token `CLIPTextTransformer::forward` (the pipeline's path, not the cut prefix the
//! suggestions run), its EOS row taken by hand, cosines in f64, argmax by hand.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::Instant;

use burn::prelude::*;
use ldzmask::class_suggest::{ClassEmbeddings, TextEncoder, pooled_embeddings, suggest_classes};
use ldzmask::discovery::find_weights;
use ldzmask::mask::region_palette::ADE20K;
use ldzmask::model::clip::CLIPTextConfig;
use ldzmask::pipeline::Segmenter;
use ldzmask::tokenizer::{ClipTokenizer, EOS_ID};

use crate::common::tiny_weights_dir;

/// The tiny model's segmenter on the CPU.
fn tiny_segmenter(name: &str) -> Segmenter {
    let dir = tiny_weights_dir(name);
    let found = find_weights(Some(&dir)).unwrap();
    Segmenter::from_found(&found, &Device::flex(), &mut |_, _, _| {}).unwrap()
}

/// The EOS-token row of the padded `forward` for `text`, as f64.
fn reference_embedding(encoder: TextEncoder<'_>, text: &str) -> Vec<f64> {
    let ids = encoder.tokenizer.encode(text).unwrap();
    let eos = ids.iter().position(|&id| id == EOS_ID).unwrap();
    let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let n = ids.len();
    let input =
        Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), encoder.device).reshape([1, n]);
    let hidden = encoder.clip.forward(input); // [1, 77, hidden]
    let [_, _, dim] = hidden.dims();
    let values: Vec<f32> = hidden.into_data().convert::<f32>().try_into_vec().unwrap();
    values[eos * dim..(eos + 1) * dim]
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn suggestions_are_the_argmax_of_an_independent_cosine() {
    let segmenter = tiny_segmenter("class-suggest");
    let encoder = segmenter.text_encoder();
    let classes = ClassEmbeddings::ade20k(encoder).unwrap();
    assert_eq!(classes.len(), 150);
    let reference: Vec<Vec<f64>> = ADE20K
        .iter()
        .map(|(name, _)| reference_embedding(encoder, name))
        .collect();

    let phrases = [
        "the sky",
        "a tree",
        "the girl's hair",
        "sky",
        "chest of drawers",
        "a red car",
    ];
    let got = suggest_classes(encoder, &classes, &phrases).unwrap();
    let mut distinct = std::collections::BTreeSet::new();
    for (phrase, suggestion) in phrases.iter().zip(&got) {
        let suggestion = suggestion.unwrap();
        let e = reference_embedding(encoder, phrase);
        let cosines: Vec<f64> = reference.iter().map(|c| cosine(&e, c)).collect();
        let (best, best_cos) =
            cosines
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::MIN),
                    |acc, (i, c)| if c > acc.1 { (i, c) } else { acc },
                );
        // Its similarity is the reference cosine of its class, and no class is more similar.
        let own = cosines[suggestion.class];
        assert!(
            (f64::from(suggestion.similarity) - own).abs() < 1e-4,
            "{phrase}: {} vs {own}",
            suggestion.similarity
        );
        assert!(own > best_cos - 1e-4, "{phrase}: {own} vs best {best_cos}");
        let mut sorted = cosines.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 1e-3 {
            assert_eq!(suggestion.class, best, "{phrase}");
        }
        distinct.insert(suggestion.class);
        println!(
            "{phrase:?} → {} ({:.3}); reference {} ({best_cos:.3})",
            suggestion.name(),
            suggestion.similarity,
            ADE20K[best].0
        );
    }
    // A phrase that is a class name embeds exactly as that class: similarity 1.
    let sky = got[3].unwrap();
    assert_eq!(sky.name(), "sky");
    assert!((sky.similarity - 1.0).abs() < 1e-5, "{}", sky.similarity);
    let drawers = got[4].unwrap();
    assert_eq!(drawers.name(), "chest of drawers");
    assert!(distinct.len() > 1, "the suggestions depend on the phrase");
}

#[test]
fn the_cut_prefix_matches_the_padded_run() {
    let segmenter = tiny_segmenter("class-prefix");
    let encoder = segmenter.text_encoder();
    // Texts of different lengths in one batch: each is cut at the batch's last EOS.
    let texts = ["sky", "the girl's long red hair in the wind", ""];
    let pooled = pooled_embeddings(encoder, &texts).unwrap();
    for (text, row) in texts.iter().zip(&pooled) {
        let reference = reference_embedding(encoder, text);
        assert_eq!(row.len(), reference.len());
        let worst = row
            .iter()
            .zip(&reference)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "{text:?}: max difference {worst}");
    }
}

/// The cost of the class embeddings with CLIP ViT-L/14's size (random weights: the cost does
/// not depend on them). Run with
/// `cargo test --release --test suite class_suggest::class_embeddings_cost -- --ignored --nocapture`.
#[test]
#[ignore = "timing: builds a 123 M-parameter text encoder"]
fn class_embeddings_cost_at_clip_l_size() {
    let device = Device::flex();
    let clip = CLIPTextConfig::vit_l14().init(&device);
    let tokenizer = ClipTokenizer::bundled().unwrap();
    let encoder = TextEncoder {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &device,
    };
    for round in 0..2 {
        let start = Instant::now();
        let classes = ClassEmbeddings::ade20k(encoder).unwrap();
        let classes_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        suggest_classes(encoder, &classes, &["the girl's hair", "the sky"]).unwrap();
        println!(
            "round {round}: 150 class names {classes_s:.2} s, two phrases {:.3} s",
            start.elapsed().as_secs_f64()
        );
    }
}

/// The suggestions of the real model for everyday phrases. Needs the real checkpoints (see
/// `real_weights.rs`); run with
/// `cargo test --release --test suite class_suggest::real_model -- --ignored --nocapture`.
#[test]
#[ignore = "needs the real checkpoints in weights/ (see weights/README.md)"]
fn real_model_suggests_the_obvious_class() {
    let found = find_weights(None).unwrap_or_else(|e| panic!("{e}"));
    let segmenter = Segmenter::from_found(&found, &Device::flex(), &mut |_, _, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    let encoder = segmenter.text_encoder();
    let start = Instant::now();
    let classes = ClassEmbeddings::ade20k(encoder).unwrap();
    println!("class embeddings: {:.2} s", start.elapsed().as_secs_f64());
    let cases = [
        ("the sky", "sky"),
        ("a tree", "tree"),
        ("the grass", "grass"),
        ("the road", "road"),
        ("a wooden table", "table"),
        ("the mountains", "mountain"),
    ];
    let phrases: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    let got = suggest_classes(encoder, &classes, &phrases).unwrap();
    let mut wrong = Vec::new();
    for ((phrase, want), s) in cases.iter().zip(&got) {
        let s = s.unwrap();
        println!("{phrase:?} → {} ({:.3})", s.name(), s.similarity);
        if s.name() != *want {
            wrong.push(format!("{phrase:?} → {} (want {want})", s.name()));
        }
    }
    for extra in ["the girl's hair", "a man in a red coat", "the lake"] {
        let s = suggest_classes(encoder, &classes, &[extra]).unwrap()[0].unwrap();
        println!("{extra:?} → {} ({:.3})", s.name(), s.similarity);
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}
