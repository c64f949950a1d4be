use gdl_gpu::kernels::batchnorm::{
    self, cpu, BnBuffers, BnPost, BnShape, CHUNK_ROWS, EPSILON, MOMENTUM,
};
use gdl_gpu::kernels::dropout::DropoutMask;
use gdl_gpu::kernels::elementwise::{cpu as act_cpu, ActKind};
use gdl_gpu::kernels::step::StepUniform;
use gdl_gpu::util::{Rng, F32_EPS as U};

use crate::common::*;
use crate::elementwise::bounds as act_bounds;

/// The seed and step every test's dropout mask is drawn with.
const RNG: (u64, u32) = (7, 3);

fn step() -> wgpu::Buffer {
    gpu()
        .uniform("test step", &StepUniform::new(0, RNG.0, RNG.1))
        .expect("uniform")
}

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
            gamma: (&self.gamma).into(),
            beta: (&self.beta).into(),
            moving_mean: (&self.mm).into(),
            moving_var: (&self.mv).into(),
            save_mean: (&self.mean).into(),
            save_inv_std: (&self.inv).into(),
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
        let plain = BnPost::default();
        let fwd = batchnorm::forward_train;
        let st = step();
        run(&fwd(
            gpu,
            s,
            &xb,
            &yb,
            &bufs.view(),
            (MOMENTUM, EPSILON),
            plain,
            &st,
        )
        .unwrap());

        let (mut mm, mut mv) = (p.mm.clone(), p.mv.clone());
        let want = cpu::forward_train(
            s, &x, &p.gamma, &p.beta, &mut mm, &mut mv, MOMENTUM, EPSILON,
        );
        let b = train_bounds(s, &x, &want);
        let (tol_mu, rel_var, rel_inv) = (&b.tol_mu, &b.rel_var, &b.rel_inv);

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
            b.y(s, i, &x, &p, &want)
        });
    }
}

/// The forward's error bounds (see above), per channel.
struct TrainBounds {
    tol_mu: Vec<f64>,
    rel_var: Vec<f64>,
    rel_inv: Vec<f64>,
}

fn train_bounds(s: BnShape, x: &[f32], want: &cpu::TrainOut<f32>) -> TrainBounds {
    let c = s.channels;
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
    TrainBounds {
        tol_mu,
        rel_var,
        rel_inv,
    }
}

impl TrainBounds {
    /// Bound on element i of the normalized output.
    fn y(&self, s: BnShape, i: usize, x: &[f32], p: &Params, want: &cpu::TrainOut<f32>) -> f64 {
        let j = i % s.channels;
        let inv = want.inv_std[j] as f64;
        let dev = (x[i] as f64 - want.mean[j] as f64).abs();
        (p.gamma[j] as f64).abs() * inv * (self.tol_mu[j] + dev * (self.rel_inv[j] + 3.0 * U))
            + 2.0 * U * ((want.y[i] as f64).abs() + (p.beta[j] as f64).abs())
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
        run(&batchnorm::forward_infer(gpu, s, &xb, &yb, &bufs.view(), EPSILON, None).unwrap());
        let want = cpu::forward_infer(s, &x, &p.gamma, &p.beta, &p.mm, &p.mv, EPSILON);
        check(&case, "y", &read(&yb, s.len()), &want, |i| {
            infer_bound(s, i, &x, &p, &want)
        });
        // Inference leaves the statistics alone.
        check(&case, "moving_mean", &read(&bufs.mm, c), &p.mm, |_| 0.0);
        check(&case, "moving_var", &read(&bufs.mv, c), &p.mv, |_| 0.0);
    }
}

fn infer_bound(s: BnShape, i: usize, x: &[f32], p: &Params, want: &[f32]) -> f64 {
    let j = i % s.channels;
    let scale = (p.gamma[j] as f64).abs() / (p.mv[j] as f64 + EPSILON as f64).sqrt();
    scale * (x[i] as f64 - p.mm[j] as f64).abs() * 6.0 * U
        + 2.0 * U * ((want[i] as f64).abs() + (p.beta[j] as f64).abs())
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
        let c = s.channels;
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
        let (post, st) = (BnPost::default(), step());
        let out = (&dxb, &dgb, &dbb);
        run(&batchnorm::backward(gpu, s, &xb, &dyb, &bufs.view(), out, post, &st).unwrap());
        let want = cpu::backward(s, &x, &dy, &p.gamma, &fwd.mean, &fwd.inv_std);
        let got = (read(&dxb, s.len()), read(&dgb, c), read(&dbb, c));
        check_backward(
            &case,
            s,
            &x,
            (&dy, &vec![0.0; s.len()]),
            &p,
            &fwd,
            got,
            want,
        );
    }
}

