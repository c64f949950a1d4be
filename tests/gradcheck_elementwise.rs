//! Finite-difference check of the LeakyReLU/ReLU backward reference: pure
//! CPU, no adapter.

use gdl_gpu::kernels::elementwise;
use gdl_gpu::util::Rng;

#[test]
fn leaky_relu_gradient() {
    // L = Σ r·f(x) for random r: ∂L/∂x = r·f'(x). Away from the kink at 0,
    // f is linear on [x − h, x + h], so the f64 central difference is exact
    // up to cancellation (≈ 1e-16·|r·x|/h ≤ 1e-11); points within h of 0 are
    // skipped. The analytic slope·r is one f32 rounding: ≤ |dx|·2⁻²⁴.
    let mut rng = Rng::new(3);
    let h = 1e-4f64;
    for &slope in &[0.0f32, 0.2, 0.3] {
        let x = rng.vec(1000, -2.0, 2.0);
        let r = rng.vec(1000, -1.0, 1.0);
        let dx = elementwise::cpu::backward(&x, &r, slope);
        let f = |v: f64| if v > 0.0 { v } else { slope as f64 * v };
        for i in 0..x.len() {
            let xi = x[i] as f64;
            if xi.abs() <= h {
                continue;
            }
            let num = r[i] as f64 * (f(xi + h) - f(xi - h)) / (2.0 * h);
            assert!(
                (num - dx[i] as f64).abs() <= 1e-11 + (dx[i] as f64).abs() * gdl_gpu::util::F32_EPS,
                "slope {slope}, x = {xi}: numeric {num}, analytic {}",
                dx[i]
            );
        }
    }
}
