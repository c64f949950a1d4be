use gdl_gpu::kernels::batchnorm::{self, cpu, BnBuffers, BnShape, CHUNK_ROWS, EPSILON, MOMENTUM};
use gdl_gpu::util::{Rng, F32_EPS as U};

use crate::common::*;

#[derive(Clone, Copy, Debug)]
enum Data {
    /// N(0, 1) per element.
    Normal,
    /// N(1000, 1): the mean must not swamp the variance.
    Offset,
    /// Normal, but channel 0 constant: zero variance.
    ConstChannel,
}

/// Awkward shapes and every BN of the chapter's models (batch 32).
fn cases() -> Vec<(BnShape, Data)> {
    let s = |rows, channels| BnShape { rows, channels };
    let mut v = vec![
        (s(1, 1), Data::Normal),
        (s(1, 4), Data::Normal),
        (s(1, 3), Data::Offset),
        (s(7, 5), Data::Normal),
        (s(7, 5), Data::ConstChannel),
        (s(257, 13), Data::Normal),
        (s(257, 13), Data::Offset),
        (s(131, 8), Data::ConstChannel),
        (s(131, 8), Data::Offset),
        (s(2 * CHUNK_ROWS, 4), Data::Normal),
    ];
    // Dense BN: 32×128; CNN: 32·32·32 × 32, 32·16·16 × 32 and × 64, 32·8·8 × 64.
    for (rows, ch) in [(32, 128), (32_768, 32), (8192, 32), (8192, 64), (2048, 64)] {
        v.push((s(rows, ch), Data::Normal));
    }
    v.push((s(32_768, 32), Data::Offset));
    v.push((s(8192, 64), Data::ConstChannel));
    v
}

fn data(rng: &mut Rng, s: BnShape, d: Data) -> Vec<f32> {
    let mut x: Vec<f32> = (0..s.len()).map(|_| rng.normal()).collect();
    match d {
        Data::Normal => {}
        Data::Offset => x.iter_mut().for_each(|v| *v += 1000.0),
        Data::ConstChannel => {
            for r in 0..s.rows {
                x[r * s.channels] = 0.7;
            }
        }
    }
    x
}

/// Depth of the GPU's two-level sums: rows within a chunk, then chunks.
fn depth(s: BnShape) -> f64 {
    (CHUNK_ROWS.min(s.rows) + s.chunks()) as f64
}

#[track_caller]
fn check(case: &str, what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{case} {what}: length");
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i] as f64).abs();
        let bound = tol(i);
        assert!(
            err <= bound,
            "{case} {what}[{i}]: got {}, want {}, |diff| {err:.3e} > bound {bound:.3e}",
            got[i],
            want[i]
        );
    }
}

struct Params {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mm: Vec<f32>,
    mv: Vec<f32>,
}

fn params(rng: &mut Rng, c: usize) -> Params {
    Params {
        gamma: rng.vec(c, -1.5, 1.5),
        beta: rng.vec(c, -1.0, 1.0),
        mm: rng.vec(c, -1.0, 1.0),
        mv: rng.vec(c, 0.5, 2.0),
    }
}

struct Bufs {
    gamma: wgpu::Buffer,
    beta: wgpu::Buffer,
    mm: wgpu::Buffer,
    mv: wgpu::Buffer,
    mean: wgpu::Buffer,
    inv: wgpu::Buffer,
}

impl Bufs {
    fn new(p: &Params, mean: &[f32], inv: &[f32]) -> Self {
        Bufs {
            gamma: upload(&p.gamma),
            beta: upload(&p.beta),
            mm: upload(&p.mm),
            mv: upload(&p.mv),
            mean: upload(mean),
            inv: upload(inv),
        }
    }

    fn view(&self) -> BnBuffers<'_> {
        BnBuffers {
            gamma: &self.gamma,
            beta: &self.beta,
            moving_mean: &self.mm,
            moving_var: &self.mv,
            save_mean: &self.mean,
            save_inv_std: &self.inv,
        }
    }
}

fn run(dispatches: &[gdl_gpu::gpu::Dispatch]) {
    let refs: Vec<&gdl_gpu::gpu::Dispatch> = dispatches.iter().collect();
    gpu().run("batchnorm", &refs).unwrap();
}

