use gdl_gpu::kernels::elementwise::{self, cpu, ActKind};
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

/// Unit roundoff 2⁻²⁴; one ulp of v is at most 2u·|v|.
const U: f64 = F32_EPS;

/// GPU exp(a) vs CPU expf(a), relative: WGSL allows 3 + 2|a| ulp, the CPU
/// errs by under 1 ulp.
fn exp_err(a: f64) -> f64 {
    (4.0 + 2.0 * a.abs()) * 2.0 * U
}

/// Bounds on |GPU − CPU| for (forward, backward) at x with upstream g. Both
/// sides evaluate the same formula in the same order; +, −, × are correctly
/// rounded on both (≤ u each, 2u for the pair), but WGSL allows 2.5 ulp for
/// a division (6u for the pair) and contracting a·b + c into an fma (never
/// worse than the two roundings it replaces). The rest is exp.
/// WGSL lets a GPU flush subnormal values to zero: a result or intermediate
/// that small (exp(−90), erfc(8)) may be off by the smallest normal f32,
/// and gelu then multiplies an intermediate by at most |x|.
pub(crate) fn bounds(kind: ActKind, x: f32, g: f32) -> (f64, f64) {
    let (fwd, bwd) = rounding_bounds(kind, x, g);
    let ftz = match kind {
        ActKind::Relu | ActKind::LeakyRelu(_) => 0.0,
        _ => f32::MIN_POSITIVE as f64 * (1.0 + x.abs() as f64),
    };
    (fwd + ftz, bwd + ftz)
}

fn rounding_bounds(kind: ActKind, x: f32, g: f32) -> (f64, f64) {
    let (v, g) = (x as f64, g as f64);
    let y = cpu::act_f64(kind, v).abs();
    let dx = cpu::grad_f64(kind, v, g).abs();
    match kind {
        // A select and at most one multiply, rounded the same way: exact.
        ActKind::Relu | ActKind::LeakyRelu(_) => (0.0, 0.0),
        // 1 + e, then a division (dσ also d·d and ·g): e's relative error
        // passes through with a factor ≤ 1.
        ActKind::Sigmoid => (y * (exp_err(v) + 8.0 * U), dx * (exp_err(v) + 12.0 * U)),
        ActKind::Tanh if v.abs() >= 0.625 => (
            // w = 2e/(1 + e) ≤ 0.8·t here, so 1 − w carries ≤ 0.8 of w's error.
            y * (exp_err(2.0 * v) + 10.0 * U),
            dx * (exp_err(2.0 * v) + 12.0 * U),
        ),
        // Horner's rounding errors total ≤ 2u·0.13|x| (the polynomial term is
        // ≤ 0.13|x|) plus the last add; 1 − t² with t² ≤ 0.31 adds ≤ 3u.
        ActKind::Tanh => (y * 4.0 * U, dx * 8.0 * U),
        ActKind::Elu(_) if v > 0.0 => (0.0, 0.0),
        ActKind::Elu(a) => {
            let e = v.exp() * a.abs() as f64;
            // e − 1 is exact (Sterbenz) or one rounding; then ·alpha.
            (e * exp_err(v) + 4.0 * U * y, dx * (exp_err(v) + 4.0 * U))
        }
        ActKind::Gelu => {
            // erfc: t = 1/(1 + |z|/2) differs by ≤ 8u; the exponent
            // a = −z² + P(t) by 2u·z² (−z·z), 16u (Horner: the partial sums
            // total ≤ 7.65, u each side) and |t·P'(t)| ≤ 1.26 times t's 8u;
            // then r = t·exp(a) (≤ 8u + 2u more), 2 − r (r ≤ 1: 2u).
            let z = v * std::f64::consts::FRAC_1_SQRT_2;
            let zz = z * z;
            let d_erfc = exp_err(zz + 1.27) + (2.0 * zz + 27.0) * U + 12.0 * U;
            let cdf = cpu::erfc_f64(-z) * 0.5;
            let vpdf = (v * (-0.5 * v * v).exp() * 0.398_942_280_401_432_7).abs();
            // y = 0.5·x·erfc: one more multiply (2u). dx = g·(cdf + x·pdf):
            // pdf's exponent −0.5·x·x errs by u·x² a side, then ·c, ·x, +, ·g.
            let fwd = y * (d_erfc + 2.0 * U);
            let bwd = g.abs()
                * (cdf * (d_erfc + 4.0 * U)
                    + vpdf * (exp_err(0.5 * v * v) + 2.0 * v * v * U + 8.0 * U));
            (fwd, bwd)
        }
    }
}

