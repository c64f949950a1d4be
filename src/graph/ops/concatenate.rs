//! `Concatenate(axis=-1)`: inputs joined along their last axis (the
//! channels of NHWC images). Seen as matrices of rows = batch·pixels, each
//! input is a block of columns of the output: one copy per input forward,
//! and its columns copied back out of the gradient backward.

use serde_json::{Map, Value};

use super::{Args, Layer};
use crate::graph::error::GraphError;
use crate::graph::lower::Lowering;
use crate::graph::model::NodeId;
use crate::graph::program::{Inst, TensorId};

/// The `Concatenate` layer: see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Concatenate;

impl Concatenate {
    /// From Keras's arguments; unsupported ones are errors.
    pub fn from_args(a: &mut Args) -> Result<Self, GraphError> {
        a.default_only("axis", (-1).into(), "-1: the last (channel) axis")?;
        Ok(Concatenate)
    }
}

/// (rows, output width, each input's (width, column offset)).
fn blocks(cx: &Lowering, node: NodeId) -> (usize, usize, Vec<(usize, usize)>) {
    let shape = cx.shape(node);
    let width = *shape.last().expect("shapes are non-empty");
    let rows = cx.batch * cx.per_example(node) / width;
    let mut offset = 0;
    let parts = (0..cx.graph.nodes[node].inputs.len())
        .map(|i| {
            let w = *cx.input_shape(node, i).last().expect("non-empty");
            offset += w;
            (w, offset - w)
        })
        .collect();
    (rows, width, parts)
}

impl Layer for Concatenate {
    fn class(&self) -> &'static str {
        "Concatenate"
    }

    fn arity(&self) -> (usize, usize) {
        (2, usize::MAX)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let lead = &inputs[0][..inputs[0].len() - 1];
        if inputs
            .iter()
            .any(|s| s.len() != inputs[0].len() || &s[..s.len() - 1] != lead)
        {
            return Err("inputs that differ only in their last (channel) axis".into());
        }
        let mut shape = lead.to_vec();
        shape.push(inputs.iter().map(|s| s[s.len() - 1]).sum());
        Ok(shape)
    }

    fn forward(&self, cx: &mut Lowering, node: NodeId) -> TensorId {
        let (rows, width, parts) = blocks(cx, node);
        let name = cx.name(node).to_owned();
        let y = cx.act(name, cx.per_example(node));
        for (i, (w, off)) in parts.into_iter().enumerate() {
            let src = cx.input(node, i);
            cx.emit(Inst::CopyColumns {
                rows,
                width: w,
                src,
                src_stride: w,
                src_offset: 0,
                dst: y,
                dst_stride: width,
                dst_offset: off,
            });
        }
        y
    }

    fn backward(&self, cx: &mut Lowering, node: NodeId, dy: TensorId) {
        let (rows, width, parts) = blocks(cx, node);
        for (i, (w, off)) in parts.into_iter().enumerate() {
            if !cx.needs_grad(node, i) {
                continue;
            }
            let dx = cx.grad_temp(node, i);
            cx.emit(Inst::CopyColumns {
                rows,
                width: w,
                src: dy,
                src_stride: width,
                src_offset: off,
                dst: dx,
                dst_stride: w,
                dst_offset: 0,
            });
            cx.add_grad(node, i, dx);
        }
    }

    fn to_args(&self) -> Map<String, Value> {
        Map::new()
    }
}
