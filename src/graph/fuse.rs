//! Layers applied inside another layer's kernel. An activation, and then a
//! Dropout, right after a BatchNormalization run in BatchNorm's own
//! elementwise passes (`kernels::batchnorm::BnPost`), forward and backward:
//! their tensors are never stored and their kernels never launched. A layer
//! is fused only where the tensor it reads has no other reader, so no one
//! needs the value it would have read (the model's output, the last node,
//! has no reader: it is never fused away).

use super::model::{Graph, NodeId};
use super::ops::{dropout, Op};
use crate::kernels::batchnorm::BnPost;
use crate::kernels::dropout::DropoutMask;

/// A node's part in a fusion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fused {
    /// Lowered on its own.
    Alone,
    /// A BatchNormalization that also applies the layers after it.
    Head(BnPost),
    /// Applied by this head: its output is the head's, and its output
    /// gradient is the head's.
    Absorbed(NodeId),
}

/// Each node's part, indexed by `NodeId`.
pub fn plan(graph: &Graph) -> Vec<Fused> {
    let n = graph.nodes.len();
    let mut readers = vec![Vec::new(); n];
    for (id, node) in graph.nodes.iter().enumerate() {
        for &i in &node.inputs {
            readers[i].push(id);
        }
    }
    let sole_reader = |id: NodeId| match readers[id][..] {
        [r] => Some(r),
        _ => None,
    };
    let mut fused = vec![Fused::Alone; n];
    for (id, node) in graph.nodes.iter().enumerate() {
        if !matches!(node.op, Op::BatchNorm(_)) {
            continue;
        }
        let mut post = BnPost::default();
        let mut tail = id;
        if let Some(r) = sole_reader(tail) {
            if let Op::Activation(a) = &graph.nodes[r].op {
                if let Some(kind) = a.activation.kernel() {
                    post.act = Some(kind);
                    fused[r] = Fused::Absorbed(id);
                    tail = r;
                }
            }
        }
        if let Some(r) = sole_reader(tail) {
            if let Op::Dropout(d) = &graph.nodes[r].op {
                // Rate 0 is the identity already: nothing to fuse.
                if d.rate > 0.0 {
                    post.dropout = Some(DropoutMask {
                        rate: d.rate,
                        stream: dropout::stream(graph, r),
                    });
                    fused[r] = Fused::Absorbed(id);
                }
            }
        }
        if !post.is_none() {
            fused[id] = Fused::Head(post);
        }
    }
    fused
}
