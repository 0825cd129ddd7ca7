//! What an evaluation writes: the summary JSON, one CSV row per sample, and the printed table.
//!
//! Metrics are fractions in `0..=1` in the JSON and the CSV, percentages (as in the paper) in
//! the table.

use serde_json::{Value, json};

use super::metrics::{Metrics, THRESHOLDS};
use super::{Dataset, Sample, SampleError, SampleEval, Summary};

/// The LD-ZNet paper's published numbers (ICCV 2023, tables 1 and 3), for the table's footer.
pub const PUBLISHED: &str = "published (LD-ZNet paper, not measured here): \
                             PhraseCut mIoU 52.7 AP 78.9; AIGI mIoU 74.1 AP 89.6";

/// The first line of the per-sample CSV.
pub const CSV_HEADER: &str = "index,id,image,phrase,status,error,image_width,image_height,\
                              truth_pixels,iou_0.3,iou_0.5,ap,refined_iou_0.3,refined_iou_0.5,\
                              refined_ap,predict_seconds";

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn fraction(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// One sample's CSV row (no line break): identity, status, and its scores when it was scored.
pub fn csv_row(index: usize, sample: &Sample, result: &Result<SampleEval, SampleError>) -> String {
    let mut fields = vec![
        index.to_string(),
        csv_field(&sample.id),
        csv_field(&sample.image.display().to_string()),
        csv_field(&sample.phrase),
    ];
    match result {
        Ok(eval) => {
            let iou = |s: &super::SampleScores, k: usize| fraction(Some(s.overlaps[k].iou()));
            fields.extend([
                "ok".to_string(),
                String::new(),
                eval.image_size.0.to_string(),
                eval.image_size.1.to_string(),
                eval.truth_pixels().to_string(),
                iou(&eval.raw, 0),
                iou(&eval.raw, 1),
                fraction(eval.raw.ap),
                iou(&eval.refined, 0),
                iou(&eval.refined, 1),
                fraction(eval.refined.ap),
                format!("{:.3}", eval.predict_time.as_secs_f64()),
            ]);
        }
        Err(e) => {
            fields.extend(["failed".to_string(), csv_field(&e.to_string())]);
            fields.extend(std::iter::repeat_n(String::new(), 10));
        }
    }
    fields.join(",")
}

/// Metrics as JSON: `{"miou": {"0.3": …, "0.5": …}, "overall_iou": {…}, "ap": …}`.
fn metrics_json(metrics: Option<&Metrics>) -> Value {
    let Some(m) = metrics else {
        return Value::Null;
    };
    let by_threshold = |values: [f64; 2]| {
        let mut map = serde_json::Map::new();
        for (t, v) in THRESHOLDS.iter().zip(values) {
            map.insert(t.to_string(), json!(v));
        }
        Value::Object(map)
    };
    json!({
        "miou": by_threshold(m.miou),
        "overall_iou": by_threshold(m.overall_iou),
        "ap": m.ap,
    })
}

/// The run's settings the summary records.
pub struct RunInfo<'a> {
    /// Engine name (`ldznet`, …).
    pub engine: &'a str,
    /// The engine's settings (mode, seed, weights …).
    pub engine_settings: Value,
    /// The metric grid side (`None` = each image's size).
    pub grid: Option<u32>,
    /// Samples asked for (after `--limit`).
    pub samples: usize,
}

/// The summary JSON.
pub fn summary_json(dataset: &Dataset, info: &RunInfo<'_>, summary: &Summary) -> Value {
    let left_out: serde_json::Map<String, Value> = dataset
        .left_out
        .iter()
        .map(|(why, n)| (why.clone(), json!(n)))
        .collect();
    json!({
        "engine": info.engine,
        "engine_settings": info.engine_settings,
        "dataset": {
            "layout": dataset.layout,
            "index": dataset.index.display().to_string(),
            "samples_in_index": dataset.samples.len(),
            "left_out": left_out,
        },
        "protocol": {
            "grid": info.grid.map_or_else(|| json!("image size"), |n| json!([n, n])),
            "thresholds": THRESHOLDS,
            "prediction": "probability > threshold, probabilities as 16-bit levels",
            "miou": "mean over scored samples of intersection / union (1 when both are empty)",
            "overall_iou": "sum of intersections / sum of unions over scored samples",
            "ap": "average precision of the pixel ranking, pooled over every pixel of every \
                   scored sample (ties share one threshold)",
            "refined": "mask::refine with the app's default settings, at the image size, \
                        before the resize to the grid",
        },
        "samples": {
            "evaluated": info.samples,
            "scored": summary.raw.samples(),
            "failed": summary.failed,
        },
        "raw": metrics_json(summary.raw.metrics().as_ref()),
        "refined": metrics_json(summary.refined.metrics().as_ref()),
    })
}

