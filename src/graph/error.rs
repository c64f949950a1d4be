use thiserror::Error;

#[derive(Debug, Error)]
pub enum GraphError {
    #[error("layer {layer:?}: expected {expected}, got input shape {got:?}")]
    Shape {
        layer: String,
        expected: String,
        got: Vec<usize>,
    },
    #[error("layer {layer:?}: {message}")]
    Invalid { layer: String, message: String },
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
}
