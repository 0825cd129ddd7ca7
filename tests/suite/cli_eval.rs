//! `ldzmask eval` end to end on the tiny fixture weights: a synthetic dataset in the ldzmask
//! layout (the fixture images, rectangle masks, one missing mask, one broken image) and one in
//! the PhraseCut layout (polygons), checked against metrics this test computes itself from the
//! maps `--save-masks` writes and from ground truths it knows by construction.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Io, fixtures_dir, ldzmask, run, tiny_weights_dir, write_png_from_tensor};

/// A pixel rectangle: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy)]
struct Rect {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Rect {
    fn contains(&self, x: u32, y: u32) -> bool {
        (self.x0..self.x1).contains(&x) && (self.y0..self.y1).contains(&y)
    }

    /// The polygon whose integer points are exactly this rectangle's pixels.
    fn polygon(&self) -> serde_json::Value {
        let (l, t) = (f64::from(self.x0) - 0.5, f64::from(self.y0) - 0.5);
        let (r, b) = (f64::from(self.x1) - 0.5, f64::from(self.y1) - 0.5);
        serde_json::json!([[l, t], [r, t], [r, b], [l, b]])
    }
}

/// Ground truth by construction: the union of `rects` at `width × height`.
fn truth(rects: &[Rect], width: u32, height: u32) -> Vec<bool> {
    (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| rects.iter().any(|r| r.contains(x, y)))
        .collect()
}

fn write_mask(rects: &[Rect], width: u32, height: u32, path: &Path) {
    let pixels = truth(rects, width, height)
        .into_iter()
        .map(|v| if v { 255 } else { 0 })
        .collect();
    image::GrayImage::from_raw(width, height, pixels)
        .expect("size")
        .save(path)
        .expect("save mask");
}

/// A 16-bit map written by `--save-masks`, as probabilities.
fn read_levels(path: &Path) -> Vec<f64> {
    let map = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_luma16();
    map.pixels().map(|p| f64::from(p.0[0]) / 65535.0).collect()
}

/// This test's own metrics over (probabilities, truth) samples: per-sample IoU at 0.3 / 0.5
/// (prediction `p > t`), their mean, Σ I / Σ U, and AP of the pooled ranking by sorting (ties
/// entering together). Fractions.
struct Expected {
    per_sample_iou: Vec<[f64; 2]>,
    miou: [f64; 2],
    overall: [f64; 2],
    ap: f64,
}

/// One scored sample as this test reads it back: probabilities and truth on the metric grid.
type Scored = (Vec<f64>, Vec<bool>);

fn expected(samples: &[Scored]) -> Expected {
    let mut per_sample_iou = Vec::new();
    let (mut inter, mut union) = ([0u64; 2], [0u64; 2]);
    for (p, t) in samples {
        assert_eq!(p.len(), t.len());
        let mut ious = [0.0; 2];
        for (k, th) in [0.3, 0.5].into_iter().enumerate() {
            let i = p.iter().zip(t).filter(|&(&p, &t)| p > th && t).count() as u64;
            let u = p.iter().zip(t).filter(|&(&p, &t)| p > th || t).count() as u64;
            ious[k] = if u == 0 { 1.0 } else { i as f64 / u as f64 };
            inter[k] += i;
            union[k] += u;
        }
        per_sample_iou.push(ious);
    }
    let n = per_sample_iou.len() as f64;
    let mut pixels: Vec<(f64, bool)> = samples
        .iter()
        .flat_map(|(p, t)| p.iter().copied().zip(t.iter().copied()))
        .collect();
    pixels.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pixels.iter().filter(|p| p.1).count() as f64;
    let (mut tp, mut seen, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < pixels.len() {
        let level = pixels[i].0;
        while i < pixels.len() && pixels[i].0 == level {
            seen += 1.0;
            tp += if pixels[i].1 { 1.0 } else { 0.0 };
            i += 1;
        }
        let recall = tp / positives;
        ap += (recall - last_recall) * (tp / seen);
        last_recall = recall;
    }
    Expected {
        miou: [0, 1].map(|k| per_sample_iou.iter().map(|s| s[k]).sum::<f64>() / n),
        overall: [0, 1].map(|k| inter[k] as f64 / union[k] as f64),
        per_sample_iou,
        ap,
    }
}

/// The CSV's rows as field lists (the test's phrases need no quoting).
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("samples.csv");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("index,id,image,phrase,status,error"),
        "{header}"
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

/// Checks summary.json, the CSV's IoU columns and the printed table against `e`.
fn check_reported(
    out: &Path,
    printed: &str,
    key: &str,
    e: &Expected,
    scored_rows: &[Vec<String>],
    column: usize,
) {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("json"))
            .expect("summary.json parses");
    let m = &summary[key];
    for (k, t) in ["0.3", "0.5"].into_iter().enumerate() {
        let miou = m["miou"][t].as_f64().expect("miou");
        let overall = m["overall_iou"][t].as_f64().expect("overall");
        assert!(
            close(miou, e.miou[k], 1e-12),
            "{key} mIoU@{t}: {miou} vs {}",
            e.miou[k]
        );
        assert!(
            close(overall, e.overall[k], 1e-12),
            "{key} oIoU@{t}: {overall} vs {}",
            e.overall[k]
        );
    }
    let ap = m["ap"].as_f64().expect("ap");
    assert!(close(ap, e.ap, 1e-9), "{key} AP: {ap} vs {}", e.ap);
    for (row, ious) in scored_rows.iter().zip(&e.per_sample_iou) {
        for k in 0..2 {
            let got: f64 = row[column + k].parse().expect("iou column");
            assert!(
                close(got, ious[k], 1e-6),
                "{key} row {row:?}: {got} vs {}",
                ious[k]
            );
        }
    }
    // The table: the row whose label is the engine (raw) or the refined label, in percent.
    let label = if key == "raw" {
        "ldznet "
    } else {
        "ldznet + edge refine"
    };
    let line = printed
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` row in:\n{printed}"));
    let numbers: Vec<&str> = line[label.len()..].split_whitespace().collect();
    let percent = |v: f64| format!("{:.1}", v * 100.0);
    assert_eq!(
        numbers,
        [
            percent(e.miou[0]),
            percent(e.miou[1]),
            percent(e.overall[0]),
            percent(e.overall[1]),
            percent(e.ap)
        ],
        "{line}"
    );
}

/// Reads the raw and refined maps of the scored rows and pairs them with their truths.
fn maps(out: &Path, rows: &[Vec<String>], truths: &[Vec<bool>]) -> (Vec<Scored>, Vec<Scored>) {
    let mut raw = Vec::new();
    let mut refined = Vec::new();
    for (row, truth) in rows.iter().zip(truths) {
        let index: usize = row[0].parse().expect("index");
        let phrase = row[3].replace(' ', "-");
        let stem = out.join("maps").join(format!("{index:05}-{phrase}"));
        let written_truth = image::open(format!("{}-truth.png", stem.display()))
            .expect("truth map")
            .to_luma8();
        assert_eq!(
            written_truth
                .pixels()
                .map(|p| p.0[0] == 255)
                .collect::<Vec<_>>(),
            *truth,
            "{}: the written truth is the constructed one",
            stem.display()
        );
        raw.push((
            read_levels(Path::new(&format!("{}-raw.png", stem.display()))),
            truth.clone(),
        ));
        refined.push((
            read_levels(Path::new(&format!("{}-refined.png", stem.display()))),
            truth.clone(),
        ));
    }
    (raw, refined)
}

/// Writes the fixture images (64×64 and 96×64) to `dir`; returns their paths and sizes.
fn fixture_images(dir: &Path) -> Vec<(PathBuf, u32, u32)> {
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    ["case0", "case1"]
        .iter()
        .map(|name| {
            let path = dir.join(format!("{name}.png"));
            let golden = io.get(&format!("{name}.image"));
            write_png_from_tensor(golden, &path);
            (path, golden.shape[3] as u32, golden.shape[2] as u32)
        })
        .collect()
}

#[test]
fn eval_scores_the_ldzmask_layout_like_an_independent_count() {
    let weights = tiny_weights_dir("eval-samples");
    let data = weights.join("data");
    std::fs::create_dir_all(data.join("masks")).expect("dir");
    let images = fixture_images(&data);
    let (w0, h0) = (images[0].1, images[0].2);
    let (w1, h1) = (images[1].1, images[1].2);
    let cases: Vec<(&str, &str, Vec<Rect>, u32, u32)> = vec![
        (
            "case0.png",
            "mickey mouse",
            vec![Rect {
                x0: 10,
                y0: 8,
                x1: 40,
                y1: 50,
            }],
            w0,
            h0,
        ),
        (
            "case0.png",
            "the ears",
            vec![
                Rect {
                    x0: 5,
                    y0: 2,
                    x1: 20,
                    y1: 14,
                },
                Rect {
                    x0: 44,
                    y0: 2,
                    x1: 60,
                    y1: 14,
                },
            ],
            w0,
            h0,
        ),
        (
            "case1.png",
            "man wearing blue shirt",
            vec![Rect {
                x0: 30,
                y0: 20,
                x1: 70,
                y1: 64,
            }],
            w1,
            h1,
        ),
        // An empty ground truth is a valid sample (its AP is undefined, its IoU is not).
        ("case1.png", "a unicorn", vec![], w1, h1),
    ];
    let mut lines = Vec::new();
    let mut truths = Vec::new();
    for (i, (image, phrase, rects, w, h)) in cases.iter().enumerate() {
        let mask = format!("masks/{i}.png");
        write_mask(rects, *w, *h, &data.join(&mask));
        truths.push(truth(rects, *w, *h));
        lines.push(serde_json::json!({"image": image, "phrase": phrase, "mask": mask}).to_string());
    }
    // Two failing samples between the good ones: a missing mask and a broken image.
    std::fs::write(data.join("broken.png"), b"\x89PNG but not really").expect("write");
    lines.insert(
        2,
        serde_json::json!({"image": "case0.png", "phrase": "x", "mask": "masks/none.png"})
            .to_string(),
    );
    lines.push(
        serde_json::json!({"image": "broken.png", "phrase": "y", "mask": "masks/0.png"})
            .to_string(),
    );
    std::fs::write(data.join("samples.jsonl"), lines.join("\n") + "\n").expect("write");

    let out = weights.join("out");
    let (code, printed) = run(ldzmask()
        .arg("--weights")
        .arg(&weights)
        .arg("eval")
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--grid", "0", "--save-masks"]));
    assert_eq!(code, 1, "failed samples give exit code 1:\n{printed}");
    assert!(
        printed.contains("6 samples: 4 scored, 2 failed"),
        "{printed}"
    );
    assert!(printed.contains("published (LD-ZNet paper"), "{printed}");

    let rows = csv_rows(&out.join("samples.csv"));
    assert_eq!(rows.len(), 6, "one row per sample");
    let statuses: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(statuses, ["ok", "ok", "failed", "ok", "ok", "failed"]);
    assert!(rows[2][5].contains("none.png"), "{:?}", rows[2]);
    assert!(rows[5][5].contains("broken.png"), "{:?}", rows[5]);
    let scored: Vec<Vec<String>> = rows.into_iter().filter(|r| r[4] == "ok").collect();
    // The empty truth has no AP of its own.
    assert_eq!(scored[3][11], "", "{:?}", scored[3]);

    let (raw, refined) = maps(&out, &scored, &truths);
    let e_raw = expected(&raw);
    let e_refined = expected(&refined);
    println!(
        "raw: mIoU {:?} oIoU {:?} AP {:.4}; refined: mIoU {:?} oIoU {:?} AP {:.4}",
        e_raw.miou, e_raw.overall, e_raw.ap, e_refined.miou, e_refined.overall, e_refined.ap
    );
    check_reported(&out, &printed, "raw", &e_raw, &scored, 9);
    check_reported(&out, &printed, "refined", &e_refined, &scored, 12);
    // The refinement changed the maps (else the refined columns would test nothing new); on
    // the random tiny model it can leave a map whole (with f16 weights, the first one).
    assert!(
        raw.iter().zip(&refined).any(|(r, f)| r.0 != f.0),
        "the refinement changed no map"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("json"))
            .expect("json");
    assert_eq!(summary["samples"]["failed"], 2);
    assert_eq!(summary["protocol"]["grid"], "image size");
    assert_eq!(summary["engine"], "ldznet");
    let _ = std::fs::remove_dir_all(&weights);
}

#[test]
fn eval_reads_phrasecut_polygons_and_the_paper_grid() {
    let weights = tiny_weights_dir("eval-phrasecut");
    let data = weights.join("VGPhraseCut_v0");
    std::fs::create_dir_all(data.join("images")).expect("dir");
    let images = fixture_images(&weights);
    // PhraseCut images are JPEGs named by image id.
    for (id, (path, _, _)) in [(11, &images[0]), (12, &images[1])] {
        image::open(path)
            .expect("png")
            .to_rgb8()
            .save(data.join(format!("images/{id}.jpg")))
            .expect("jpg");
    }
    let (w0, h0) = (images[0].1, images[0].2);
    let (w1, h1) = (images[1].1, images[1].2);
    let ears = [
        Rect {
            x0: 5,
            y0: 2,
            x1: 20,
            y1: 14,
        },
        Rect {
            x0: 44,
            y0: 2,
            x1: 60,
            y1: 14,
        },
    ];
    let face = [Rect {
        x0: 12,
        y0: 20,
        x1: 50,
        y1: 58,
    }];
    let shirt = [Rect {
        x0: 30,
        y0: 30,
        x1: 70,
        y1: 64,
    }];
    let task = |id: &str, image: u64, phrase: &str, instances: Vec<Vec<serde_json::Value>>| {
        serde_json::json!({
            "task_id": id, "image_id": image, "phrase": phrase,
            "instance_boxes": [], "phrase_structure": {"name": phrase},
            "Polygons": instances,
        })
    };
    let refer = serde_json::json!([
        // Two instances, one polygon each: the union is the truth.
        task(
            "11__1",
            11,
            "ears",
            vec![vec![ears[0].polygon()], vec![ears[1].polygon()]]
        ),
        task("11__2", 11, "face", vec![vec![face[0].polygon()]]),
        task("12__1", 12, "blue shirt", vec![vec![shirt[0].polygon()]]),
        task(
            "12__2",
            12,
            "left out by --limit",
            vec![vec![shirt[0].polygon()]]
        ),
    ]);
    std::fs::write(data.join("refer_test.json"), refer.to_string()).expect("write");
    let truths = vec![
        truth(&ears, w0, h0),
        truth(&face, w0, h0),
        truth(&shirt, w1, h1),
    ];

    // At each image's size: the polygons give exactly the constructed truths.
    let out = weights.join("out-native");
    let eval = |out: &Path, grid: &str| {
        run(ldzmask()
            .arg("--weights")
            .arg(&weights)
            .arg("eval")
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out)
            .args(["--limit", "3", "--grid", grid, "--save-masks"]))
    };
    let (code, printed) = eval(&out, "0");
    assert_eq!(code, 0, "{printed}");
    let rows = csv_rows(&out.join("samples.csv"));
    assert_eq!(rows.len(), 3, "--limit 3");
    assert_eq!(rows[0][1], "11__1");
    let (raw, refined) = maps(&out, &rows, &truths);
    check_reported(&out, &printed, "raw", &expected(&raw), &rows, 9);
    check_reported(&out, &printed, "refined", &expected(&refined), &rows, 12);

    // The paper's grid: every map 384 × 384, the truth resized by nearest neighbour.
    let out = weights.join("out-grid");
    let (code, printed) = eval(&out, "384");
    assert_eq!(code, 0, "{printed}");
    let rows = csv_rows(&out.join("samples.csv"));
    let nearest = |t: &[bool], w: u32, h: u32| -> Vec<bool> {
        (0..384u32)
            .flat_map(|y| (0..384u32).map(move |x| (x, y)))
            .map(|(x, y)| t[((y * h / 384) * w + x * w / 384) as usize])
            .collect()
    };
    let sizes = [(w0, h0), (w0, h0), (w1, h1)];
    let grid_truths: Vec<Vec<bool>> = truths
        .iter()
        .zip(sizes)
        .map(|(t, (w, h))| nearest(t, w, h))
        .collect();
    let (raw, refined) = maps(&out, &rows, &grid_truths);
    assert!(raw.iter().all(|(p, _)| p.len() == 384 * 384));
    check_reported(&out, &printed, "raw", &expected(&raw), &rows, 9);
    check_reported(&out, &printed, "refined", &expected(&refined), &rows, 12);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("json"))
            .expect("json");
    assert_eq!(summary["protocol"]["grid"], serde_json::json!([384, 384]));
    assert_eq!(summary["dataset"]["layout"], "phrasecut");
    let _ = std::fs::remove_dir_all(&weights);
}
