//! The layers a model is built from, one file each: its arguments (Keras's
//! names and defaults), shape inference, parameters, forward lowering and
//! gradient rule. `Op` is a thin enum over them; every match on it is one
//! line per layer.

pub mod activation;
pub mod add;
pub mod batch_norm;
pub mod concatenate;
pub mod conv2d;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod global_pool;
pub mod input;
mod linear;
pub mod pool;
pub mod reshape;

use serde_json::{Map, Value};

pub use activation::{Activation, ActivationLayer};
pub use add::Add;
pub use batch_norm::BatchNorm;
pub use concatenate::Concatenate;
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use global_pool::GlobalAveragePooling;
pub use input::Input;
pub use pool::{Pool2d, PoolKind};
pub use reshape::Reshape;

use super::args::Args;
use super::error::GraphError;
use super::lower::Lowering;
use super::model::NodeId;
use super::program::TensorId;

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in ±√(6/(fan_in + fan_out)).
    GlorotUniform {
        /// Inputs feeding each output unit (kh·kw·in_c for a conv).
        fan_in: usize,
        /// Outputs each input feeds (kh·kw·out_c for a conv).
        fan_out: usize,
    },
    /// All 0.
    Zeros,
    /// All 1.
    Ones,
}

/// One weight array of a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Keras's weight name: "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance".
    pub name: &'static str,
    /// Keras's shape (a conv kernel is [kh, kw, in_c, out_c]).
    pub shape: Vec<usize>,
    /// How it starts.
    pub init: Init,
    /// Updated by Adam (else state, such as moving statistics).
    pub trainable: bool,
}

impl ParamSpec {
    /// Elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// No elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What every layer defines. Shapes exclude the batch dimension.
pub trait Layer {
    /// Keras's class name ("Conv2D").
    fn class(&self) -> &'static str;

    /// How many inputs the layer reads: (at least, at most).
    fn arity(&self) -> (usize, usize) {
        (1, 1)
    }

    /// The output shape for these input shapes, or what was expected.
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String>;

    /// The layer's weights for these input shapes, in Keras's order.
    fn params(&self, _inputs: &[&[usize]]) -> Vec<ParamSpec> {
        Vec::new()
    }

    /// Emits the forward instructions; returns the output tensor.
    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId;

    /// Given `dy`, the gradient of the output, contributes the gradients of
    /// the inputs (`Lowering::add_grad` and friends) and of the parameters.
    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId);

    /// The arguments that rebuild this layer (the canonical description).
    fn to_args(&self) -> Map<String, Value>;

    /// Whether the layer ends in a softmax, which only the output layer may
    /// (it is fused with the cross-entropy loss).
    fn softmax(&self) -> bool {
        false
    }
}

/// Every layer the engine knows, as a value a graph node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// [`Input`].
    Input(Input),
    /// [`Flatten`].
    Flatten(Flatten),
    /// [`Reshape`].
    Reshape(Reshape),
    /// [`Dense`].
    Dense(Dense),
    /// [`Conv2d`].
    Conv2d(Conv2d),
    /// [`BatchNorm`].
    BatchNorm(BatchNorm),
    /// [`ActivationLayer`].
    Activation(ActivationLayer),
    /// [`Dropout`].
    Dropout(Dropout),
    /// [`Pool2d`].
    Pool2d(Pool2d),
    /// [`GlobalAveragePooling`].
    GlobalAveragePooling(GlobalAveragePooling),
    /// [`Add`].
    Add(Add),
    /// [`Concatenate`].
    Concatenate(Concatenate),
}

impl Op {
    /// The wrapped layer.
    pub fn layer(&self) -> &dyn Layer {
        match self {
            Op::Input(o) => o,
            Op::Flatten(o) => o,
            Op::Reshape(o) => o,
            Op::Dense(o) => o,
            Op::Conv2d(o) => o,
            Op::BatchNorm(o) => o,
            Op::Activation(o) => o,
            Op::Dropout(o) => o,
            Op::Pool2d(o) => o,
            Op::GlobalAveragePooling(o) => o,
            Op::Add(o) => o,
            Op::Concatenate(o) => o,
        }
    }

