use gdl_gpu::kernels::dropout::{self, cpu};
use gdl_gpu::kernels::step::StepUniform;
use gdl_gpu::util::Rng;

use crate::common::*;

fn step_buffer(seed: u64, step: u32) -> wgpu::Buffer {
    gpu()
        .uniform("step", &StepUniform::new(0, seed, step))
        .unwrap()
}

// Forward and backward are one product by the same f32 scale on both sides
// (or 0): exact equality, so GPU mask == CPU mask bit for bit.
#[test]
fn dropout_matches_reference_exactly() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for &n in &[1usize, 7, 257, 32 * 128, 32 * 32 * 32 * 32 + 5] {
        for &rate in &[0.0f32, 0.25, 0.5] {
            for &(seed, step, stream) in &[
                (1u64, 0u32, 0u32),
                (0xDEAD_BEEF, 12_345, 0),
                (1, 0, 3),
                (1 << 32 | 1, 0, 0),
                (u64::MAX, 9, 2),
            ] {
                // Non-zero inputs, so a zero output means a dropped element.
                let x: Vec<f32> = rng.vec(n, 0.5, 2.0);
                let dy: Vec<f32> = rng.vec(n, -2.0, -0.5);
                let (xb, yb, dyb, dxb) = (upload(&x), zeros(n), upload(&dy), zeros(n));
                let sb = step_buffer(seed, step);
                let f = dropout::forward(gpu, n, rate, stream, &sb, &xb, &yb).unwrap();
                let b = dropout::backward(gpu, n, rate, stream, &sb, &dyb, &dxb).unwrap();
                gpu.run("dropout", &[&f, &b]).unwrap();
                let case = format!("n={n} rate={rate} seed={seed} step={step} stream={stream}");
                let y = read(&yb, n);
                assert_close(
                    &format!("forward {case}"),
                    &y,
                    &cpu::forward(seed, step, stream, rate, &x),
                    0.0,
                    0.0,
                );
                assert_close(
                    &format!("backward {case}"),
                    &read(&dxb, n),
                    &cpu::backward(seed, step, stream, rate, &dy),
                    0.0,
                    0.0,
                );
                for (i, &v) in y.iter().enumerate() {
                    assert_eq!(
                        v != 0.0,
                        cpu::keep(seed, step, stream, i as u32, rate),
                        "{case} i={i}"
                    );
                }
                if rate == 0.0 {
                    assert_eq!(y, x, "rate 0 is the identity: {case}");
                }
            }
        }
    }
}

#[test]
fn dropout_keeps_the_right_fraction() {
    // Kept count ~ Binomial(n, 1 − rate) if the hash is uniform: std
    // σ = √(n·r·(1−r)) ≤ 500 at n = 1e6; allow 5σ (two-sided p ≈ 6e-7).
    let n = 1_000_000u32;
    for &rate in &[0.1f32, 0.25, 0.5] {
        for &(seed, step) in &[(7u64, 0u32), (7, 1), (123_456, 99), (7 << 40, 0)] {
            let kept = (0..n)
                .filter(|&i| cpu::keep(seed, step, 0, i, rate))
                .count() as f64;
            let r = rate as f64;
            let mean = n as f64 * (1.0 - r);
            let sigma = (n as f64 * r * (1.0 - r)).sqrt();
            assert!(
                (kept - mean).abs() <= 5.0 * sigma,
                "rate {rate} seed {seed} step {step}: kept {kept}, expected {mean} ± {}",
                5.0 * sigma
            );
        }
    }
    // The same count on the GPU (whose mask equals the reference's, tested
    // above), for one case through the kernel itself.
    let gpu = gpu();
    let nn = n as usize;
    let xb = upload(&vec![1.0; nn]);
    let yb = zeros(nn);
    let sb = step_buffer(3, 4);
    let f = dropout::forward(gpu, nn, 0.5, 0, &sb, &xb, &yb).unwrap();
    gpu.run("dropout", &[&f]).unwrap();
    let kept = read(&yb, nn).iter().filter(|&&v| v != 0.0).count() as f64;
    assert!((kept - 5e5).abs() <= 5.0 * 500.0, "GPU kept {kept}");
}