/// Checks backward's (dx, dγ, dβ) against the reference's, from dz (the
/// gradient of the normalized output the reference used) and dz_err, a
/// bound on how far the GPU's own dz may be from it elementwise.
#[allow(clippy::too_many_arguments)]
fn check_backward(
    case: &str,
    s: BnShape,
    x: &[f32],
    (dz, dz_err): (&[f32], &[f64]),
    p: &Params,
    fwd: &cpu::TrainOut<f32>,
    got: (Vec<f32>, Vec<f32>, Vec<f32>),
    (dx, dg, db): (Vec<f32>, Vec<f32>, Vec<f32>),
) {
    let (r, c) = (s.rows, s.channels);
    let dd = depth(s);
    let mut s1 = vec![0.0f64; c];
    let mut s2 = vec![0.0f64; c];
    let mut e1 = vec![0.0f64; c];
    let mut e2 = vec![0.0f64; c];
    for i in 0..s.len() {
        let j = i % c;
        let dev = (x[i] as f64 - fwd.mean[j] as f64).abs();
        s1[j] += (dz[i] as f64).abs();
        s2[j] += (dz[i] as f64).abs() * dev;
        e1[j] += dz_err[i];
        e2[j] += dz_err[i] * dev;
    }
    let tol_db: Vec<f64> = (0..c)
        .map(|j| dd * U * (s1[j] + e1[j]) + e1[j] + U * (db[j] as f64).abs())
        .collect();
    let tol_dg: Vec<f64> = (0..c)
        .map(|j| {
            let inv = fwd.inv_std[j] as f64;
            inv * ((dd + 2.0) * U * (s2[j] + e2[j]) + e2[j]) + 2.0 * U * (dg[j] as f64).abs()
        })
        .collect();
    check(case, "dbeta", &got.2, &db, |j| tol_db[j]);
    check(case, "dgamma", &got.1, &dg, |j| tol_dg[j]);
    let rf = r as f64;
    check(case, "dx", &got.0, &dx, |i| {
        let j = i % c;
        let inv = fwd.inv_std[j] as f64;
        let xhat = ((x[i] as f64 - fwd.mean[j] as f64) * inv).abs();
        (p.gamma[j] as f64).abs() * inv / rf
            * (tol_db[j]
                + xhat * tol_dg[j]
                + rf * dz_err[i]
                + 8.0
                    * U
                    * (rf * (dz[i] as f64 + dz_err[i]).abs()
                        + (db[j] as f64).abs()
                        + xhat * (dg[j] as f64).abs()))
            + U * (dx[i] as f64).abs()
    });
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
    let (post, st) = (BnPost::default(), step());
    assert!(
        batchnorm::forward_train(gpu, s, &b, &b, &bufs.view(), (MOMENTUM, EPSILON), post, &st)
            .unwrap()
            .is_empty()
    );
}

// ---- with the following layers fused (BnPost) ---------------------------

/// Each post-op on awkward shapes and on the CNN's own (batch 32: the first
/// conv block's BN → LeakyReLU(0.2), the dense BN → LeakyReLU → Dropout(0.5)).
fn fused_cases() -> Vec<(BnShape, BnPost)> {
    let s = |rows, channels| BnShape { rows, channels };
    let post = |act, rate: f32, stream| BnPost {
        act,
        dropout: (rate > 0.0).then_some(DropoutMask { rate, stream }),
    };
    let leaky = Some(ActKind::LeakyRelu(0.2));
    vec![
        (s(1, 1), post(leaky, 0.0, 0)),
        (s(1, 4), post(Some(ActKind::Relu), 0.5, 1)),
        (s(7, 5), post(Some(ActKind::Gelu), 0.3, 2)),
        (s(257, 13), post(Some(ActKind::Tanh), 0.5, 0)),
        (s(131, 8), post(Some(ActKind::Sigmoid), 0.0, 0)),
        (
            s(2 * CHUNK_ROWS + 3, 4),
            post(Some(ActKind::Elu(1.0)), 0.25, 3),
        ),
        (s(13, 12), post(None, 0.5, 1)),
        (s(32, 128), post(leaky, 0.5, 0)),
        (s(32_768, 32), post(leaky, 0.0, 0)),
        (s(2048, 64), post(Some(ActKind::Gelu), 0.0, 0)),
    ]
}

