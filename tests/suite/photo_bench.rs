//! Edge benchmark of `mask::refine` on composites of real photographs with a known matte.
//!
//! Foreground texture and background are both photographs (`tests/fixtures/photos/`, public
//! domain / CC0, see the README there), cut by shapes generated here: sharp corners (a star,
//! block letters, a triangle and a quadrilateral), thin parts (bars 2–12 px), holes, thin rings
//! with background between them, hair-like strands, and a large smooth ellipse. The cases
//! include the failure modes of issue 23: a foreground with dark parts (`dark_fg`), a
//! background that is the same photo as the foreground (`similar_bg`), and thin rings. The
//! "model output" is the truth area-averaged over the 48×48 latent grid and upsampled
//! bilinearly, as the app does with LD-ZNet's map.
//!
//! Methods: bilinear (the coarse map itself), the plain two-scale colour guided filter
//! ([`two_scale_guided_filter`]) and `refine` with its defaults. Metrics: IoU at 0.5,
//! boundary F-score (boundary pixels matched within 2 px) and mean absolute error.
//!
//! - `photo_composites_refine_without_damage` (a normal test, ~seconds): the acceptance
//!   checks of issue 23 on every case.
//! - `photo_benchmark` (ignored): prints the per-case table (`cargo test --test suite
//!   photo_bench -- --ignored --nocapture`).

use std::path::Path;

use ldzmask::mask::MaskBuf;
use ldzmask::mask::refine::{RefineSettings, RgbView, refine, two_scale_guided_filter};

use crate::edge_bench::{Rng, latent_model_output, metrics, seg_dist};

/// Composite size (4:3, the photos' size): one latent cell is 13.3 × 10 px.
const W: usize = 640;
const H: usize = 480;

/// The cases: name, shape, foreground photo, background photo (`!` = mirrored).
const CASES: [(&str, &str, &str); 11] = [
    ("star", "coffee", "chelsea"),
    ("letters", "astronaut", "rocket"),
    ("dark_fg", "hopper", "chelsea"),
    ("similar_bg", "chelsea", "!chelsea"),
    ("rings", "coffee", "astronaut"),
    ("hair", "chelsea", "rocket"),
    ("hair_dark", "hopper", "coffee"),
    ("holes", "rocket", "coffee"),
    ("smooth", "rocket", "hubble"),
    ("thin", "astronaut", "hopper"),
    ("corners", "hubble", "coffee"),
];

/// A photo as interleaved RGB in `0..=1` (`W × H`), mirrored left–right when asked.
fn photo(name: &str) -> Vec<f32> {
    let (name, mirror) = match name.strip_prefix('!') {
        Some(n) => (n, true),
        None => (name, false),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/photos")
        .join(format!("{name}.jpg"));
    let img = image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), (W as u32, H as u32), "{}", path.display());
    let mut out = vec![0.0f32; W * H * 3];
    for y in 0..H {
        for x in 0..W {
            let sx = if mirror { W - 1 - x } else { x };
            let px = img.get_pixel(sx as u32, y as u32).0;
            for c in 0..3 {
                out[(y * W + x) * 3 + c] = f32::from(px[c]) / 255.0;
            }
        }
    }
    out
}

/// Anti-aliased coverage from a signed distance (negative inside), 1-px ramp.
fn coverage(sd: f32) -> f32 {
    (0.5 - sd).clamp(0.0, 1.0)
}

/// A matte built from shapes by union (`max`) and cut-outs (`min(a, 1 − shape)`).
struct Matte(Vec<f32>);

impl Matte {
    fn new() -> Self {
        Self(vec![0.0; W * H])
    }

    /// Adds (or with `cut`, removes) the shape given by its signed distance at pixel centres.
    fn paint(&mut self, cut: bool, sd: impl Fn(f32, f32) -> f32) {
        for y in 0..H {
            for x in 0..W {
                let c = coverage(sd(x as f32 + 0.5, y as f32 + 0.5));
                let a = &mut self.0[y * W + x];
                *a = if cut { a.min(1.0 - c) } else { a.max(c) };
            }
        }
    }

    fn disk(&mut self, cx: f32, cy: f32, r: f32) {
        self.paint(false, |x, y| (x - cx).hypot(y - cy) - r);
    }

