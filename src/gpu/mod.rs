//! The wgpu context: one `Gpu` value owns the device and queue, the limits
//! and features it got, the pipeline cache and the buffer pool. It is passed
//! down explicitly; there is no global state.

pub mod adapter;
pub mod buffers;
pub mod dispatch;
pub mod error;
pub mod pipelines;
pub mod timing;
pub mod view;

use std::sync::{Arc, Mutex};

pub use adapter::AdapterChoice;
pub use dispatch::{grid_1d, grid_1d_or_none, Dispatch};
pub use error::{GpuError, Result};
pub use pipelines::{Binding, KernelSpec};
pub use view::{Bind, View};

/// Optional features gdl-gpu uses when the adapter has them: only those a
/// kernel or the timer uses are requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// GPU timestamp queries (`Features::TIMESTAMP_QUERY`): kernel timings without host overhead.
    pub timestamps: bool,
    /// Timestamps between dispatches of one compute pass (only `gdl-gpu
    /// profile` writes them).
    pub timestamps_inside_passes: bool,
    /// Subgroup operations (`Features::SUBGROUP`): the subgroup GEMM.
    pub subgroups: bool,
}

/// The optional features gdl-gpu requests when present.
pub const WANTED_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    .union(wgpu::Features::SUBGROUP);

/// Options for opening a device beyond the adapter choice.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Which adapter to open.
    pub adapter: AdapterChoice,
    /// Features not to request even when present (to test fallbacks).
    /// `GDL_GPU_DISABLE=subgroups,timestamps` does the same.
    pub disable: Option<wgpu::Features>,
}

/// An open device: everything that runs kernels takes a `&Gpu`.
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter's name, backend and type.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (the adapter's own).
    pub limits: wgpu::Limits,
    /// The optional features it got.
    pub caps: Capabilities,
    pipelines: pipelines::PipelineCache,
    pool: buffers::BufferPool,
    /// Errors that escaped every error scope, and device loss: set by
    /// wgpu's callbacks, turned into `GpuError` at the next check.
    uncaptured: Arc<Mutex<Option<GpuError>>>,
    /// Readbacks so far (see [`Gpu::readbacks`]).
    readbacks: std::sync::atomic::AtomicU64,
}

/// The features a `GDL_GPU_DISABLE` list names ("subgroups,timestamps";
/// without timestamps the device gets none inside passes either,
/// "timestamps-inside-passes" withholds only those);
/// an unknown name is an error rather than a fallback silently not tested.
pub fn parse_disable(list: &str) -> Result<wgpu::Features> {
    let mut f = wgpu::Features::empty();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        f |= match name {
            "subgroups" => wgpu::Features::SUBGROUP,
            "timestamps" => wgpu::Features::TIMESTAMP_QUERY,
            "timestamps-inside-passes" => wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
            _ => return Err(GpuError::UnknownDisable(name.to_owned())),
        };
    }
    Ok(f)
}

fn disabled_from_env() -> Result<wgpu::Features> {
    match std::env::var("GDL_GPU_DISABLE") {
        Ok(v) => parse_disable(&v),
        Err(_) => Ok(wgpu::Features::empty()),
    }
}

impl Gpu {
    /// Opens the adapter chosen by the environment and defaults.
    pub fn new() -> Result<Self> {
        Self::with_options(&GpuOptions::default())
    }

    /// Opens the adapter `opts` choose, without the features it disables
    /// (default: those `GDL_GPU_DISABLE` names).
    pub fn with_options(opts: &GpuOptions) -> Result<Self> {
        let adapter = adapter::select(&opts.adapter)?;
        let disable = match opts.disable {
            Some(d) => d,
            None => disabled_from_env()?,
        };
        Self::from_adapter(adapter, disable)
    }

    /// Opens an adapter already chosen (by [`adapter::select`]), honouring
    /// `GDL_GPU_DISABLE` as [`Gpu::new`] does.
    pub fn open(adapter: wgpu::Adapter) -> Result<Self> {
        Self::from_adapter(adapter, disabled_from_env()?)
    }