/// max |f'| and max |f''| of the activation (the identity without one);
/// LeakyReLU's f'' is 0 away from the kink, which the backward test keeps
/// its inputs clear of.
fn derivative_bounds(act: Option<ActKind>) -> (f64, f64) {
    match act {
        None | Some(ActKind::Relu) | Some(ActKind::LeakyRelu(_)) => (1.0, 0.0),
        Some(ActKind::Sigmoid) => (0.25, 0.1),
        Some(ActKind::Tanh) => (1.0, 0.8),
        // alpha 1: f' ≤ 1, f'' = eˣ ≤ 1 below 0.
        Some(ActKind::Elu(_)) => (1.0, 1.0),
        // Φ(x) + xφ(x) ≤ 1.13; φ(x)(2 − x²) ≤ 2φ(0) < 0.8.
        Some(ActKind::Gelu) => (1.13, 0.8),
    }
}

/// The dropout mask's factor at element i: 0 or 1/(1 − rate), as both
/// sides draw it.
fn mask(post: BnPost, i: usize) -> f64 {
    match post.dropout {
        None => 1.0,
        Some(d)
            if gdl_gpu::kernels::dropout::cpu::keep(RNG.0, RNG.1, d.stream, i as u32, d.rate) =>
        {
            gdl_gpu::kernels::dropout::cpu::scale(d.rate) as f64
        }
        Some(_) => 0.0,
    }
}

/// Bound on |GPU − CPU| of post(z) where the normalized z may differ by
/// dz: the activation's Lipschitz constant times dz, its own rounding
/// (the elementwise kernel's bound), the mask's product (u a side).
fn post_bound(post: BnPost, i: usize, z: f32, dz: f64, want: f32) -> f64 {
    let (l1, _) = derivative_bounds(post.act);
    let act = post.act.map_or(0.0, |k| act_bounds(k, z, 1.0).0);
    mask(post, i) * (l1 * dz + act) + 2.0 * U * (want as f64).abs()
}

#[test]
fn fused_forward_train_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(24);
    for (s, post) in fused_cases() {
        let case = format!("{s:?} {post:?}");
        let c = s.channels;
        let x = data(&mut rng, s, Data::Normal);
        let p = params(&mut rng, c);
        let bufs = Bufs::new(&p, &vec![f32::NAN; c], &vec![f32::NAN; c]);
        let xb = upload(&x);
        let yb = upload(&vec![f32::NAN; s.len()]);
        let st = step();
        let f = batchnorm::forward_train(
            gpu,
            s,
            &xb,
            &yb,
            &bufs.view(),
            (MOMENTUM, EPSILON),
            post,
            &st,
        );
        run(&f.unwrap());
        let (mut mm, mut mv) = (p.mm.clone(), p.mv.clone());
        let want = cpu::forward_train(
            s, &x, &p.gamma, &p.beta, &mut mm, &mut mv, MOMENTUM, EPSILON,
        );
        let mut y = want.y.clone();
        cpu::post_into(post, RNG, &mut y);
        let b = train_bounds(s, &x, &want);
        check(&case, "y", &read(&yb, s.len()), &y, |i| {
            post_bound(post, i, want.y[i], b.y(s, i, &x, &p, &want), y[i])
        });
        // The statistics are the plain layer's.
        check(&case, "save_mean", &read(&bufs.mean, c), &want.mean, |j| {
            b.tol_mu[j]
        });
    }
}

#[test]
fn fused_forward_infer_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(25);
    for (s, post) in fused_cases() {
        let case = format!("{s:?} {:?}", post.act);
        let c = s.channels;
        let x = data(&mut rng, s, Data::Normal);
        let p = params(&mut rng, c);
        let bufs = Bufs::new(&p, &vec![0.0; c], &vec![0.0; c]);
        let xb = upload(&x);
        let yb = upload(&vec![f32::NAN; s.len()]);
        let f = batchnorm::forward_infer(gpu, s, &xb, &yb, &bufs.view(), EPSILON, post.act);
        run(&f.unwrap());
        let z = cpu::forward_infer(s, &x, &p.gamma, &p.beta, &p.mm, &p.mv, EPSILON);
        let mut y = z.clone();
        let act_only = BnPost {
            act: post.act,
            dropout: None,
        };
        cpu::post_into(act_only, (0, 0), &mut y);
        check(&case, "y", &read(&yb, s.len()), &y, |i| {
            post_bound(act_only, i, z[i], infer_bound(s, i, &x, &p, &z), y[i])
        });
    }
}

