use gdl_gpu::kernels::softmax_xent::{self, cpu, Metrics};
use gdl_gpu::util::{Rng, F32_EPS};

use crate::common::*;

/// 2⁻²³: one ulp relative to a value, an upper bound.
const ULP: f64 = 2.0 * F32_EPS;
/// Slack for flushed subnormals: exp results below 2⁻¹²⁶ may read as 0.
const TINY: f64 = 1.0 / (1u128 << 126) as f64;

/// First-order relative error bound of each GPU probability of one row
/// against the f64 reference rounded to f32, from WGSL's accuracy rules:
/// x − m correctly rounded (so exp's argument is off by ≤ 2⁻²⁴·D),
/// exp within 3 + 2·|x| ulp, the K−1 positive additions of the sum
/// ≤ (K−1)·2⁻²⁴, the division 2.5 ulp, the reference's cast 2⁻²⁴.
fn prob_bounds(row: &[f32]) -> Vec<f64> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let d: Vec<f64> = row.iter().map(|&v| m - v as f64).collect();
    let e: Vec<f64> = d.iter().map(|&dj| (-dj).exp()).collect();
    let eps: Vec<f64> = d
        .iter()
        .map(|&dj| (3.0 + 2.0 * dj) * ULP + dj * F32_EPS)
        .collect();
    let s: f64 = e.iter().sum();
    let eps_s =
        eps.iter().zip(&e).map(|(a, b)| a * b).sum::<f64>() / s + (row.len() - 1) as f64 * F32_EPS;
    eps.iter()
        .map(|&ej| (ej + eps_s + 2.5 * ULP + F32_EPS) * 1.01)
        .collect()
}

#[track_caller]
fn check(case: &str, got: &[f32], want: &[f32], bound: &[f64]) {
    for (i, ((&g, &w), &b)) in got.iter().zip(want).zip(bound).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= b && g.is_finite(),
            "{case}: element {i}: got {g}, want {w}, |diff| {err:.3e} > bound {b:.3e}"
        );
    }
    assert_eq!(got.len(), want.len(), "{case}: length");
}

fn upload_u32(data: &[u32]) -> wgpu::Buffer {
    gpu().upload_storage("test u32", data).expect("upload")
}

#[derive(Clone, Copy, Debug)]
enum Logits {
    Uniform(f32),
    AllEqual,
    /// Large values close together and far apart: 1e4 + small, and ±1e4.
    Huge,
}

fn make_logits(rng: &mut Rng, kind: Logits, batch: usize, classes: usize) -> Vec<f32> {
    match kind {
        Logits::Uniform(a) => rng.vec(batch * classes, -a, a),
        Logits::AllEqual => vec![0.75; batch * classes],
        Logits::Huge => (0..batch * classes)
            .map(|i| match i % 3 {
                0 => 1e4 + rng.uniform(-3.0, 3.0),
                1 => rng.uniform(-1e4, 1e4),
                _ => -1e4,
            })
            .collect(),
    }
}

/// Per-row bounds on the loss and on each dlogits and probability entry.
fn bounds(logits: &[f32], labels: &[u32], classes: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let batch = labels.len();
    let (loss, _, _) = cpu::forward_backward(batch, classes, logits, labels);
    let probs = cpu::softmax(batch, classes, logits);
    let inv = cpu::inv_batch(batch) as f64;
    let (mut b_loss, mut b_dl, mut b_p) = (vec![], vec![], vec![]);
    for (i, row) in logits.chunks(classes).enumerate() {
        let eps = prob_bounds(row);
        let l = labels[i] as usize;
        // d(−log p) = −dp/p, then log's own error: < 2⁻²¹
        // absolute on [0.5, 2], else 3 ulp; the reference's cast.
        b_loss.push(
            eps[l] + (2f64.powi(-21)).max(3.0 * ULP * loss[i] as f64) + F32_EPS * loss[i] as f64,
        );
        for (j, &e) in eps.iter().enumerate() {
            let pj = probs[i * classes + j] as f64;
            let t = if j == l { 1.0 } else { 0.0 };
            // p's error, two roundings (p − t, ·inv) on each side.
            b_dl.push((e * pj + 4.0 * F32_EPS * (pj - t).abs()) * inv + TINY);
            b_p.push(e * pj + TINY);
        }
    }
    (b_loss, b_dl, b_p)
}

