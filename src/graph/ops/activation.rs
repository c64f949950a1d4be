//! Activations: the `activation=` argument of Dense and Conv2D, and the
//! `Activation`, `ReLU`, `LeakyReLU` and `Softmax` layers. ReLU and
//! LeakyReLU after a GEMM run in its epilogue; the others are one
//! elementwise kernel each way. Softmax is only ever the output's, fused
//! with the cross-entropy loss by the lowering, so here it is the identity.

use serde_json::{Map, Value};

use super::{Args, Layer};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};
use crate::kernels::elementwise::ActKind;
use crate::kernels::gemm::Epilogue;

/// `keras.activations.leaky_relu`'s slope (the `LeakyReLU` layer's default is 0.3).
pub const LEAKY_RELU_SLOPE: f32 = 0.2;

/// An activation function, as a Dense or Conv2D argument or a layer of its own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// The identity.
    Linear,
    /// max(x, 0).
    Relu,
    /// x > 0 ? x : slope·x.
    LeakyRelu(f32),
    /// 1/(1 + exp(−x)).
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// x > 0 ? x : alpha·(exp(x) − 1).
    Elu(f32),
    /// x·Φ(x), the exact (erf) form.
    Gelu,
    /// Softmax over the last axis; only on the output layer (fused with the loss).
    Softmax,
}

impl Activation {
    /// Every name [`Activation::parse`] accepts.
    pub const NAMES: &'static [&'static str] = &[
        "linear",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "elu",
        "gelu",
        "softmax",
    ];

    /// Keras's name for the activation function.
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(LEAKY_RELU_SLOPE),
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "elu" => Activation::Elu(1.0),
            "gelu" => Activation::Gelu,
            "softmax" => Activation::Softmax,
            _ => return None,
        })
    }

    /// Keras's name (parameters dropped).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Elu(_) => "elu",
            Activation::Gelu => "gelu",
            Activation::Softmax => "softmax",
        }
    }

    /// Reads `key` ("activation") as a Keras activation name.
    pub fn from_arg(a: &mut Args, key: &'static str, default: &str) -> Result<Self, GraphError> {
        let s = a.string(key, default)?;
        Activation::parse(&s).ok_or_else(|| {
            a.error(format!(
                "argument {key:?}: unknown activation {s:?}; expected one of {}",
                Activation::NAMES.join(", ")
            ))
        })
    }

    /// The elementwise kernel, or None for the identity (linear; softmax,
    /// which the loss applies).
    pub fn kernel(self) -> Option<ActKind> {
        Some(match self {
            Activation::Linear | Activation::Softmax => return None,
            Activation::Relu => ActKind::Relu,
            Activation::LeakyRelu(s) => ActKind::LeakyRelu(s),
            Activation::Sigmoid => ActKind::Sigmoid,
            Activation::Tanh => ActKind::Tanh,
            Activation::Elu(a) => ActKind::Elu(a),
            Activation::Gelu => ActKind::Gelu,
        })
    }

    /// The GEMM epilogue that applies it, where one does: then its output
    /// is all the backward rule needs (same sign as the input).
    pub fn epilogue(self) -> Option<Epilogue> {
        match self {
            Activation::Relu => Some(Epilogue::Relu),
            Activation::LeakyRelu(s) => Some(Epilogue::LeakyRelu(s)),
            _ => None,
        }
    }
}

/// The GEMM epilogue for a layer with activation `a`.
pub(super) fn gemm_epilogue(a: Activation) -> Epilogue {
    a.epilogue().unwrap_or(Epilogue::None)
}

/// After a GEMM wrote `z` for `node`: applies `a` where the epilogue did
/// not. Returns (output, the pre-activation to save for backward).
pub(super) fn after_gemm(
    cx: &mut Lowering,
    node: NodeId,
    z: TensorId,
    a: Activation,
) -> (TensorId, Option<TensorId>) {
    match (a.epilogue(), a.kernel()) {
        (None, Some(kind)) => {
            let name = cx.name(node).to_owned();
            let per = cx.per_example(node);
            let y = cx.act(name, per);
            cx.emit(Inst::Act {
                n: cx.batch * per,
                kind,
                x: z,
                y,
            });
            (y, Some(z))
        }
        _ => (z, None),
    }
}

