//! Where each parameter lives: trainable tensors packed into one buffer (so
//! one Adam dispatch updates them all; gradients, m and v share the layout),
//! non-trainable state (BatchNorm moving statistics) packed into another.
//! Every tensor starts at a multiple of 64 elements (256 bytes), the storage
//! offset alignment WebGPU guarantees to be enough.

use super::model::{Graph, NodeId};
use super::ops::{Init, ParamSpec};
use crate::util::Rng;

/// Alignment of every tensor in the packed buffers, in elements (256 bytes).
pub const ALIGN: usize = 64;

/// One parameter or state tensor and where it is packed.
#[derive(Clone, Debug)]
pub struct ParamEntry {
    /// The node it belongs to.
    pub node: NodeId,
    /// "dense/kernel", "batch_normalization_1/moving_mean", …
    pub name: String,
    /// Its shape, initialisation and trainability.
    pub spec: ParamSpec,
    /// Element offset in the trainable buffer, or in the state buffer.
    pub offset: usize,
}

/// The packing of a graph's parameters: trainable and state buffers.
#[derive(Clone, Debug)]
pub struct ParamLayout {
    /// Every tensor, in node then Keras order.
    pub entries: Vec<ParamEntry>,
    /// Elements in the trainable buffer, padding included.
    pub trainable_len: usize,
    /// Elements in the state buffer, padding included.
    pub state_len: usize,
}

impl ParamLayout {
    /// Packs `graph`'s weights in node order, each at a multiple of [`ALIGN`].
    pub fn new(graph: &Graph) -> Self {
        let mut entries = Vec::new();
        let (mut t, mut s) = (0usize, 0usize);
        for (id, node) in graph.nodes.iter().enumerate() {
            for spec in &node.params {
                let cursor = if spec.trainable { &mut t } else { &mut s };
                let offset = *cursor;
                *cursor += spec.len().div_ceil(ALIGN) * ALIGN;
                entries.push(ParamEntry {
                    node: id,
                    name: format!("{}/{}", node.name, spec.name),
                    spec: spec.clone(),
                    offset,
                });
            }
        }
        ParamLayout {
            entries,
            trainable_len: t.max(ALIGN),
            state_len: s.max(ALIGN),
        }
    }

    /// The entry of parameter `name` ("kernel") of `node`; panics if absent.
    pub fn find(&self, node: NodeId, name: &str) -> &ParamEntry {
        self.entries
            .iter()
            .find(|e| e.node == node && e.spec.name == name)
            .unwrap_or_else(|| panic!("node {node} has no parameter {name}"))
    }

    /// Initial values (Keras defaults), drawn in layer order from `seed`:
    /// (trainable, state). Padding stays zero.
    pub fn initial_values(&self, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::new(seed);
        let mut t = vec![0.0f32; self.trainable_len];
        let mut s = vec![0.0f32; self.state_len];
        for e in &self.entries {
            let dst = if e.spec.trainable { &mut t } else { &mut s };
            let dst = &mut dst[e.offset..e.offset + e.spec.len()];
            match e.spec.init {
                Init::Zeros => dst.fill(0.0),
                Init::Ones => dst.fill(1.0),
                Init::GlorotUniform { fan_in, fan_out } => {
                    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                    for v in dst {
                        *v = rng.uniform(-limit, limit);
                    }
                }
            }
        }
        (t, s)
    }
}
