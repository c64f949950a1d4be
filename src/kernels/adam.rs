//! Adam in Keras' form (`shaders/adam.wgsl`). The executor packs every
//! parameter tensor into one flat buffer (grads, m and v the same way), so
//! one dispatch over `n` elements updates the whole model.

use crate::gpu::buffers::padded;
use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::ADAM;

const WG: u32 = 64;

/// `adam.wgsl`'s `adam_update`: one invocation per vec4 of the packed parameters.
pub static UPDATE: KernelSpec = KernelSpec {
    shader: &ADAM,
    entry: "adam_update",
    bindings: &[
        Binding::Uniform,
        Binding::StorageRw,
        Binding::Storage,
        Binding::StorageRw,
        Binding::StorageRw,
    ],
};

/// Keras' Adam hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first-moment average.
    pub beta1: f32,
    /// Decay of the second-moment average.
    pub beta2: f32,
    /// ε added to √v (Keras: 1e-7).
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

/// The per-step uniform of the update kernel (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamUniform {
    /// The bias-corrected step size for this step ([`AdamConfig::lr_t`]).
    pub lr_t: f32,
    /// As in [`AdamConfig`].
    pub beta1: f32,
    /// As in [`AdamConfig`].
    pub beta2: f32,
    /// As in [`AdamConfig`].
    pub eps: f32,
    /// Elements updated.
    pub n: u32,
    /// Padding to 32 bytes; 0.
    pub _pad: [u32; 3],
}

impl AdamConfig {
    /// The bias-corrected step size lr·√(1−β2ᵗ)/(1−β1ᵗ), in f64 then rounded
    /// once; `t` counts from 1.
    pub fn lr_t(&self, t: u64) -> f32 {
        assert!(t >= 1, "Adam steps count from 1");
        // powi takes i32; past 2^31 steps both powers are 0 in f64 anyway.
        let t = t.min(i32::MAX as u64) as i32;
        let b1 = (self.beta1 as f64).powi(t);
        let b2 = (self.beta2 as f64).powi(t);
        (self.lr as f64 * (1.0 - b2).sqrt() / (1.0 - b1)) as f32
    }

    /// The uniform for step `t` (from 1) over `n` packed elements.
    pub fn uniform(&self, t: u64, n: usize) -> AdamUniform {
        AdamUniform {
            lr_t: self.lr_t(t),
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            n: n as u32,
            _pad: [0; 3],
        }
    }
}

/// One Adam step over `n` packed elements. `hyper` is a uniform buffer
/// holding an `AdamUniform`, rewritten every step; params, m and v are
/// updated in place. Every buffer must hold `n` f32s rounded up to 16 bytes
/// (the `Gpu` allocators pad so).
pub fn update<'b>(
    gpu: &Gpu,
    n: usize,
    hyper: impl Bind<'b>,
    params: impl Bind<'b>,
    grads: impl Bind<'b>,
    m: impl Bind<'b>,
    v: impl Bind<'b>,
) -> Result<Dispatch> {
    let need = padded(n as u64 * 4);
    for (name, b) in [
        ("params", params.view()),
        ("grads", grads.view()),
        ("m", m.view()),
        ("v", v.view()),
    ] {
        assert!(
            b.size() >= need,
            "adam: {name} holds {} bytes, needs {need}",
            b.size()
        );
    }
    gpu.dispatch(
        &UPDATE,
        &[("WG", WG as f64)],
        &[
            hyper.view(),
            params.view(),
            grads.view(),
            m.view(),
            v.view(),
        ],
        grid_1d((n as u64).div_ceil(4), WG),
    )
}

/// Plain-Rust reference of the update.
pub mod cpu {
    use super::AdamConfig;

    /// Zero for a subnormal `x` (see `shaders/adam.wgsl`: m and v are
    /// flushed once below the smallest normal f32).
    fn flush(x: f32) -> f32 {
        if x.abs() < f32::MIN_POSITIVE {
            0.0
        } else {
            x
        }
    }

    /// One Adam step `t` (from 1), in f32 in the kernel's order of
    /// operations, m and v flushed to zero below the smallest normal f32.
    pub fn update(
        cfg: &AdamConfig,
        t: u64,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        let lr_t = cfg.lr_t(t);
        let c = crate::par::ELEMENTWISE_CHUNK;
        let items: Vec<_> = params
            .chunks_mut(c)
            .zip(grads.chunks(c))
            .zip(m.chunks_mut(c))
            .zip(v.chunks_mut(c))
            .collect();
        crate::par::for_each(items, |(((params, grads), m), v)| {
            for i in 0..params.len() {
                let g = grads[i];
                m[i] = flush(cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g);
                v[i] = flush(cfg.beta2 * v[i] + (1.0 - cfg.beta2) * (g * g));
                params[i] -= lr_t * m[i] / (v[i].sqrt() + cfg.eps);
            }
        });
    }
}
