//! Finite-difference checks of the pooling references' backward passes, in
//! f64, on L = Σ y·r for random r. Pure CPU: no adapter needed.

use gdl_gpu::kernels::pool::{cpu, Pool2dGeom};
use gdl_gpu::kernels::window::Padding::{self, *};
use gdl_gpu::kernels::window::Window2d;
use gdl_gpu::util::Rng;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn g(h: usize, w: usize, c: usize, k: (usize, usize), s: (usize, usize), p: Padding) -> Pool2dGeom {
    Pool2dGeom {
        batch: 2,
        channels: c,
        window: Window2d {
            in_h: h,
            in_w: w,
            kh: k.0,
            kw: k.1,
            stride_h: s.0,
            stride_w: s.1,
            padding: p,
        },
    }
}

fn cases() -> Vec<Pool2dGeom> {
    vec![
        g(1, 1, 1, (1, 1), (1, 1), Valid),
        g(7, 5, 3, (3, 3), (2, 2), Same),
        g(7, 5, 3, (3, 3), (2, 2), Valid),
        g(7, 5, 2, (2, 3), (1, 2), Same),
        g(6, 6, 2, (2, 2), (2, 2), Valid),
        g(2, 3, 2, (5, 4), (1, 1), Same),
        Pool2dGeom::global(2, 5, 3, 2),
    ]
}

/// Central differences of `loss` in every coordinate of `x` against `grad`.
#[track_caller]
fn check(what: &str, x: &mut [f64], grad: &[f64], h: f64, tol: f64, loss: impl Fn(&[f64]) -> f64) {
    for i in 0..x.len() {
        let orig = x[i];
        x[i] = orig + h;
        let up = loss(x);
        x[i] = orig - h;
        let down = loss(x);
        x[i] = orig;
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= tol,
            "{what}[{i}]: finite difference {fd}, backward {}",
            grad[i]
        );
    }
}

// Both poolings are linear in x where the argmax does not change (and avg
// everywhere), so central differences have no truncation error. Max-pool
// inputs are a shuffled ramp spaced 1e-2 apart, so no window ties and h =
// 1e-4 never reorders one. What remains is the rounding of L, ≲ 2⁻⁵³·Σ|y·r|
// ≈ 1e-14 here, divided by 2h: ≲ 1e-10 ≤ 1e-9 allowed.
#[test]
fn pool_backward_matches_finite_differences() {
    let mut rng = Rng::new(43);
    for geom in cases() {
        let n = geom.input_len();
        let mut ramp: Vec<f64> = (0..n).map(|i| i as f64 * 1e-2 - 1.0).collect();
        rng.shuffle(&mut ramp);
        let r: Vec<f64> = (0..geom.output_len())
            .map(|_| rng.normal() as f64)
            .collect();
        let case = format!("{geom:?}");
        let dx = cpu::max_backward_f64(&geom, &ramp, &r);
        check(&format!("max {case}"), &mut ramp, &dx, 1e-4, 1e-9, |x| {
            dot(&cpu::max_forward_f64(&geom, x), &r)
        });
        let mut x: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
        let dx = cpu::avg_backward_f64(&geom, &r);
        check(&format!("avg {case}"), &mut x, &dx, 1e-4, 1e-9, |x| {
            dot(&cpu::avg_forward_f64(&geom, x), &r)
        });
    }
}
