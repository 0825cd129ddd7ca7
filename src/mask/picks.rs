//! Click to keep or drop parts of a model mask, and the uncertainty band around its threshold.
//!
//! LD-ZNet is semantic: "dog" marks every dog. A [`Pick`] is a click on the layer's
//! thresholded model mask, stored in **image pixels** (so zoom, pan and a new model result
//! never move it): a *keep* pick keeps only the connected region(s) under the keep picks, a
//! *drop* pick removes the region under it. Picks are re-applied to every new model result,
//! so they select whatever region lies under the picked points then.
//!
//! Regions are the connected components of `p >= threshold` with **8-connectivity** (pixels
//! touching by a corner are one region), so a one-pixel diagonal strand, typical of refined
//! hair and fur edges, stays attached to its owner instead of being dropped as a separate
//! region. Labelling is an iterative flood fill (no recursion, so a 12 MP region cannot
//! overflow the stack).
//!
//! The anti-aliased threshold gives the pixels just below the threshold a partial value; such
//! an edge pixel follows the region it touches (any of its 8 neighbours kept → kept), so a kept
//! region keeps its smooth 1-px edge.
//!
//! [`uncertainty_band`] marks the pixels whose probability lies within a margin of the
//! threshold: where a small change of the threshold (or a brush touch) flips the selection.

use super::buffer::MaskBuf;

/// How far from the threshold a probability counts as uncertain (see [`uncertainty_band`]).
pub const UNCERTAIN_MARGIN: f32 = 0.15;

/// A click on a layer's model mask.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pick {
    /// Where, in image pixels (`[x, y]`, pixel centres at `+0.5`).
    pub point_in_image: [f32; 2],
    /// `true`: keep only the picked regions; `false`: drop the region under the point.
    pub keep: bool,
}

/// Connected components of `inside` (row-major, `width × height`) with 8-connectivity:
/// `labels[i]` is `0` outside and `1..=count` inside; returns `(labels, count)`.
pub fn connected_components(inside: &[bool], width: u32, height: u32) -> (Vec<u32>, u32) {
    let (w, h) = (width as usize, height as usize);
    let mut labels = vec![0u32; inside.len()];
    if inside.len() != w * h {
        log::warn!("connected_components: {} values for {w}×{h}", inside.len());
        return (labels, 0);
    }
    let mut count = 0u32;
    let mut stack = Vec::new();
    for start in 0..inside.len() {
        if !inside[start] || labels[start] != 0 {
            continue;
        }
        count += 1;
        labels[start] = count;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if inside[j] && labels[j] == 0 {
                        labels[j] = count;
                        stack.push(j);
                    }
                }
            }
        }
    }
    (labels, count)
}

/// Which labels the picks keep: for each region, the last pick landing on it decides (keep or
/// drop); regions no pick lands on are kept unless some keep pick landed on a region ("keep
/// only"). Picks outside every region do nothing (they may land on one after a re-run).
/// `keep[label]`, index 0 (outside) unused.
fn kept_labels(labels: &[u32], count: u32, width: u32, height: u32, picks: &[Pick]) -> Vec<bool> {
    let mut decided: Vec<Option<bool>> = vec![None; count as usize + 1];
    for pick in picks {
        let [x, y] = pick.point_in_image;
        if !(x >= 0.0 && y >= 0.0 && x < width as f32 && y < height as f32) {
            continue;
        }
        let i = y as usize * width as usize + x as usize;
        match labels.get(i) {
            Some(&label) if label > 0 => decided[label as usize] = Some(pick.keep),
            _ => {}
        }
    }
    let keep_only = decided.contains(&Some(true));
    decided.iter().map(|d| d.unwrap_or(!keep_only)).collect()
}

/// The pixels the picks keep of the model mask `probabilities >= threshold`, as a 0/1 plane
/// (row-major, image size), including the 1-px anti-aliased edge around kept regions (see the
/// module docs). `None` when there are no picks (everything is kept).
pub fn pick_mask(probabilities: &MaskBuf, threshold: f32, picks: &[Pick]) -> Option<Vec<u8>> {
    if picks.is_empty() {
        return None;
    }
    let (w, h) = probabilities.size();
    let inside: Vec<bool> = probabilities.data.iter().map(|&p| p >= threshold).collect();
    let (labels, count) = connected_components(&inside, w, h);
    let keep = kept_labels(&labels, count, w, h, picks);
    let (wu, hu) = (w as usize, h as usize);
    let mut out = vec![0u8; labels.len()];
    for (i, o) in out.iter_mut().enumerate() {
        let label = labels[i];
        *o = if label > 0 {
            u8::from(keep[label as usize])
        } else {
            // An edge pixel follows any kept region it touches.
            let (x, y) = (i % wu, i / wu);
            let mut kept = false;
            for ny in y.saturating_sub(1)..(y + 2).min(hu) {
                for nx in x.saturating_sub(1)..(x + 2).min(wu) {
                    let l = labels[ny * wu + nx];
                    kept |= l > 0 && keep[l as usize];
                }
            }
            u8::from(kept)
        };
    }
    Some(out)
}