    fn hole(&mut self, cx: f32, cy: f32, r: f32) {
        self.paint(true, |x, y| (x - cx).hypot(y - cy) - r);
    }

    fn ring(&mut self, cx: f32, cy: f32, r: f32, width: f32) {
        self.paint(false, |x, y| {
            ((x - cx).hypot(y - cy) - r).abs() - width / 2.0
        });
    }

    fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32) {
        let (cx, cy, hx, hy) = (
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0,
            (x1 - x0) / 2.0,
            (y1 - y0) / 2.0,
        );
        self.paint(false, |x, y| {
            let (qx, qy) = ((x - cx).abs() - hx, (y - cy).abs() - hy);
            qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0)
        });
    }

    /// A polygon (even–odd rule), exact distance to its edges.
    fn polygon(&mut self, verts: &[[f32; 2]]) {
        let n = verts.len();
        self.paint(false, |x, y| {
            let (mut inside, mut dist) = (false, f32::MAX);
            for k in 0..n {
                let (a, b) = (verts[k], verts[(k + 1) % n]);
                dist = dist.min(seg_dist([x, y], a, b));
                if (a[1] > y) != (b[1] > y) && x < a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0])
                {
                    inside = !inside;
                }
            }
            if inside { -dist } else { dist }
        });
    }

    /// A star with `n` points, outer / inner radius.
    fn star(&mut self, cx: f32, cy: f32, outer: f32, inner: f32, n: usize) {
        let verts: Vec<[f32; 2]> = (0..2 * n)
            .map(|k| {
                let t = std::f32::consts::PI * k as f32 / n as f32 - std::f32::consts::FRAC_PI_2;
                let r = if k % 2 == 0 { outer } else { inner };
                [cx + r * t.cos(), cy + r * t.sin()]
            })
            .collect();
        self.polygon(&verts);
    }

    /// `count` hair-like strands 1–3 px wide: random walks with slowly turning heading from
    /// around `(cx, cy)` outward, `len` px long at most.
    fn strands(&mut self, rng: &mut Rng, cx: f32, cy: f32, count: usize, len: (f32, f32)) {
        for _ in 0..count {
            let width = rng.range(1.0, 3.0);
            let mut p = [cx + rng.range(-30.0, 30.0), cy + rng.range(-30.0, 30.0)];
            let mut heading = rng.range(0.0, std::f32::consts::TAU);
            let turn = rng.range(-0.06, 0.06);
            let length = rng.range(len.0, len.1);
            for _ in 0..(length / 4.0) as usize {
                heading += turn + rng.range(-0.05, 0.05);
                let q = [p[0] + 4.0 * heading.cos(), p[1] + 4.0 * heading.sin()];
                let x0 = (p[0].min(q[0]) - 6.0).max(0.0) as usize;
                let x1 = ((p[0].max(q[0]) + 6.0).max(0.0) as usize).min(W);
                let y0 = (p[1].min(q[1]) - 6.0).max(0.0) as usize;
                let y1 = ((p[1].max(q[1]) + 6.0).max(0.0) as usize).min(H);
                for y in y0..y1 {
                    for x in x0..x1 {
                        let d = seg_dist([x as f32 + 0.5, y as f32 + 0.5], p, q);
                        let a = &mut self.0[y * W + x];
                        *a = a.max(coverage(d - width / 2.0));
                    }
                }
                p = q;
            }
        }
    }
}

