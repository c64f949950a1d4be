//! Finite-difference checks of the CPU references' backward passes (conv2d
//! and batch normalization), in f64, on the loss L = Σ y·r for random r, so
//! that dL/dy = r. Pure CPU: no adapter needed.

use gdl_gpu::kernels::batchnorm::{cpu as bn, BnShape};
use gdl_gpu::kernels::conv::{cpu as conv, Conv2dGeom, Padding};
use gdl_gpu::kernels::window::Window2d;
use gdl_gpu::util::Rng;

fn randn(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal() as f64).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central differences of `loss` in every coordinate of `v`, against `grad`.
/// `tol` bounds |fd − grad| for that coordinate, given the loss's scale.
#[track_caller]
fn check(
    what: &str,
    v: &mut [f64],
    grad: &[f64],
    h: f64,
    tol: f64,
    mut loss: impl FnMut(&[f64]) -> f64,
) {
    for i in 0..v.len() {
        let orig = v[i];
        v[i] = orig + h;
        let up = loss(v);
        v[i] = orig - h;
        let down = loss(v);
        v[i] = orig;
        let fd = (up - down) / (2.0 * h);
        let err = (fd - grad[i]).abs();
        assert!(
            err <= tol * (1.0 + grad[i].abs()),
            "{what}[{i}]: finite difference {fd}, backward {}, |diff| {err:.3e}",
            grad[i]
        );
    }
}

fn conv_cases() -> Vec<Conv2dGeom> {
    let g = |h, w, c, oc, kh, kw, stride, padding| Conv2dGeom {
        batch: 2,
        in_c: c,
        out_c: oc,
        window: Window2d {
            in_h: h,
            in_w: w,
            kh,
            kw,
            stride_h: stride,
            stride_w: stride,
            padding,
        },
    };
    use Padding::*;
    vec![
        g(5, 4, 3, 2, 3, 3, 1, Same),
        g(5, 4, 3, 2, 3, 3, 2, Same),
        g(7, 5, 2, 3, 3, 3, 2, Valid),
        g(6, 6, 2, 2, 4, 4, 2, Same),
        g(2, 3, 2, 2, 5, 5, 1, Same),
        g(4, 5, 1, 2, 2, 3, 3, Same),
        g(1, 1, 1, 1, 1, 1, 1, Valid),
        // Non-square strides.
        {
            let mut g = g(5, 6, 2, 2, 3, 3, 1, Same);
            (g.window.stride_h, g.window.stride_w) = (1, 2);
            g
        },
        {
            let mut g = g(7, 4, 2, 2, 2, 3, 1, Valid);
            (g.window.stride_h, g.window.stride_w) = (3, 1);
            g
        },
    ]
}

// L is bilinear in (x, w) and linear in b, so central differences have no
// truncation error: what remains is the rounding of L (≈ 2⁻⁵³·Σ|y·r| ≲ 1e-14
// here) divided by h = 1e-4, far below the 1e-8 tolerance.
#[test]
fn conv2d_backward_matches_finite_differences() {
    let mut rng = Rng::new(31);
    for g in conv_cases() {
        let mut x = randn(&mut rng, g.input_len());
        let mut w = randn(&mut rng, g.weight_len());
        let mut b = randn(&mut rng, g.out_c);
        let r = randn(&mut rng, g.output_len());
        let (dx, dw, db) = conv::conv2d_backward_f64(&g, &x, &w, &r);
        let case = format!("{g:?}");
        let (w0, b0) = (w.clone(), b.clone());
        check(&format!("dx {case}"), &mut x, &dx, 1e-4, 1e-8, |x| {
            dot(&conv::conv2d_forward_f64(&g, x, &w0, &b0), &r)
        });
        let x0 = x.clone();
        check(&format!("dw {case}"), &mut w, &dw, 1e-4, 1e-8, |w| {
            dot(&conv::conv2d_forward_f64(&g, &x0, w, &b0), &r)
        });
        check(&format!("db {case}"), &mut b, &db, 1e-4, 1e-8, |b| {
            dot(&conv::conv2d_forward_f64(&g, &x0, &w0, b), &r)
        });
    }
}

// Batch norm is smooth (ε > 0 keeps even a constant channel smooth):
// central differences err by O(h²·|L'''|) ≈ 1e-10·inv_std³ for h = 1e-5 plus
// rounding 2⁻⁵³·|L|/h ≈ 1e-10; inv_std ≤ 1/√ε ≈ 32 for the constant
// channel, whose x-derivatives are then large but exact to ~1e-6.
#[test]
fn batchnorm_backward_matches_finite_differences() {
    let mut rng = Rng::new(32);
    let eps = 1e-3;
    let cases = [(1, 3), (2, 2), (7, 5), (16, 4), (33, 3)];
    for (rows, channels) in cases {
        let s = BnShape { rows, channels };
        let mut x = randn(&mut rng, s.len());
        // A constant channel (zero variance) and one with a large offset.
        if channels > 1 && rows > 1 {
            for row in 0..rows {
                x[row * channels] = 0.3;
                x[row * channels + 1] += 1000.0;
            }
        }
        let mut gamma = randn(&mut rng, channels);
        let mut beta = randn(&mut rng, channels);
        let r = randn(&mut rng, s.len());
        let fwd = bn::forward_train_f64(s, &x, &gamma, &beta, eps);
        let (dx, dgamma, dbeta) = bn::backward_f64(s, &x, &r, &gamma, &fwd.mean, &fwd.inv_std);
        let case = format!("{s:?}");
        let (g0, b0) = (gamma.clone(), beta.clone());
        check(&format!("dx {case}"), &mut x, &dx, 1e-5, 1e-6, |x| {
            dot(&bn::forward_train_f64(s, x, &g0, &b0, eps).y, &r)
        });
        let x0 = x.clone();
        check(
            &format!("dgamma {case}"),
            &mut gamma,
            &dgamma,
            1e-5,
            1e-6,
            |g| dot(&bn::forward_train_f64(s, &x0, g, &b0, eps).y, &r),
        );
        check(
            &format!("dbeta {case}"),
            &mut beta,
            &dbeta,
            1e-5,
            1e-6,
            |b| dot(&bn::forward_train_f64(s, &x0, &g0, b, eps).y, &r),
        );
    }
}