    /// Keras's class name, for summaries and model files.
    pub fn kind(&self) -> &'static str {
        self.layer().class()
    }

    /// The layer of Keras class `class` from its arguments. `layer` names
    /// it in errors.
    pub fn from_args(layer: &str, class: &str, args: Map<String, Value>) -> Result<Op, GraphError> {
        let mut a = Args::new(layer, class, args);
        let op = match class {
            "InputLayer" => Op::Input(Input::from_args(&mut a)?),
            "Flatten" => Op::Flatten(Flatten::from_args(&mut a)?),
            "Reshape" => Op::Reshape(Reshape::from_args(&mut a)?),
            "Dense" => Op::Dense(Dense::from_args(&mut a)?),
            "Conv2D" => Op::Conv2d(Conv2d::from_args(&mut a)?),
            "BatchNormalization" => Op::BatchNorm(BatchNorm::from_args(&mut a)?),
            "Activation" | "ReLU" | "LeakyReLU" | "Softmax" => {
                Op::Activation(ActivationLayer::from_args(class, &mut a)?)
            }
            "Dropout" => Op::Dropout(Dropout::from_args(&mut a)?),
            "MaxPooling2D" => Op::Pool2d(Pool2d::from_args(PoolKind::Max, &mut a)?),
            "AveragePooling2D" => Op::Pool2d(Pool2d::from_args(PoolKind::Average, &mut a)?),
            "GlobalAveragePooling2D" => {
                Op::GlobalAveragePooling(GlobalAveragePooling::from_args(&mut a)?)
            }
            "Add" => Op::Add(Add::from_args(&mut a)?),
            "Concatenate" => Op::Concatenate(Concatenate::from_args(&mut a)?),
            other => {
                let known: Vec<&str> = LAYER_CLASSES.iter().map(|c| c.0).collect();
                return Err(a.error(format!(
                    "unknown layer type {other:?}; gdl-gpu has {}",
                    known.join(", ")
                )));
            }
        };
        a.finish()?;
        Ok(op)
    }
}

/// Each layer is an `Op`, so `Graph::add` takes any of them.
macro_rules! into_op {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Op {
            fn from(o: $ty) -> Op {
                Op::$variant(o)
            }
        })*
    };
}

into_op!(
    Input => Input,
    Flatten => Flatten,
    Reshape => Reshape,
    Dense => Dense,
    Conv2d => Conv2d,
    BatchNorm => BatchNorm,
    ActivationLayer => Activation,
    Dropout => Dropout,
    Pool2d => Pool2d,
    GlobalAveragePooling => GlobalAveragePooling,
    Add => Add,
    Concatenate => Concatenate,
);

/// Every Keras class a model file may name, with Keras's automatic name
/// stem for it ("conv2d", then "conv2d_1", …).
pub const LAYER_CLASSES: &[(&str, &str)] = &[
    ("InputLayer", "input_layer"),
    ("Conv2D", "conv2d"),
    ("Dense", "dense"),
    ("BatchNormalization", "batch_normalization"),
    ("Activation", "activation"),
    ("ReLU", "re_lu"),
    ("LeakyReLU", "leaky_re_lu"),
    ("Softmax", "softmax"),
    ("Dropout", "dropout"),
    ("MaxPooling2D", "max_pooling2d"),
    ("AveragePooling2D", "average_pooling2d"),
    ("GlobalAveragePooling2D", "global_average_pooling2d"),
    ("Flatten", "flatten"),
    ("Reshape", "reshape"),
    ("Add", "add"),
    ("Concatenate", "concatenate"),
];

/// Keras's automatic name stem for `class`.
pub fn base_name(class: &str) -> Option<&'static str> {
    LAYER_CLASSES.iter().find(|c| c.0 == class).map(|c| c.1)
}