#[track_caller]
fn assert_within(case: &str, got: &[f32], want: &[f32], bound: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i] as f64).abs();
        // Both are f32 and the bound may be exactly what separates them: the
        // f64 bound itself is rounded, so allow one part in 10⁶ of it.
        let b = bound(i) * (1.0 + 1e-6);
        assert!(
            err <= b || got[i] == want[i],
            "{case}: element {i}: got {}, want {}, |diff| {err:.3e} > {b:.3e}",
            got[i],
            want[i]
        );
    }
}

const KINDS: [ActKind; 7] = [
    ActKind::Relu,
    ActKind::LeakyRelu(0.2),
    ActKind::Sigmoid,
    ActKind::Tanh,
    ActKind::Elu(1.0),
    ActKind::Elu(0.3),
    ActKind::Gelu,
];

/// Inputs over the interesting range of every kind: both signs, the kinks
/// and branch points (0, ±0.625), large |x| where exp under- or overflows.
fn inputs(rng: &mut Rng, n: usize) -> Vec<f32> {
    let special = [
        0.0f32, -0.0, 0.625, -0.625, 1e-6, -1e-6, 30.0, -30.0, 90.0, -90.0,
    ];
    let mut x = rng.vec(n, -6.0, 6.0);
    for (v, s) in x.iter_mut().zip(special) {
        *v = s;
    }
    // Every 7th element from a wider range.
    for v in x.iter_mut().skip(special.len()).step_by(7) {
        *v *= 4.0;
    }
    x
}

fn check(kind: ActKind, n: usize, rng: &mut Rng) {
    let gpu = gpu();
    let x = inputs(rng, n);
    let dy = rng.vec(n, -1.0, 1.0);
    let (xb, yb, dyb, dxb) = (upload(&x), zeros(n), upload(&dy), zeros(n));
    let f = elementwise::forward(gpu, kind, &xb, &yb, n).unwrap();
    let b = elementwise::backward(gpu, kind, &xb, &dyb, &dxb, n).unwrap();
    gpu.run("activation", &[&f, &b]).unwrap();
    let case = format!("{kind:?} n={n}");
    assert_within(
        &format!("forward {case}"),
        &read(&yb, n),
        &cpu::forward(kind, &x),
        |i| bounds(kind, x[i], dy[i]).0,
    );
    assert_within(
        &format!("backward {case}"),
        &read(&dxb, n),
        &cpu::backward(kind, &x, &dy),
        |i| bounds(kind, x[i], dy[i]).1,
    );
}

#[test]
fn activations_match_reference() {
    let mut rng = Rng::new(1);
    // 1, a prime, non-multiples of the workgroup, and the CNN's activations
    // at batch 32: 32×32×32, 16×16×64, 8×8×64.
    for kind in KINDS {
        for n in [
            1usize,
            7,
            257,
            1000,
            32 * 32 * 32 * 32,
            32 * 16 * 16 * 64,
            32 * 8 * 8 * 64,
        ] {
            check(kind, n, &mut rng);
        }
    }
}

// One past the 65,535-workgroup fold into y: the index arithmetic is the
// same for every kind.
#[test]
fn activation_covers_folded_grid() {
    let mut rng = Rng::new(2);
    check(ActKind::LeakyRelu(0.2), 65_536 * 256 + 3, &mut rng);
}

#[test]
fn leaky_relu_keeps_its_rule_bit_for_bit() {
    // The executor's rule before the activation family: the select and one
    // multiply, passing the forward output as x in backward.
    let mut rng = Rng::new(3);
    let x = rng.vec(1000, -3.0, 3.0);
    let dy = rng.vec(1000, -1.0, 1.0);
    for slope in [0.0f32, 0.2] {
        let kind = if slope == 0.0 {
            ActKind::Relu
        } else {
            ActKind::LeakyRelu(slope)
        };
        let y: Vec<f32> = x
            .iter()
            .map(|&v| if v > 0.0 { v } else { slope * v })
            .collect();
        assert_eq!(cpu::forward(kind, &x), y);
        let dx: Vec<f32> = y
            .iter()
            .zip(&dy)
            .map(|(&v, &g)| if v > 0.0 { g } else { slope * g })
            .collect();
        assert_eq!(cpu::backward(kind, &y, &dy), dx);
    }
}
