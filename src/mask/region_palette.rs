//! The colours of a scene partition's exports: Regional Prompter's region colours (the
//! default palette of `regions.png` and of the app's Regions view) and the ADE20K class colours
//! that ControlNet's segmentation model was trained on.
//!
//! * [`rp_colour`]: hako-mikan/sd-webui-regional-prompter `scripts/regions.py`
//!   `deterministic_colours`: region `i` is HSV(hᵢ, 0.5, 0.5) with the hue sequence 0, ½, ¼, ¾,
//!   ⅛, ⅜, … (each new cycle starts half a step in and jumps over the hues already taken), each
//!   channel `× 256` and truncated. Its upload filter keeps colours whose S and V lie in
//!   [0.49, 0.51], so these exact values must be written (research note, Appendix A).
//! * [`ADE20K`]: lllyasviel/ControlNet-v1-1-nightly `annotator/uniformer/mmseg/datasets/ade.py`
//!   `PALETTE` (equal entry for entry to the OneFormer registry's), class id = index.

/// The colour of "nothing" (label 0) in `regions.png` and the Regions view: white, which
/// Regional Prompter and Latent Couple read as "no region".
pub const NOTHING_RGB: [u8; 3] = [255, 255, 255];

/// The hue (in turns, `0..1`) of Regional Prompter's region `index` (0-based).
pub fn rp_hue(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    // Cycle c holds indices 2^(c-1) .. 2^c - 1, at hues d, 3d, 5d, … with d = 1 / 2^c.
    let cycle = usize::BITS - index.leading_zeros(); // ceil(log2(index + 1))
    let first = 1usize << (cycle - 1);
    let step = 1.0 / (1u64 << cycle) as f64;
    step + 2.0 * step * (index - first) as f64
}

/// Python's `colorsys.hsv_to_rgb`, in the same order of float operations.
pub fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    if s == 0.0 {
        return [v, v, v];
    }
    let i = (h * 6.0).floor();
    let f = (h * 6.0) - i;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match (i as i64).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Regional Prompter's colour for region `index` (0-based): `hsv_to_rgb(hue, .5, .5) × 256`,
/// truncated, as its `deterministic_colours` computes it (`index 0 = (128, 64, 64)`).
pub fn rp_colour(index: usize) -> [u8; 3] {
    let [r, g, b] = hsv_to_rgb(rp_hue(index), 0.5, 0.5);
    // v ≤ 0.5, so every channel × 256 is at most 128 and fits a byte.
    [(r * 256.0) as u8, (g * 256.0) as u8, (b * 256.0) as u8]
}

/// The palette colour of partition label `label`: white for 0 (nothing), Regional Prompter's
/// colour `label − 1` otherwise.
pub fn label_colour(label: u8) -> [u8; 3] {
    match label {
        0 => NOTHING_RGB,
        k => rp_colour(usize::from(k) - 1),
    }
}

/// `#RRGGBB` in upper case (Inspire's "Color Mask To Depth Mask" accepts upper case only).
pub fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2])
}

/// The integer ComfyUI's `ImageColorToMask` compares pixels with: `R·65536 + G·256 + B`.
pub fn comfy_color_int(rgb: [u8; 3]) -> u32 {
    (u32::from(rgb[0]) << 16) | (u32::from(rgb[1]) << 8) | u32::from(rgb[2])
}

