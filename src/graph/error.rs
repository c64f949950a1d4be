//! Errors of graph building, lowering and running.

use thiserror::Error;

/// Why a graph could not be built, lowered or run.
#[derive(Debug, Error)]
pub enum GraphError {
    /// A layer's arguments, inputs or shapes are not what it takes.
    #[error("layer {layer} ({class}): {message}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// Its Keras class.
        class: String,
        /// What is wrong.
        message: String,
    },
    /// A graph-level problem (names, order, the output layer, the batch size, tensor sizes).
    #[error("{layer:?}: {message}")]
    Invalid {
        /// What it concerns, by name: a layer, a tensor or the model.
        layer: String,
        /// What is wrong.
        message: String,
    },
    /// A GPU error while running the graph.
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
}