/// The true matte of a case.
fn shape(name: &str) -> Vec<f32> {
    let mut m = Matte::new();
    let mut rng = Rng(7);
    match name {
        "star" => m.star(320.0, 240.0, 200.0, 85.0, 5),
        "letters" => {
            let s = 40.0;
            // L, T, E from 40-px bars.
            m.rect(60.0, 100.0, 60.0 + s, 380.0);
            m.rect(60.0, 380.0 - s, 200.0, 380.0);
            m.rect(230.0, 100.0, 410.0, 100.0 + s);
            m.rect(320.0 - s / 2.0, 100.0, 320.0 + s / 2.0, 380.0);
            m.rect(440.0, 100.0, 440.0 + s, 380.0);
            m.rect(440.0, 100.0, 580.0, 100.0 + s);
            m.rect(440.0, 220.0, 560.0, 220.0 + s);
            m.rect(440.0, 380.0 - s, 580.0, 380.0);
        }
        "dark_fg" => {
            m.disk(300.0, 250.0, 150.0);
            m.polygon(&[[200.0, 80.0], [520.0, 140.0], [460.0, 420.0]]);
        }
        "similar_bg" => {
            m.disk(320.0, 240.0, 140.0);
            m.star(320.0, 240.0, 210.0, 100.0, 7);
        }
        "rings" => {
            m.disk(320.0, 240.0, 30.0);
            for k in 0..10 {
                m.ring(320.0, 240.0, 50.0 + 18.0 * k as f32, 4.0);
            }
        }
        "hair" => {
            m.disk(320.0, 300.0, 90.0);
            m.strands(&mut rng, 320.0, 300.0, 40, (150.0, 280.0));
        }
        "hair_dark" => {
            m.disk(320.0, 240.0, 80.0);
            m.strands(&mut rng, 320.0, 240.0, 30, (120.0, 250.0));
        }
        "holes" => {
            m.disk(320.0, 240.0, 200.0);
            for (cx, cy, r) in [
                (250.0, 180.0, 30.0),
                (380.0, 200.0, 20.0),
                (300.0, 320.0, 40.0),
                (420.0, 320.0, 15.0),
                (200.0, 280.0, 12.0),
            ] {
                m.hole(cx, cy, r);
            }
        }
        "smooth" => m.paint(false, |x, y| {
            ((x - 320.0) / 260.0).hypot((y - 240.0) / 190.0) * 190.0 - 190.0
        }),
        "thin" => {
            m.rect(80.0, 60.0, 560.0, 100.0);
            for (x, w) in [
                (110.0, 2.0),
                (160.0, 3.0),
                (210.0, 4.0),
                (270.0, 6.0),
                (340.0, 8.0),
                (420.0, 3.0),
                (480.0, 12.0),
            ] {
                m.rect(x, 100.0, x + w, 420.0);
            }
        }
        "corners" => {
            m.polygon(&[[100.0, 400.0], [250.0, 80.0], [330.0, 420.0]]);
            m.polygon(&[
                [380.0, 120.0],
                [560.0, 160.0],
                [520.0, 380.0],
                [350.0, 330.0],
            ]);
        }
        other => panic!("unknown case {other}"),
    }
    m.0
}

/// One composite: image, truth, model map.
pub(crate) struct Composite {
    pub(crate) rgb: Vec<u8>,
    pub(crate) truth: MaskBuf,
    pub(crate) model: MaskBuf,
}

impl Composite {
    pub(crate) fn view(&self) -> RgbView<'_> {
        RgbView {
            width: W as u32,
            height: H as u32,
            pixels: &self.rgb,
        }
    }
}

fn composite(name: &str, fg: &str, bg: &str) -> Composite {
    let alpha = shape(name);
    let (fg, bg) = (photo(fg), photo(bg));
    let rgb = (0..W * H * 3)
        .map(|k| {
            let a = alpha[k / 3];
            ((a * fg[k] + (1.0 - a) * bg[k]).clamp(0.0, 1.0) * 255.0 + 0.5) as u8
        })
        .collect();
    let truth = MaskBuf::from_vec(W as u32, H as u32, alpha).expect("size");
    let model = latent_model_output(&truth);
    Composite { rgb, truth, model }
}

/// Per case: metrics of bilinear, two-scale guided filter and refine.
fn evaluate() -> Vec<(&'static str, [[f64; 3]; 3])> {
    CASES
        .iter()
        .map(|&(name, fg, bg)| {
            let case = composite(name, fg, bg);
            let filtered = two_scale_guided_filter(case.view(), &case.model, None).expect("filter");
            let refined =
                refine(case.view(), &case.model, None, &RefineSettings::default()).expect("refine");
            // Guarantee of issue 23: only the uncertain band changes, in the full-resolution
            // path and in the app's reduced-resolution preview path.
            let preview = RefineSettings {
                max_side: Some(320),
                ..RefineSettings::default()
            };
            let previewed = refine(case.view(), &case.model, None, &preview).expect("preview");
            for ((&r, &p), &m) in refined
                .data
                .iter()
                .zip(&previewed.data)
                .zip(&case.model.data)
            {
                if m <= 0.02 || m >= 0.98 {
                    assert_eq!((r, p), (m, m), "{name}: a confident pixel changed");
                }
            }
            let scores = [&case.model, &filtered, &refined].map(|p| metrics(p, &case.truth));
            (name, scores)
        })
        .collect()
}

