//! Fused softmax + categorical cross-entropy with the on-GPU running
//! metrics in one dispatch (`shaders/softmax_xent.wgsl`), and softmax
//! probabilities for predict (`shaders/softmax.wgsl`).
//!
//! Loss: Keras' categorical cross-entropy on softmax outputs, which clips
//! probabilities to [1e-7, 1 − 1e-7] before the log. Gradient: the plain
//! (softmax − onehot)/batch of TF's from-logits path; it ignores the clip,
//! which only matters when `p[label]` is within 1e-7 of 0 or 1. The
//! per-example losses and correct flags only ever feed the metrics, so the
//! kernel sums them as it goes and never stores them.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::{SOFTMAX, SOFTMAX_XENT};

/// Invocations of the loss kernel's one workgroup (the shader's `WG`).
pub const WG: u32 = 64;

/// [`xent_metrics`]'s entry point in evaluation.
pub static XENT_METRICS: KernelSpec = KernelSpec {
    shader: &SOFTMAX_XENT,
    entry: "xent_metrics",
    bindings: &[
        Binding::Uniform,
        Binding::Storage,
        Binding::Storage,
        Binding::StorageRw,
    ],
};
/// [`xent_metrics`]'s entry point in training, with the gradient.
pub static XENT_METRICS_BACKWARD: KernelSpec = KernelSpec {
    shader: &SOFTMAX_XENT,
    entry: "xent_metrics_backward",
    bindings: &[
        Binding::Uniform,
        Binding::Storage,
        Binding::Storage,
        Binding::StorageRw,
        Binding::StorageRw,
    ],
};
/// [`softmax`]'s entry point.
pub static SOFTMAX_PROBS: KernelSpec = KernelSpec {
    shader: &SOFTMAX,
    entry: "softmax",
    bindings: &[Binding::Uniform, Binding::Storage, Binding::StorageRw],
};

/// The clip Keras applies to probabilities before the log (its `epsilon()`).
pub const EPSILON: f32 = 1e-7;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    classes: u32,
    inv_batch: f32,
    _pad: u32,
}

fn params(batch: usize, classes: usize) -> Params {
    assert!(classes >= 1, "softmax over zero classes");
    Params {
        batch: batch as u32,
        classes: classes as u32,
        inv_batch: cpu::inv_batch(batch),
        _pad: 0,
    }
}

/// Per row, the numerically stable (max-subtracted) softmax; loss =
/// `−log clip(softmax[label])`; correct = 1 if argmax == label (first max
/// wins, like numpy/TF argmax). Adds the batch's loss sum, correct count
/// and example count into `metrics` = `[loss_sum: f32, correct: u32,
/// examples: u32, pad: u32]` (16 bytes; zero it to reset) in a fixed order
/// (strided serial sums, then a tree: deterministic). With `dlogits`
/// (training) also writes dlogits = (softmax − onehot)/batch.
pub fn xent_metrics<'b>(
    gpu: &Gpu,
    (batch, classes): (usize, usize),
    logits: impl Bind<'b>,
    labels: impl Bind<'b>,
    metrics: impl Bind<'b>,
    dlogits: Option<View<'b>>,
) -> Result<Dispatch> {
    let mut buffers = vec![logits.view(), labels.view(), metrics.view()];
    let spec = match dlogits {
        Some(d) => {
            buffers.push(d);
            &XENT_METRICS_BACKWARD
        }
        None => &XENT_METRICS,
    };
    gpu.launch(spec, &[], &params(batch, classes), &buffers, [1, 1, 1])
}

/// Softmax probabilities only (for predict): probs[batch, classes], one
/// invocation per row.
pub fn softmax<'b>(
    gpu: &Gpu,
    batch: usize,
    classes: usize,
    logits: impl Bind<'b>,
    probs: impl Bind<'b>,
) -> Result<Dispatch> {
    const ROWS_WG: u32 = 64;
    gpu.launch(
        &SOFTMAX_PROBS,
        &[("WG", ROWS_WG as f64)],
        &params(batch, classes),
        &[logits.view(), probs.view()],
        grid_1d(batch as u64, ROWS_WG),
    )
}