/// The printed table: one row for the engine's maps and one for the refined maps, in percent.
pub fn table(engine: &str, summary: &Summary) -> String {
    let mut out = format!(
        "{:<22}{:>10}{:>10}{:>10}{:>10}{:>8}\n",
        "", "mIoU@0.3", "mIoU@0.5", "oIoU@0.3", "oIoU@0.5", "AP"
    );
    let refined_label = format!("{engine} + edge refine");
    for (label, totals) in [
        (engine, &summary.raw),
        (refined_label.as_str(), &summary.refined),
    ] {
        let percent = |v: f64| format!("{:.1}", v * 100.0);
        match totals.metrics() {
            Some(m) => out.push_str(&format!(
                "{label:<22}{:>10}{:>10}{:>10}{:>10}{:>8}\n",
                percent(m.miou[0]),
                percent(m.miou[1]),
                percent(m.overall_iou[0]),
                percent(m.overall_iou[1]),
                m.ap.map_or_else(|| "-".to_string(), percent),
            )),
            None => out.push_str(&format!("{label:<22}{:>10}\n", "no sample scored")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{SampleMaps, SampleScores, Truth};
    use std::path::PathBuf;
    use std::time::Duration;

    fn sample(phrase: &str) -> Sample {
        Sample {
            id: "7".into(),
            image: PathBuf::from("img/a.png"),
            phrase: phrase.into(),
            truth: Truth::Polygons(Vec::new()),
        }
    }

    #[test]
    fn csv_rows_quote_and_keep_their_columns() {
        let columns = CSV_HEADER.split(',').count();
        let failed: Result<SampleEval, SampleError> =
            Err(SampleError::Truth("bad, \"mask\"".into()));
        let row = csv_row(3, &sample("a \"red\", b"), &failed);
        assert_eq!(
            row,
            "3,7,img/a.png,\"a \"\"red\"\", b\",failed,\"ground truth: bad, \"\"mask\"\"\",,,,,,,,,,"
        );
        let levels = [65535u16, 0];
        let truth = [true, false];
        let scores = SampleScores::score(&levels, &truth);
        let ok = Ok(SampleEval {
            image_size: (2, 1),
            raw: scores.clone(),
            refined: scores,
            maps: SampleMaps {
                size: (2, 1),
                truth: truth.to_vec(),
                raw: levels.to_vec(),
                refined: levels.to_vec(),
            },
            predict_time: Duration::from_millis(1500),
        });
        let row = csv_row(0, &sample("cat"), &ok);
        assert_eq!(
            row,
            "0,7,img/a.png,cat,ok,,2,1,1,1.000000,1.000000,1.000000,1.000000,1.000000,1.000000,1.500"
        );
        // Unquoted rows: a plain split counts the columns.
        assert_eq!(row.split(',').count(), columns);
    }

    #[test]
    fn table_prints_percent() {
        let mut summary = Summary::default();
        summary.raw.add(&SampleScores::score(
            &[65535, 0, 0, 0],
            &[true, true, false, false],
        ));
        let text = table("ldznet", &summary);
        assert!(text.contains("mIoU@0.3"), "{text}");
        let row = text.lines().nth(1).expect("row");
        // IoU ½ at both thresholds; AP: level 65535 holds 1 of 2 positives (P 1, R ½), then
        // level 0 holds the rest (P ½, R 1): ½ + ¼ = 75 %.
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["ldznet", "50.0", "50.0", "50.0", "50.0", "75.0"]
        );
        assert!(text.contains("no sample scored"), "refined row: {text}");
    }
}