// Error bounds, with D the summation depth and u = 2⁻²⁴ (c = 4 covers the
// few roundings of each Welford/Chan step):
//  μ:       the shifted values d = x − x[0] have |d| ≤ maxdev, each of the D
//           mean updates errs by ≤ ~2u·maxdev, then K + mean rounds (u|μ|).
//  σ²:      relative c·D·u from the M2 updates, plus the rounding of each d
//           (u·maxdev) entering 2Σ(d − mean)·e: relative 2u·maxdev/σ.
//  inv_std: half of σ²'s relative error (scaled by σ²/(σ² + ε)), plus
//           inverseSqrt's 2 ulp and the reference's rounding.
//  y:       |γ|·inv·(δμ + |x − μ|·(δinv/inv + 3u)) + 2u(|y| + |β|).
#[test]
fn forward_train_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for (s, d) in cases() {
        let case = format!("{s:?} {d:?}");
        let c = s.channels;
        let x = data(&mut rng, s, d);
        let p = params(&mut rng, c);
        let bufs = Bufs::new(&p, &vec![f32::NAN; c], &vec![f32::NAN; c]);
        let xb = upload(&x);
        let yb = upload(&vec![f32::NAN; s.len()]);
        run(&batchnorm::forward_train(gpu, s, &xb, &yb, &bufs.view(), MOMENTUM, EPSILON).unwrap());

        let (mut mm, mut mv) = (p.mm.clone(), p.mv.clone());
        let want = cpu::forward_train(
            s, &x, &p.gamma, &p.beta, &mut mm, &mut mv, MOMENTUM, EPSILON,
        );

        let dd = depth(s);
        let maxdev: Vec<f64> = (0..c)
            .map(|j| {
                (0..s.rows)
                    .map(|r| (x[r * c + j] as f64 - x[j] as f64).abs())
                    .fold(0.0, f64::max)
            })
            .collect();
        let tol_mu: Vec<f64> = (0..c)
            .map(|j| 4.0 * dd * U * maxdev[j] + 2.0 * U * (want.mean[j] as f64).abs())
            .collect();
        let rel_var: Vec<f64> = (0..c)
            .map(|j| {
                let sd = (want.var[j] as f64).sqrt();
                let spread = if maxdev[j] == 0.0 {
                    0.0
                } else {
                    maxdev[j] / sd
                };
                4.0 * dd * U + 2.0 * U * spread
            })
            .collect();
        let rel_inv: Vec<f64> = (0..c)
            .map(|j| {
                let v = want.var[j] as f64;
                0.5 * rel_var[j] * v / (v + EPSILON as f64) + 4.0 * U
            })
            .collect();

        check(&case, "save_mean", &read(&bufs.mean, c), &want.mean, |j| {
            tol_mu[j]
        });
        check(
            &case,
            "save_inv_std",
            &read(&bufs.inv, c),
            &want.inv_std,
            |j| rel_inv[j] * want.inv_std[j] as f64,
        );
        let one_minus = 1.0 - MOMENTUM as f64;
        check(&case, "moving_mean", &read(&bufs.mm, c), &mm, |j| {
            one_minus * tol_mu[j] + 4.0 * U * ((p.mm[j] as f64).abs() + (want.mean[j] as f64).abs())
        });
        check(&case, "moving_var", &read(&bufs.mv, c), &mv, |j| {
            let v = want.var[j] as f64;
            one_minus * rel_var[j] * v + 4.0 * U * (p.mv[j] as f64 + v)
        });
        check(&case, "y", &read(&yb, s.len()), &want.y, |i| {
            let j = i % c;
            let inv = want.inv_std[j] as f64;
            let dev = (x[i] as f64 - want.mean[j] as f64).abs();
            (p.gamma[j] as f64).abs() * inv * (tol_mu[j] + dev * (rel_inv[j] + 3.0 * U))
                + 2.0 * U * ((want.y[i] as f64).abs() + (p.beta[j] as f64).abs())
        });
    }
}

// y = (x − mm)·γ·inverseSqrt(mv + ε) + β: the scale errs by ≤ 4u (ε add,
// 2-ulp inverseSqrt, γ product), the difference and product by 2u more,
// the add and the reference's rounding by u·|y| + u·|β| each.
#[test]
fn forward_infer_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    for (s, d) in cases() {
        let case = format!("{s:?} {d:?}");
        let c = s.channels;
        let x = data(&mut rng, s, d);
        let p = params(&mut rng, c);
        let bufs = Bufs::new(&p, &vec![0.0; c], &vec![0.0; c]);
        let xb = upload(&x);
        let yb = upload(&vec![f32::NAN; s.len()]);
        run(&batchnorm::forward_infer(gpu, s, &xb, &yb, &bufs.view(), EPSILON).unwrap());
        let want = cpu::forward_infer(s, &x, &p.gamma, &p.beta, &p.mm, &p.mv, EPSILON);
        check(&case, "y", &read(&yb, s.len()), &want, |i| {
            let j = i % c;
            let scale = (p.gamma[j] as f64).abs() / (p.mv[j] as f64 + EPSILON as f64).sqrt();
            scale * (x[i] as f64 - p.mm[j] as f64).abs() * 6.0 * U
                + 2.0 * U * ((want[i] as f64).abs() + (p.beta[j] as f64).abs())
        });
        // Inference leaves the statistics alone.
        check(&case, "moving_mean", &read(&bufs.mm, c), &p.mm, |_| 0.0);
        check(&case, "moving_var", &read(&bufs.mv, c), &p.mv, |_| 0.0);
    }
}