/// The gradient before `a`, given the gradient after it: `pre` is what
/// `after_gemm` saved.
pub(super) fn grad_before(
    cx: &mut Lowering,
    node: NodeId,
    dy: TensorId,
    a: Activation,
    pre: Option<TensorId>,
) -> TensorId {
    let Some(kind) = a.kernel() else { return dy };
    let x = pre.unwrap_or_else(|| cx.output(node));
    let per = cx.per_example(node);
    let name = format!("{}/activation/grad", cx.name(node));
    let dz = cx.act(name, per);
    cx.emit(Inst::ActBackward {
        n: cx.batch * per,
        kind,
        x,
        dy,
        dx: dz,
    });
    dz
}

/// Which Keras class a standalone activation layer came from, so it keeps
/// its name and arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationClass {
    /// `Activation(name)`.
    Activation,
    /// `ReLU` (with a negative slope: a leaky ReLU).
    ReLU,
    /// `LeakyReLU(negative_slope)`.
    LeakyReLU,
    /// `Softmax`.
    Softmax,
}

/// A standalone activation layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationLayer {
    /// The Keras class it is written as.
    pub class: ActivationClass,
    /// The function applied.
    pub activation: Activation,
}

impl ActivationLayer {
    /// An `Activation` layer of `activation`.
    pub fn new(activation: Activation) -> Self {
        ActivationLayer {
            class: ActivationClass::Activation,
            activation,
        }
    }

    /// From Keras class `class` (`Activation`, `ReLU`, `LeakyReLU`, `Softmax`)
    /// and its arguments; unsupported arguments are errors.
    pub fn from_args(class: &str, a: &mut Args) -> Result<Self, GraphError> {
        let (class, activation) = match class {
            "ReLU" => {
                a.default_only("max_value", Value::Null, "null")?;
                a.default_only("threshold", 0.0.into(), "0")?;
                let slope = a.float("negative_slope", 0.0)?;
                let act = if slope == 0.0 {
                    Activation::Relu
                } else {
                    leaky(a, slope)?
                };
                (ActivationClass::ReLU, act)
            }
            "LeakyReLU" => {
                let slope = a.float("negative_slope", 0.3)?;
                (ActivationClass::LeakyReLU, leaky(a, slope)?)
            }
            "Softmax" => {
                a.default_only("axis", (-1).into(), "-1: the class axis")?;
                (ActivationClass::Softmax, Activation::Softmax)
            }
            _ => (
                ActivationClass::Activation,
                Activation::from_arg(a, "activation", "")?,
            ),
        };
        Ok(ActivationLayer { class, activation })
    }
}

fn leaky(a: &Args, slope: f32) -> Result<Activation, GraphError> {
    if slope < 0.0 {
        return Err(a.error(format!(
            "argument \"negative_slope\": expected a number ≥ 0, got {slope}"
        )));
    }
    Ok(Activation::LeakyRelu(slope))
}

impl Layer for ActivationLayer {
    fn class(&self) -> &'static str {
        match self.class {
            ActivationClass::Activation => "Activation",
            ActivationClass::ReLU => "ReLU",
            ActivationClass::LeakyReLU => "LeakyReLU",
            ActivationClass::Softmax => "Softmax",
        }
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(inputs[0].to_vec())
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let x = cx.input(node, 0);
        let Some(kind) = self.activation.kernel() else {
            return x;
        };
        let per = cx.per_example(node);
        let name = cx.name(node).to_owned();
        let y = cx.act(name, per);
        cx.emit(Inst::Act {
            n: cx.batch * per,
            kind,
            x,
            y,
        });
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        if !cx.needs_grad(node, 0) {
            return;
        }
        let Some(kind) = self.activation.kernel() else {
            return cx.pass_grad(node, 0, dy);
        };
        let dx = cx.grad_temp(node, 0);
        cx.emit(Inst::ActBackward {
            n: cx.batch * cx.per_example(node),
            kind,
            x: cx.input(node, 0),
            dy,
            dx,
        });
        cx.add_grad(node, 0, dx);
    }

    fn to_args(&self) -> Map<String, Value> {
        let out = ArgsOut::default();
        match (self.class, self.activation) {
            (ActivationClass::Softmax, _) => out,
            (ActivationClass::Activation, a) => out.set("activation", a.name()),
            (_, Activation::LeakyRelu(s)) => out.float("negative_slope", s),
            (_, _) => out,
        }
        .0
    }

    fn softmax(&self) -> bool {
        self.activation == Activation::Softmax
    }
}
