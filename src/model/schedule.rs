//! SD v1's noise schedule (`ldm_seg/models/diffusion/ddpm.py`, `register_schedule` with
//! `beta_schedule="linear"`): `β = linspace(√0.00085, √0.012, 1000)²` and `ᾱ = cumprod(1 − β)`
//! in f64, stored as f32 — exactly the buffers the official `q_sample` reads.

/// Number of diffusion steps.
pub const NUM_TIMESTEPS: usize = 1000;
const LINEAR_START: f64 = 0.00085;
const LINEAR_END: f64 = 0.012;

/// `sqrt(ᾱ_t)` and `sqrt(1 − ᾱ_t)` as the float32 buffers of the official code.
#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    /// `sqrt_alphas_cumprod` (f32).
    pub sqrt_alphas_cumprod: Vec<f32>,
    /// `sqrt_one_minus_alphas_cumprod` (f32).
    pub sqrt_one_minus_alphas_cumprod: Vec<f32>,
    /// `alphas_cumprod` (f32).
    pub alphas_cumprod: Vec<f32>,
}

impl Default for NoiseSchedule {
    fn default() -> Self {
        Self::sd_v1()
    }
}

impl NoiseSchedule {
    /// The SD v1 "scaled linear" schedule.
    pub fn sd_v1() -> Self {
        let (a, b) = (LINEAR_START.sqrt(), LINEAR_END.sqrt());
        let n = NUM_TIMESTEPS;
        let mut cumprod = 1f64;
        let mut alphas_cumprod = Vec::with_capacity(n);
        let step = (b - a) / (n - 1) as f64;
        for i in 0..n {
            // numpy linspace: `i * step + start`, with the last point exactly `stop`.
            let x = if i + 1 == n { b } else { i as f64 * step + a };
            cumprod *= 1.0 - x * x;
            alphas_cumprod.push(cumprod);
        }
        Self {
            sqrt_alphas_cumprod: alphas_cumprod.iter().map(|a| a.sqrt() as f32).collect(),
            sqrt_one_minus_alphas_cumprod: alphas_cumprod
                .iter()
                .map(|a| (1.0 - a).sqrt() as f32)
                .collect(),
            alphas_cumprod: alphas_cumprod.iter().map(|&a| a as f32).collect(),
        }
    }

    /// `(sqrt(ᾱ_t), sqrt(1 − ᾱ_t))` for timestep `t` (clamped to the schedule).
    pub fn coefficients(&self, t: usize) -> (f32, f32) {
        let t = t.min(NUM_TIMESTEPS - 1);
        (
            self.sqrt_alphas_cumprod[t],
            self.sqrt_one_minus_alphas_cumprod[t],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values_of_the_spec() {
        let s = NoiseSchedule::sd_v1();
        for (t, a, sa, s1a) in [
            (300, 0.590501, 0.768441, 0.639921),
            (400, 0.424483, 0.651524, 0.758628),
            (499, 0.277670, 0.526944, 0.849900),
        ] {
            assert!((s.alphas_cumprod[t] - a).abs() < 1e-6, "alpha_cumprod[{t}]");
            assert!((s.sqrt_alphas_cumprod[t] - sa).abs() < 1e-6);
            assert!((s.sqrt_one_minus_alphas_cumprod[t] - s1a).abs() < 1e-6);
        }
    }
}