#[test]
fn dropout_masks_differ_between_steps_and_seeds() {
    let n = 4096u32;
    let mask = |seed, step, stream| -> Vec<bool> {
        (0..n)
            .map(|i| cpu::keep(seed, step, stream, i, 0.5))
            .collect()
    };
    let base = mask(1, 0, 0);
    for other in [
        mask(1, 1, 0),
        mask(1, 2, 0),
        mask(2, 0, 0),
        mask(1, 0, 1),
        mask(1, 0, 2),
    ] {
        // Independent masks at rate 0.5 agree on ~n/2 elements (σ = 32).
        let agree = base.iter().zip(&other).filter(|(a, b)| a == b).count() as f64;
        assert!(
            (agree - 2048.0).abs() <= 5.0 * 32.0,
            "masks agree on {agree} of {n}"
        );
    }
    // The mask is a pure function of (seed, step, stream, i).
    assert_eq!(base, mask(1, 0, 0));
    // Two streams at the same step are independent of each other too.
    let (s1, s2) = (mask(1, 0, 1), mask(1, 0, 2));
    let agree = s1.iter().zip(&s2).filter(|(a, b)| a == b).count() as f64;
    assert!(
        (agree - 2048.0).abs() <= 5.0 * 32.0,
        "streams 1, 2 agree on {agree}"
    );
}

/// The hash before streams existed, copied verbatim: stream 0 must still
/// draw exactly these masks, so existing seeds reproduce.
fn single_stream_hash(seed: u32, step: u32, i: u32) -> u32 {
    fn pcg(v: u32) -> u32 {
        let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
        (word >> 22) ^ word
    }
    let key = pcg(seed ^ pcg(step));
    pcg(key ^ pcg(i))
}

#[test]
fn dropout_stream_zero_keeps_the_old_masks() {
    let gpu = gpu();
    let n = 4099usize;
    let rate = 0.4f32;
    let x = vec![1.0f32; n];
    for (seed, step) in [(1u32, 0u32), (7, 3), (0xDEAD_BEEF, 12_345)] {
        let t = cpu::threshold(rate);
        let old: Vec<bool> = (0..n as u32)
            .map(|i| single_stream_hash(seed, step, i) >= t)
            .collect();
        for i in 0..n as u32 {
            assert_eq!(
                cpu::hash(seed as u64, step, 0, i),
                single_stream_hash(seed, step, i),
                "seed {seed} step {step} i {i}"
            );
        }
        let (xb, yb) = (upload(&x), zeros(n));
        let sb = step_buffer(seed as u64, step);
        let f = dropout::forward(gpu, n, rate, 0, &sb, &xb, &yb).unwrap();
        gpu.run("dropout stream 0", &[&f]).unwrap();
        let kept: Vec<bool> = read(&yb, n).iter().map(|&v| v != 0.0).collect();
        assert_eq!(kept, old, "GPU stream 0, seed {seed} step {step}");
        // Stream 1 on the GPU draws a different mask.
        let f = dropout::forward(gpu, n, rate, 1, &sb, &xb, &yb).unwrap();
        gpu.run("dropout stream 1", &[&f]).unwrap();
        let kept1: Vec<bool> = read(&yb, n).iter().map(|&v| v != 0.0).collect();
        assert_ne!(
            kept1, old,
            "stream 1 equals stream 0, seed {seed} step {step}"
        );
    }
}

#[test]
fn dropout_mask_follows_the_step_uniform() {
    // One recorded dispatch; rewriting the step uniform changes the mask.
    let gpu = gpu();
    let n = 1000;
    let x = vec![1.0f32; n];
    let (xb, yb) = (upload(&x), zeros(n));
    let sb = step_buffer(9, 0);
    let f = dropout::forward(gpu, n, 0.3, 0, &sb, &xb, &yb).unwrap();
    for step in [0u32, 1, 2] {
        gpu.write(&sb, &[StepUniform::new(0, 9, step)]);
        gpu.run("dropout", &[&f]).unwrap();
        assert_close(
            &format!("step {step}"),
            &read(&yb, n),
            &cpu::forward(9, step, 0, 0.3, &x),
            0.0,
            0.0,
        );
    }
}

/// The whole u64 seed reaches the mask: seeds that differ only above bit 31
/// draw different masks (they were one seed when it was cut to u32), on the
/// GPU as in the reference.
#[test]
fn seeds_differing_in_the_high_word_draw_different_masks() {
    let gpu = gpu();
    let n = 4096;
    let x = vec![1.0f32; n];
    let mut masks = Vec::new();
    for seed in [5u64, 5 | 1 << 32, 5 | 1 << 63] {
        let (xb, yb) = (upload(&x), zeros(n));
        let sb = step_buffer(seed, 2);
        let f = dropout::forward(gpu, n, 0.5, 0, &sb, &xb, &yb).unwrap();
        gpu.run("dropout", &[&f]).unwrap();
        let y = read(&yb, n);
        assert_eq!(y, cpu::forward(seed, 2, 0, 0.5, &x), "seed {seed:#x}");
        masks.push(y);
    }
    // Two independent fair masks of 4096 agree everywhere with
    // probability 2⁻⁴⁰⁹⁶.
    assert_ne!(masks[0], masks[1]);
    assert_ne!(masks[0], masks[2]);
    assert_ne!(masks[1], masks[2]);
}