/// ADE20K's 150 classes and their colours in ControlNet's segmentation maps (class id = index;
/// the dataset's annotation label is id + 1). Note: road (6) and skyscraper (48) share a colour.
pub const ADE20K: [(&str, [u8; 3]); 150] = [
    ("wall", [120, 120, 120]),
    ("building", [180, 120, 120]),
    ("sky", [6, 230, 230]),
    ("floor", [80, 50, 50]),
    ("tree", [4, 200, 3]),
    ("ceiling", [120, 120, 80]),
    ("road", [140, 140, 140]),
    ("bed", [204, 5, 255]),
    ("windowpane", [230, 230, 230]),
    ("grass", [4, 250, 7]),
    ("cabinet", [224, 5, 255]),
    ("sidewalk", [235, 255, 7]),
    ("person", [150, 5, 61]),
    ("earth", [120, 120, 70]),
    ("door", [8, 255, 51]),
    ("table", [255, 6, 82]),
    ("mountain", [143, 255, 140]),
    ("plant", [204, 255, 4]),
    ("curtain", [255, 51, 7]),
    ("chair", [204, 70, 3]),
    ("car", [0, 102, 200]),
    ("water", [61, 230, 250]),
    ("painting", [255, 6, 51]),
    ("sofa", [11, 102, 255]),
    ("shelf", [255, 7, 71]),
    ("house", [255, 9, 224]),
    ("sea", [9, 7, 230]),
    ("mirror", [220, 220, 220]),
    ("rug", [255, 9, 92]),
    ("field", [112, 9, 255]),
    ("armchair", [8, 255, 214]),
    ("seat", [7, 255, 224]),
    ("fence", [255, 184, 6]),
    ("desk", [10, 255, 71]),
    ("rock", [255, 41, 10]),
    ("wardrobe", [7, 255, 255]),
    ("lamp", [224, 255, 8]),
    ("bathtub", [102, 8, 255]),
    ("railing", [255, 61, 6]),
    ("cushion", [255, 194, 7]),
    ("base", [255, 122, 8]),
    ("box", [0, 255, 20]),
    ("column", [255, 8, 41]),
    ("signboard", [255, 5, 153]),
    ("chest of drawers", [6, 51, 255]),
    ("counter", [235, 12, 255]),
    ("sand", [160, 150, 20]),
    ("sink", [0, 163, 255]),
    ("skyscraper", [140, 140, 140]),
    ("fireplace", [250, 10, 15]),
    ("refrigerator", [20, 255, 0]),
    ("grandstand", [31, 255, 0]),
    ("path", [255, 31, 0]),
    ("stairs", [255, 224, 0]),
    ("runway", [153, 255, 0]),
    ("case", [0, 0, 255]),
    ("pool table", [255, 71, 0]),
    ("pillow", [0, 235, 255]),
    ("screen door", [0, 173, 255]),
    ("stairway", [31, 0, 255]),
    ("river", [11, 200, 200]),
    ("bridge", [255, 82, 0]),
    ("bookcase", [0, 255, 245]),
    ("blind", [0, 61, 255]),
    ("coffee table", [0, 255, 112]),
    ("toilet", [0, 255, 133]),
    ("flower", [255, 0, 0]),
    ("book", [255, 163, 0]),
    ("hill", [255, 102, 0]),
    ("bench", [194, 255, 0]),
    ("countertop", [0, 143, 255]),
    ("stove", [51, 255, 0]),
    ("palm", [0, 82, 255]),
    ("kitchen island", [0, 255, 41]),
    ("computer", [0, 255, 173]),
    ("swivel chair", [10, 0, 255]),
    ("boat", [173, 255, 0]),
    ("bar", [0, 255, 153]),
    ("arcade machine", [255, 92, 0]),
    ("hovel", [255, 0, 255]),
    ("bus", [255, 0, 245]),
    ("towel", [255, 0, 102]),
    ("light", [255, 173, 0]),
    ("truck", [255, 0, 20]),
    ("tower", [255, 184, 184]),
    ("chandelier", [0, 31, 255]),
    ("awning", [0, 255, 61]),
    ("streetlight", [0, 71, 255]),
    ("booth", [255, 0, 204]),
    ("television receiver", [0, 255, 194]),
    ("airplane", [0, 255, 82]),
    ("dirt track", [0, 10, 255]),
    ("apparel", [0, 112, 255]),
    ("pole", [51, 0, 255]),
    ("land", [0, 194, 255]),
    ("bannister", [0, 122, 255]),
    ("escalator", [0, 255, 163]),
    ("ottoman", [255, 153, 0]),
    ("bottle", [0, 255, 10]),
    ("buffet", [255, 112, 0]),
    ("poster", [143, 255, 0]),
    ("stage", [82, 0, 255]),
    ("van", [163, 255, 0]),
    ("ship", [255, 235, 0]),
    ("fountain", [8, 184, 170]),
    ("conveyer belt", [133, 0, 255]),
    ("canopy", [0, 255, 92]),
    ("washer", [184, 0, 255]),
    ("plaything", [255, 0, 31]),
    ("swimming pool", [0, 184, 255]),
    ("stool", [0, 214, 255]),
    ("barrel", [255, 0, 112]),
    ("basket", [92, 255, 0]),
    ("waterfall", [0, 224, 255]),
    ("tent", [112, 224, 255]),
    ("bag", [70, 184, 160]),
    ("minibike", [163, 0, 255]),
    ("cradle", [153, 0, 255]),
    ("oven", [71, 255, 0]),
    ("ball", [255, 0, 163]),
    ("food", [255, 204, 0]),
    ("step", [255, 0, 143]),
    ("tank", [0, 255, 235]),
    ("trade name", [133, 255, 0]),
    ("microwave", [255, 0, 235]),
    ("pot", [245, 0, 255]),
    ("animal", [255, 0, 122]),
    ("bicycle", [255, 245, 0]),
    ("lake", [10, 190, 212]),
    ("dishwasher", [214, 255, 0]),
    ("screen", [0, 204, 255]),
    ("blanket", [20, 0, 255]),
    ("sculpture", [255, 255, 0]),
    ("hood", [0, 153, 255]),
    ("sconce", [0, 41, 255]),
    ("vase", [0, 255, 204]),
    ("traffic light", [41, 0, 255]),
    ("tray", [41, 255, 0]),
    ("ashcan", [173, 0, 255]),
    ("fan", [0, 245, 255]),
    ("pier", [71, 0, 255]),
    ("crt screen", [122, 0, 255]),
    ("plate", [0, 255, 184]),
    ("monitor", [0, 92, 255]),
    ("bulletin board", [184, 255, 0]),
    ("shower", [0, 133, 255]),
    ("radiator", [255, 214, 0]),
    ("glass", [25, 194, 194]),
    ("clock", [102, 255, 0]),
    ("flag", [92, 0, 255]),
];

