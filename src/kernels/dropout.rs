//! Inverted dropout with a counter-based RNG (`shaders/dropout.wgsl`, the
//! mask in `shaders/prelude/dropout_mask.wgsl`).
//! Training: y = x·mask/(1−rate) with mask = hash(seed, step, stream, i) ≥ rate (as
//! a u32 threshold); the mask is recomputed in backward, never stored. Seed
//! and step come from the `StepUniform` buffer, so one recorded dispatch
//! draws a fresh mask every step. Inference skips dropout entirely.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::DROPOUT;

const WG: u32 = 256;

/// Which mask a Dropout layer draws: what a kernel that applies the layer
/// fused (`batchnorm::BnPost`) needs to draw the same one as [`forward`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutMask {
    /// Fraction of elements dropped, in [0, 1).
    pub rate: f32,
    /// The layer's random stream (0 for the model's first Dropout).
    pub stream: u32,
}

/// `dropout_apply`: forward and backward alike (the mask applied to its input), one invocation per element.
pub static APPLY: KernelSpec = KernelSpec {
    shader: &DROPOUT,
    entry: "dropout_apply",
    bindings: &[
        Binding::Uniform,
        Binding::Uniform,
        Binding::Storage,
        Binding::StorageRw,
    ],
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    threshold: u32,
    scale: f32,
    stream: u32,
}

fn build<'b>(
    gpu: &Gpu,
    n: usize,
    rate: f32,
    stream: u32,
    step: impl Bind<'b>,
    src: impl Bind<'b>,
    dst: impl Bind<'b>,
) -> Result<Dispatch> {
    gpu.launch(
        &APPLY,
        &[("WG", WG as f64)],
        &Params {
            n: n as u32,
            threshold: cpu::threshold(rate),
            scale: cpu::scale(rate),
            stream,
        },
        &[step.view(), src.view(), dst.view()],
        grid_1d(n as u64, WG),
    )
}

/// y = x·mask/(1−rate) over `n` elements; `step` holds a `StepUniform`;
/// `stream` tells the model's Dropout layers apart (0 for the first).
pub fn forward<'b>(
    gpu: &Gpu,
    n: usize,
    rate: f32,
    stream: u32,
    step: impl Bind<'b>,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
) -> Result<Dispatch> {
    build(gpu, n, rate, stream, step, x, y)
}

/// dx = dy·mask/(1−rate), the mask regenerated from the same step uniform
/// (record it before the executor rewrites the uniform for the next step).
pub fn backward<'b>(
    gpu: &Gpu,
    n: usize,
    rate: f32,
    stream: u32,
    step: impl Bind<'b>,
    dy: impl Bind<'b>,
    dx: impl Bind<'b>,
) -> Result<Dispatch> {
    build(gpu, n, rate, stream, step, dy, dx)
}

/// Plain-Rust reference, bit-exact with the shader (same hash, same f32 product).
pub mod cpu {
    /// Keep when hash ≥ threshold = round(rate·2³²): P(keep) = 1 − rate to
    /// within 2⁻³².
    pub fn threshold(rate: f32) -> u32 {
        assert!(
            (0.0..1.0).contains(&rate),
            "dropout rate {rate} outside [0, 1)"
        );
        (rate as f64 * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
    }

    /// 1/(1−rate) in f32, as TF computes it; rate 0 gives exactly 1.
    pub fn scale(rate: f32) -> f32 {
        1.0 / (1.0 - rate)
    }

    /// PCG-RXS-M-XS output permutation, as in the shader.
    pub fn pcg(v: u32) -> u32 {
        let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
        (word >> 22) ^ word
    }

    /// The seed's high word and streams other than 0 hash themselves into
    /// the key; seeds below 2³² on stream 0 keep the single-stream, 32-bit
    /// key (old masks reproduce).
    pub fn hash(seed: u64, step: u32, stream: u32, i: u32) -> u32 {
        let (lo, hi) = (seed as u32, (seed >> 32) as u32);
        let key = pcg(lo ^ pcg(step));
        let key = if hi == 0 { key } else { pcg(key ^ pcg(hi)) };
        let key = if stream == 0 {
            key
        } else {
            pcg(key ^ pcg(stream))
        };
        pcg(key ^ pcg(i))
    }

    /// Whether element `i` is kept at this seed, step and stream.
    pub fn keep(seed: u64, step: u32, stream: u32, i: u32, rate: f32) -> bool {
        hash(seed, step, stream, i) >= threshold(rate)
    }

    fn apply(seed: u64, step: u32, stream: u32, rate: f32, src: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        apply_into(seed, step, stream, rate, src, &mut out);
        out
    }

    /// `out = src·mask/(1 − rate)` (forward and backward alike), on all threads.
    pub fn apply_into(seed: u64, step: u32, stream: u32, rate: f32, src: &[f32], out: &mut [f32]) {
        let t = threshold(rate);
        let s = scale(rate);
        let c = crate::par::ELEMENTWISE_CHUNK;
        crate::par::chunks_mut(&mut out[..src.len()], c, |k, out| {
            for (j, (o, &v)) in out.iter_mut().zip(&src[k * c..]).enumerate() {
                let i = (k * c + j) as u32;
                *o = if hash(seed, step, stream, i) >= t {
                    v * s
                } else {
                    0.0
                };
            }
        });
    }

    /// `y = y·mask/(1 − rate)` in place, on all threads: [`apply_into`]'s
    /// arithmetic.
    pub fn apply_in_place(seed: u64, step: u32, stream: u32, rate: f32, y: &mut [f32]) {
        let t = threshold(rate);
        let s = scale(rate);
        let c = crate::par::ELEMENTWISE_CHUNK;
        crate::par::chunks_mut(y, c, |k, y| {
            for (j, v) in y.iter_mut().enumerate() {
                let i = (k * c + j) as u32;
                *v = if hash(seed, step, stream, i) >= t {
                    *v * s
                } else {
                    0.0
                };
            }
        });
    }

    /// y = x·mask/(1 − rate).
    pub fn forward(seed: u64, step: u32, stream: u32, rate: f32, x: &[f32]) -> Vec<f32> {
        apply(seed, step, stream, rate, x)
    }

    /// dx = dy·mask/(1 − rate), the forward's mask.
    pub fn backward(seed: u64, step: u32, stream: u32, rate: f32, dy: &[f32]) -> Vec<f32> {
        apply(seed, step, stream, rate, dy)
    }
}
