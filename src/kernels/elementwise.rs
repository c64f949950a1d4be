//! LeakyReLU / ReLU forward and backward (`shaders/elementwise.wgsl`).

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::ELEMENTWISE;

const WG: u32 = 256;
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

pub static FORWARD: KernelSpec = KernelSpec {
    shader: &ELEMENTWISE,
    entry: "leaky_relu_forward",
    bindings: BINDINGS,
};
pub static BACKWARD: KernelSpec = KernelSpec {
    shader: &ELEMENTWISE,
    entry: "leaky_relu_backward",
    bindings: BINDINGS,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    slope: f32,
    _pad: [u32; 2],
}

fn build<'b>(
    gpu: &Gpu,
    spec: &KernelSpec,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
    n: usize,
    slope: f32,
) -> Result<Dispatch> {
    let params = gpu.uniform(
        spec.entry,
        &Params {
            n: n as u32,
            slope,
            _pad: [0; 2],
        },
    )?;
    gpu.dispatch(
        spec,
        &[("WG", WG as f64)],
        &[
            params.as_entire_binding(),
            x.as_entire_binding(),
            y.as_entire_binding(),
        ],
        grid_1d(n as u64, WG),
    )
}

/// y = x > 0 ? x : slope·x over `n` elements (slope 0 is ReLU).
pub fn forward<'b>(
    gpu: &Gpu,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
    n: usize,
    slope: f32,
) -> Result<Dispatch> {
    build(gpu, &FORWARD, x, y, n, slope)
}

/// In place: `grad` holds dy on entry and dx on exit; `x` is the forward input.
pub fn backward<'b>(
    gpu: &Gpu,
    x: impl Bind<'b>,
    grad: impl Bind<'b>,
    n: usize,
    slope: f32,
) -> Result<Dispatch> {
    build(gpu, &BACKWARD, x, grad, n, slope)
}

pub mod cpu {
    pub fn forward(x: &[f32], slope: f32) -> Vec<f32> {
        x.iter()
            .map(|&v| if v > 0.0 { v } else { slope * v })
            .collect()
    }

    pub fn backward(x: &[f32], dy: &[f32], slope: f32) -> Vec<f32> {
        x.iter()
            .zip(dy)
            .map(|(&v, &g)| if v > 0.0 { g } else { slope * g })
            .collect()
    }
}