/// Mean of each method's metrics over the cases.
fn means(rows: &[(&str, [[f64; 3]; 3])]) -> [[f64; 3]; 3] {
    let mut sums = [[0.0f64; 3]; 3];
    for (_, scores) in rows {
        for (s, m) in sums.iter_mut().zip(scores) {
            for (s, v) in s.iter_mut().zip(m) {
                *s += v / rows.len() as f64;
            }
        }
    }
    sums
}

/// The table as Markdown (IoU / boundary-F / MAE per method).
fn table(rows: &[(&str, [[f64; 3]; 3])]) -> String {
    let mut out = String::from(
        "| case | bilinear IoU / BF / MAE | guided filter IoU / BF / MAE | refine IoU / BF / MAE |\n|---|---|---|---|\n",
    );
    let line = |name: &str, scores: &[[f64; 3]; 3]| {
        let cells: Vec<String> = scores
            .iter()
            .map(|m| format!("{:.3} / {:.3} / {:.4}", m[0], m[1], m[2]))
            .collect();
        format!("| {name} | {} |\n", cells.join(" | "))
    };
    for (name, scores) in rows {
        out += &line(name, scores);
    }
    out + &line("**mean**", &means(rows))
}

#[test]
fn photo_composites_refine_without_damage() {
    let rows = evaluate();
    println!("{}", table(&rows));
    let mut failures = Vec::new();
    for (name, [bilinear, _, refined]) in &rows {
        if refined[1] < bilinear[1] - 0.02 {
            failures.push(format!(
                "{name}: boundary-F {:.3} < bilinear {:.3} − 0.02",
                refined[1], bilinear[1]
            ));
        }
        if refined[0] < bilinear[0] - 0.005 {
            failures.push(format!(
                "{name}: IoU {:.3} < bilinear {:.3} − 0.005",
                refined[0], bilinear[0]
            ));
        }
    }
    let hair = rows.iter().find(|(n, _)| *n == "hair").expect("hair case");
    if hair.1[2][1] < 0.85 {
        failures.push(format!("hair: boundary-F {:.3} < 0.85", hair.1[2][1]));
    }
    let [bilinear, filtered, refined] = means(&rows);
    for (what, base) in [("bilinear", bilinear), ("guided filter", filtered)] {
        if !(refined[0] > base[0] && refined[1] > base[1] && refined[2] < base[2]) {
            failures.push(format!("mean {refined:?} not better than {what} {base:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "benchmark: cargo test --test suite photo_bench -- --ignored --nocapture"]
fn photo_benchmark() {
    let rows = evaluate();
    println!("{}", table(&rows));

    // Speed at 12 MP: the hair composite scaled up to 4000×3000 (bilinear), its model map made
    // as above from the scaled truth, so the band covers the same share of the image.
    let (w, h) = (4000u32, 3000u32);
    let case = composite("hair", "chelsea", "rocket");
    let rgb = image::RgbImage::from_raw(W as u32, H as u32, case.rgb).expect("size");
    let big = image::imageops::resize(&rgb, w, h, image::imageops::FilterType::Triangle);
    let model = latent_model_output(&case.truth.resized(w, h));
    let view = RgbView {
        width: w,
        height: h,
        pixels: big.as_raw(),
    };
    println!("rayon threads: {}", rayon::current_num_threads());
    for (name, settings) in [
        ("full resolution", RefineSettings::default()),
        ("preview", RefineSettings::preview()),
    ] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            let out = refine(view, &model, None, &settings).expect("refine");
            best = best.min(start.elapsed().as_secs_f64());
            assert_eq!(out.size(), (w, h));
        }
        println!("refine 4000×3000 photo composite, {name}: {best:.3} s (best of 5)");
    }
}
