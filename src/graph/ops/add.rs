//! `Add`: the elementwise sum of two or more inputs of one shape (residual
//! connections). Backward passes the output gradient to every input
//! unchanged; the lowering sums what reaches a tensor from several places.

use serde_json::{Map, Value};

use super::{Args, Layer};
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};

/// The `Add` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Add;

impl Add {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(_a: &mut Args) -> Result<Self, GraphError> {
        Ok(Add)
    }
}

impl Layer for Add {
    fn class(&self) -> &'static str {
        "Add"
    }

    fn arity(&self) -> (usize, usize) {
        (2, usize::MAX)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        if inputs.iter().any(|s| *s != inputs[0]) {
            return Err("inputs of one shape".into());
        }
        Ok(inputs[0].to_vec())
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let per = cx.per_example(node);
        let n = cx.batch * per;
        let name = cx.name(node).to_owned();
        let y = cx.act(name, per);
        let (a, b) = (cx.input(node, 0), cx.input(node, 1));
        cx.emit(Inst::Add { n, a, b, c: y });
        for i in 2..cx.graph.nodes[node].inputs.len() {
            let src = cx.input(node, i);
            cx.emit(Inst::Accumulate { n, src, acc: y });
        }
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        for i in 0..cx.graph.nodes[node].inputs.len() {
            if cx.needs_grad(node, i) {
                cx.pass_grad(node, i, dy);
            }
        }
    }

    fn to_args(&self) -> Map<String, Value> {
        Map::new()
    }
}
