//! Elementwise sums (`shaders/add.wgsl`): `add` for a residual Add layer,
//! `accumulate` for summing the gradients of a tensor with several
//! consumers. One f32 addition per element: GPU and CPU agree exactly.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::ADD;

const WG: u32 = 256;
const ADD_BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::Storage,
    Binding::Storage,
    Binding::StorageRw,
];
const ACC_BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

pub static ADD_F32: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "add",
    bindings: ADD_BINDINGS,
};
pub static ADD_VEC4: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "add_vec4",
    bindings: ADD_BINDINGS,
};
pub static ACCUMULATE: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "accumulate",
    bindings: ACC_BINDINGS,
};
pub static ACCUMULATE_VEC4: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "accumulate_vec4",
    bindings: ACC_BINDINGS,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

/// `n` elements with `scalar`, or n/4 vec4s with `vec4` when n % 4 == 0.
fn build(
    gpu: &Gpu,
    n: usize,
    (scalar, vec4): (&KernelSpec, &KernelSpec),
    buffers: &[wgpu::BindingResource<'_>],
) -> Result<Dispatch> {
    let (spec, items) = if n % 4 == 0 {
        (vec4, n / 4)
    } else {
        (scalar, n)
    };
    let params = gpu.uniform(
        spec.entry,
        &Params {
            n: items as u32,
            _pad: [0; 3],
        },
    )?;
    let mut bindings = vec![params.as_entire_binding()];
    bindings.extend_from_slice(buffers);
    gpu.dispatch(
        spec,
        &[("WG", WG as f64)],
        &bindings,
        grid_1d(items as u64, WG),
    )
}

/// c = a + b over `n` elements.
pub fn add<'b>(
    gpu: &Gpu,
    n: usize,
    a: impl Bind<'b>,
    b: impl Bind<'b>,
    c: impl Bind<'b>,
) -> Result<Dispatch> {
    let buffers = [
        a.as_entire_binding(),
        b.as_entire_binding(),
        c.as_entire_binding(),
    ];
    build(gpu, n, (&ADD_F32, &ADD_VEC4), &buffers)
}

/// acc += src over `n` elements.
pub fn accumulate<'b>(
    gpu: &Gpu,
    n: usize,
    src: impl Bind<'b>,
    acc: impl Bind<'b>,
) -> Result<Dispatch> {
    let buffers = [src.as_entire_binding(), acc.as_entire_binding()];
    build(gpu, n, (&ACCUMULATE, &ACCUMULATE_VEC4), &buffers)
}

pub mod cpu {
    pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }

    pub fn accumulate(src: &[f32], acc: &mut [f32]) {
        for (a, s) in acc.iter_mut().zip(src) {
            *a += s;
        }
    }
}
