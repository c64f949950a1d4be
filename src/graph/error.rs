use thiserror::Error;

#[derive(Debug, Error)]
pub enum GraphError {
    /// A layer's arguments, inputs or shapes are not what it takes.
    #[error("layer {layer} ({class}): {message}")]
    Layer {
        layer: String,
        class: String,
        message: String,
    },
    #[error("{layer:?}: {message}")]
    Invalid { layer: String, message: String },
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
}