/// The running metrics as the host reads them back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Metrics {
    /// Σ of per-example losses.
    pub loss_sum: f32,
    /// Examples whose argmax is the label.
    pub correct: u32,
    /// Examples counted.
    pub examples: u32,
    /// Padding to 16 bytes; 0.
    pub _pad: u32,
}

impl Metrics {
    /// loss_sum / examples (0 when empty).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum as f64 / self.examples.max(1) as f64
    }

    /// correct / examples (0 when empty).
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.examples.max(1) as f64
    }
}

/// Plain-Rust references: softmax in f64, losses rounded to f32 once.
pub mod cpu {
    use super::{Metrics, EPSILON};

    /// 1/batch in f32, the factor both sides multiply the gradient by.
    pub fn inv_batch(batch: usize) -> f32 {
        1.0 / batch.max(1) as f32
    }

    /// Softmax of one row in f64, max-subtracted.
    pub fn softmax_row_f64(row: &[f64]) -> Vec<f64> {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|&v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|&v| v / s).collect()
    }

    /// Index of the first maximum, like numpy/TF argmax.
    pub fn argmax<T: PartialOrd + Copy>(row: &[T]) -> usize {
        let mut arg = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[arg] {
                arg = j;
            }
        }
        arg
    }

    /// Keras' clipped −log p, with the clip bounds in f32 as TF has them.
    pub fn clipped_nll(p: f64) -> f32 {
        let c = (p as f32).clamp(EPSILON, 1.0 - EPSILON);
        -(c as f64).ln() as f32
    }

    /// Softmax probabilities, [batch, classes] row-major, like the kernel's.
    pub fn softmax(batch: usize, classes: usize, logits: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch * classes);
        for row in logits[..batch * classes].chunks(classes) {
            let r: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            out.extend(softmax_row_f64(&r).into_iter().map(|v| v as f32));
        }
        out
    }

    /// (loss, correct, dlogits) with dlogits = (softmax − onehot)·(1/batch).
    pub fn forward_backward(
        batch: usize,
        classes: usize,
        logits: &[f32],
        labels: &[u32],
    ) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
        let inv = inv_batch(batch);
        let mut loss = Vec::with_capacity(batch);
        let mut correct = Vec::with_capacity(batch);
        let mut dlogits = Vec::with_capacity(batch * classes);
        for (row, &label) in logits[..batch * classes].chunks(classes).zip(labels) {
            let r: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            let p = softmax_row_f64(&r);
            let label = label as usize;
            loss.push(clipped_nll(p[label]));
            correct.push((argmax(row) == label) as u32);
            for (j, &pj) in p.iter().enumerate() {
                let target = if j == label { 1.0 } else { 0.0 };
                dlogits.push((pj as f32 - target) * inv);
            }
        }
        (loss, correct, dlogits)
    }

    /// Mean loss over the batch (unclipped, f64): the function whose
    /// gradient `forward_backward` returns, for gradient checks.
    pub fn mean_loss_f64(batch: usize, classes: usize, logits: &[f64], labels: &[u32]) -> f64 {
        let mut total = 0.0;
        for (row, &label) in logits[..batch * classes].chunks(classes).zip(labels) {
            total -= softmax_row_f64(row)[label as usize].ln();
        }
        total / batch as f64
    }

    /// What the kernel computes: `metrics` after adding the batch's losses
    /// and correct flags, and the gradient into `dlogits` where given.
    pub fn xent_metrics(
        (batch, classes): (usize, usize),
        logits: &[f32],
        labels: &[u32],
        metrics: Metrics,
        dlogits: Option<&mut [f32]>,
    ) -> Metrics {
        let (loss, correct, d) = forward_backward(batch, classes, logits, labels);
        if let Some(out) = dlogits {
            out[..d.len()].copy_from_slice(&d);
        }
        accumulate_metrics(metrics, &loss, &correct)
    }

    /// The running metrics after adding one batch (loss summed in f64).
    pub fn accumulate_metrics(metrics: Metrics, loss: &[f32], correct: &[u32]) -> Metrics {
        let s: f64 = loss.iter().map(|&v| v as f64).sum();
        Metrics {
            loss_sum: (metrics.loss_sum as f64 + s) as f32,
            correct: metrics.correct + correct.iter().sum::<u32>(),
            examples: metrics.examples + loss.len() as u32,
            _pad: 0,
        }
    }
}
