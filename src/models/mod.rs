//! The models of chapter 2 of *Generative Deep Learning*, as graph builders.

use crate::graph::{Activation, Graph, GraphError, Padding};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    /// Dense MLP 3072→200→150→10
    Mlp,
    /// The chapter's first convolutional sketch: two strided Conv2D layers, no BatchNorm
    Conv,
    /// CNN of four Conv2D/BatchNorm/LeakyReLU blocks, Dense(128), dropout
    Cnn,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Conv => "conv",
            ModelKind::Cnn => "cnn",
        }
    }

    /// The inverse of `name`.
    pub fn from_name(name: &str) -> Option<ModelKind> {
        [ModelKind::Mlp, ModelKind::Conv, ModelKind::Cnn]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// Options a model may take; the defaults are the chapter's.
#[derive(Clone, Copy, Debug)]
pub struct ModelOptions {
    pub leaky_slope: f32,
    pub dropout: f32,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            leaky_slope: 0.2,
            dropout: 0.5,
        }
    }
}

pub fn build(kind: ModelKind, opts: &ModelOptions) -> Result<Graph, GraphError> {
    match kind {
        ModelKind::Mlp => mlp(),
        ModelKind::Conv => conv(),
        ModelKind::Cnn => cnn(opts),
    }
}

pub fn mlp() -> Result<Graph, GraphError> {
    Graph::new("mlp", 32, 32, 3)
        .flatten()?
        .dense(200, Activation::Relu)?
        .dense(150, Activation::Relu)?
        .dense(10, Activation::Linear)?
        .softmax_cross_entropy()
}

/// As the chapter sketches it: Keras's default (linear) activation on both
/// convolutions.
pub fn conv() -> Result<Graph, GraphError> {
    Graph::new("conv", 32, 32, 3)
        .conv2d(10, 4, 2, Padding::Same, Activation::Linear)?
        .conv2d(20, 3, 2, Padding::Same, Activation::Linear)?
        .flatten()?
        .dense(10, Activation::Linear)?
        .softmax_cross_entropy()
}

pub fn cnn(opts: &ModelOptions) -> Result<Graph, GraphError> {
    let leaky = Activation::LeakyRelu(opts.leaky_slope);
    let mut g = Graph::new("cnn", 32, 32, 3);
    for (filters, stride) in [(32, 1), (32, 2), (64, 1), (64, 2)] {
        g = g
            .conv2d(filters, 3, stride, Padding::Same, Activation::Linear)?
            .batch_norm()?
            .activation(leaky)?;
    }
    g.flatten()?
        .dense(128, Activation::Linear)?
        .batch_norm()?
        .activation(leaky)?
        .dropout(opts.dropout)?
        .dense(10, Activation::Linear)?
        .softmax_cross_entropy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_keras() {
        assert_eq!(mlp().unwrap().param_counts(), (646_260, 0));
        let (t, nt) = cnn(&ModelOptions::default()).unwrap().param_counts();
        assert_eq!((t + nt, nt), (592_554, 640));
        // conv: 4·4·3·10+10 + 3·3·10·20+20 + 8·8·20·10+10
        assert_eq!(conv().unwrap().param_counts(), (490 + 1820 + 12_810, 0));
    }
}
