use gdl_gpu::kernels::adam::{self, cpu, AdamConfig};
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

/// Runs `steps` Adam steps from `t0` on the GPU and the reference, comparing
/// after every step.
fn run_case(case: &str, n: usize, t0: u64, steps: usize, zero_grads: bool, seed: u64) {
    let gpu = gpu();
    let cfg = AdamConfig::default();
    let mut rng = Rng::new(seed);
    let mut params = rng.vec(n, -1.0, 1.0);
    // A state as after some training: m ~ g scale, v ~ g² scale.
    let mut m = rng.vec(n, -0.01, 0.01);
    let mut v: Vec<f32> = rng.vec(n, 0.0, 1e-4);
    if t0 == 1 {
        m.fill(0.0);
        v.fill(0.0);
    }
    let (pb, mb, vb) = (upload(&params), upload(&m), upload(&v));
    let gb = zeros(n);
    let hyper = gpu.uniform("adam hyper", &cfg.uniform(t0, n)).unwrap();
    let d = adam::update(gpu, n, &hyper, &pb, &gb, &mb, &vb).unwrap();
    for k in 0..steps {
        let t = t0 + k as u64;
        let grads = if zero_grads {
            vec![0.0; n]
        } else {
            // Mixed scales, some exact zeros.
            (0..n)
                .map(|i| {
                    if i % 7 == 3 {
                        0.0
                    } else {
                        rng.uniform(-1.0, 1.0) * [1e-3, 1.0, 30.0][i % 3]
                    }
                })
                .collect()
        };
        gpu.write(&gb, &grads);
        gpu.write(&hyper, &[cfg.uniform(t, n)]);
        gpu.run("adam", &[&d]).unwrap();
        let before = params.clone();
        cpu::update(&cfg, t, &mut params, &grads, &mut m, &mut v);
        let steps_done = (k + 1) as f64;
        // m and v: two products and a sum, each correctly rounded on both
        // sides, ≤ 2 ulp apart per step; errors decay by β, so k steps
        // stay within k·4·2⁻²⁴ relative (of values that do not cancel: the
        // two terms of each sum have the same sign for v, and for m the
        // bound is taken over |β1·m| + |(1−β1)·g| via an absolute term).
        let tag = format!("{case} t={t}");
        assert_close(
            &format!("v {tag}"),
            &read(&vb, n),
            &v,
            0.0,
            steps_done * 4.0 * F32_EPS,
        );
        let m_scale = grads.iter().fold(0f64, |a, &g| a.max(g.abs() as f64))
            + m.iter().fold(0f64, |a, &x| a.max(x.abs() as f64));
        assert_close(
            &format!("m {tag}"),
            &read(&mb, n),
            &m,
            steps_done * 4.0 * F32_EPS * m_scale,
            steps_done * 4.0 * F32_EPS,
        );
        // θ: the step Δ = lr_t·m/(√v+ε) is within ~8 ulp (sqrt 2.5 ulp via
        // inverseSqrt, division 2.5, product 1, sum 1, m and v inherited)
        // plus one rounding of θ − Δ per step: k·(16·2⁻²⁴·max|Δ| + 2⁻²³·|θ|).
        let max_delta = before
            .iter()
            .zip(&params)
            .fold(0f64, |a, (&b, &p)| a.max((b as f64 - p as f64).abs()));
        assert_close(
            &format!("params {tag}"),
            &read(&pb, n),
            &params,
            steps_done * 16.0 * F32_EPS * max_delta,
            steps_done * 2.0 * F32_EPS,
        );
    }
}

#[test]
fn adam_matches_reference() {
    // n = 1, primes (the vec4 tail), and the MLP's parameter count.
    run_case("n=1 t=1", 1, 1, 3, false, 1);
    run_case("n=7 t=1", 7, 1, 3, false, 2);
    run_case("n=1009 t=1000", 1009, 1000, 3, false, 3);
    run_case("n=65537 t=1", 65_537, 1, 2, false, 4);
    run_case("mlp n=646260 t=1", 646_260, 1, 4, false, 5);
    run_case("mlp n=646260 t=1000", 646_260, 1000, 2, false, 6);
    run_case("zero grads n=13 t=1", 13, 1, 2, true, 7);
    run_case("zero grads n=1001 t=50", 1001, 50, 2, true, 8);
}

#[test]
fn adam_bias_correction() {
    let cfg = AdamConfig::default();
    // t = 1: lr·√(1−β2)/(1−β1) = 1e-3·√0.001/0.1 ≈ 3.162e-4; the first
    // step then moves every parameter by ≈ lr·sign(g).
    let want = 1e-3 * (1.0 - 0.999f32 as f64).sqrt() / (1.0 - 0.9f32 as f64);
    assert_eq!(cfg.lr_t(1), want as f32);
    let mut p = vec![0.5f32, -0.5, 0.0];
    let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
    cpu::update(&cfg, 1, &mut p, &[2.0, -3.0, 0.0], &mut m, &mut v);
    assert!((p[0] - (0.5 - 1e-3)).abs() < 1e-7, "{p:?}");
    assert!((p[1] - (-0.5 + 1e-3)).abs() < 1e-7, "{p:?}");
    assert_eq!(p[2], 0.0);
    // Large t: the correction tends to lr.
    assert!((cfg.lr_t(100_000) - 1e-3).abs() < 1e-9);
    let u = cfg.uniform(7, 42);
    assert_eq!((u.n, u.beta1, u.beta2, u.eps), (42, 0.9, 0.999, 1e-7));
}

