// The activations of kernels::elementwise::ActKind, forward and backward,
// chosen by `kind` (ActKind::code): 0 LeakyReLU (ReLU is slope 0), 1
// sigmoid, 2 tanh, 3 ELU, 4 GELU, 5 the identity; `a` is LeakyReLU's slope
// or ELU's alpha. Callers pass an override constant as `kind`, so the
// switch folds away when the pipeline is compiled and no element branches
// on it. Must match kernels::elementwise::cpu formula for formula (same
// approximations, same order of operations), so GPU and CPU differ only by
// the rounding of exp.

const ACT_SQRT1_2: f32 = 0.70710678118654752;
const ACT_INV_SQRT_2PI: f32 = 0.39894228040143268;

// erfc(z) with fractional error < 1.2e-7 everywhere: Press et al.,
// Numerical Recipes in C, 2nd ed. (1992), §6.2, `erfcc` (a Chebyshev fit).
// Relative accuracy in the tail keeps GELU accurate for negative x, where
// 1 + erf(x/√2) would cancel.
fn act_erfc(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * abs(z));
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-z * z + poly);
    return select(2.0 - r, r, z >= 0.0);
}

// tanh after Cephes' tanhf (S. Moshier): an odd polynomial below 0.625,
// where 1 − e would cancel; above it 1 − 2e/(1 + e) with e = exp(−2|x|) ≤ 1,
// which cannot overflow.
fn act_tanh_poly(v: f32) -> f32 {
    let z = v * v;
    return ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
        + 1.33314422036e-1) * z - 3.33332819422e-1) * z * v + v;
}

fn act_apply(kind: u32, a: f32, v: f32) -> f32 {
    switch kind {
        case 0u: {
            return select(v * a, v, v > 0.0);
        }
        case 1u: {
            // exp of −|x| only: no overflow for large |x|.
            let e = exp(-abs(v));
            return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
        }
        case 2u: {
            let e = exp(-2.0 * abs(v));
            let t = 1.0 - 2.0 * e / (1.0 + e);
            return select(act_tanh_poly(v), sign(v) * t, abs(v) >= 0.625);
        }
        case 3u: {
            return select(a * (exp(v) - 1.0), v, v > 0.0);
        }
        case 4u: {
            return 0.5 * v * act_erfc(-v * ACT_SQRT1_2);
        }
        default: {
            return v;
        }
    }
}

// d act / dx at v, times g.
fn act_grad(kind: u32, a: f32, v: f32, g: f32) -> f32 {
    switch kind {
        case 0u: {
            return select(g * a, g, v > 0.0);
        }
        case 1u: {
            // σ(1 − σ) = e/(1 + e)² with e = exp(−|x|): no cancellation.
            let e = exp(-abs(v));
            let d = 1.0 + e;
            return g * (e / (d * d));
        }
        case 2u: {
            // 1 − t² = 4e/(1 + e)² above 0.625, where 1 − t² would cancel.
            let e = exp(-2.0 * abs(v));
            let d = 1.0 + e;
            let t = act_tanh_poly(v);
            return g * select(1.0 - t * t, 4.0 * e / (d * d), abs(v) >= 0.625);
        }
        case 3u: {
            return select(g * (a * exp(v)), g, v > 0.0);
        }
        case 4u: {
            // Φ(x) + x·φ(x).
            let cdf = 0.5 * act_erfc(-v * ACT_SQRT1_2);
            let pdf = ACT_INV_SQRT_2PI * exp(-0.5 * v * v);
            return g * (cdf + v * pdf);
        }
        default: {
            return g;
        }
    }
}
