//! GEMMs with an f16 weight that widen it where the product reads it (step 2 of
//! `shared/docs/cpu-half-precision.md` §0, "widening inside the packing"), for the products
//! with a small side: the convolutions of the 6²…32² UNet levels (few output positions) and
//! the linear layers over few tokens (CLIP's 77, the small attention maps).
//!
//! Why: widening the weight in a pass of its own ahead of the f32 `gemm` (`weights.rs`) costs
//! little where each weight value meets hundreds of columns, but with few output columns the
//! GEMM does little work per weight element, so that memory-bound pass cost 15–25 % on those
//! layers, while `gemm`'s f32 path streams its (twice as large) weights during the arithmetic.
//!
//! Here the weight is widened in small blocks right before the micro-kernel uses them, and the
//! next block's f16 lines are prefetched while the current one is multiplied, so the weight
//! streams from memory at 2 bytes per value during the arithmetic.
//!
//! The micro-kernel (AVX-512F, 16-lane FMAs): a tile of `MR = 8` rows × `NR = 48` columns of
//! the output held in 24 registers. For each k it loads 48 values of the "vector" operand (one
//! row, masked at the right edge) and broadcasts 8 values of the "row" operand.
//!
//! - Weight on the left (convolutions, `[c_out, c_in·kh·kw]` row-major): the widened weight
//!   panel (8 rows × 256, in L1) is the row operand and the im2col rows are the vector operand.
//! - Weight on the right (linear, burn's `[in, out]` row-major): the activations' rows are the
//!   row operand and a widened weight block `[256, 192]` (four panels of 48 columns) is the
//!   vector operand. Widening 48 columns at a time read each weight row in 96-byte pieces, one
//!   per 1.5–20 KB of stride: CLIP ran 18–20 % slower than with f32 weights; with 384-byte runs
//!   it runs 3–7 % faster (`kernels::bench::bench_clip_forward`, Zen 4).
//!
//! Accumulation is f32 throughout; the result differs from the f32 `gemm` on the same
//! (f16-rounded) weights only in the order of the sums. The public functions return `false`
//! without touching anything when the CPU has neither instruction set; the caller then widens
//! the whole weight once (`weights.rs`).
//!
//! This module and `half.rs` hold the `unsafe` of the 16-bit kernels: the intrinsics need
//! `#[target_feature]` functions and raw-pointer loads, and the parallel tasks write disjoint
//! parts of one output through a raw pointer. Every public function checks the sizes of its
//! slices first.
#![allow(unsafe_code)]

use half::f16;
use rayon::prelude::*;

/// Depth of one K block: a weight panel of `MR × KC` (conv) or `KC × NR` (linear) f32 values
/// (at most 8 KB / 48 KB) stays in L1.
const KC: usize = 256;

/// The most output positions of one GEMM of a convolution [`weight_lhs`] is used for: up to
/// the 12² maps (144) it ran at 0.98–1.21× the f32 `gemm`'s speed on Zen 4, at 216–720
/// positions (the 24² maps and the bands of the 48² ones) at 0.78–0.94×, where widening the
/// whole weight once and running the f32 `gemm` reached 0.92–0.99×
/// (`kernels::bench::bench_f16_weight_gemm`, weights out of cache).
pub const MAX_LHS_COLUMNS: usize = 192;

/// The most activation rows (tokens) of a linear layer [`weight_rhs`] is used for; at 576
/// rows widening the weight once ahead of the f32 `gemm` was faster.
pub const MAX_RHS_ROWS: usize = 256;

/// Column tiles of the weight a linear-layer task widens at once (192 columns with AVX-512):
/// each weight row is then read in runs of 384 bytes rather than 96, and a product has at
/// least this many tiles per task.
const RHS_BLOCK_TILES: usize = 4;

/// Tasks per thread of the pool: more than one, so that when a thread loses its core for a
/// while (in the app the window is drawn by the CPU when there is no GPU) the others take over
/// its share instead of waiting for it.
const TASKS_PER_THREAD: usize = 8;

