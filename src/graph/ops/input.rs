//! `InputLayer(shape)`: the images, gathered from the dataset on the GPU
//! and scaled to [0, 1], NHWC.

use serde_json::{Map, Value};

use super::{Args, Layer};
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};

/// The `InputLayer`: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// [height, width, channels]
    pub shape: [usize; 3],
}

impl Input {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        let s = a.int_list("shape")?;
        match s[..] {
            [h, w, c] if h > 0 && w > 0 && c > 0 => Ok(Input {
                shape: [h as usize, w as usize, c as usize],
            }),
            _ => Err(a.error(format!(
                "argument \"shape\": expected an image shape [height, width, channels], got {s:?}"
            ))),
        }
    }
}

impl Layer for Input {
    fn class(&self) -> &'static str {
        "InputLayer"
    }

    fn arity(&self) -> (usize, usize) {
        (0, 0)
    }

    fn output_shape(&self, _inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(self.shape.to_vec())
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let name = cx.name(node).to_owned();
        let x = cx.act(name, cx.per_example(node));
        let labels = cx.labels();
        cx.emit(Inst::Gather { x, labels });
        x
    }

    fn backward(&self, _cx: &mut Lowering, _node: NodeId, _dy: TensorId) {}

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("shape".into(), self.shape.to_vec().into());
        m
    }
}
