//! Ground-truth pixels from polygons, and the nearest-neighbour resize of a ground truth.
//!
//! PhraseCut stores regions as polygons of `[x, y]` points in image pixel coordinates. Its
//! loaders (CLIPSeg's `datasets/phrasecut.py`, LD-ZNet's `ldm_seg/data/phrasecut.py`) rasterise
//! them with scikit-image's `polygon2mask` after swapping to `(row, col)`: a pixel is in when its
//! integer coordinate `(x, y)` lies inside the polygon by the even–odd rule. [`rasterise`] does
//! the same (the crossing test of W. R. Franklin's PNPOLY), and takes the union of all polygons.

/// A polygon: `[x, y]` points in image pixel coordinates (closed implicitly).
pub type Polygon = Vec<[f64; 2]>;

/// The union of `polygons` as a `width × height` row-major mask: pixel `(x, y)` is in when the
/// point `(x, y)` is inside a polygon (even–odd rule). Polygons with fewer than 3 points and the
/// parts outside the image add nothing.
pub fn rasterise(polygons: &[Polygon], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut mask = vec![false; w * h];
    for polygon in polygons.iter().filter(|p| p.len() >= 3) {
        let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &[x, y] in polygon {
            x_min = x_min.min(x);
            x_max = x_max.max(x);
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
        if !(x_min.is_finite() && x_max.is_finite() && y_min.is_finite() && y_max.is_finite()) {
            continue;
        }
        // Only pixels in the bounding box can be inside (clamped to the image).
        let first = |v: f64| v.ceil().max(0.0);
        let (x0, y0) = (first(x_min) as usize, first(y_min) as usize);
        let x1 = (x_max.floor() + 1.0).clamp(0.0, w as f64) as usize;
        let y1 = (y_max.floor() + 1.0).clamp(0.0, h as f64) as usize;
        for y in y0..y1 {
            for x in x0..x1 {
                if inside(polygon, x as f64, y as f64) {
                    mask[y * w + x] = true;
                }
            }
        }
    }
    mask
}

/// Even–odd crossing test of the point `(x, y)` against a closed polygon.
fn inside(polygon: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let ([xi, yi], [xj, yj]) = (polygon[i], polygon[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Nearest-neighbour resize of a row-major mask, as PyTorch's `interpolate(mode="nearest")`
/// (source index `floor(i · src / dst)`), which the CLIPSeg protocol applies to ground truths.
pub fn resize_nearest(mask: &[bool], size: (u32, u32), new_size: (u32, u32)) -> Vec<bool> {
    let (sw, sh) = (size.0 as usize, size.1 as usize);
    let (dw, dh) = (new_size.0 as usize, new_size.1 as usize);
    if (sw, sh) == (dw, dh) {
        return mask.to_vec();
    }
    if sw == 0 || sh == 0 {
        return vec![false; dw * dh];
    }
    let source = |i: usize, src: usize, dst: usize| ((i * src) / dst).min(src - 1);
    let columns: Vec<usize> = (0..dw).map(|x| source(x, sw, dw)).collect();
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let row = &mask[source(y, sh, dh) * sw..][..sw];
        out.extend(columns.iter().map(|&x| row[x]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(mask: &[bool]) -> usize {
        mask.iter().filter(|&&v| v).count()
    }

    #[test]
    fn rectangle_takes_the_integer_points_inside() {
        // x in (1.5, 4.5) → 2, 3, 4; y in (0.5, 2.5) → 1, 2.
        let rect = vec![[1.5, 0.5], [4.5, 0.5], [4.5, 2.5], [1.5, 2.5]];
        let mask = rasterise(&[rect], 6, 4);
        for y in 0..4 {
            for x in 0..6 {
                let expected = (2..=4).contains(&x) && (1..=2).contains(&y);
                assert_eq!(mask[y * 6 + x], expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn union_of_polygons_clipped_to_the_image() {
        let a = vec![[-5.5, -5.5], [1.5, -5.5], [1.5, 1.5], [-5.5, 1.5]]; // (0..=1)² inside
        let b = vec![[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]]; // (1..=2)², overlaps a
        let far = vec![[50.5, 50.5], [60.5, 50.5], [60.5, 60.5]];
        let degenerate = vec![[0.0, 0.0], [3.0, 3.0]];
        let mask = rasterise(&[a, b, far, degenerate], 4, 4);
        assert_eq!(count(&mask), 4 + 4 - 1);
        assert!(mask[0] && mask[4 + 1] && mask[2 * 4 + 2] && !mask[3 * 4 + 3]);
    }

    #[test]
    fn triangle_by_hand() {
        // Right triangle (0.5, 0.5), (4.5, 0.5), (0.5, 4.5): integer points with x + y < 5,
        // x ≥ 1, y ≥ 1 → (1,1) (1,2) (1,3) (2,1) (2,2) (3,1).
        let tri = vec![[0.5, 0.5], [4.5, 0.5], [0.5, 4.5]];
        let mask = rasterise(&[tri], 5, 5);
        let inside: Vec<(usize, usize)> = (0..25)
            .filter(|&i| mask[i])
            .map(|i| (i % 5, i / 5))
            .collect();
        assert_eq!(inside, vec![(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (1, 3)]);
    }

    #[test]
    fn nearest_resize_like_torch() {
        // 4 → 2 picks source 0 and 2; 2 → 4 repeats each.
        let mask = [true, false, false, true];
        assert_eq!(resize_nearest(&mask, (4, 1), (2, 1)), vec![true, false]);
        assert_eq!(
            resize_nearest(&[true, false], (2, 1), (4, 1)),
            vec![true, true, false, false]
        );
        assert_eq!(resize_nearest(&mask, (2, 2), (2, 2)), mask.to_vec());
        // 3 → 2 picks floor(0·1.5) = 0 and floor(1·1.5) = 1.
        assert_eq!(
            resize_nearest(&[false, true, false], (3, 1), (2, 1)),
            vec![false, true]
        );
    }
}