// dz = f'(z)·mask·dy with z recomputed on each side by the same f32
// formula, (x − μ)·(γ·inv) + β, which a GPU may contract into fused
// multiply-adds: δz ≤ 4u·|x − μ||γ·inv| + 2u|β| + u|z|. f'(z) then differs
// by max|f''|·δz, plus the elementwise kernel's own rounding bound.
#[test]
fn fused_backward_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(26);
    for (s, post) in fused_cases() {
        let case = format!("{s:?} {post:?}");
        let c = s.channels;
        let mut x = data(&mut rng, s, Data::Normal);
        let dy = rng.vec(s.len(), -1.0, 1.0);
        let p = params(&mut rng, c);
        let (mut mm, mut mv) = (p.mm.clone(), p.mv.clone());
        let fwd = cpu::forward_train(
            s, &x, &p.gamma, &p.beta, &mut mm, &mut mv, MOMENTUM, EPSILON,
        );
        let z_of = |x: &[f32], i: usize| {
            let j = i % c;
            p.gamma[j] as f64 * (x[i] as f64 - fwd.mean[j] as f64) * fwd.inv_std[j] as f64
                + p.beta[j] as f64
        };
        // Keep z off LeakyReLU's kink, where the two sides' z may straddle
        // it: backward is a function of any x given the saved statistics.
        for i in 0..s.len() {
            let z = z_of(&x, i);
            if z.abs() < 1e-3 {
                let j = i % c;
                let a = p.gamma[j] as f64 * fwd.inv_std[j] as f64;
                x[i] += (2e-3 / a) as f32;
            }
        }
        let bufs = Bufs::new(&p, &fwd.mean, &fwd.inv_std);
        let xb = upload(&x);
        let dyb = upload(&dy);
        let dxb = upload(&vec![f32::NAN; s.len()]);
        let dgb = upload(&vec![f32::NAN; c]);
        let dbb = upload(&vec![f32::NAN; c]);
        let st = step();
        let out = (&dxb, &dgb, &dbb);
        run(&batchnorm::backward(gpu, s, &xb, &dyb, &bufs.view(), out, post, &st).unwrap());
        let ch = cpu::BnChannels {
            gamma: &p.gamma,
            beta: &p.beta,
            mean: &fwd.mean,
            inv_std: &fwd.inv_std,
        };
        // The reference's dz, for the bounds: dy·mask through f' at z.
        let dz: Vec<f32> = (0..s.len())
            .map(|i| {
                let j = i % c;
                let z = (x[i] - fwd.mean[j]) * (p.gamma[j] * fwd.inv_std[j]) + p.beta[j];
                let g = (mask(post, i) * dy[i] as f64) as f32;
                post.act.map_or(g, |k| act_cpu::grad(k, z, g))
            })
            .collect();
        let (_, l2) = derivative_bounds(post.act);
        let dz_err: Vec<f64> = (0..s.len())
            .map(|i| {
                let j = i % c;
                let z = z_of(&x, i);
                let a = (p.gamma[j] as f64 * fwd.inv_std[j] as f64).abs();
                let dev = (x[i] as f64 - fwd.mean[j] as f64).abs();
                let dzv = 4.0 * U * dev * a + 2.0 * U * (p.beta[j] as f64).abs() + U * z.abs();
                let g = mask(post, i) * dy[i] as f64;
                let act = post
                    .act
                    .map_or(0.0, |k| act_bounds(k, z as f32, g as f32).1);
                l2 * dzv * g.abs() + act + 2.0 * U * g.abs()
            })
            .collect();
        let mut want = (vec![0.0; s.len()], vec![0.0; c], vec![0.0; c]);
        let out = (&mut want.0[..], &mut want.1[..], &mut want.2[..]);
        cpu::backward_post_into(s, (&x, &dy), ch, (post, RNG), out);
        let got = (read(&dxb, s.len()), read(&dgb, c), read(&dbb, c));
        check_backward(&case, s, &x, (&dz, &dz_err), &p, &fwd, got, want);
    }
}

/// With nothing fused the references are the plain layer's, bit for bit.
#[test]
fn unfused_post_is_the_identity() {
    let mut y = vec![1.5f32, -2.0, 0.0];
    cpu::post_into(BnPost::default(), RNG, &mut y);
    assert_eq!(y, [1.5, -2.0, 0.0]);
    let s = BnShape {
        rows: 5,
        channels: 3,
    };
    let mut rng = Rng::new(27);
    let (x, dy) = (rng.vec(15, -2.0, 2.0), rng.vec(15, -1.0, 1.0));
    let (gamma, beta, mean, inv) = (
        rng.vec(3, -1.5, 1.5),
        rng.vec(3, -1.0, 1.0),
        rng.vec(3, -1.0, 1.0),
        rng.vec(3, 0.5, 2.0),
    );
    let ch = cpu::BnChannels {
        gamma: &gamma,
        beta: &beta,
        mean: &mean,
        inv_std: &inv,
    };
    let mut got = (vec![0.0; 15], vec![0.0; 3], vec![0.0; 3]);
    let out = (&mut got.0[..], &mut got.1[..], &mut got.2[..]);
    cpu::backward_post_into(s, (&x, &dy), ch, (BnPost::default(), RNG), out);
    assert_eq!(got, cpu::backward(s, &x, &dy, &gamma, &mean, &inv));
}
