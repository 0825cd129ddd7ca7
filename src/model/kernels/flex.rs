//! The bridge between burn tensors and raw f32 storage on the Flex backend, and a bounds-checked
//! wrapper around `gemm::gemm` (the GEMM burn-flex itself uses).
//!
//! `Tensor::try_into_primitive::<Flex>` hands out the backend's `FlexTensor` (shared byte
//! storage plus a strided layout) without copying; `Tensor::from_primitive` wraps a result back.

use burn::backend::flex::FlexTensor;
use burn::backend::{DispatchDevice, Flex};
use burn::prelude::*;
use burn::tensor::DType;

/// Whether `device` is a plain Flex (CPU) device.
pub(super) fn is_flex(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Flex(_))
}

/// The Flex primitive of `x` when it is an f32 tensor on a Flex device; `Err(x)` unchanged
/// otherwise (other backends, autodiff, other dtypes), boxed as it is large.
pub(super) fn into_flex_f32<const D: usize>(x: Tensor<D>) -> Result<FlexTensor, Box<Tensor<D>>> {
    if !is_flex(&x.device()) || x.dtype() != DType::F32 {
        return Err(Box::new(x));
    }
    // Cloning only bumps the storage's reference count; `x` is dropped on success, so the
    // primitive is uniquely owned again when `x` was.
    match x.clone().try_into_primitive::<Flex>() {
        Ok(primitive) => Ok(primitive),
        Err(_) => Err(Box::new(x)),
    }
}

/// The Flex primitive of a weight `w` stored as f32 or f16 on a Flex device, made contiguous;
/// `Err(w)` unchanged otherwise.
pub(super) fn into_flex_weight<const D: usize>(w: Tensor<D>) -> Result<FlexTensor, Box<Tensor<D>>> {
    if !is_flex(&w.device()) || !matches!(w.dtype(), DType::F32 | DType::F16) {
        return Err(Box::new(w));
    }
    match w.clone().try_into_primitive::<Flex>() {
        Ok(primitive) if primitive.is_contiguous() && primitive.layout().start_offset() == 0 => {
            Ok(primitive)
        }
        Ok(primitive) => Ok(primitive.to_contiguous()),
        Err(_) => Err(Box::new(w)),
    }
}

/// Wraps a Flex primitive back into a tensor.
pub(super) fn from_flex<const D: usize>(primitive: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(primitive)
}

/// A new Flex tensor owning `data` (row-major `shape`), without copying.
pub(super) fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    from_flex(FlexTensor::from_data(TensorData::new(data, shape)))
}

/// `t` as a contiguous row-major tensor (copied only when it is a strided view).
pub(super) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The elements of a contiguous f32 tensor, row-major.
pub(super) fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("kernels: tensor made contiguous f32 before slicing")
}

/// An f32 tensor with non-negative strides: its whole storage, start offset and strides, so a
/// kernel can read a transposed view (e.g. `swap_dims`) without copying it first.
pub(super) struct Strided<'a, const D: usize> {
    /// The whole storage buffer.
    pub data: &'a [f32],
    /// Index of element `[0, …, 0]` in `data`.
    pub offset: usize,
    /// Element strides per dimension.
    pub strides: [usize; D],
}

/// `t` as a strided view, or `None` when a stride is negative (flipped views).
pub(super) fn strided<const D: usize>(t: &FlexTensor) -> Option<Strided<'_, D>> {
    let layout = t.layout();
    let mut strides = [0usize; D];
    for (dst, &src) in strides.iter_mut().zip(layout.strides()) {
        *dst = usize::try_from(src).ok()?;
    }
    Some(Strided {
        data: t.storage::<f32>(),
        offset: layout.start_offset(),
        strides,
    })
}

/// A read-only matrix view into a slice: element `(r, c)` is `data[offset + r*row_stride +
/// c*col_stride]`.
#[derive(Clone, Copy)]
pub(super) struct MatRef<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// A writable matrix view into a slice, laid out like [`MatRef`].
pub(super) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// The contiguous row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }
}

