//! `Dense(units, activation, use_bias)`: y = act(x·W + b) on a flat input,
//! one GEMM with the bias and ReLU-family activations in its epilogue.
//! Backward: dW = xᵀ·dz, db = column sums of dz, dx = dz·Wᵀ.

use serde_json::{Map, Value};

use super::activation::{self, Activation};
use super::{Args, Init, Layer, ParamSpec};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};
use crate::kernels::gemm::{Epilogue, GemmShape};

#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
}

impl Dense {
    pub fn new(units: usize, activation: Activation) -> Self {
        Dense {
            units,
            activation,
            use_bias: true,
        }
    }

    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        let units = a.int("units", None, 1)?;
        let activation = Activation::from_arg(a, "activation", "linear")?;
        let use_bias = a.boolean("use_bias", true)?;
        a.initializer("kernel_initializer", "GlorotUniform")?;
        a.initializer("bias_initializer", "Zeros")?;
        a.none_only(&[
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
            "lora_rank",
            "quantization_config",
        ])?;
        Ok(Dense {
            units,
            activation,
            use_bias,
        })
    }
}

impl Layer for Dense {
    fn class(&self) -> &'static str {
        "Dense"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        match inputs[0] {
            [_] => Ok(vec![self.units]),
            _ => Err("a flat input [features] (add Flatten first)".into()),
        }
    }

    fn params(&self, inputs: &[&[usize]]) -> Vec<ParamSpec> {
        let fan_in = inputs[0][0];
        let mut p = vec![ParamSpec {
            name: "kernel",
            shape: vec![fan_in, self.units],
            init: Init::GlorotUniform {
                fan_in,
                fan_out: self.units,
            },
            trainable: true,
        }];
        if self.use_bias {
            p.push(ParamSpec {
                name: "bias",
                shape: vec![self.units],
                init: Init::Zeros,
                trainable: true,
            });
        }
        p
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let x = cx.input(node, 0);
        let k = cx.input_shape(node, 0)[0];
        let name = cx.name(node).to_owned();
        let z = cx.act(name, self.units);
        let w = cx.param(node, "kernel");
        let bias = self.use_bias.then(|| cx.param(node, "bias"));
        cx.emit(Inst::Gemm {
            shape: GemmShape::new(cx.batch, self.units, k, false, false),
            a: x,
            b: w,
            bias,
            c: z,
            epilogue: activation::gemm_epilogue(self.activation),
            accumulate: false,
        });
        let (y, pre) = activation::after_gemm(cx, node, z, self.activation);
        cx.save(node, pre.into_iter().collect());
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let pre = cx.saved(node).first().copied();
        let dz = activation::grad_before(cx, node, dy, self.activation, pre);
        let x = cx.input(node, 0);
        let k = cx.input_shape(node, 0)[0];
        let batch = cx.batch;
        let dw = cx.param_grad(node, "kernel");
        cx.emit(Inst::Gemm {
            shape: GemmShape::new(k, self.units, batch, true, false),
            a: x,
            b: dz,
            bias: None,
            c: dw,
            epilogue: Epilogue::None,
            accumulate: false,
        });
        if self.use_bias {
            let db = cx.param_grad(node, "bias");
            cx.emit(Inst::ColumnSums {
                rows: batch,
                cols: self.units,
                dy: dz,
                db,
            });
        }
        if cx.needs_grad(node, 0) {
            let w = cx.param(node, "kernel");
            let dest = cx.grad_dest(node, 0);
            cx.emit(Inst::Gemm {
                shape: GemmShape::new(batch, k, self.units, false, true),
                a: dz,
                b: w,
                bias: None,
                c: dest.tensor,
                epilogue: Epilogue::None,
                accumulate: dest.accumulate,
            });
            cx.grad_written(node, 0, dest);
        }
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut out = ArgsOut::default()
            .set("units", self.units)
            .set("activation", self.activation.name());
        if !self.use_bias {
            out = out.set("use_bias", false);
        }
        out.0
    }

    fn softmax(&self) -> bool {
        self.activation == Activation::Softmax
    }
}