    /// Opens a device on `adapter` with every optional feature it has but `disable`.
    pub fn from_adapter(adapter: wgpu::Adapter, disable: wgpu::Features) -> Result<Self> {
        let info = adapter.get_info();
        let mut features = adapter.features() & WANTED_FEATURES & !disable;
        if !features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            features.remove(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);
        }
        // The adapter's own limits, not wgpu's conservative defaults: the
        // storage binding size and buffer count decide how data is chunked.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gdl-gpu"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::RequestDevice {
            adapter: info.name.clone(),
            message: e.to_string(),
        })?;

        let uncaptured: Arc<Mutex<Option<GpuError>>> = Arc::new(Mutex::new(None));
        let slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let err = match e {
                wgpu::Error::OutOfMemory { source } => GpuError::OutOfMemory {
                    what: "an operation outside an error scope".into(),
                    message: source.to_string(),
                },
                other => GpuError::Validation {
                    what: "an operation outside an error scope".into(),
                    message: other.to_string(),
                },
            };
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            s.get_or_insert(err);
        }));
        let slot = uncaptured.clone();
        // Dropping the device reports a loss too (reason Destroyed), but then
        // nothing reads the slot again; a device destroyed while in use is lost.
        device.set_device_lost_callback(move |reason, message| {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            s.get_or_insert(GpuError::DeviceLost {
                reason: format!("{reason:?}"),
                message,
            });
        });

        let caps = Capabilities {
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            timestamps_inside_passes: features
                .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
        };
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            caps,
            pipelines: pipelines::PipelineCache::default(),
            pool: buffers::BufferPool::default(),
            uncaptured,
            readbacks: Default::default(),
        })
    }

    /// A short human name: `llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan]`.
    pub fn name(&self) -> String {
        format!("{} [{:?}]", self.info.name, self.info.backend)
    }

    /// Whether the adapter is a CPU implementation (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        adapter::is_software(&self.info)
    }

    /// How many readbacks (each a submit, a wait for the queue and a
    /// mapping) this device has done: what the training loop keeps rare.
    pub fn readbacks(&self) -> u64 {
        self.readbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reports (once) an error that escaped the error scopes or a lost device.
    pub fn check(&self) -> Result<()> {
        let mut s = self.uncaptured.lock().unwrap_or_else(|p| p.into_inner());
        match s.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let val_err = pollster::block_on(val.pop());
        let oom_err = pollster::block_on(oom.pop());
        if let Some(e) = val_err {
            return Err(GpuError::Validation {
                what: what.to_owned(),
                message: e.to_string(),
            });
        }
        if let Some(e) = oom_err {
            return Err(GpuError::OutOfMemory {
                what: what.to_owned(),
                message: e.to_string(),
            });
        }
        self.check()?;
        Ok(out)
    }

    /// A command encoder labelled `label`.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Submits one command buffer, turning validation errors into `GpuError`;
    /// the index is for [`Gpu::wait_for`].
    pub fn submit(
        &self,
        what: &str,
        encoder: wgpu::CommandEncoder,
    ) -> Result<wgpu::SubmissionIndex> {
        self.scoped(what, || self.queue.submit(Some(encoder.finish())))
    }

    /// Blocks until submission `index` has run. A lost device makes the
    /// index one that never ran: the poll's complaint then gives way to the
    /// `DeviceLost` that waiting on the queue as a whole reports.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let polled = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        });
        match polled {
            Ok(_) => self.check(),
            Err(e) => {
                self.wait()?;
                Err(GpuError::Poll(e.to_string()))
            }
        }
    }

    /// Blocks until the queue is idle.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Poll(e.to_string()))?;
        self.check()
    }

    /// Records the dispatches into one compute pass, submits and waits.
    pub fn run(&self, what: &str, dispatches: &[&Dispatch]) -> Result<()> {
        let mut enc = self.encoder(what);
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(what),
                timestamp_writes: None,
            });
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.submit(what, enc)?;
        self.wait()
    }
}
