//! `Dropout(rate)`: inverted dropout in training, the identity in
//! inference. Each Dropout layer draws its own random stream (its index
//! among the model's Dropout layers), and the mask is recomputed in
//! backward, never stored.

use serde_json::{Map, Value};

use super::{Args, Layer, Op};
use crate::graph::args::ArgsOut;
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::{Graph, NodeId};
use crate::graph::program::{Inst, TensorId};

/// The `Dropout` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    /// Fraction of elements zeroed in training, in [0, 1).
    pub rate: f32,
}

impl Dropout {
    /// From Keras's arguments; unsupported ones are errors. (`rate` is required).
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        let rate = a.float("rate", f32::NAN)?;
        if rate.is_nan() {
            return Err(a.error("argument \"rate\" is required"));
        }
        if !(0.0..1.0).contains(&rate) {
            return Err(a.error(format!(
                "argument \"rate\": expected a number in [0, 1), got {rate}"
            )));
        }
        a.default_only("noise_shape", Value::Null, "null")?;
        // The seed comes from the run (--seed), not the layer.
        a.default_only("seed", Value::Null, "null (the run's --seed is used)")?;
        Ok(Dropout { rate })
    }
}

/// The layer's random stream: how many Dropout layers come before it.
pub(crate) fn stream(graph: &Graph, node: NodeId) -> u32 {
    graph.nodes[..node]
        .iter()
        .filter(|n| matches!(n.op, Op::Dropout(_)))
        .count() as u32
}

impl Layer for Dropout {
    fn class(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(inputs[0].to_vec())
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let x = cx.input(node, 0);
        if !cx.train() || self.rate == 0.0 {
            return x;
        }
        let per = cx.per_example(node);
        let name = cx.name(node).to_owned();
        let y = cx.act(name, per);
        cx.emit(Inst::Dropout {
            n: cx.batch * per,
            rate: self.rate,
            stream: stream(cx.graph, node),
            x,
            y,
        });
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        if !cx.needs_grad(node, 0) {
            return;
        }
        if self.rate == 0.0 {
            return cx.pass_grad(node, 0, dy);
        }
        let dx = cx.grad_temp(node, 0);
        cx.emit(Inst::DropoutBackward {
            n: cx.batch * cx.per_example(node),
            rate: self.rate,
            stream: stream(cx.graph, node),
            dy,
            dx,
        });
        cx.add_grad(node, 0, dx);
    }

    fn to_args(&self) -> Map<String, Value> {
        ArgsOut::default().float("rate", self.rate).0
    }
}