/// Bound on the loss sum the kernel adds to `start`, from the per-row
/// bounds: losses are ≥ 0, so the first-order rounding error of the sums
/// is ≤ chain·2⁻²⁴·(total), chain = ⌈B/WG⌉ serial terms, log₂ WG tree
/// levels and the add into the running sum, plus the reference's own
/// rounding.
fn loss_sum_bound(start: f32, loss: &[f32], b_loss: &[f64]) -> f64 {
    let total = start as f64 + loss.iter().map(|&v| v as f64).sum::<f64>();
    let wg = softmax_xent::WG as usize;
    let chain = loss.len().div_ceil(wg) + wg.trailing_zeros() as usize + 2;
    b_loss.iter().sum::<f64>() + 1.01 * chain as f64 * F32_EPS * total
}

#[test]
fn softmax_xent_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for &classes in &[1usize, 10, 13] {
        for &batch in &[1usize, 7, 32, 65, 1000] {
            for kind in [Logits::Uniform(8.0), Logits::AllEqual, Logits::Huge] {
                let case = format!("batch={batch} classes={classes} {kind:?}");
                let logits = make_logits(&mut rng, kind, batch, classes);
                let labels: Vec<u32> = (0..batch)
                    .map(|_| rng.below(classes as u64) as u32)
                    .collect();
                let start = Metrics {
                    loss_sum: 12.5,
                    correct: 40,
                    examples: 100,
                    _pad: 0,
                };
                let lb = upload(&logits);
                let yb = upload_u32(&labels);
                let (train_m, eval_m) = (
                    gpu.upload_storage("metrics", &[start]).unwrap(),
                    gpu.upload_storage("metrics", &[start]).unwrap(),
                );
                let (dl_b, probs_b) = (zeros(batch * classes), zeros(batch * classes));
                let shape = (batch, classes);
                let dl = Some((&dl_b).into());
                let fb = softmax_xent::xent_metrics(gpu, shape, &lb, &yb, &train_m, dl).unwrap();
                let f = softmax_xent::xent_metrics(gpu, shape, &lb, &yb, &eval_m, None).unwrap();
                let sm = softmax_xent::softmax(gpu, batch, classes, &lb, &probs_b).unwrap();
                gpu.run("softmax xent", &[&fb, &f, &sm]).unwrap();

                let mut dlogits = vec![0.0; batch * classes];
                let want =
                    cpu::xent_metrics(shape, &logits, &labels, start, Some(&mut dlogits[..]));
                let (loss, correct, _) = cpu::forward_backward(batch, classes, &logits, &labels);
                let probs = cpu::softmax(batch, classes, &logits);
                let (b_loss, b_dl, b_p) = bounds(&logits, &labels, classes);
                for (what, m) in [("train", &train_m), ("eval", &eval_m)] {
                    let got = gpu.read::<Metrics>(m, 1).unwrap()[0];
                    assert_eq!(got.correct, want.correct, "{what} correct {case}");
                    assert_eq!(got.examples, want.examples, "{what} examples {case}");
                    check(
                        &format!("{what} loss_sum {case}"),
                        &[got.loss_sum],
                        &[want.loss_sum],
                        &[loss_sum_bound(start.loss_sum, &loss, &b_loss)],
                    );
                }
                check(
                    &format!("dlogits {case}"),
                    &read(&dl_b, batch * classes),
                    &dlogits,
                    &b_dl,
                );
                check(
                    &format!("probs {case}"),
                    &read(&probs_b, batch * classes),
                    &probs,
                    &b_p,
                );
                if matches!(kind, Logits::AllEqual) {
                    // p = 1/K exactly in the reference: loss = ln K (clipped
                    // at K = 1), argmax is class 0.
                    let want = cpu::clipped_nll(1.0 / classes as f64);
                    assert!(loss.iter().all(|&v| v == want), "{case}");
                    for (c, &l) in correct.iter().zip(&labels) {
                        assert_eq!(*c, (l == 0) as u32, "{case}");
                    }
                }
            }
        }
    }
}

