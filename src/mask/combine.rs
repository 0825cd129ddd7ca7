//! Combining layers into one export mask.
//!
//! Layers fold in order (index 0 first) onto an empty mask. The operators are the fuzzy-set
//! (Zadeh) ones, `max`/`min`, so they act exactly as boolean union/subtract/intersect on binary
//! masks, are idempotent on soft ones (a layer unioned with itself is unchanged), and never
//! leave `0..=1`.

use super::buffer::MaskBuf;

/// How a layer joins the masks before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CombineOp {
    /// `acc = max(acc, m)`: add this layer's pixels.
    #[default]
    Union,
    /// `acc = min(acc, 1 − m)`: remove this layer's pixels (a "negative phrase").
    Subtract,
    /// `acc = min(acc, m)`: keep only pixels also in this layer.
    Intersect,
}

impl CombineOp {
    /// Combines one accumulated value with one layer value.
    pub fn apply(self, acc: f32, m: f32) -> f32 {
        match self {
            CombineOp::Union => acc.max(m),
            CombineOp::Subtract => acc.min(1.0 - m),
            CombineOp::Intersect => acc.min(m),
        }
    }
}

/// Folds `mask` into `acc` with `op`. Masks of different sizes are a caller bug: the layer is
/// skipped with a warning rather than producing a misaligned export.
pub fn combine_into(acc: &mut MaskBuf, mask: &MaskBuf, op: CombineOp) {
    if acc.size() != mask.size() {
        log::warn!(
            "combine: skipped a {}×{} mask on a {}×{} image",
            mask.width,
            mask.height,
            acc.width,
            acc.height
        );
        return;
    }
    for (a, &m) in acc.data.iter_mut().zip(&mask.data) {
        *a = op.apply(*a, m);
    }
}

/// Folds masks in order onto an empty `width × height` mask.
///
/// Starting from empty means a first layer set to Subtract or Intersect gives nothing, like
/// selection modes in Photoshop or GIMP with no prior selection.
pub fn combine<'a>(
    width: u32,
    height: u32,
    layers: impl IntoIterator<Item = (&'a MaskBuf, CombineOp)>,
) -> MaskBuf {
    let mut acc = MaskBuf::new(width, height);
    for (mask, op) in layers {
        combine_into(&mut acc, mask, op);
    }
    acc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn m(v: &[f32]) -> MaskBuf {
        MaskBuf::from_vec(v.len() as u32, 1, v.to_vec()).unwrap()
    }

    #[test]
    fn union_subtract_intersect() {
        let a = m(&[1.0, 1.0, 0.0, 0.0]);
        let b = m(&[0.0, 1.0, 1.0, 0.0]);
        let union = combine(4, 1, [(&a, CombineOp::Union), (&b, CombineOp::Union)]);
        assert_eq!(union.data, vec![1.0, 1.0, 1.0, 0.0]);
        let sub = combine(4, 1, [(&a, CombineOp::Union), (&b, CombineOp::Subtract)]);
        assert_eq!(sub.data, vec![1.0, 0.0, 0.0, 0.0]);
        let int = combine(4, 1, [(&a, CombineOp::Union), (&b, CombineOp::Intersect)]);
        assert_eq!(int.data, vec![0.0, 1.0, 0.0, 0.0]);
        // Order matters: subtract first from empty gives nothing to subtract from.
        let sub_first = combine(4, 1, [(&b, CombineOp::Subtract), (&a, CombineOp::Union)]);
        assert_eq!(sub_first, a);
    }

    #[test]
    fn soft_values_stay_in_range_and_union_is_idempotent() {
        let a = m(&[0.3, 0.7, 1.0]);
        let u = combine(3, 1, [(&a, CombineOp::Union), (&a, CombineOp::Union)]);
        assert_eq!(u, a);
        let s = combine(
            3,
            1,
            [
                (&a, CombineOp::Union),
                (&m(&[0.5, 0.5, 0.5]), CombineOp::Subtract),
            ],
        );
        assert_eq!(s.data, vec![0.3, 0.5, 0.5]);
    }

    #[test]
    fn mismatched_sizes_are_skipped() {
        let a = m(&[1.0, 1.0]);
        assert_eq!(combine(3, 1, [(&a, CombineOp::Union)]), MaskBuf::new(3, 1));
    }
}
