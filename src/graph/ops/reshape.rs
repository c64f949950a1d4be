//! `Reshape(target_shape)`: a view with the same elements in the same
//! (row-major) order; one dimension may be −1, inferred.

use serde_json::{Map, Value};

use super::{Args, Layer};
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::TensorId;

/// The `Reshape` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Reshape {
    /// Without the batch dimension; at most one −1.
    pub target_shape: Vec<i64>,
}

impl Reshape {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        let target_shape = a.int_list("target_shape")?;
        if target_shape.is_empty() || target_shape.iter().filter(|&&d| d == -1).count() > 1 {
            return Err(a.error(format!(
                "argument \"target_shape\": expected a non-empty list with at most one −1, got {target_shape:?}"
            )));
        }
        Ok(Reshape { target_shape })
    }
}

impl Layer for Reshape {
    fn class(&self) -> &'static str {
        "Reshape"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let total: usize = inputs[0].iter().product();
        let known = self
            .target_shape
            .iter()
            .filter(|&&d| d > 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
            .unwrap_or(0);
        let fits = || {
            format!(
                "an input whose {total} elements fit target_shape {:?}",
                self.target_shape
            )
        };
        if known == 0 || total % known != 0 {
            return Err(fits());
        }
        let shape: Vec<usize> = self
            .target_shape
            .iter()
            .map(|&d| if d < 0 { total / known } else { d as usize })
            .collect();
        if shape.iter().product::<usize>() != total {
            return Err(fits());
        }
        Ok(shape)
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
        let mut m = Map::new();
        m.insert("target_shape".into(), self.target_shape.clone().into());
        m
    }
}