/// True when probability `p` lies strictly within `margin` of `threshold`.
pub fn is_uncertain(p: f32, threshold: f32, margin: f32) -> bool {
    (p - threshold).abs() < margin
}

/// [`is_uncertain`] for every pixel (row-major, image size): the uncertainty band the canvas
/// hatches.
pub fn uncertainty_band(probabilities: &MaskBuf, threshold: f32, margin: f32) -> Vec<bool> {
    probabilities
        .data
        .iter()
        .map(|&p| is_uncertain(p, threshold, margin))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    /// A plane from rows of `#` (1.0) and `.` (0.0).
    fn plane(rows: &[&str]) -> MaskBuf {
        let w = rows[0].len() as u32;
        let data = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| if c == '#' { 1.0 } else { 0.0 }))
            .collect();
        MaskBuf::from_vec(w, rows.len() as u32, data).unwrap()
    }

    fn pick(x: u32, y: u32, keep: bool) -> Pick {
        Pick {
            point_in_image: [x as f32 + 0.5, y as f32 + 0.5],
            keep,
        }
    }

    #[test]
    fn components_use_8_connectivity() {
        let p = plane(&[
            "##....#", //
            "##...#.", // the diagonal strand joins the right blob
            "....##.", //
            "#...##.", //
        ]);
        let inside: Vec<bool> = p.data.iter().map(|&v| v > 0.5).collect();
        let (labels, count) = connected_components(&inside, 7, 4);
        assert_eq!(count, 3, "{labels:?}");
        assert_eq!(labels[0], labels[8]); // top-left 2×2 blob
        assert_eq!(
            labels[6],
            labels[7 * 3 + 4],
            "diagonal strand is one region"
        );
        assert_ne!(labels[0], labels[6]);
        assert_ne!(labels[7 * 3], labels[0], "the lone pixel is its own region");
        assert_eq!(labels[2], 0);
    }

    #[test]
    fn keep_and_drop_picks() {
        let p = plane(&[
            "##....##", //
            "##....##", //
            "........", //
            "...##...", //
        ]);
        assert_eq!(pick_mask(&p, 0.5, &[]), None, "no picks: no mask");
        // Keep the left blob: the right and bottom blobs go.
        let keep_left = pick_mask(&p, 0.5, &[pick(0, 0, true)]).unwrap();
        assert_eq!(keep_left[0], 1);
        assert_eq!(keep_left[8 + 1], 1);
        assert_eq!(keep_left[7], 0);
        assert_eq!(keep_left[3 * 8 + 3], 0);
        // Its anti-aliased edge (touching pixels) is kept too, a far pixel is not.
        assert_eq!(keep_left[2 * 8 + 2], 1);
        assert_eq!(keep_left[2 * 8 + 5], 0);
        // Two keep picks keep both regions.
        let both = pick_mask(&p, 0.5, &[pick(0, 0, true), pick(7, 1, true)]).unwrap();
        assert_eq!((both[0], both[7], both[3 * 8 + 3]), (1, 1, 0));
        // A drop pick alone removes only its region.
        let drop_right = pick_mask(&p, 0.5, &[pick(6, 0, false)]).unwrap();
        assert_eq!(
            (drop_right[0], drop_right[7], drop_right[3 * 8 + 4]),
            (1, 0, 1)
        );
        // The last pick on a region decides; a pick on the background does nothing.
        let redo = pick_mask(&p, 0.5, &[pick(0, 0, false), pick(1, 1, true)]).unwrap();
        assert_eq!((redo[0], redo[7]), (1, 0));
        let miss = pick_mask(&p, 0.5, &[pick(4, 1, true)]).unwrap();
        assert!(miss.iter().zip(&p.data).all(|(&m, &v)| v < 0.5 || m == 1));
    }

    #[test]
    fn picks_follow_the_threshold() {
        // Two blobs joined by a bridge of 0.4: one region at threshold 0.3, two at 0.5.
        let mut p = plane(&["###.###"]);
        p.data[3] = 0.4;
        let low = pick_mask(&p, 0.3, &[pick(0, 0, true)]).unwrap();
        assert_eq!(low[6], 1);
        let high = pick_mask(&p, 0.5, &[pick(0, 0, true)]).unwrap();
        assert_eq!(high[6], 0);
        assert_eq!(high[3], 1, "the bridge is the kept region's edge pixel");
    }

    #[test]
    fn band_is_within_the_margin() {
        let p = MaskBuf::from_vec(5, 1, vec![0.0, 0.36, 0.5, 0.64, 1.0]).unwrap();
        assert_eq!(
            uncertainty_band(&p, 0.5, 0.15),
            vec![false, true, true, true, false]
        );
        assert_eq!(
            uncertainty_band(&p, 0.9, 0.15),
            vec![false, false, false, false, true]
        );
    }
}
