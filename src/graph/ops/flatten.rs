//! `Flatten`: [h, w, c] → [h·w·c]. NHWC is already row-major in that
//! order, so it is a view: no instruction either way.

use serde_json::{Map, Value};

use super::{Args, Layer};
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::TensorId;

/// The `Flatten` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Flatten;

impl Flatten {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        a.default_only("data_format", "channels_last".into(), "\"channels_last\"")?;
        Ok(Flatten)
    }
}

impl Layer for Flatten {
    fn class(&self) -> &'static str {
        "Flatten"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(vec![inputs[0].iter().product()])
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        cx.input(node, 0)
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        if cx.needs_grad(node, 0) {
            cx.pass_grad(node, 0, dy);
        }
    }

    fn to_args(&self) -> Map<String, Value> {
        Map::new()
    }
}
