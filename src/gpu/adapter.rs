//! Adapter choice: honour wgpu's environment variables and an explicit
//! choice from code, prefer real GPUs, fall back to a software adapter.

use super::error::{GpuError, Result};

/// What the caller asks for; unset fields fall back to the environment
/// (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`), then to defaults.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// The backends to try (else `WGPU_BACKEND`, else primary and GL).
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter's name.
    pub name: Option<String>,
    /// Which adapter wgpu prefers (else `WGPU_POWER_PREF`, else high performance).
    pub power: Option<wgpu::PowerPreference>,
}

impl AdapterChoice {
    /// A choice of the adapter whose name contains `name`, or of none in
    /// particular; everything else from the environment.
    pub fn from_name(name: Option<&str>) -> Self {
        AdapterChoice {
            name: name.map(str::to_owned),
            ..Default::default()
        }
    }

    /// The backends to try: `backends`, else `WGPU_BACKEND`, else primary and GL.
    pub fn resolved_backends(&self) -> wgpu::Backends {
        self.backends
            .or_else(wgpu::Backends::from_env)
            .unwrap_or(wgpu::Backends::PRIMARY | wgpu::Backends::GL)
    }

    /// Whether this choice names an adapter (here or by `WGPU_ADAPTER_NAME`).
    pub fn names_adapter(&self) -> bool {
        self.resolved_name().is_some()
    }

    fn resolved_name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|n| !n.is_empty())
    }

    fn resolved_power(&self) -> wgpu::PowerPreference {
        self.power
            .or_else(wgpu::PowerPreference::from_env)
            .unwrap_or(wgpu::PowerPreference::HighPerformance)
    }
}

/// Parses a backend name as given on the command line.
pub fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" | "mtl" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        _ => Err(GpuError::UnknownBackend(name.to_owned())),
    }
}

/// A wgpu instance limited to `backends` (other settings from wgpu's
/// environment variables), with no window attached.
pub fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// One line naming an adapter, as used in listings and errors.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    )
}

/// Whether an adapter is a software one (lavapipe, llvmpipe, SwiftShader,
/// WARP): a GPU emulated on the CPU, on which the plain-Rust CPU backend is
/// faster than the WGSL kernels (about 4× on lavapipe).
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

fn rank(info: &wgpu::AdapterInfo, power: wgpu::PowerPreference) -> u32 {
    use wgpu::DeviceType::*;
    let by_type = match (info.device_type, power) {
        (DiscreteGpu, wgpu::PowerPreference::LowPower) => 1,
        (IntegratedGpu, wgpu::PowerPreference::LowPower) => 0,
        (DiscreteGpu, _) => 0,
        (IntegratedGpu, _) => 1,
        (VirtualGpu, _) => 2,
        (Other, _) => 3,
        (Cpu, _) => 4,
    };
    // Same device on several backends: the native API beats GL.
    let by_backend = match info.backend {
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    by_type * 2 + by_backend
}

/// Every adapter on the chosen backends, best first.
pub fn enumerate(choice: &AdapterChoice) -> Vec<wgpu::Adapter> {
    let backends = choice.resolved_backends();
    let inst = instance(backends);
    let mut adapters = pollster::block_on(inst.enumerate_adapters(backends));
    let power = choice.resolved_power();
    adapters.sort_by_key(|a| rank(&a.get_info(), power));
    adapters
}

/// The adapter gdl-gpu would use for this choice.
pub fn select(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let adapters = enumerate(choice);
    if adapters.is_empty() {
        let backends = match choice.backends.or_else(wgpu::Backends::from_env) {
            Some(b) => format!(" on backends {b:?}"),
            None => String::new(),
        };
        return Err(GpuError::NoAdapter { backends });
    }
    match choice.resolved_name() {
        None => Ok(adapters.into_iter().next().expect("non-empty")),
        Some(name) => {
            let wanted = name.to_lowercase();
            let available: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
            adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                .ok_or(GpuError::NoAdapterNamed { name, available })
        }
    }
}

/// The limits that bound gdl-gpu's kernels and buffers, by wgpu's names.
pub fn key_limits(l: &wgpu::Limits) -> [(&'static str, u64); 6] {
    [
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        ),
        ("max_buffer_size", l.max_buffer_size),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage.into(),
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x.into(),
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup.into(),
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size.into(),
        ),
    ]
}