/// The ADE20K class id for a class name (as in [`ADE20K`], case and surrounding spaces
/// ignored) or a class id written as a number.
pub fn ade20k_class(name: &str) -> Option<usize> {
    let name = name.trim();
    if let Ok(id) = name.parse::<usize>() {
        return (id < ADE20K.len()).then_some(id);
    }
    ADE20K
        .iter()
        .position(|(class, _)| class.eq_ignore_ascii_case(name))
}

/// Serde of an optional ADE20K class id as its class name (`"ade20k": "sky"` in session
/// files, readable by people); reading also takes an id and refuses a name that is not one of
/// the 150 classes, naming it.
pub mod ade20k_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{ADE20K, ade20k_class};

    /// Writes `Some(id)` as the class name, `None` as null.
    pub fn serialize<S: Serializer>(class: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
        match class.and_then(|c| ADE20K.get(c)) {
            Some((name, _)) => s.serialize_some(name),
            None => s.serialize_none(),
        }
    }

    /// Reads a class name or id (see [`ade20k_class`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrId {
            Name(String),
            Id(u64),
        }
        let Some(value) = Option::<NameOrId>::deserialize(d)? else {
            return Ok(None);
        };
        let text = match value {
            NameOrId::Name(name) => name,
            NameOrId::Id(id) => id.to_string(),
        };
        ade20k_class(&text).map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "ade20k {text:?} is not an ADE20K class name or id (0..149)"
            ))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    /// The research note's Appendix A, computed with Regional Prompter's own formula.
    const APPENDIX_A: [(u32, [u8; 3]); 24] = [
        (8405056, [128, 64, 64]),
        (4227200, [64, 128, 128]),
        (6324288, [96, 128, 64]),
        (6307968, [96, 64, 128]),
        (8417344, [128, 112, 64]),
        (4227152, [64, 128, 80]),
        (4214912, [64, 80, 128]),
        (8405104, [128, 64, 112]),
        (8411200, [128, 88, 64]),
        (7897152, [120, 128, 64]),
        (4751424, [72, 128, 64]),
        (4227176, [64, 128, 104]),
        (4221056, [64, 104, 128]),
        (4735104, [72, 64, 128]),
        (7880832, [120, 64, 128]),
        (8405080, [128, 64, 88]),
        (8408128, [128, 76, 64]),
        (8414272, [128, 100, 64]),
        (8420416, [128, 124, 64]),
        (7110720, [108, 128, 64]),
        (5537856, [84, 128, 64]),
        (4227140, [64, 128, 68]),
        (4227164, [64, 128, 92]),
        (4227188, [64, 128, 116]),
    ];

    #[test]
    fn regional_prompter_colours_match_appendix_a() {
        for (i, (int, rgb)) in APPENDIX_A.iter().enumerate() {
            assert_eq!(rp_colour(i), *rgb, "index {i}");
            assert_eq!(comfy_color_int(*rgb), *int, "index {i}");
        }
        assert_eq!(hex(rp_colour(0)), "#804040");
        assert_eq!(hex(rp_colour(16)), "#804C40");
        assert_eq!(label_colour(0), NOTHING_RGB);
        assert_eq!(label_colour(1), [128, 64, 64]);
    }

    #[test]
    fn the_first_255_colours_are_distinct_and_not_white() {
        let colours: Vec<[u8; 3]> = (0..255).map(rp_colour).collect();
        for (i, c) in colours.iter().enumerate() {
            assert_ne!(*c, NOTHING_RGB);
            assert!(!colours[..i].contains(c), "index {i} repeats {c:?}");
        }
    }

    #[test]
    fn ade20k_names_and_ids() {
        assert_eq!(ade20k_class("sky"), Some(2));
        assert_eq!(ade20k_class(" Person "), Some(12));
        assert_eq!(ade20k_class("12"), Some(12));
        assert_eq!(ade20k_class("150"), None);
        assert_eq!(ade20k_class("unicorn"), None);
        assert_eq!(ADE20K[2].1, [6, 230, 230]);
        assert_eq!(ADE20K[6].1, ADE20K[48].1);
        assert_eq!(ADE20K[149], ("flag", [92, 0, 255]));
    }
}
