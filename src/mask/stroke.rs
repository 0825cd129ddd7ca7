//! Brush model and stroke rasterisation, all in image space.
//!
//! A stroke is a round brush swept along a polyline. Coverage at a pixel is a function of the
//! pixel centre's distance to the nearest polyline *segment* (a capsule per segment), not of
//! stamps spaced along the path, so a fast mouse flick with two far-apart samples still paints
//! a continuous band, and overlapping stamps never build up at joints.
//!
//! Only the bounding box of each segment is visited, and within it only the row span that the
//! capsule can reach, so a 100-px stroke on a 4096×4096 image costs about the stroke's area.

use super::buffer::RectInImage;

/// Whether a stroke adds to the mask, erases from it, or marks the refine band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BrushMode {
    /// Paint mask (coverage towards 1).
    Add,
    /// Remove mask (coverage towards 0).
    Erase,
    /// Mark the refine band: where edge-aware refinement re-decides the edge by colour
    /// (the mask itself is not painted; see [`super::edits`]).
    RefineEdge,
}

/// A round brush. Sizes are in image pixels, so a stroke means the same at any zoom.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Brush {
    /// Outer radius in image pixels: coverage reaches 0 here (for hard brushes, it is the
    /// 50 % point of a 1-px anti-aliased edge).
    pub radius_px: f32,
    /// `0..=1`: the fully opaque core has radius `radius_px * hardness`; coverage falls off
    /// smoothly (smoothstep) from the core to `radius_px`.
    pub hardness: f32,
}

impl Default for Brush {
    fn default() -> Self {
        Self {
            radius_px: 20.0,
            hardness: 0.8,
        }
    }
}

impl Brush {
    /// `(inner, outer)` distances of the falloff band: coverage is 1 up to `inner` and 0 from
    /// `outer` on.
    ///
    /// The band is `[radius * hardness, radius]`, but never narrower than 1 px: a narrower band
    /// is widened to 1 px around its centre, which is the anti-aliasing of a hard brush (a
    /// hardness-1 brush ramps over `[r - 0.5, r + 0.5]`, so it is 50 % at `r`).
    pub fn falloff_band(&self) -> (f32, f32) {
        let r = self.radius_px.max(0.0);
        let core = r * self.hardness.clamp(0.0, 1.0);
        if r - core >= 1.0 {
            (core, r)
        } else {
            let mid = 0.5 * (core + r);
            (mid - 0.5, mid + 0.5)
        }
    }

    /// Coverage in `0..=1` of a pixel whose centre is `distance_px` from the stroke path.
    pub fn coverage_at_distance(&self, distance_px: f32) -> f32 {
        let (inner, outer) = self.falloff_band();
        if distance_px <= inner {
            1.0
        } else if distance_px >= outer {
            0.0
        } else {
            let t = (distance_px - inner) / (outer - inner);
            1.0 - t * t * (3.0 - 2.0 * t)
        }
    }

    /// Pixels that the segment `a → b` can touch, clipped to a `width × height` image.
    pub fn segment_bounds(
        &self,
        a_in_image: [f32; 2],
        b_in_image: [f32; 2],
        width: u32,
        height: u32,
    ) -> Option<RectInImage> {
        let (_, reach) = self.falloff_band();
        let lo_x = a_in_image[0].min(b_in_image[0]) - reach;
        let hi_x = a_in_image[0].max(b_in_image[0]) + reach;
        let lo_y = a_in_image[1].min(b_in_image[1]) - reach;
        let hi_y = a_in_image[1].max(b_in_image[1]) + reach;
        // Pixel centres at i + 0.5 inside [lo, hi]: i from ceil(lo - 0.5) to floor(hi - 0.5).
        let clip = |lo: f32, hi: f32, n: u32| -> Option<(u32, u32)> {
            if !(lo.is_finite() && hi.is_finite()) {
                return None;
            }
            let first = (lo - 0.5).ceil().max(0.0);
            let last = (hi - 0.5).floor().min(n as f32 - 1.0);
            (first <= last).then_some((first as u32, last as u32 + 1))
        };
        let (x0, x1) = clip(lo_x, hi_x, width)?;
        let (y0, y1) = clip(lo_y, hi_y, height)?;
        Some(RectInImage { x0, y0, x1, y1 })
    }

