//! `Dense(units, activation, use_bias)`: y = act(x·W + b) on a flat input,
//! one GEMM (`linear`) with the bias and ReLU-family activations in its
//! epilogue. Backward: dW = xᵀ·dz, db = column sums of dz, dx = dz·Wᵀ.

use serde_json::{Map, Value};

use super::activation::Activation;
use super::linear::{kernel_and_bias, Linear, Rows};
use super::{Args, Layer, ParamSpec};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::TensorId;

/// The `Dense` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Output features.
    pub units: usize,
    /// Applied after the bias.
    pub activation: Activation,
    /// Whether there is a bias (Keras's default: yes).
    pub use_bias: bool,
}

impl Dense {
    /// `units` outputs with a bias, then `activation`.
    pub fn new(units: usize, activation: Activation) -> Self {
        Dense {
            units,
            activation,
            use_bias: true,
        }
    }

    /// From Keras's arguments; unsupported ones are errors.
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

impl Dense {
    fn linear(&self, cx: &Lowering, node: NodeId) -> Linear {
        Linear {
            rows: cx.batch,
            k: cx.input_shape(node, 0)[0],
            out: self.units,
            use_bias: self.use_bias,
            activation: self.activation,
        }
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
        kernel_and_bias(vec![fan_in, self.units], fan_in, self.units, self.use_bias)
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let x = cx.input(node, 0);
        let (y, pre) = self.linear(cx, node).forward(cx, node, Rows::Matrix(x));
        cx.save(node, pre.into_iter().collect());
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let lin = self.linear(cx, node);
        let pre = cx.saved(node).first().copied();
        let x = cx.input(node, 0);
        let dz = lin.weight_grads(cx, node, Rows::Matrix(x), dy, pre);
        if cx.needs_grad(node, 0) {
            let dest = cx.grad_dest(node, 0);
            lin.input_grad(cx, node, dz, dest.tensor, dest.accumulate);
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
