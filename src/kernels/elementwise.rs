//! Activations forward and backward (`shaders/elementwise.wgsl`, the
//! functions in `shaders/prelude/activation.wgsl`), one pipeline per kind.

use crate::gpu::{grid_1d, Bind, Binding, Dispatch, Gpu, KernelSpec, Result, View};
use crate::shaders::ELEMENTWISE;

const WG: u32 = 256;

/// `act_forward`: y = f(x), one invocation per element.
pub static FORWARD: KernelSpec = KernelSpec {
    shader: &ELEMENTWISE,
    entry: "act_forward",
    bindings: &[Binding::Uniform, Binding::Storage, Binding::StorageRw],
};
/// `act_backward`: dx = dy·f'(x), one invocation per element.
pub static BACKWARD: KernelSpec = KernelSpec {
    shader: &ELEMENTWISE,
    entry: "act_backward",
    bindings: &[
        Binding::Uniform,
        Binding::Storage,
        Binding::Storage,
        Binding::StorageRw,
    ],
};

/// The activations, with Keras semantics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActKind {
    /// max(x, 0).
    Relu,
    /// x > 0 ? x : slope·x, slope ≥ 0.
    LeakyRelu(f32),
    /// 1/(1 + exp(−x)).
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// x > 0 ? x : alpha·(exp(x) − 1).
    Elu(f32),
    /// x·Φ(x), the exact (erf) form: Keras's `approximate=False`.
    Gelu,
}

impl ActKind {
    /// What `shaders/prelude/activation.wgsl` switches on: (its code, the
    /// parameter it reads), with `None`, the identity, as code 5.
    pub fn code(kind: Option<ActKind>) -> (u32, f32) {
        match kind {
            Some(ActKind::Relu) => (0, 0.0),
            Some(ActKind::LeakyRelu(s)) => (0, s),
            Some(ActKind::Sigmoid) => (1, 0.0),
            Some(ActKind::Tanh) => (2, 0.0),
            Some(ActKind::Elu(a)) => (3, a),
            Some(ActKind::Gelu) => (4, 0.0),
            None => (5, 0.0),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    a: f32,
    _pad: [u32; 2],
}

fn build(
    gpu: &Gpu,
    spec: &KernelSpec,
    kind: ActKind,
    buffers: &[View<'_>],
    n: usize,
) -> Result<Dispatch> {
    let (code, a) = ActKind::code(Some(kind));
    gpu.launch(
        spec,
        &[("WG", WG as f64), ("KIND", code as f64)],
        &Params {
            n: n as u32,
            a,
            _pad: [0; 2],
        },
        buffers,
        grid_1d(n as u64, WG),
    )
}

/// y = act(x) over `n` elements.
pub fn forward<'b>(
    gpu: &Gpu,
    kind: ActKind,
    x: impl Bind<'b>,
    y: impl Bind<'b>,
    n: usize,
) -> Result<Dispatch> {
    build(gpu, &FORWARD, kind, &[x.view(), y.view()], n)
}

/// dx = act'(x)·dy over `n` elements; `x` is the forward input (for
/// ReLU/LeakyReLU the output serves as well: same sign).
pub fn backward<'b>(
    gpu: &Gpu,
    kind: ActKind,
    x: impl Bind<'b>,
    dy: impl Bind<'b>,
    dx: impl Bind<'b>,
    n: usize,
) -> Result<Dispatch> {
    build(gpu, &BACKWARD, kind, &[x.view(), dy.view(), dx.view()], n)
}

/// Plain-Rust references, formula for formula the shader's (same
/// approximations of erfc and tanh, same order of operations), in f32 and,
/// from the same macro body, in f64.
pub mod cpu {
    use super::ActKind;

    // The coefficients are written as published, shared by the f32 and f64
    // bodies (and the shader): more digits than an f32 holds.
    macro_rules! scalar {
        ($t:ident, $erfc:ident, $tanh_poly:ident, $act:ident, $grad:ident) => {
            /// Numerical Recipes' `erfcc` (fractional error < 1.2e-7).
            #[allow(clippy::excessive_precision)]
            pub fn $erfc(z: $t) -> $t {
                let t = 1.0 / (1.0 + 0.5 * z.abs());
                let poly = -1.26551223
                    + t * (1.00002368
                        + t * (0.37409196
                            + t * (0.09678418
                                + t * (-0.18628806
                                    + t * (0.27886807
                                        + t * (-1.13520398
                                            + t * (1.48851587
                                                + t * (-0.82215223 + t * 0.17087277))))))));
                let r = t * (-z * z + poly).exp();
                if z >= 0.0 {
                    r
                } else {
                    2.0 - r
                }
            }

            /// Cephes tanhf's polynomial, for |x| < 0.625.
            #[allow(clippy::excessive_precision)]
            fn $tanh_poly(v: $t) -> $t {
                let z = v * v;
                ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
                    + 1.33314422036e-1)
                    * z
                    - 3.33332819422e-1)
                    * z
                    * v
                    + v
            }

