//! End to end on the real checkpoints. Needs `sd-v1-4-full-ema.ckpt` and `LDZNet_txt2mask.ckpt`
//! (or a bundle) in `weights/` (see weights/README.md) and about 10 GB of memory, so it is
//! ignored by default. Run it with:
//!
//! ```sh
//! cargo test --release --test suite real_weights:: -- --ignored --nocapture
//! ```

use ldzmask::device::{DeviceChoice, select_device};
use ldzmask::discovery::find_weights;
use ldzmask::imageio::RgbImage;
use ldzmask::pipeline::{Mode, Randomness, Segmenter};
use ldzmask::tokenizer::ClipTokenizer;
use ldzmask::weights::WeightFiles;

#[test]
#[ignore = "needs the real checkpoints in weights/ (see weights/README.md)"]
fn real_checkpoints_segment_a_synthetic_scene() {
    let found = find_weights(None).unwrap_or_else(|e| panic!("{e}"));
    let device = select_device(DeviceChoice::resolve(None).unwrap_or_default());
    let files = WeightFiles::open(&found.files).unwrap_or_else(|e| panic!("{e}"));
    let tokenizer = ClipTokenizer::bundled().expect("tokenizer");
    let mut segmenter = Segmenter::load(
        &files,
        found.configs,
        found.preprocess,
        tokenizer,
        &device.device,
        &mut |i, n, what| {
            println!("loading [{i}/{n}] {what}");
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A blue sky above green grass: "sky" must cover the top more than the bottom.
    let (width, height) = (512u32, 384u32);
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |_| {
                if y < height / 2 {
                    [110, 160, 230]
                } else {
                    [60, 140, 50]
                }
            })
        })
        .collect();
    let image = RgbImage {
        width,
        height,
        pixels,
    };
    let masks = segmenter
        .segment(
            &image,
            &["sky", "grass"],
            &Randomness::seeded(Mode::Deterministic, 0),
        )
        .expect("segment");
    for m in &masks {
        assert_eq!((m.width, m.height), (width, height));
        assert!(m.probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
        let half = (width * height / 2) as usize;
        let top: f32 = m.probabilities[..half].iter().sum::<f32>() / half as f32;
        let bottom: f32 = m.probabilities[half..].iter().sum::<f32>() / half as f32;
        println!(
            "{:?} ({:?}): mean probability top {top:.3}, bottom {bottom:.3}; {:?}",
            m.phrase, m.prompt, m.timings
        );
    }
    let mean = |m: &ldzmask::pipeline::PhraseMask, top: bool| {
        let half = (width * height / 2) as usize;
        let s = if top {
            &m.probabilities[..half]
        } else {
            &m.probabilities[half..]
        };
        s.iter().sum::<f32>() / half as f32
    };
    assert!(
        mean(&masks[0], true) > mean(&masks[0], false),
        "sky is on top"
    );
    assert!(
        mean(&masks[1], false) > mean(&masks[1], true),
        "grass is at the bottom"
    );
}