/// One example at a time, the metrics give each row's loss and correct
/// flag: checked against the reference row by row.
#[test]
fn softmax_xent_rows_one_by_one() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    let classes = 10;
    for kind in [Logits::Uniform(8.0), Logits::Huge] {
        let logits = make_logits(&mut rng, kind, 20, classes);
        let labels: Vec<u32> = (0..20).map(|_| rng.below(classes as u64) as u32).collect();
        let (loss, correct, _) = cpu::forward_backward(20, classes, &logits, &labels);
        let (b_loss, _, _) = bounds(&logits, &labels, classes);
        for i in 0..20 {
            let row = &logits[i * classes..(i + 1) * classes];
            let (lb, yb) = (upload(row), upload_u32(&labels[i..i + 1]));
            let m = gpu
                .upload_storage("metrics", &[Metrics::default()])
                .unwrap();
            let d = softmax_xent::xent_metrics(gpu, (1, classes), &lb, &yb, &m, None).unwrap();
            gpu.run("softmax xent", &[&d]).unwrap();
            let got = gpu.read::<Metrics>(&m, 1).unwrap()[0];
            let case = format!("{kind:?} row {i}");
            check(&case, &[got.loss_sum], &loss[i..i + 1], &b_loss[i..i + 1]);
            assert_eq!(got.correct, correct[i], "{case}");
            assert_eq!(got.examples, 1, "{case}");
        }
    }
}

#[test]
fn softmax_xent_clips_like_keras() {
    // p[label] = 0 in f32 (logit gap 1e4): Keras clips to 1e-7, loss −ln(1e-7).
    let (loss, correct, d) = cpu::forward_backward(1, 2, &[1e4, -1e4], &[1]);
    assert_eq!(loss[0], -(1e-7f32 as f64).ln() as f32);
    assert_eq!(correct[0], 0);
    assert_eq!(d, vec![1.0, -1.0]);
    // p[label] = 1: clipped to 1 − 1e-7 (in f32), loss ≈ 1.19e-7, not 0.
    let (loss, correct, _) = cpu::forward_backward(1, 2, &[1e4, -1e4], &[0]);
    assert_eq!(loss[0], -((1.0f32 - 1e-7) as f64).ln() as f32);
    assert_eq!(correct[0], 1);
}

/// Batches past one workgroup's rows, run twice into the same metrics.
#[test]
fn metrics_accumulate_on_gpu() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let classes = 10;
    for &batch in &[257usize, 10_000] {
        let start = Metrics {
            loss_sum: 123.5,
            correct: 40,
            examples: 100,
            _pad: 0,
        };
        let mb = gpu.upload_storage("metrics", &[start]).unwrap();
        let mut want = start;
        let mut dispatches = vec![];
        let mut keep = vec![];
        let mut bound = 0.0;
        for _ in 0..2 {
            let logits = make_logits(&mut rng, Logits::Uniform(4.0), batch, classes);
            let labels: Vec<u32> = (0..batch)
                .map(|_| rng.below(classes as u64) as u32)
                .collect();
            let (loss, _, _) = cpu::forward_backward(batch, classes, &logits, &labels);
            let (b_loss, _, _) = bounds(&logits, &labels, classes);
            bound += loss_sum_bound(want.loss_sum, &loss, &b_loss);
            want = cpu::xent_metrics((batch, classes), &logits, &labels, want, None);
            let (lb, yb) = (upload(&logits), upload_u32(&labels));
            let d = softmax_xent::xent_metrics(gpu, (batch, classes), &lb, &yb, &mb, None);
            dispatches.push(d.unwrap());
            keep.push((lb, yb));
        }
        let refs: Vec<_> = dispatches.iter().collect();
        gpu.run("metrics", &refs).unwrap();
        let got = gpu.read::<Metrics>(&mb, 1).unwrap()[0];
        assert_eq!(got.correct, want.correct, "batch={batch}");
        assert_eq!(got.examples, want.examples, "batch={batch}");
        check(
            &format!("loss_sum batch={batch}"),
            &[got.loss_sum],
            &[want.loss_sum],
            &[bound],
        );
    }
}
