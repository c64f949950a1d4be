//! The layer-level op set a model is built from, with shape inference and
//! the parameters each op owns. Shapes exclude the batch dimension.

use super::error::GraphError;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Linear,
    Relu,
    LeakyRelu(f32),
}

impl Activation {
    /// The slope for x ≤ 0, or `None` for a linear layer.
    pub fn slope(self) -> Option<f32> {
        match self {
            Activation::Linear => None,
            Activation::Relu => Some(0.0),
            Activation::LeakyRelu(s) => Some(s),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Images [height, width, channels], gathered from the dataset.
    Input {
        height: usize,
        width: usize,
        channels: usize,
    },
    Flatten,
    Dense {
        units: usize,
        activation: Activation,
    },
    Conv2d {
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        activation: Activation,
    },
    BatchNorm {
        momentum: f32,
        eps: f32,
    },
    Activation(Activation),
    Dropout {
        rate: f32,
    },
    /// Softmax over the last axis with categorical cross-entropy against
    /// the labels: the head of every classifier here.
    SoftmaxCrossEntropy,
}

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    GlorotUniform { fan_in: usize, fan_out: usize },
    Zeros,
    Ones,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Keras-style name suffix: "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance".
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
    pub trainable: bool,
}

impl ParamSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// TensorFlow's output size and leading padding for one spatial axis.
pub fn conv_out(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(input);
            Some((out, total / 2))
        }
        Padding::Valid => (input >= kernel).then(|| ((input - kernel) / stride + 1, 0)),
    }
}

impl Op {
    /// Keras's class name, for summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input { .. } => "InputLayer",
            Op::Flatten => "Flatten",
            Op::Dense { .. } => "Dense",
            Op::Conv2d { .. } => "Conv2D",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::Activation(Activation::LeakyRelu(_)) => "LeakyReLU",
            Op::Activation(_) => "Activation",
            Op::Dropout { .. } => "Dropout",
            Op::SoftmaxCrossEntropy => "Softmax",
        }
    }

    pub fn output_shape(&self, name: &str, input: &[usize]) -> Result<Vec<usize>, GraphError> {
        let bad = |expected: &str| GraphError::Shape {
            layer: name.to_owned(),
            expected: expected.to_owned(),
            got: input.to_vec(),
        };
        match *self {
            Op::Input {
                height,
                width,
                channels,
            } => Ok(vec![height, width, channels]),
            Op::Flatten => Ok(vec![input.iter().product()]),
            Op::Dense { units, .. } => {
                if input.len() != 1 {
                    return Err(bad("a flat input [features] (add Flatten first)"));
                }
                Ok(vec![units])
            }
            Op::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => {
                let [h, w, _c] = input else {
                    return Err(bad("an image input [height, width, channels]"));
                };
                let (oh, _) = conv_out(*h, kernel, stride, padding)
                    .ok_or_else(|| bad("an input at least as large as the kernel"))?;
                let (ow, _) = conv_out(*w, kernel, stride, padding)
                    .ok_or_else(|| bad("an input at least as large as the kernel"))?;
                Ok(vec![oh, ow, filters])
            }
            Op::BatchNorm { .. } | Op::Activation(_) | Op::Dropout { .. } => Ok(input.to_vec()),
            Op::SoftmaxCrossEntropy => {
                if input.len() != 1 {
                    return Err(bad("flat logits [classes]"));
                }
                Ok(input.to_vec())
            }
        }
    }

    /// The parameters this op owns, given its input shape.
    pub fn params(&self, input: &[usize]) -> Vec<ParamSpec> {
        let p = |name, shape: Vec<usize>, init, trainable| ParamSpec {
            name,
            shape,
            init,
            trainable,
        };
        match *self {
            Op::Dense { units, .. } => {
                let fan_in = input[0];
                vec![
                    p(
                        "kernel",
                        vec![fan_in, units],
                        Init::GlorotUniform {
                            fan_in,
                            fan_out: units,
                        },
                        true,
                    ),
                    p("bias", vec![units], Init::Zeros, true),
                ]
            }
            Op::Conv2d {
                filters, kernel, ..
            } => {
                let c = input[2];
                let fan_in = kernel * kernel * c;
                let fan_out = kernel * kernel * filters;
                vec![
                    p(
                        "kernel",
                        vec![kernel, kernel, c, filters],
                        Init::GlorotUniform { fan_in, fan_out },
                        true,
                    ),
                    p("bias", vec![filters], Init::Zeros, true),
                ]
            }
            Op::BatchNorm { .. } => {
                let c = *input.last().expect("shape checked");
                vec![
                    p("gamma", vec![c], Init::Ones, true),
                    p("beta", vec![c], Init::Zeros, true),
                    p("moving_mean", vec![c], Init::Zeros, false),
                    p("moving_variance", vec![c], Init::Ones, false),
                ]
            }
            _ => Vec::new(),
        }
    }
}
