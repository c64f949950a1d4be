//! `GlobalAveragePooling2D`: `[h, w, c]` → `[c]`, the mean of each channel;
//! average pooling with one window the size of the image.

use serde_json::{Map, Value};

use super::pool::{pool_backward, pool_forward, PoolKind};
use super::{Args, Layer};
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::TensorId;
use crate::kernels::pool::Pool2dGeom;

/// The `GlobalAveragePooling2D` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalAveragePooling;

impl GlobalAveragePooling {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        a.default_only("data_format", "channels_last".into(), "\"channels_last\"")?;
        a.default_only("keepdims", false.into(), "false")?;
        Ok(GlobalAveragePooling)
    }
}

fn geom(batch: usize, input: &[usize]) -> Pool2dGeom {
    Pool2dGeom::global(batch, input[0], input[1], input[2])
}

impl Layer for GlobalAveragePooling {
    fn class(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        match inputs[0] {
            [_, _, c] => Ok(vec![*c]),
            _ => Err("an image input [height, width, channels]".into()),
        }
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let g = geom(cx.batch, cx.input_shape(node, 0));
        pool_forward(cx, node, PoolKind::Average, g)
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let g = geom(cx.batch, cx.input_shape(node, 0));
        pool_backward(cx, node, PoolKind::Average, g, dy);
    }

    fn to_args(&self) -> Map<String, Value> {
        Map::new()
    }
}
