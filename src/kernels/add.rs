//! Elementwise sums (`shaders/add.wgsl`): `add` for a residual Add layer,
//! `accumulate` for summing the gradients of a tensor with several
//! consumers. One f32 addition per element: GPU and CPU agree exactly.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::ADD;

const WG: u32 = 256;
const ADD_BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::Storage,
    Binding::Storage,
    Binding::StorageRw,
];
const ACC_BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

/// `add`: c = a + b, one invocation per element.
pub static ADD_F32: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "add",
    bindings: ADD_BINDINGS,
};
/// `add_vec4`: c = a + b, one invocation per vec4 (n % 4 == 0).
pub static ADD_VEC4: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "add_vec4",
    bindings: ADD_BINDINGS,
};
/// `accumulate`: acc += src, one invocation per element.
pub static ACCUMULATE: KernelSpec = KernelSpec {
    shader: &ADD,
    entry: "accumulate",
    bindings: ACC_BINDINGS,
};
/// `accumulate_vec4`: acc += src, one invocation per vec4 (n % 4 == 0).
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
    buffers: &[View<'_>],
) -> Result<Dispatch> {
    let (spec, items) = if n % 4 == 0 {
        (vec4, n / 4)
    } else {
        (scalar, n)
    };
    gpu.launch(
        spec,
        &[("WG", WG as f64)],
        &Params {
            n: items as u32,
            _pad: [0; 3],
        },
        buffers,
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
    build(
        gpu,
        n,
        (&ADD_F32, &ADD_VEC4),
        &[a.view(), b.view(), c.view()],
    )
}

/// acc += src over `n` elements.
pub fn accumulate<'b>(
    gpu: &Gpu,
    n: usize,
    src: impl Bind<'b>,
    acc: impl Bind<'b>,
) -> Result<Dispatch> {
    build(
        gpu,
        n,
        (&ACCUMULATE, &ACCUMULATE_VEC4),
        &[src.view(), acc.view()],
    )
}

/// Plain-Rust references.
pub mod cpu {
    /// a + b elementwise.
    pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; a.len()];
        add_into(a, b, &mut c);
        c
    }

    /// c = a + b elementwise.
    pub fn add_into(a: &[f32], b: &[f32], c: &mut [f32]) {
        for ((o, x), y) in c.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    }

    /// acc += src elementwise.
    pub fn accumulate(src: &[f32], acc: &mut [f32]) {
        for (a, s) in acc.iter_mut().zip(src) {
            *a += s;
        }
    }
}