            /// f(v), as the shader computes it.
            pub fn $act(kind: ActKind, v: $t) -> $t {
                match kind {
                    ActKind::Relu | ActKind::LeakyRelu(_) => {
                        if v > 0.0 {
                            v
                        } else {
                            v * leaky_slope(kind) as $t
                        }
                    }
                    ActKind::Sigmoid => {
                        let e = (-v.abs()).exp();
                        if v >= 0.0 {
                            1.0 / (1.0 + e)
                        } else {
                            e / (1.0 + e)
                        }
                    }
                    ActKind::Tanh => {
                        if v.abs() >= 0.625 {
                            let e = (-2.0 * v.abs()).exp();
                            (1.0 - 2.0 * e / (1.0 + e)).copysign(v)
                        } else {
                            $tanh_poly(v)
                        }
                    }
                    ActKind::Elu(a) => {
                        if v > 0.0 {
                            v
                        } else {
                            a as $t * (v.exp() - 1.0)
                        }
                    }
                    ActKind::Gelu => 0.5 * v * $erfc(-v * std::$t::consts::FRAC_1_SQRT_2),
                }
            }

            /// g·f'(v): the gradient through f at v given the output gradient g.
            pub fn $grad(kind: ActKind, v: $t, g: $t) -> $t {
                match kind {
                    ActKind::Relu | ActKind::LeakyRelu(_) => {
                        if v > 0.0 {
                            g
                        } else {
                            g * leaky_slope(kind) as $t
                        }
                    }
                    ActKind::Sigmoid => {
                        let e = (-v.abs()).exp();
                        let d = 1.0 + e;
                        g * (e / (d * d))
                    }
                    ActKind::Tanh => {
                        if v.abs() >= 0.625 {
                            let e = (-2.0 * v.abs()).exp();
                            let d = 1.0 + e;
                            g * (4.0 * e / (d * d))
                        } else {
                            let t = $tanh_poly(v);
                            g * (1.0 - t * t)
                        }
                    }
                    ActKind::Elu(a) => {
                        if v > 0.0 {
                            g
                        } else {
                            g * (a as $t * v.exp())
                        }
                    }
                    ActKind::Gelu => {
                        let cdf = 0.5 * $erfc(-v * std::$t::consts::FRAC_1_SQRT_2);
                        let pdf = INV_SQRT_2PI as $t * (-0.5 * v * v).exp();
                        g * (cdf + v * pdf)
                    }
                }
            }
        };
    }

    scalar!(f32, erfc, tanh_poly, act, grad);
    scalar!(f64, erfc_f64, tanh_poly_f64, act_f64, grad_f64);

    /// 1/√(2π), the normal density's constant.
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

    fn leaky_slope(kind: ActKind) -> f32 {
        match kind {
            ActKind::LeakyRelu(s) => s,
            _ => 0.0,
        }
    }

    /// y = f(x) elementwise, in f32.
    pub fn forward(kind: ActKind, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; x.len()];
        forward_into(kind, x, &mut y);
        y
    }

    /// [`forward`] into `y`, on all threads.
    pub fn forward_into(kind: ActKind, x: &[f32], y: &mut [f32]) {
        let c = crate::par::ELEMENTWISE_CHUNK;
        crate::par::chunks_mut(&mut y[..x.len()], c, |i, y| {
            let x = &x[i * c..];
            if let ActKind::Relu | ActKind::LeakyRelu(_) = kind {
                // The same arithmetic as `act`, with the match out of the loop.
                let s = leaky_slope(kind);
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = if v > 0.0 { v } else { v * s };
                }
            } else {
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = act(kind, v);
                }
            }
        });
    }

    /// y = f(y) elementwise, in place, on all threads: [`forward_into`]'s
    /// arithmetic.
    pub fn forward_in_place(kind: ActKind, y: &mut [f32]) {
        let c = crate::par::ELEMENTWISE_CHUNK;
        crate::par::chunks_mut(y, c, |_, y| {
            if let ActKind::Relu | ActKind::LeakyRelu(_) = kind {
                let s = leaky_slope(kind);
                for v in y.iter_mut() {
                    *v = if *v > 0.0 { *v } else { *v * s };
                }
            } else {
                for v in y.iter_mut() {
                    *v = act(kind, *v);
                }
            }
        });
    }

    /// dx = dy·f'(x) elementwise, in f32.
    pub fn backward(kind: ActKind, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; x.len()];
        backward_into(kind, x, dy, &mut dx);
        dx
    }

    /// [`backward`] into `dx`, on all threads.
    pub fn backward_into(kind: ActKind, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        let c = crate::par::ELEMENTWISE_CHUNK;
        crate::par::chunks_mut(&mut dx[..x.len()], c, |i, dx| {
            let (x, dy) = (&x[i * c..], &dy[i * c..]);
            if let ActKind::Relu | ActKind::LeakyRelu(_) = kind {
                // The same arithmetic as `grad`, with the match out of the loop.
                let s = leaky_slope(kind);
                for ((o, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
                    *o = if v > 0.0 { g } else { g * s };
                }
            } else {
                for ((o, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
                    *o = grad(kind, v, g);
                }
            }
        });
    }

    /// y = f(x) elementwise, in f64 (gradient checks).
    pub fn forward_f64(kind: ActKind, x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| act_f64(kind, v)).collect()
    }

    /// dx = dy·f'(x) elementwise, in f64 (gradient checks).
    pub fn backward_f64(kind: ActKind, x: &[f64], dy: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(dy)
            .map(|(&v, &g)| grad_f64(kind, v, g))
            .collect()
    }
}