impl<'a> MatMut<'a> {
    /// The contiguous row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }
}

/// Panics unless every element of a `rows × cols` view lies inside a buffer of `len`.
fn check_bounds(len: usize, offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .and_then(|rc| rc.checked_add(offset));
    assert!(
        last.is_some_and(|last| last < len),
        "kernels::gemm: view out of bounds"
    );
}

/// Jobs per thread of a parallel `gemm` call (see [`gemm`]).
const GEMM_JOBS_PER_THREAD: usize = 4;

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`; on the current rayon pool when
/// `parallel`, else on this thread (for callers that are themselves parallel).
pub(super) fn gemm(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallel: bool,
) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.cols == n && rhs.rows == k,
        "kernels::gemm: shape mismatch"
    );
    if m == 0 || n == 0 {
        return;
    }
    check_bounds(
        dst.data.len(),
        dst.offset,
        m,
        n,
        dst.row_stride,
        dst.col_stride,
    );
    // Distinct (row, col) pairs must be distinct elements, or gemm's writes would race.
    let dst_disjoint = if m == 1 {
        n == 1 || dst.col_stride >= 1
    } else if n == 1 {
        dst.row_stride >= 1
    } else {
        (dst.col_stride >= 1 && dst.row_stride >= n * dst.col_stride)
            || (dst.row_stride >= 1 && dst.col_stride >= m * dst.row_stride)
    };
    assert!(dst_disjoint, "kernels::gemm: overlapping destination");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst.data[dst.offset + r * dst.row_stride + c * dst.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    check_bounds(
        lhs.data.len(),
        lhs.offset,
        m,
        k,
        lhs.row_stride,
        lhs.col_stride,
    );
    check_bounds(
        rhs.data.len(),
        rhs.offset,
        k,
        n,
        rhs.row_stride,
        rhs.col_stride,
    );
    let parallelism = if parallel {
        // More jobs than threads: gemm splits its work evenly among its jobs up front, so with
        // one job per thread a thread that loses its core for a while (in the app, to the
        // window drawn by the CPU) held up the whole product; rayon hands the waiting jobs of
        // a slow thread to the others.
        gemm::Parallelism::Rayon(rayon::current_num_threads() * GEMM_JOBS_PER_THREAD)
    } else {
        gemm::Parallelism::None
    };
    let stride = |s: usize| s as isize; // in bounds of a slice, so it fits an isize
    #[allow(unsafe_code)]
    // SAFETY: `check_bounds` proved every element of the three views lies inside its slice; the
    // destination views distinct elements (checked above) of a `&mut` slice, which cannot alias
    // the two shared input slices. gemm reads `dst` only when `read_dst` (= `accumulate`), and
    // the pointers stay valid for the call because the slices are borrowed for its duration.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data[dst.offset..].as_mut_ptr(),
            stride(dst.col_stride),
            stride(dst.row_stride),
            accumulate,
            lhs.data[lhs.offset..].as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data[rhs.offset..].as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels' tests compare against burn on `Device::flex()`; this makes sure they take
    /// the kernel path there rather than the fallback.
    #[test]
    fn flex_f32_tensors_are_recognised() {
        let device = Device::flex();
        assert!(is_flex(&device));
        let t = Tensor::<2>::ones([2, 3], &device);
        let primitive = into_flex_f32(t).expect("a Flex f32 tensor");
        assert_eq!(slice(&primitive), &[1.0; 6]);
        let ints = Tensor::<2>::ones([2, 3], &device).cast(DType::F64);
        assert!(into_flex_f32(ints).is_err());
    }

    #[test]
    fn gemm_with_strided_views() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]]ᵀ read through strides, accumulated onto ones.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [1.0f32; 4];
        let view = |data| MatRef::row_major(data, 2, 2);
        let b_t = MatRef {
            row_stride: 1,
            col_stride: 2,
            ..view(&b)
        };
        let dst = MatMut::row_major(&mut c, 2, 2);
        gemm(dst, view(&a), b_t, true, false);
        assert_eq!(c, [18.0, 24.0, 40.0, 54.0]);
    }
}
