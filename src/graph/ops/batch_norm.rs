//! `BatchNormalization(momentum, epsilon)` over the last axis (channels of
//! an image, or features): batch statistics in training, with the moving
//! statistics updated as Keras does; the moving statistics in inference. An
//! activation and a Dropout after it may run in its kernel (`graph::fuse`):
//! then `dy` in backward is the gradient of their output.

use serde_json::{Map, Value};

use super::{Args, Init, Layer, ParamSpec};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{BnTensors, DType, Inst, TensorId};
use crate::kernels::batchnorm::BnShape;

/// The `BatchNormalization` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Moving-average momentum (Keras: 0.99).
    pub momentum: f32,
    /// Added to the variance before the square root (Keras: 1e-3).
    pub epsilon: f32,
}

impl Default for BatchNorm {
    /// Keras's defaults.
    fn default() -> Self {
        BatchNorm {
            momentum: 0.99,
            epsilon: 1e-3,
        }
    }
}

impl BatchNorm {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        let momentum = a.float("momentum", 0.99)?;
        let epsilon = a.float("epsilon", 1e-3)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(a.error(format!(
                "argument \"momentum\": expected a number in [0, 1], got {momentum}"
            )));
        }
        if epsilon <= 0.0 {
            return Err(a.error(format!(
                "argument \"epsilon\": expected a number > 0, got {epsilon}"
            )));
        }
        a.default_only("axis", (-1).into(), "-1: the channel axis")?;
        a.default_only("center", true.into(), "true")?;
        a.default_only("scale", true.into(), "true")?;
        a.default_only("synchronized", false.into(), "false")?;
        a.default_only("renorm", false.into(), "false")?;
        // Only read with renorm, which is off.
        a.default_only("renorm_clipping", Value::Null, "null")?;
        a.float("renorm_momentum", 0.99)?;
        a.initializer("beta_initializer", "Zeros")?;
        a.initializer("gamma_initializer", "Ones")?;
        a.initializer("moving_mean_initializer", "Zeros")?;
        a.initializer("moving_variance_initializer", "Ones")?;
        a.none_only(&[
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ])?;
        Ok(BatchNorm { momentum, epsilon })
    }
}

fn shape(cx: &Lowering, node: NodeId) -> BnShape {
    let channels = *cx.shape(node).last().expect("shapes are non-empty");
    BnShape {
        rows: cx.batch * cx.per_example(node) / channels,
        channels,
    }
}

impl Layer for BatchNorm {
    fn class(&self) -> &'static str {
        "BatchNormalization"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(inputs[0].to_vec())
    }

    fn params(&self, inputs: &[&[usize]]) -> Vec<ParamSpec> {
        let c = *inputs[0].last().expect("shapes are non-empty");
        let p = |name, init, trainable| ParamSpec {
            name,
            shape: vec![c],
            init,
            trainable,
        };
        vec![
            p("gamma", Init::Ones, true),
            p("beta", Init::Zeros, true),
            p("moving_mean", Init::Zeros, false),
            p("moving_variance", Init::Ones, false),
        ]
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let x = cx.input(node, 0);
        let shape = shape(cx, node);
        let name = cx.name(node).to_owned();
        let y = cx.act(name.clone(), cx.per_example(node));
        let c = shape.channels;
        let bn = BnTensors {
            gamma: cx.param(node, "gamma"),
            beta: cx.param(node, "beta"),
            moving_mean: cx.param(node, "moving_mean"),
            moving_var: cx.param(node, "moving_variance"),
            save_mean: cx.temp(format!("{name}/mean"), c, DType::F32),
            save_inv_std: cx.temp(format!("{name}/inv_std"), c, DType::F32),
        };
        cx.save(node, vec![bn.save_mean, bn.save_inv_std]);
        let post = cx.bn_post(node);
        cx.emit(if cx.train() {
            Inst::BnTrain {
                shape,
                x,
                y,
                post,
                bn,
                momentum: self.momentum,
                eps: self.epsilon,
            }
        } else {
            Inst::BnInfer {
                shape,
                x,
                y,
                act: post.act,
                bn,
                eps: self.epsilon,
            }
        });
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let shape = shape(cx, node);
        let bn = BnTensors {
            gamma: cx.param(node, "gamma"),
            beta: cx.param(node, "beta"),
            moving_mean: cx.param(node, "moving_mean"),
            moving_var: cx.param(node, "moving_variance"),
            save_mean: cx.saved(node)[0],
            save_inv_std: cx.saved(node)[1],
        };
        // The kernel writes dx with dgamma and dbeta; with no input gradient
        // wanted it still goes to a temporary.
        let dx = cx.grad_temp(node, 0);
        let dgamma = cx.param_grad(node, "gamma");
        let dbeta = cx.param_grad(node, "beta");
        cx.emit(Inst::BnBackward {
            shape,
            x: cx.input(node, 0),
            dy,
            post: cx.bn_post(node),
            bn,
            dx,
            dgamma,
            dbeta,
        });
        if cx.needs_grad(node, 0) {
            cx.add_grad(node, 0, dx);
        }
    }

    fn to_args(&self) -> Map<String, Value> {
        ArgsOut::default()
            .float("momentum", self.momentum)
            .float("epsilon", self.epsilon)
            .0
    }
}
