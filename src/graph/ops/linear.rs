//! The GEMM at the heart of Dense and Conv2D (over im2col of its input):
//! rows of A times the kernel W [k, out] plus the bias, then the
//! activation. Both layers lower through here, forward and backward.

use super::activation::{self, Activation};
use super::{Init, ParamSpec};
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::gemm::{Epilogue, GemmShape};

/// The kernel of `shape` (Keras's layout: its last axis the outputs),
/// glorot-uniform over these fans, and a zero bias of `out` when `use_bias`.
pub(super) fn kernel_and_bias(
    shape: Vec<usize>,
    fan_in: usize,
    fan_out: usize,
    use_bias: bool,
) -> Vec<ParamSpec> {
    let out = *shape.last().expect("a kernel has axes");
    let mut p = vec![ParamSpec {
        name: "kernel",
        shape,
        init: Init::GlorotUniform { fan_in, fan_out },
        trainable: true,
    }];
    if use_bias {
        p.push(ParamSpec {
            name: "bias",
            shape: vec![out],
            init: Init::Zeros,
            trainable: true,
        });
    }
    p
}

/// Where op(A), the [rows, k] left operand, comes from.
#[derive(Clone, Copy)]
pub(super) enum Rows {
    /// A [rows, k] tensor.
    Matrix(TensorId),
    /// im2col(x) of a convolution: `cols` holds it where the backend builds
    /// it (see `Inst::ConvForward`).
    Im2col {
        geom: Conv2dGeom,
        x: TensorId,
        cols: TensorId,
    },
}

/// A [rows, k] times W [k, out] for layer `node`.
#[derive(Clone, Copy)]
pub(super) struct Linear {
    pub rows: usize,
    pub k: usize,
    pub out: usize,
    pub use_bias: bool,
    pub activation: Activation,
}

impl Linear {
    /// y = act(a·W + b). Returns (y, the pre-activation to save where the
    /// activation is not the GEMM's epilogue).
    pub fn forward(
        &self,
        cx: &mut Lowering,
        node: NodeId,
        a: Rows,
    ) -> (TensorId, Option<TensorId>) {
        let name = cx.name(node).to_owned();
        let z = cx.act(name, cx.per_example(node));
        let w = cx.param(node, "kernel");
        let bias = self.use_bias.then(|| cx.param(node, "bias"));
        let epilogue = activation::gemm_epilogue(self.activation);
        cx.emit(match a {
            Rows::Matrix(a) => Inst::Gemm {
                shape: GemmShape::new(self.rows, self.out, self.k, false, false),
                a,
                b: w,
                bias,
                c: z,
                epilogue,
                accumulate: false,
                db: None,
            },
            Rows::Im2col { geom, x, cols } => Inst::ConvForward {
                geom,
                x,
                cols,
                w,
                bias,
                y: z,
                epilogue,
            },
        });
        activation::after_gemm(cx, node, z, self.activation)
    }

    /// From the output gradient `dy`: the gradients of W (aᵀ·dz) and of
    /// the bias (dz's column sums). Returns dz, the gradient before the
    /// activation, for the input gradient.
    pub fn weight_grads(
        &self,
        cx: &mut Lowering,
        node: NodeId,
        a: Rows,
        dy: TensorId,
        pre: Option<TensorId>,
    ) -> TensorId {
        let dz = activation::grad_before(cx, node, dy, self.activation, pre);
        let dw = cx.param_grad(node, "kernel");
        let db = self.use_bias.then(|| cx.param_grad(node, "bias"));
        cx.emit(match a {
            Rows::Matrix(a) => Inst::Gemm {
                shape: GemmShape::new(self.k, self.out, self.rows, true, false),
                a,
                b: dz,
                bias: None,
                c: dw,
                epilogue: Epilogue::None,
                accumulate: false,
                db,
            },
            Rows::Im2col { geom, x, cols } => Inst::ConvWeightGrad {
                geom,
                x,
                cols,
                dy: dz,
                dw,
                db,
            },
        });
        dz
    }

    /// da = dz·Wᵀ into `da` (added to it with `accumulate`).
    pub fn input_grad(
        &self,
        cx: &mut Lowering,
        node: NodeId,
        dz: TensorId,
        da: TensorId,
        accumulate: bool,
    ) {
        let w = cx.param(node, "kernel");
        cx.emit(Inst::Gemm {
            shape: GemmShape::new(self.rows, self.k, self.out, false, true),
            a: dz,
            b: w,
            bias: None,
            c: da,
            epilogue: Epilogue::None,
            accumulate,
            db: None,
        });
    }
}
