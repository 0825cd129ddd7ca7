//! Speck removal for [`super::refine`]: a per-pixel colour decision leaves isolated specks
//! (a bright star in the background that looks like the foreground, a dark spot inside the
//! foreground that looks like the background). A connected part of the uncertain band
//! (8-connectivity, one decision) that touches no confident pixel of its own decision and is
//! smaller than a fraction of a latent cell is such a speck: it takes the other decision.
//! Strands and rings are long, so they are far larger than a speck even when 1 px wide, or they
//! touch the body they grow from.

/// Flips the specks of `out` inside the band (`in_band`, `w` pixels per row): components of
/// band pixels with one decision (`out >= 0.5`) under `max_area` pixels that have no 8-neighbour
/// outside the band with the same decision. A flipped foreground speck becomes 0, a flipped
/// hole 1.
pub(super) fn remove_specks(out: &mut [f32], in_band: &[bool], w: usize, max_area: usize) {
    let h = out.len() / w.max(1);
    let mut visited = vec![false; out.len()];
    let mut stack: Vec<usize> = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    for start in 0..out.len() {
        if !in_band[start] || visited[start] {
            continue;
        }
        let inside = out[start] >= 0.5;
        visited[start] = true;
        stack.push(start);
        members.clear();
        let mut size = 0usize;
        let mut anchored = false;
        while let Some(i) = stack.pop() {
            size += 1;
            if size <= max_area {
                members.push(i);
            }
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if (out[j] >= 0.5) != inside {
                        continue;
                    }
                    if !in_band[j] {
                        anchored = true;
                    } else if !visited[j] {
                        visited[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if !anchored && size < max_area {
            let flipped = if inside { 0.0 } else { 1.0 };
            for &i in &members {
                out[i] = flipped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_specks_flip_and_anchored_parts_stay() {
        // 12×6, band = columns 3..9. A 2-px speck at (5, 1..3), a long line from the
        // confident left side at row 4, and a hole at (7, 2).
        let (w, h) = (12, 6);
        let mut out = vec![0.0f32; w * h];
        let mut band = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                band[y * w + x] = (3..9).contains(&x);
                if x < 3 {
                    out[y * w + x] = 1.0;
                }
            }
        }
        out[w + 5] = 0.9;
        out[2 * w + 5] = 0.8;
        for x in 3..9 {
            out[4 * w + x] = 0.7;
        }
        let mut with_hole = out.clone();
        remove_specks(&mut out, &band, w, 4);
        assert_eq!((out[w + 5], out[2 * w + 5]), (0.0, 0.0), "speck removed");
        assert!((3..9).all(|x| out[4 * w + x] == 0.7), "anchored line kept");
        // A foreground block in the band with a 1-px hole: the hole is filled.
        for y in 0..h {
            for x in 3..9 {
                with_hole[y * w + x] = 0.9;
            }
        }
        with_hole[2 * w + 7] = 0.1;
        remove_specks(&mut with_hole, &band, w, 4);
        assert_eq!(with_hole[2 * w + 7], 1.0);
        assert_eq!(with_hole[2 * w + 4], 0.9);
    }
}