// Backward from the reference's own (f32) saved μ and inv_std, so both sides
// compute the same function. Bounds, D the summation depth:
//  dβ = Σdy:              D·u·Σ|dy| + u|dβ|
//  dγ = inv·Σdy·(x − μ):  inv·(D + 2)·u·Σ|dy·(x − μ)| + 2u|dγ|
//  dx = γ·inv/R·(R·dy − dβ − x̂·dγ): the errors of dβ and x̂·dγ carried
//       through, plus 8u on each of the three terms for the ~8 roundings.
#[test]
fn backward_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    for (s, d) in cases() {
        let case = format!("{s:?} {d:?}");
        let (r, c) = (s.rows, s.channels);
        let x = data(&mut rng, s, d);
        let dy = rng.vec(s.len(), -1.0, 1.0);
        let p = params(&mut rng, c);
        let (mut mm, mut mv) = (p.mm.clone(), p.mv.clone());
        let fwd = cpu::forward_train(
            s, &x, &p.gamma, &p.beta, &mut mm, &mut mv, MOMENTUM, EPSILON,
        );
        let bufs = Bufs::new(&p, &fwd.mean, &fwd.inv_std);
        let xb = upload(&x);
        let dyb = upload(&dy);
        let dxb = upload(&vec![f32::NAN; s.len()]);
        let dgb = upload(&vec![f32::NAN; c]);
        let dbb = upload(&vec![f32::NAN; c]);
        run(&batchnorm::backward(gpu, s, &xb, &dyb, &bufs.view(), &dxb, &dgb, &dbb).unwrap());
        let (dx, dg, db) = cpu::backward(s, &x, &dy, &p.gamma, &fwd.mean, &fwd.inv_std);

        let dd = depth(s);
        let mut s1 = vec![0.0f64; c];
        let mut s2 = vec![0.0f64; c];
        for i in 0..s.len() {
            let j = i % c;
            s1[j] += (dy[i] as f64).abs();
            s2[j] += (dy[i] as f64 * (x[i] as f64 - fwd.mean[j] as f64)).abs();
        }
        let tol_db: Vec<f64> = (0..c)
            .map(|j| dd * U * s1[j] + U * (db[j] as f64).abs())
            .collect();
        let tol_dg: Vec<f64> = (0..c)
            .map(|j| {
                fwd.inv_std[j] as f64 * (dd + 2.0) * U * s2[j] + 2.0 * U * (dg[j] as f64).abs()
            })
            .collect();
        check(&case, "dbeta", &read(&dbb, c), &db, |j| tol_db[j]);
        check(&case, "dgamma", &read(&dgb, c), &dg, |j| tol_dg[j]);
        let rf = r as f64;
        check(&case, "dx", &read(&dxb, s.len()), &dx, |i| {
            let j = i % c;
            let inv = fwd.inv_std[j] as f64;
            let xhat = ((x[i] as f64 - fwd.mean[j] as f64) * inv).abs();
            (p.gamma[j] as f64).abs() * inv / rf
                * (tol_db[j]
                    + xhat * tol_dg[j]
                    + 8.0
                        * U
                        * (rf * (dy[i] as f64).abs()
                            + (db[j] as f64).abs()
                            + xhat * (dg[j] as f64).abs()))
                + U * (dx[i] as f64).abs()
        });
    }
}

#[test]
fn empty_shape_builds_nothing() {
    let gpu = gpu();
    let s = BnShape {
        rows: 0,
        channels: 4,
    };
    let p = Params {
        gamma: vec![1.0; 4],
        beta: vec![0.0; 4],
        mm: vec![0.0; 4],
        mv: vec![1.0; 4],
    };
    let bufs = Bufs::new(&p, &[0.0; 4], &[1.0; 4]);
    let b = zeros(4);
    assert!(
        batchnorm::forward_train(gpu, s, &b, &b, &bufs.view(), MOMENTUM, EPSILON)
            .unwrap()
            .is_empty()
    );
}