/// The instruction sets with a micro-kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: tiles of 8 rows × 48 columns.
    Avx512,
    /// AVX2 + FMA + F16C: tiles of 6 rows × 16 columns.
    Avx2,
}

impl Isa {
    /// The best instruction set of this CPU, if it has one of them.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Some(Self::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return Some(Self::Avx2);
            }
        }
        None
    }

    /// Whether this CPU has the instruction set.
    fn supported(self) -> bool {
        match Self::detect() {
            Some(Self::Avx512) => true,
            Some(Self::Avx2) => self == Self::Avx2,
            None => false,
        }
    }

    /// Rows and columns of one tile.
    fn tile(self) -> (usize, usize) {
        match self {
            Self::Avx512 => (8, 48),
            Self::Avx2 => (6, 16),
        }
    }
}

/// A raw output pointer shared by parallel tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every task writes a set of elements no other task touches (see each use).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `c (+)= w · b` with the f16 weight on the left:
/// - `w`: `[m, k]` row-major, contiguous;
/// - `b`: `[k, n]`, row `p` at `b[b_offset + p·b_rs..][..n]`;
/// - `c`: `[m, n]`, row `i` at `c[c_offset + i·c_rs..][..n]`, overwritten unless `accumulate`.
///
/// Returns `false` (and does nothing) when the CPU has neither instruction set.
///
/// # Panics
/// When a view does not fit its slice, or a row stride is shorter than `n`.
#[allow(clippy::too_many_arguments)]
pub fn weight_lhs(
    c: &mut [f32],
    c_offset: usize,
    c_rs: usize,
    w: &[f16],
    b: &[f32],
    b_offset: usize,
    b_rs: usize,
    shape: [usize; 3],
    accumulate: bool,
) -> bool {
    Isa::detect().is_some_and(|isa| {
        weight_lhs_with(
            isa, c, c_offset, c_rs, w, b, b_offset, b_rs, shape, accumulate,
        );
        true
    })
}

