//! Typed errors of the GPU layer. wgpu's default handler panics on any
//! validation error; every path here turns such events into a `GpuError`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found{backends}. Install a GPU driver, or the software Vulkan driver \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)"
    )]
    NoAdapter { backends: String },

    #[error("no adapter matches {name:?}; available adapters: {}", available.join("; "))]
    NoAdapterNamed {
        name: String,
        available: Vec<String>,
    },

    #[error(
        "GDL_GPU_DISABLE names {0:?}, expected a comma-separated list of: subgroups, timestamps, timestamps-inside-passes"
    )]
    UnknownDisable(String),

    #[error("unknown backend {0:?} (expected one of: vulkan, metal, dx12, gl)")]
    UnknownBackend(String),

    #[error("could not open device on adapter {adapter:?}: {message}")]
    RequestDevice { adapter: String, message: String },

    #[error("GPU validation error in {what}: {message}")]
    Validation { what: String, message: String },

    #[error("GPU out of memory in {what}: {message}")]
    OutOfMemory { what: String, message: String },

    #[error("GPU device lost ({reason}): {message}")]
    DeviceLost { reason: String, message: String },

    #[error(
        "buffer {label:?} needs {size} bytes, more than this adapter allows ({limit} bytes, {which})"
    )]
    BufferTooLarge {
        label: String,
        size: u64,
        limit: u64,
        which: &'static str,
    },

    #[error("kernel {kernel} needs the {feature} feature, which this device does not have")]
    MissingFeature {
        kernel: String,
        feature: &'static str,
    },

    #[error("reading back buffer {label:?} failed: {message}")]
    Readback { label: String, message: String },

    #[error("waiting for the GPU failed: {0}")]
    Poll(String),

    #[error("invalid input to {what}: {message}")]
    InvalidInput { what: String, message: String },
}

pub type Result<T, E = GpuError> = std::result::Result<T, E>;
