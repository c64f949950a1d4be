//! Finite-difference checks of the backward ops of the loss, dropout and
//! reduction references: pure CPU, no adapter.

use gdl_gpu::kernels::{dropout, reduce, softmax_xent};
use gdl_gpu::util::{Rng, F32_EPS};

/// Central difference of `f` at `x` along coordinate `i`.
fn central(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let mut xp = x.to_vec();
    let mut xm = x.to_vec();
    xp[i] += h;
    xm[i] -= h;
    (f(&xp) - f(&xm)) / (2.0 * h)
}

#[test]
fn softmax_xent_gradient() {
    // L = mean over rows of −log softmax[label] (the clip is inactive at
    // these logits); the kernel's dlogits = (softmax − onehot)/batch is ∂L/∂logits.
    // f64 central differences, h = 1e-5: truncation O(h²·|f'''|) ≈ 1e-10,
    // cancellation ≈ 1e-16/h ≈ 1e-11; the f32 analytic gradient
    // (p rounded to f32, p − t and ·(1/batch) rounded) is off by at most
    // 3·2⁻²⁴/batch since p ≤ 1 and |p − t| ≤ 1.
    let mut rng = Rng::new(51);
    for &(batch, classes) in &[(1usize, 1usize), (1, 10), (7, 10), (4, 13), (32, 10)] {
        let logits: Vec<f32> = rng.vec(batch * classes, -4.0, 4.0);
        let labels: Vec<u32> = (0..batch)
            .map(|_| rng.below(classes as u64) as u32)
            .collect();
        let (_, _, d) = softmax_xent::cpu::forward_backward(batch, classes, &logits, &labels);
        let x: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
        let f = |z: &[f64]| softmax_xent::cpu::mean_loss_f64(batch, classes, z, &labels);
        for (i, &di) in d.iter().enumerate() {
            let num = central(&f, &x, i, 1e-5);
            let err = (num - di as f64).abs();
            assert!(
                err <= 1e-9 + 3.0 * F32_EPS / batch as f64,
                "batch={batch} classes={classes} i={i}: numeric {num}, analytic {di}"
            );
        }
    }
}

#[test]
fn dropout_gradient() {
    // L = Σ w·dropout(x): linear in x, so ∂L/∂x = backward(w). Inputs are
    // f32; the difference uses h = 0.25 (exact in f32 for |x| < 2), so the
    // only error is f32 rounding of y: ≤ 2·2⁻²⁴·|y|·|w|/h per element
    // summed over the two evaluations, well under the 1e-5 allowed.
    let mut rng = Rng::new(52);
    let n = 97;
    for &rate in &[0.0f32, 0.3, 0.5] {
        let x: Vec<f32> = rng.vec(n, -1.0, 1.0);
        let w: Vec<f32> = rng.vec(n, -1.0, 1.0);
        let dx = dropout::cpu::backward(5, 6, 2, rate, &w);
        let loss = |z: &[f64]| -> f64 {
            let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
            dropout::cpu::forward(5, 6, 2, rate, &z32)
                .iter()
                .zip(&w)
                .map(|(&y, &wi)| y as f64 * wi as f64)
                .sum()
        };
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for (i, &dxi) in dx.iter().enumerate() {
            let num = central(&loss, &x64, i, 0.25);
            assert!(
                (num - dxi as f64).abs() <= 1e-5,
                "rate={rate} i={i}: numeric {num}, analytic {dxi}"
            );
        }
    }
}

#[test]
fn bias_gradient_is_column_sums() {
    // y[r, c] = x[r, c] + b[c]; L = Σ w·y, so ∂L/∂b[c] = Σ_r w[r, c] =
    // column_sums(w). L is linear in b: the central difference in f64 is
    // exact up to cancellation (≈ 1e-16·|L|/h).
    let mut rng = Rng::new(53);
    for &(rows, cols) in &[(1usize, 1usize), (7, 13), (300, 10)] {
        let x: Vec<f64> = (0..rows * cols)
            .map(|_| rng.uniform(-1.0, 1.0) as f64)
            .collect();
        let w: Vec<f32> = rng.vec(rows * cols, -1.0, 1.0);
        let b: Vec<f64> = (0..cols).map(|_| rng.uniform(-1.0, 1.0) as f64).collect();
        let db = reduce::cpu::column_sums(rows, cols, &w);
        let loss = |bb: &[f64]| -> f64 {
            (0..rows * cols)
                .map(|k| (x[k] + bb[k % cols]) * w[k] as f64)
                .sum()
        };
        for (c, &dbc) in db.iter().enumerate() {
            let num = central(&loss, &b, c, 1e-3);
            // db is the f64 sum rounded to f32: 2⁻²⁴ relative.
            let tol = 1e-9 + F32_EPS * (dbc as f64).abs();
            assert!(
                (num - dbc as f64).abs() <= tol,
                "rows={rows} cols={cols} c={c}: numeric {num}, analytic {dbc}"
            );
        }
    }
}