/// [`weight_lhs`] with the given instruction set.
///
/// # Panics
/// As [`weight_lhs`]; also when the CPU lacks `isa`.
#[allow(clippy::too_many_arguments)]
fn weight_lhs_with(
    isa: Isa,
    c: &mut [f32],
    c_offset: usize,
    c_rs: usize,
    w: &[f16],
    b: &[f32],
    b_offset: usize,
    b_rs: usize,
    [m, n, k]: [usize; 3],
    accumulate: bool,
) {
    assert!(isa.supported(), "half_gemm: the CPU lacks {isa:?}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        c_rs >= n && b_rs >= n,
        "half_gemm: row stride shorter than a row"
    );
    assert_eq!(w.len(), m * k, "half_gemm: weight of the wrong size");
    assert!(
        c.len() >= c_offset + (m - 1) * c_rs + n,
        "half_gemm: output out of bounds"
    );
    assert!(
        k == 0 || b.len() >= b_offset + (k - 1) * b_rs + n,
        "half_gemm: input out of bounds"
    );
    let (mr, _) = isa.tile();
    let tiles = m.div_ceil(mr);
    let tasks = (rayon::current_num_threads() * TASKS_PER_THREAD).clamp(1, tiles);
    let rows_per_task = tiles.div_ceil(tasks) * mr;
    let c = &mut c[c_offset..c_offset + (m - 1) * c_rs + n];
    let b = &b[b_offset..];
    c.par_chunks_mut(rows_per_task * c_rs)
        .enumerate()
        .for_each(|(task, c)| {
            let row0 = task * rows_per_task;
            let rows = rows_per_task.min(m - row0);
            if !accumulate {
                for i in 0..rows {
                    c[i * c_rs..i * c_rs + n].fill(0.0);
                }
            }
            let w = &w[row0 * k..(row0 + rows) * k];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has `isa` (asserted above). `c` holds rows `row0..row0 + rows`
            // of the output (each `n` long at stride `c_rs`), `w` their `rows × k` weights and
            // `b` the `k` rows of the input, all checked against their slices above.
            unsafe {
                match isa {
                    Isa::Avx512 => {
                        x86::weight_lhs_rows::<x86::Avx512>(c, c_rs, w, b, b_rs, [rows, n, k])
                    }
                    Isa::Avx2 => {
                        x86::weight_lhs_rows::<x86::Avx2>(c, c_rs, w, b, b_rs, [rows, n, k])
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (w, b);
        });
}

/// `c (+)= a · w` with the f16 weight on the right:
/// - `a`: `[m, k]` row-major, contiguous (the activations, one row per token);
/// - `w`: `[k, n]` row-major, contiguous (burn's Linear layout `[in, out]`);
/// - `c`: `[m, n]` row-major, contiguous, overwritten unless `accumulate`.
///
/// Returns `false` (and does nothing) when the CPU has neither instruction set.
///
/// # Panics
/// When a slice has the wrong size.
pub fn weight_rhs(
    c: &mut [f32],
    a: &[f32],
    w: &[f16],
    shape: [usize; 3],
    accumulate: bool,
) -> bool {
    Isa::detect().is_some_and(|isa| {
        weight_rhs_with(isa, c, a, w, shape, accumulate);
        true
    })
}

/// [`weight_rhs`] with the given instruction set.
///
/// # Panics
/// As [`weight_rhs`]; also when the CPU lacks `isa`.
fn weight_rhs_with(
    isa: Isa,
    c: &mut [f32],
    a: &[f32],
    w: &[f16],
    [m, n, k]: [usize; 3],
    accumulate: bool,
) {
    assert!(isa.supported(), "half_gemm: the CPU lacks {isa:?}");
    assert_eq!(c.len(), m * n, "half_gemm: output of the wrong size");
    assert_eq!(a.len(), m * k, "half_gemm: input of the wrong size");
    assert_eq!(w.len(), k * n, "half_gemm: weight of the wrong size");
    if m == 0 || n == 0 {
        return;
    }
    if !accumulate {
        c.fill(0.0);
    }
    let (_, nr) = isa.tile();
    let tiles = n.div_ceil(nr);
    let tasks = (rayon::current_num_threads() * TASKS_PER_THREAD)
        .min(tiles.div_ceil(RHS_BLOCK_TILES))
        .max(1);
    let cols_per_task = tiles.div_ceil(tasks) * nr;
    let out = SharedOut(c.as_mut_ptr());
    (0..n.div_ceil(cols_per_task))
        .into_par_iter()
        .for_each(|task| {
            let col0 = task * cols_per_task;
            let cols = cols_per_task.min(n - col0);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has `isa` (asserted above); the sizes of `a`, `w` and the output were
            // checked above. This task writes only the columns `col0..col0 + cols` of the output,
            // which no other task writes, and nothing else reads the output meanwhile.
            unsafe {
                match isa {
                    Isa::Avx512 => {
                        x86::weight_rhs_cols::<x86::Avx512>(out.get(), a, w, [m, n, k], col0, cols)
                    }
                    Isa::Avx2 => {
                        x86::weight_rhs_cols::<x86::Avx2>(out.get(), a, w, [m, n, k], col0, cols)
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (out, col0, cols);
        });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    use super::{KC, RHS_BLOCK_TILES};

    thread_local! {
        /// The widened weight panel of the tasks run on this thread, kept from task to task
        /// instead of a fresh, zeroed allocation per task.
        static PANEL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Runs `f` with this thread's panel buffer, `len` values long.
    fn with_panel<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        PANEL.with(|panel| {
            let mut panel = panel.borrow_mut();
            if panel.len() < len {
                panel.resize(len, 0.0);
            }
            f(&mut panel[..len])
        })
    }

    /// One instruction set's micro-kernel: a tile of `MR` rows × `NR` columns of the output
    /// held in registers.
    pub(super) trait Micro {
        /// Rows of the row operand per tile.
        const MR: usize;
        /// Columns per tile.
        const NR: usize;

        /// `c[i, j] += Σ_p a[i·a_rs + p] · b[p·b_rs + j]` for `i < rows` (≤ MR), `j < cols`
        /// (≤ NR), `p < kc`. Rows of `a` past `rows` repeat its last row (their sums are not
        /// stored), so `a` is only read where it exists.
        ///
        /// # Safety
        /// The CPU has the kernel's features; `a` is readable at `i·a_rs + p` for `i < rows`,
        /// `p < kc`; `b` at `p·b_rs + j` for `j < cols`; `c` readable and writable at
        /// `i·c_rs + j`.
        #[allow(clippy::too_many_arguments)]
        unsafe fn tile(
            kc: usize,
            a: *const f32,
            a_rs: usize,
            rows: usize,
            b: *const f32,
            b_rs: usize,
            cols: usize,
            c: *mut f32,
            c_rs: usize,
            prefetch: Prefetch,
        );

        /// Widens `src` into `dst` (equal lengths) with `half.rs`'s loop for these features.
        ///
        /// # Safety
        /// The CPU has the kernel's features.
        unsafe fn widen(src: &[f16], dst: &mut [f32]);
    }

    /// AVX-512F: 8 rows × 48 columns (three 16-lane vectors) in 24 registers.
    pub(super) struct Avx512;

    /// AVX2 + FMA + F16C: 6 rows × 16 columns (two 8-lane vectors) in 12 registers.
    pub(super) struct Avx2;

    /// Where the micro-kernel prefetches the next weight panel: `lines` cache lines, line `q`
    /// at `base + (q >> per_row_shift)·row_bytes + (q % 2^per_row_shift)·64`. Two lines are
    /// prefetched per step of k.
    #[derive(Clone, Copy)]
    pub(super) struct Prefetch {
        base: *const i8,
        row_bytes: usize,
        per_row_shift: u32,
        lines: usize,
    }

    impl Prefetch {
        const NONE: Self = Self {
            base: std::ptr::null(),
            row_bytes: 0,
            per_row_shift: 0,
            lines: 0,
        };

        /// Issues the prefetches of step `p` (lines `2p` and `2p + 1`), if any. Prefetches
        /// never fault, so the addresses need not be valid.
        #[inline(always)]
        fn step(&self, p: usize) {
            for q in [2 * p, 2 * p + 1] {
                if q < self.lines {
                    let row = q >> self.per_row_shift;
                    let col = q & ((1 << self.per_row_shift) - 1);
                    let line = self.base.wrapping_add(row * self.row_bytes + col * 64);
                    // SAFETY: a prefetch is a hint; it never faults or changes memory.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
                }
            }
        }
    }

    /// The 16-lane mask of the lanes of vector `v` that lie within the first `cols` columns.
    fn mask16(cols: usize, v: usize) -> __mmask16 {
        let valid = cols.saturating_sub(16 * v).min(16);
        ((1u32 << valid) - 1) as __mmask16
    }

    impl Micro for Avx512 {
        const MR: usize = 8;
        const NR: usize = 48;

        #[target_feature(enable = "avx512f")]
        unsafe fn tile(
            kc: usize,
            a: *const f32,
            a_rs: usize,
            rows: usize,
            b: *const f32,
            b_rs: usize,
            cols: usize,
            c: *mut f32,
            c_rs: usize,
            prefetch: Prefetch,
        ) {
            const MR: usize = Avx512::MR;
            let m = [mask16(cols, 0), mask16(cols, 1), mask16(cols, 2)];
            let a_row: [*const f32; MR] =
                std::array::from_fn(|i| a.wrapping_add(i.min(rows - 1) * a_rs));
            let mut acc = [[_mm512_setzero_ps(); 3]; MR];
            // SAFETY: the accesses stay inside the regions the caller guarantees; masked-off
            // lanes are not accessed.
            unsafe {
                for p in 0..kc {
                    prefetch.step(p);
                    let bp = b.add(p * b_rs);
                    let b0 = _mm512_maskz_loadu_ps(m[0], bp);
                    let b1 = _mm512_maskz_loadu_ps(m[1], bp.add(16));
                    let b2 = _mm512_maskz_loadu_ps(m[2], bp.add(32));
                    for i in 0..MR {
                        let ai = _mm512_set1_ps(*a_row[i].add(p));
                        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
                        acc[i][2] = _mm512_fmadd_ps(ai, b2, acc[i][2]);
                    }
                }
                for (i, acc) in acc.iter().enumerate().take(rows) {
                    let cp = c.add(i * c_rs);
                    for (v, acc) in acc.iter().enumerate() {
                        let old = _mm512_maskz_loadu_ps(m[v], cp.add(16 * v));
                        _mm512_mask_storeu_ps(cp.add(16 * v), m[v], _mm512_add_ps(old, *acc));
                    }
                }
            }
        }

        unsafe fn widen(src: &[f16], dst: &mut [f32]) {
            // SAFETY: the caller guarantees AVX-512F.
            unsafe { crate::model::kernels::half::x86::widen_avx512(src, dst) }
        }
    }

    /// The 8-lane mask of the lanes of vector `v` that lie within the first `cols` columns.
    #[target_feature(enable = "avx2")]
    fn mask8(cols: usize, v: usize) -> __m256i {
        let valid = cols.saturating_sub(8 * v).min(8) as i32;
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(valid),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    impl Micro for Avx2 {
        const MR: usize = 6;
        const NR: usize = 16;

        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn tile(
            kc: usize,
            a: *const f32,
            a_rs: usize,
            rows: usize,
            b: *const f32,
            b_rs: usize,
            cols: usize,
            c: *mut f32,
            c_rs: usize,
            prefetch: Prefetch,
        ) {
            const MR: usize = Avx2::MR;
            let m = [mask8(cols, 0), mask8(cols, 1)];
            let a_row: [*const f32; MR] =
                std::array::from_fn(|i| a.wrapping_add(i.min(rows - 1) * a_rs));
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            // SAFETY: the accesses stay inside the regions the caller guarantees; masked-off
            // lanes are not accessed.
            unsafe {
                if cols == Self::NR {
                    for p in 0..kc {
                        prefetch.step(p);
                        let bp = b.add(p * b_rs);
                        let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                        for i in 0..MR {
                            let ai = _mm256_set1_ps(*a_row[i].add(p));
                            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
                        }
                    }
                } else {
                    for p in 0..kc {
                        prefetch.step(p);
                        let bp = b.add(p * b_rs);
                        let b0 = _mm256_maskload_ps(bp, m[0]);
                        let b1 = _mm256_maskload_ps(bp.add(8), m[1]);
                        for i in 0..MR {
                            let ai = _mm256_set1_ps(*a_row[i].add(p));
                            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
                        }
                    }
                }
                for (i, acc) in acc.iter().enumerate().take(rows) {
                    let cp = c.add(i * c_rs);
                    for (v, acc) in acc.iter().enumerate() {
                        let old = _mm256_maskload_ps(cp.add(8 * v), m[v]);
                        _mm256_maskstore_ps(cp.add(8 * v), m[v], _mm256_add_ps(old, *acc));
                    }
                }
            }
        }

        unsafe fn widen(src: &[f16], dst: &mut [f32]) {
            // SAFETY: the caller guarantees AVX2, FMA and F16C (which include AVX and F16C).
            unsafe { crate::model::kernels::half::x86::widen_f16c(src, dst) }
        }
    }

    /// [`super::weight_lhs`] for one task's rows: `c` holds `rows` output rows at stride
    /// `c_rs`, `w` their weights `[rows, k]`, `b` the input `[k, n]` at stride `b_rs`.
    ///
    /// # Safety
    /// The CPU has `K`'s features; the slices are as large as these shapes say.
    pub(super) unsafe fn weight_lhs_rows<K: Micro>(
        c: &mut [f32],
        c_rs: usize,
        w: &[f16],
        b: &[f32],
        b_rs: usize,
        [rows, n, k]: [usize; 3],
    ) {
        with_panel(K::MR * KC, |panel| {
            let tiles = rows.div_ceil(K::MR);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                for t in 0..tiles {
                    let (r0, mr) = (t * K::MR, K::MR.min(rows - t * K::MR));
                    for i in 0..mr {
                        let row = &w[(r0 + i) * k + k0..][..kc];
                        // SAFETY: the CPU has `K`'s features (the caller's guarantee).
                        unsafe { K::widen(row, &mut panel[i * KC..][..kc]) };
                    }
                    // The panel after this one: the next tile's rows, or the first rows of the
                    // next K block (8 lines of 64 bytes per row of a full block).
                    let (next_row, next_k) = if t + 1 < tiles {
                        (r0 + K::MR, k0)
                    } else {
                        (0, k0 + KC)
                    };
                    let next = if next_k < k {
                        Prefetch {
                            base: w.as_ptr().wrapping_add(next_row * k + next_k).cast(),
                            row_bytes: k * 2,
                            per_row_shift: 3,
                            lines: K::MR.min(rows - next_row) * 8,
                        }
                    } else {
                        Prefetch::NONE
                    };
                    for j0 in (0..n).step_by(K::NR) {
                        // SAFETY: the panel has mr rows of kc values at stride KC; `b` has kc rows
                        // from k0 with n values each; `c` has rows r0..r0 + mr of n values.
                        unsafe {
                            K::tile(
                                kc,
                                panel.as_ptr(),
                                KC,
                                mr,
                                b.as_ptr().add(k0 * b_rs + j0),
                                b_rs,
                                K::NR.min(n - j0),
                                c.as_mut_ptr().add(r0 * c_rs + j0),
                                c_rs,
                                if j0 == 0 { next } else { Prefetch::NONE },
                            );
                        }
                    }
                }
            }
        });
    }

    /// [`super::weight_rhs`] for the output columns `col0..col0 + cols` of every row.
    ///
    /// # Safety
    /// The CPU has `K`'s features; `a` is `[m, k]`, `w` `[k, n]` and `out` `[m, n]`
    /// (row-major); no one else accesses those output columns during the call.
    pub(super) unsafe fn weight_rhs_cols<K: Micro>(
        out: *mut f32,
        a: &[f32],
        w: &[f16],
        [m, n, k]: [usize; 3],
        col0: usize,
        cols: usize,
    ) {
        let block_cols = K::NR * RHS_BLOCK_TILES;
        with_panel(KC * block_cols, |block| {
            // Cache lines per weight row of a panel (NR f16 values, rounded up to a power of two).
            let per_row_shift = (K::NR * 2)
                .div_ceil(64)
                .next_power_of_two()
                .trailing_zeros();
            let end = col0 + cols;
            for c0 in (col0..end).step_by(block_cols) {
                let bc = block_cols.min(end - c0);
                for k0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - k0);
                    for p in 0..kc {
                        let row = &w[(k0 + p) * n + c0..][..bc];
                        // SAFETY: the CPU has `K`'s features (the caller's guarantee).
                        unsafe { K::widen(row, &mut block[p * bc..][..bc]) };
                    }
                    // The next block: the next K block of these columns, or the first K block
                    // of the next columns; each panel's first tile prefetches its share.
                    let (next_c, next_k) = if k0 + KC < k {
                        (c0, k0 + KC)
                    } else {
                        (c0 + block_cols, 0)
                    };
                    let next_end = (next_c + block_cols).min(end);
                    for (t, j0) in (c0..c0 + bc).step_by(K::NR).enumerate() {
                        let nr = K::NR.min(c0 + bc - j0);
                        let next_j = next_c + t * K::NR;
                        let next = if next_j < next_end {
                            Prefetch {
                                base: w.as_ptr().wrapping_add(next_k * n + next_j).cast(),
                                row_bytes: n * 2,
                                per_row_shift,
                                lines: KC.min(k - next_k) << per_row_shift,
                            }
                        } else {
                            Prefetch::NONE
                        };
                        for i0 in (0..m).step_by(K::MR) {
                            // SAFETY: `a` has rows i0..i0 + mr with k values; the block kc rows
                            // of bc values, this panel's nr of them from j0 - c0; `out` rows
                            // i0..i0 + mr with the columns j0..j0 + nr (this task's).
                            unsafe {
                                K::tile(
                                    kc,
                                    a.as_ptr().add(i0 * k + k0),
                                    k,
                                    K::MR.min(m - i0),
                                    block.as_ptr().add(j0 - c0),
                                    bc,
                                    nr,
                                    out.add(i0 * n + j0),
                                    n,
                                    if i0 == 0 { next } else { Prefetch::NONE },
                                );
                            }
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::test_util::values;

    /// `c = start + Σ_p a[i, p] · b[p, j]` in f64.
    fn reference(
        start: &[f32],
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
        [m, n, k]: [usize; 3],
    ) -> Vec<f32> {
        let mut c = start.to_vec();
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k)
                    .map(|p| f64::from(a(i, p)) * f64::from(b(p, j)))
                    .sum();
                c[i * n + j] = (f64::from(c[i * n + j]) + sum) as f32;
            }
        }
        c
    }

    fn assert_near(actual: &[f32], expected: &[f32], what: &str) {
        let scale = expected.iter().fold(0f32, |m, e| m.max(e.abs()));
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (a - e).abs() <= 2e-6 * scale + 1e-6,
                "{what}: element {i}: {a} vs {e}"
            );
        }
    }

    /// Odd shapes on both sides: partial tiles of rows and columns, several K blocks with a
    /// short last one, an output wider than its rows (`c_rs > n`), accumulating or not.
    #[test]
    fn both_kernels_match_an_f64_product_on_odd_shapes() {
        let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .filter(|i| i.supported())
            .collect();
        if isas.is_empty() {
            eprintln!(
                "neither AVX-512F nor AVX2: the weight is widened once instead; nothing to test"
            );
            return;
        }
        for isa in isas {
            for &[m, n, k] in &[
                [1, 1, 1],
                [8, 48, 256],
                [13, 37, 300],
                [21, 100, 513],
                [9, 5, 7],
            ] {
                let w: Vec<f16> = values(m * k, 1).into_iter().map(f16::from_f32).collect();
                let b = values(k * n, 2);
                let start = values(m * n, 3);
                for accumulate in [false, true] {
                    // Weight on the left, output and input with padded rows.
                    let (c_rs, b_rs) = (n + 3, n + 5);
                    let mut c = vec![f32::NAN; m * c_rs];
                    for i in 0..m {
                        c[i * c_rs..i * c_rs + n].copy_from_slice(&start[i * n..(i + 1) * n]);
                    }
                    let mut bp = vec![0.0; k * b_rs];
                    for p in 0..k {
                        bp[p * b_rs..p * b_rs + n].copy_from_slice(&b[p * n..(p + 1) * n]);
                    }
                    weight_lhs_with(
                        isa,
                        &mut c,
                        0,
                        c_rs,
                        &w,
                        &bp,
                        0,
                        b_rs,
                        [m, n, k],
                        accumulate,
                    );
                    let zeros = vec![0.0; m * n];
                    let expected = reference(
                        if accumulate { &start } else { &zeros },
                        |i, p| w[i * k + p].to_f32(),
                        |p, j| b[p * n + j],
                        [m, n, k],
                    );
                    let actual: Vec<f32> = (0..m)
                        .flat_map(|i| c[i * c_rs..i * c_rs + n].to_vec())
                        .collect();
                    assert_near(&actual, &expected, &format!("{isa:?} lhs {m}×{n}×{k}"));

                    // Weight on the right: a [m, k] · w [k, n] with w = the same values reshaped.
                    let a = values(m * k, 4);
                    let wr: Vec<f16> = values(k * n, 5).into_iter().map(f16::from_f32).collect();
                    let mut c = start.clone();
                    weight_rhs_with(isa, &mut c, &a, &wr, [m, n, k], accumulate);
                    let expected = reference(
                        if accumulate { &start } else { &zeros },
                        |i, p| a[i * k + p],
                        |p, j| wr[p * n + j].to_f32(),
                        [m, n, k],
                    );
                    assert_near(&c, &expected, &format!("{isa:?} rhs {m}×{n}×{k}"));
                }
            }
        }
    }
}