    /// Calls `visit(x, y, coverage)` for every pixel of a `width × height` image that the
    /// capsule around segment `a → b` covers (coverage > 0). Returns the pixels' bounds.
    ///
    /// `a == b` paints a single round dab (a click without a drag).
    pub fn sweep_segment(
        &self,
        a_in_image: [f32; 2],
        b_in_image: [f32; 2],
        width: u32,
        height: u32,
        mut visit: impl FnMut(u32, u32, f32),
    ) -> Option<RectInImage> {
        let bounds = self.segment_bounds(a_in_image, b_in_image, width, height)?;
        let (_, reach) = self.falloff_band();
        let [ax, ay] = a_in_image;
        let [bx, by] = b_in_image;
        let (dx, dy) = (bx - ax, by - ay);
        let len_sq = dx * dx + dy * dy;
        for y in bounds.y0..bounds.y1 {
            let yc = y as f32 + 0.5;
            let Some((span_lo, span_hi)) = capsule_row_span(a_in_image, b_in_image, reach, yc)
            else {
                continue;
            };
            let first = ((span_lo - 0.5).ceil().max(bounds.x0 as f32)) as u32;
            let last_excl = ((span_hi - 0.5).floor() + 1.0).clamp(0.0, bounds.x1 as f32) as u32;
            for x in first..last_excl {
                let xc = x as f32 + 0.5;
                // Distance from the pixel centre to the closest point of the segment.
                let t = if len_sq > 0.0 {
                    (((xc - ax) * dx + (yc - ay) * dy) / len_sq).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (px, py) = (ax + t * dx - xc, ay + t * dy - yc);
                let c = self.coverage_at_distance((px * px + py * py).sqrt());
                if c > 0.0 {
                    visit(x, y, c);
                }
            }
        }
        Some(bounds)
    }
}

/// The x interval of the horizontal line `y = yc` inside the capsule of radius `reach` around
/// segment `a → b`, or `None` if the line misses it.
///
/// The capsule is convex, so the interval is the hull of the line's intersections with the two
/// end discs and with the rectangle between them.
fn capsule_row_span(a: [f32; 2], b: [f32; 2], reach: f32, yc: f32) -> Option<(f32, f32)> {
    let mut span: Option<(f32, f32)> = None;
    let mut include = |lo: f32, hi: f32| {
        if lo <= hi {
            span = Some(match span {
                Some((s_lo, s_hi)) => (s_lo.min(lo), s_hi.max(hi)),
                None => (lo, hi),
            });
        }
    };
    for c in [a, b] {
        let dy = yc - c[1];
        let h_sq = reach * reach - dy * dy;
        if h_sq >= 0.0 {
            let h = h_sq.sqrt();
            include(c[0] - h, c[0] + h);
        }
    }
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len > 0.0 {
        let (ux, uy) = (dx / len, dy / len);
        // Rectangle: |cross(q - a, u)| <= reach and 0 <= dot(q - a, u) <= len, each linear in x.
        let across = slab(uy, -a[0] * uy - (yc - a[1]) * ux, -reach, reach);
        let along = slab(ux, -a[0] * ux + (yc - a[1]) * uy, 0.0, len);
        if let (Some((l0, h0)), Some((l1, h1))) = (across, along) {
            include(l0.max(l1), h0.min(h1));
        }
    }
    span
}

/// Solves `lo <= alpha * x + beta <= hi` for x: an interval, everything, or nothing.
fn slab(alpha: f32, beta: f32, lo: f32, hi: f32) -> Option<(f32, f32)> {
    if alpha.abs() < 1e-9 {
        return (lo <= beta && beta <= hi).then_some((f32::NEG_INFINITY, f32::INFINITY));
    }
    let (x_lo, x_hi) = ((lo - beta) / alpha, (hi - beta) / alpha);
    Some((x_lo.min(x_hi), x_lo.max(x_hi)))
}

/// One brush stroke: a mode, a brush and the pointer path, all in image space.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stroke {
    /// Add or erase.
    pub mode: BrushMode,
    /// Brush used for the whole stroke.
    pub brush: Brush,
    /// Path in image pixel coordinates (pixel centres at `+0.5`).
    pub points_in_image: Vec<[f32; 2]>,
}

