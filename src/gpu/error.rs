//! Typed errors of the GPU layer. wgpu's default handler panics on any
//! validation error; every path here turns such events into a `GpuError`.

use thiserror::Error;

/// Everything the GPU layer can fail with. Each message says what to do or
/// which object failed.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found{backends}. Install a GPU driver, or the software Vulkan driver \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)"
    )]
    /// No adapter at all (a driver is missing).
    NoAdapter {
        /// The backends searched, as text for the message (may be empty).
        backends: String,
    },

    /// `--adapter NAME` matched none of the adapters.
    #[error("no adapter matches {name:?}; available adapters: {}", available.join("; "))]
    NoAdapterNamed {
        /// The substring asked for.
        name: String,
        /// The names of the adapters present.
        available: Vec<String>,
    },

    /// `GDL_GPU_DISABLE` names a feature gdl-gpu does not use.
    #[error(
        "GDL_GPU_DISABLE names {0:?}, expected a comma-separated list of: subgroups, timestamps, timestamps-inside-passes"
    )]
    UnknownDisable(String),

    /// A backend name (from the environment) that wgpu does not know.
    #[error("unknown backend {0:?} (expected one of: vulkan, metal, dx12, gl)")]
    UnknownBackend(String),

    #[error("could not open device on adapter {adapter:?}: {message}")]
    /// The adapter refused to open a device.
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's error.
        message: String,
    },

    #[error("GPU validation error in {what}: {message}")]
    /// wgpu reported a validation error (a bug in gdl-gpu or the driver).
    Validation {
        /// The operation that failed: a label or kernel name.
        what: String,
        /// wgpu's error.
        message: String,
    },

    #[error("GPU out of memory in {what}: {message}")]
    /// The device ran out of memory.
    OutOfMemory {
        /// The operation that failed: a label or kernel name.
        what: String,
        /// wgpu's error.
        message: String,
    },

    #[error("GPU device lost ({reason}): {message}")]
    /// The device was lost (driver reset, GPU removed, …); nothing on it is usable.
    DeviceLost {
        /// wgpu's reason code, as text.
        reason: String,
        /// wgpu's message.
        message: String,
    },

    /// A buffer larger than the adapter's buffer or binding limit.
    #[error(
        "buffer {label:?} needs {size} bytes, more than this adapter allows ({limit} bytes, {which})"
    )]
    BufferTooLarge {
        /// The buffer's label.
        label: String,
        /// Bytes asked for.
        size: u64,
        /// The limit in bytes.
        limit: u64,
        /// Which limit (its wgpu name).
        which: &'static str,
    },

    /// A kernel needs a feature the device was opened without.
    #[error("kernel {kernel} needs the {feature} feature, which this device does not have")]
    MissingFeature {
        /// The kernel's name.
        kernel: String,
        /// The missing feature.
        feature: &'static str,
    },

    #[error("reading back buffer {label:?} failed: {message}")]
    /// Mapping a buffer for reading failed.
    Readback {
        /// The buffer's label.
        label: String,
        /// wgpu's error.
        message: String,
    },

    /// Polling the device for completion failed.
    #[error("waiting for the GPU failed: {0}")]
    Poll(String),

    /// A kernel's loop would run past what a software adapter lets one
    /// shader invocation do.
    #[error(
        "{kernel} would loop {iterations} times in one invocation, and {adapter} ends every \
         invocation's loops after 65,535 iterations (Mesa's loop limiter), which would leave \
         its sums short: {hint}"
    )]
    LoopLimit {
        /// The kernel and its shape.
        kernel: String,
        /// The loop iterations it would need.
        iterations: usize,
        /// The adapter's name.
        adapter: String,
        /// What would make it fit.
        hint: &'static str,
    },

    #[error("invalid input to {what}: {message}")]
    /// Arguments the caller got wrong (lengths, shapes), reported as an error
    /// rather than a panic.
    InvalidInput {
        /// The function or object given them.
        what: String,
        /// What was wrong.
        message: String,
    },
}

/// `Result` with [`GpuError`] as the default error.
pub type Result<T, E = GpuError> = std::result::Result<T, E>;
