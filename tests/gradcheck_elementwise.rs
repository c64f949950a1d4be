//! Finite-difference checks of the activations' backward references: pure
//! CPU, no adapter. The f64 twins of the references are differentiated
//! against the exact functions, so the check covers the derivative formulas
//! and the accuracy of the approximations (erfc, tanh's polynomial) the
//! references share with the shader.

use gdl_gpu::kernels::elementwise::{cpu, ActKind};
use gdl_gpu::util::Rng;

/// erf by its everywhere-convergent series of positive terms
/// erf z = (2/√π)·e^(−z²)·Σ (2z²)ⁿ·z / (1·3···(2n+1)): no cancellation, so
/// accurate to a few f64 ulps for the |z| ≤ 6 used here.
fn erf(z: f64) -> f64 {
    let (mut term, mut sum, mut n) = (z, 0.0f64, 0.0f64);
    while term.abs() > 1e-18 * sum.abs() || n < 1.0 {
        sum += term;
        term *= 2.0 * z * z / (2.0 * n + 3.0);
        n += 1.0;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-z * z).exp() * sum
}

/// The exact functions, in f64.
fn exact(kind: ActKind, x: f64) -> f64 {
    match kind {
        ActKind::Relu => x.max(0.0),
        ActKind::LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                s as f64 * x
            }
        }
        ActKind::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        ActKind::Tanh => x.tanh(),
        ActKind::Elu(a) => {
            if x > 0.0 {
                x
            } else {
                a as f64 * x.exp_m1()
            }
        }
        ActKind::Gelu => 0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2)),
    }
}

#[test]
fn activation_gradients() {
    // L = Σ r·f(x): ∂L/∂x = r·f'(x). Central differences with h = 1e-4 err by
    // h²/6·|f'''| ≤ 3.4e-9·|r| (|f'''| ≤ 2 for all six: tanh's peaks at 2,
    // sigmoid's at 1/8, gelu's below 1, elu's is alpha·eˣ ≤ 1) plus the
    // rounding of f(x ± h) and of x ± h, each 2⁻⁵³ relative: together
    // ≈ 2⁻⁵³·(|f| + |f'|·|x|)/h ≤ 1.5e-11 for |x|, |f| ≤ 6 and |f'| ≤ 1.13
    // (gelu's peak); 2e-11 is allowed. Points within h of
    // a kink (0 for relu, leaky relu and elu) are skipped. On top of that,
    // the approximations in the references: tanh's polynomial (|x| < 0.625)
    // has relative error ≤ 4.4e-9 (evaluated in f64 on a fine grid), so
    // 1 − t² is off by ≤ 2·t²·4.4e-9 ≤ 2.7e-9; gelu's Φ uses erfc with
    // fractional error < 1.2e-7 (Numerical Recipes), so it is off by
    // ≤ 1.2e-7·Φ(x).
    let h = 1e-4f64;
    let mut rng = Rng::new(3);
    let kinds = [
        ActKind::Relu,
        ActKind::LeakyRelu(0.2),
        ActKind::LeakyRelu(0.3),
        ActKind::Sigmoid,
        ActKind::Tanh,
        ActKind::Elu(1.0),
        ActKind::Elu(0.5),
        ActKind::Gelu,
    ];
    for kind in kinds {
        let x: Vec<f64> = rng.vec(2000, -6.0, 6.0).iter().map(|&v| v as f64).collect();
        let r: Vec<f64> = rng.vec(2000, -1.0, 1.0).iter().map(|&v| v as f64).collect();
        let dx = cpu::backward_f64(kind, &x, &r);
        let kinked = matches!(
            kind,
            ActKind::Relu | ActKind::LeakyRelu(_) | ActKind::Elu(_)
        );
        for i in 0..x.len() {
            let xi = x[i];
            if kinked && xi.abs() <= h {
                continue;
            }
            let num = r[i] * (exact(kind, xi + h) - exact(kind, xi - h)) / (2.0 * h);
            let approx = match kind {
                ActKind::Tanh => 2.7e-9,
                ActKind::Gelu => 1.2e-7 * 0.5 * (1.0 + erf(xi * std::f64::consts::FRAC_1_SQRT_2)),
                _ => 0.0,
            };
            let tol = r[i].abs() * (3.4e-9 + approx) + 2e-11;
            assert!(
                (num - dx[i]).abs() <= tol,
                "{kind:?}, x = {xi}: numeric {num}, analytic {}, |diff| {:.3e} > {tol:.3e}",
                dx[i],
                (num - dx[i]).abs()
            );
        }
    }
}

#[test]
fn erfc_meets_its_published_accuracy() {
    // Numerical Recipes' bound for `erfcc`: fractional error < 1.2e-7. Checked
    // on |z| ≤ 3, where 1 − erf(z) keeps ≥ 11 correct digits in f64.
    for i in -3000..=3000 {
        let z = i as f64 * 1e-3;
        let want = 1.0 - erf(z);
        let got = cpu::erfc_f64(z);
        assert!(
            (got - want).abs() <= 1.2e-7 * want,
            "erfc({z}) = {got}, exact {want}"
        );
    }
}