/// Past n, in the last vec4's spare lanes, the buffers keep what they held:
/// a packed buffer may hold something else there.
#[test]
fn adam_leaves_the_tail_of_the_last_vec4_alone() {
    let gpu = gpu();
    let cfg = AdamConfig::default();
    for n in [1usize, 2, 3, 5, 6, 7] {
        let sentinel = |base: f32| -> Vec<f32> { (0..8).map(|i| base + i as f32).collect() };
        let (pb, gb, mb, vb) = (
            upload(&sentinel(10.0)),
            upload(&sentinel(0.5)),
            upload(&sentinel(20.0)),
            upload(&sentinel(30.0)),
        );
        let hyper = gpu.uniform("adam hyper", &cfg.uniform(1, n)).unwrap();
        let d = adam::update(gpu, n, &hyper, &pb, &gb, &mb, &vb).unwrap();
        gpu.run("adam", &[&d]).unwrap();
        for (what, buf, base) in [("params", &pb, 10.0), ("m", &mb, 20.0), ("v", &vb, 30.0)] {
            let got = read(buf, 8);
            assert_eq!(got[n..], sentinel(base)[n..], "{what} n={n}");
            assert!(
                got[..n].iter().zip(&sentinel(base)).all(|(a, b)| a != b),
                "{what} n={n}: the live lanes must change: {got:?}"
            );
        }
    }
}

/// m and v that would fall below the smallest normal f32 are flushed to
/// zero, on the GPU as in the reference (a dead unit's m decays by β1 a
/// step into subnormals, which CPU adapters compute in microcode), and
/// normal ones just above are kept: one step from m = ±2⁻¹²⁶·(1, 1.2, 1.5),
/// v = 2⁻¹²⁶·(1, 1.002, 2) and subnormals, with zero gradients.
#[test]
fn adam_flushes_m_and_v_below_the_smallest_normal() {
    let gpu = gpu();
    let cfg = AdamConfig::default();
    let tiny = f32::MIN_POSITIVE;
    let m = vec![tiny, -1.2 * tiny, 1.5 * tiny, tiny / 4.0, -1e-45, 0.0, 1e-3];
    let v = vec![tiny, 1.002 * tiny, 2.0 * tiny, tiny / 4.0, 1e-45, 0.0, 1e-6];
    let n = m.len();
    let params = vec![0.25; n];
    let (pb, gb, mb, vb) = (upload(&params), zeros(n), upload(&m), upload(&v));
    let hyper = gpu.uniform("adam hyper", &cfg.uniform(10, n)).unwrap();
    let d = adam::update(gpu, n, &hyper, &pb, &gb, &mb, &vb).unwrap();
    gpu.run("adam", &[&d]).unwrap();
    let (mut pw, mut mw, mut vw) = (params.clone(), m.clone(), v.clone());
    cpu::update(&cfg, 10, &mut pw, &vec![0.0; n], &mut mw, &mut vw);
    // 0.9·m: below 2⁻¹²⁶ for the first and fourth and fifth, normal for
    // 1.2 and 1.5 (1.08, 1.35); 0.999·v: normal only for 1.002 and 2.
    let want_m = [
        0.0,
        -0.9 * 1.2 * tiny,
        0.9 * 1.5 * tiny,
        0.0,
        0.0,
        0.0,
        0.9e-3,
    ];
    let want_v = [
        0.0,
        0.999 * 1.002 * tiny,
        0.999 * 2.0 * tiny,
        0.0,
        0.0,
        0.0,
        0.999e-6,
    ];
    for (what, got, want) in [("m", &mw, &want_m), ("v", &vw, &want_v)] {
        for (i, (&got, &want)) in got.iter().zip(want).enumerate() {
            assert!(!got.is_subnormal(), "reference {what}[{i}] = {got:e}");
            assert!(
                (got - want).abs() <= 2.0 * F32_EPS as f32 * want.abs(),
                "reference {what}[{i}]: {got:e} vs {want:e}"
            );
        }
    }
    // Both sides flush the same values (zero stays zero exactly); the kept
    // ones within the reference test's rounding (4 ulp for m and v, 16 ulp
    // of the step for θ).
    let (gm, gv, gp) = (read(&mb, n), read(&vb, n), read(&pb, n));
    for (what, got, want) in [("m", &gm, &mw), ("v", &gv, &vw)] {
        for i in 0..n {
            assert_eq!(
                got[i] == 0.0,
                want[i] == 0.0,
                "{what}[{i}]: {:e} vs {:e}",
                got[i],
                want[i]
            );
        }
    }
    assert_close("m", &gm, &mw, 0.0, 4.0 * F32_EPS);
    assert_close("v", &gv, &vw, 0.0, 4.0 * F32_EPS);
    let step = pw
        .iter()
        .map(|p| (0.25 - p).abs() as f64)
        .fold(0.0, f64::max);
    assert_close("params", &gp, &pw, 16.0 * F32_EPS * step, 2.0 * F32_EPS);
}