/// Coverage of a rasterised stroke over its bounding box.
#[derive(Clone, Debug, PartialEq)]
pub struct StrokeCoverage {
    /// Pixels the stroke touches (clipped to the image).
    pub rect: RectInImage,
    /// Row-major coverage in `0..=1` over `rect`.
    pub data: Vec<f32>,
}

impl StrokeCoverage {
    /// Coverage at an image pixel (0 outside the rect).
    pub fn at(&self, x_in_image: u32, y_in_image: u32) -> f32 {
        let r = &self.rect;
        if x_in_image < r.x0 || x_in_image >= r.x1 || y_in_image < r.y0 || y_in_image >= r.y1 {
            return 0.0;
        }
        let i = (y_in_image - r.y0) as usize * r.width() as usize + (x_in_image - r.x0) as usize;
        self.data[i]
    }
}

impl Stroke {
    /// Consecutive point pairs; a single point gives one zero-length segment (a dab).
    pub fn segments(&self) -> impl Iterator<Item = ([f32; 2], [f32; 2])> + '_ {
        let single = (self.points_in_image.len() == 1).then(|| {
            let p = self.points_in_image[0];
            (p, p)
        });
        single
            .into_iter()
            .chain(self.points_in_image.windows(2).map(|w| (w[0], w[1])))
    }

    /// Pixels the stroke can touch in a `width × height` image, or `None` if none.
    pub fn bounds(&self, width: u32, height: u32) -> Option<RectInImage> {
        self.segments()
            .filter_map(|(a, b)| self.brush.segment_bounds(a, b, width, height))
            .reduce(|r, s| r.union(&s))
    }

    /// Rasterises the stroke for a `width × height` image: coverage is the brush profile of
    /// the distance to the nearest segment (the max over segments, as the profile decreases
    /// with distance). `None` when the stroke misses the image or has no points.
    pub fn rasterise(&self, width: u32, height: u32) -> Option<StrokeCoverage> {
        let rect = self.bounds(width, height)?;
        let mut data = vec![0.0f32; rect.area()];
        let row = rect.width() as usize;
        for (a, b) in self.segments() {
            self.brush.sweep_segment(a, b, width, height, |x, y, c| {
                let i = (y - rect.y0) as usize * row + (x - rect.x0) as usize;
                if c > data[i] {
                    data[i] = c;
                }
            });
        }
        Some(StrokeCoverage { rect, data })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn stroke(points: &[[f32; 2]], radius: f32, hardness: f32) -> Stroke {
        Stroke {
            mode: BrushMode::Add,
            brush: Brush {
                radius_px: radius,
                hardness,
            },
            points_in_image: points.to_vec(),
        }
    }

    #[test]
    fn dab_covers_inside_not_outside() {
        let s = stroke(&[[50.5, 50.5]], 5.0, 1.0);
        let cov = s.rasterise(100, 100).unwrap();
        assert_eq!(cov.at(50, 50), 1.0);
        assert_eq!(cov.at(54, 50), 1.0, "4 px from the centre is inside r=5");
        assert_eq!(cov.at(56, 50), 0.0, "6 px is outside");
        assert!(
            (cov.at(55, 50) - 0.5).abs() < 1e-6,
            "edge pixel is anti-aliased"
        );
        assert_eq!(cov.at(0, 0), 0.0);
        // Only the bounding box is touched.
        assert!(cov.rect.width() <= 12 && cov.rect.height() <= 12);
        // Symmetric.
        assert_eq!(cov.at(45, 50), cov.at(55, 50));
        assert_eq!(cov.at(50, 45), cov.at(50, 55));
    }

    #[test]
    fn two_far_points_leave_no_gap() {
        let s = stroke(&[[10.5, 20.5], [990.5, 20.5]], 2.0, 1.0);
        let cov = s.rasterise(1000, 40).unwrap();
        for x in 10..=990 {
            assert_eq!(cov.at(x, 20), 1.0, "gap at x={x}");
            assert_eq!(cov.at(x, 21), 1.0);
            assert_eq!(cov.at(x, 24), 0.0);
        }
        // Diagonal flick: every pixel centre on the line is covered.
        let s = stroke(&[[0.5, 0.5], [399.5, 299.5]], 1.5, 1.0);
        let cov = s.rasterise(400, 300).unwrap();
        for i in 0..400 {
            let x = i as f32 + 0.5;
            let y = (x - 0.5) * 299.0 / 399.0 + 0.5;
            assert!(cov.at(i, y.floor() as u32) > 0.5, "gap at {i}");
        }
    }

    #[test]
    fn row_span_matches_brute_force() {
        // The per-row span must never skip a covered pixel.
        let s = stroke(&[[13.2, 7.9], [61.7, 44.1], [20.0, 58.3]], 6.3, 0.3);
        let fast = s.rasterise(80, 70).unwrap();
        for y in 0..70u32 {
            for x in 0..80u32 {
                let (xc, yc) = (x as f32 + 0.5, y as f32 + 0.5);
                let d = s
                    .points_in_image
                    .windows(2)
                    .map(|w| {
                        let (a, b) = (w[0], w[1]);
                        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                        let t = (((xc - a[0]) * dx + (yc - a[1]) * dy) / (dx * dx + dy * dy))
                            .clamp(0.0, 1.0);
                        ((a[0] + t * dx - xc).powi(2) + (a[1] + t * dy - yc).powi(2)).sqrt()
                    })
                    .fold(f32::INFINITY, f32::min);
                let want = s.brush.coverage_at_distance(d);
                assert!((fast.at(x, y) - want).abs() < 1e-5, "({x},{y})");
            }
        }
    }

    #[test]
    fn hardness_controls_core_and_falloff() {
        let hard = Brush {
            radius_px: 10.0,
            hardness: 1.0,
        };
        let soft = Brush {
            radius_px: 10.0,
            hardness: 0.0,
        };
        let half = Brush {
            radius_px: 10.0,
            hardness: 0.5,
        };
        assert_eq!(hard.coverage_at_distance(9.4), 1.0);
        assert_eq!(hard.coverage_at_distance(10.6), 0.0);
        assert_eq!(half.coverage_at_distance(4.99), 1.0, "core = r * hardness");
        assert!(half.coverage_at_distance(7.5) > 0.0 && half.coverage_at_distance(7.5) < 1.0);
        assert_eq!(half.coverage_at_distance(10.0), 0.0);
        assert_eq!(soft.coverage_at_distance(0.0), 1.0);
        assert!((soft.coverage_at_distance(5.0) - 0.5).abs() < 1e-6);
        // Monotonic falloff.
        let mut last = 1.0;
        for i in 0..=120 {
            let c = soft.coverage_at_distance(i as f32 * 0.1);
            assert!(c <= last);
            last = c;
        }
    }

    #[test]
    fn strokes_outside_the_image_are_none() {
        assert!(
            stroke(&[[-50.0, -50.0]], 5.0, 1.0)
                .rasterise(10, 10)
                .is_none()
        );
        assert!(stroke(&[], 5.0, 1.0).rasterise(10, 10).is_none());
        assert!(
            stroke(&[[f32::NAN, 1.0]], 5.0, 1.0)
                .rasterise(10, 10)
                .is_none()
        );
        // Partly outside: clipped, not dropped.
        let cov = stroke(&[[-2.0, 5.0]], 5.0, 1.0).rasterise(10, 10).unwrap();
        assert_eq!(cov.rect.x0, 0);
        assert_eq!(cov.at(0, 4), 1.0);
    }

    #[test]
    fn big_image_stroke_is_fast() {
        // 4096² image, 100-px brush, long path: must only touch the stroke's neighbourhood.
        let points: Vec<[f32; 2]> = (0..200)
            .map(|i| {
                let t = i as f32 / 199.0;
                [200.0 + 3600.0 * t, 2048.0 + 1500.0 * (t * 6.0).sin()]
            })
            .collect();
        let s = stroke(&points, 100.0, 0.7);
        let start = std::time::Instant::now();
        let cov = s.rasterise(4096, 4096).unwrap();
        let elapsed = start.elapsed();
        assert!(cov.at(200, 2048) == 1.0);
        assert!(elapsed.as_secs_f32() < 5.0, "took {elapsed:?}");
    }
}
