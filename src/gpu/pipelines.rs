//! Compute pipelines, compiled once per (shader, entry point, override
//! constants) and cached, with explicit bind group layouts so that a
//! binding an entry point happens not to use never changes its layout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::{GpuError, Result};
use super::Gpu;
use crate::shaders::Shader;

/// The kind of each binding of group 0, in binding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `var<uniform>`
    Uniform,
    /// `var<storage, read>`
    Storage,
    /// `var<storage, read_write>`
    StorageRw,
}

/// One entry point of one shader and the shape of its bind group.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    /// The shader module.
    pub shader: &'static Shader,
    /// The entry point's name.
    pub entry: &'static str,
    /// Its bindings of group 0, in binding order.
    pub bindings: &'static [Binding],
}

/// A compiled compute pipeline and its bind group layout.
pub struct Pipeline {
    /// The pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// The layout of its bind group 0.
    pub layout: wgpu::BindGroupLayout,
    /// `shader::entry`, for labels and messages.
    pub label: String,
}

type Key = (&'static str, &'static str, Vec<(String, u64)>);

#[derive(Default)]
pub(super) struct PipelineCache {
    map: Mutex<HashMap<Key, Arc<Pipeline>>>,
}

impl Gpu {
    /// The pipeline for `spec` with these override constants, compiled on
    /// first use.
    pub fn pipeline(&self, spec: &KernelSpec, constants: &[(&str, f64)]) -> Result<Arc<Pipeline>> {
        let key: Key = (
            spec.shader.name,
            spec.entry,
            constants
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_bits()))
                .collect(),
        );
        if let Some(p) = self
            .pipelines
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        if spec.shader.needs_subgroups && !self.caps.subgroups {
            return Err(GpuError::MissingFeature {
                kernel: format!("{}::{}", spec.shader.name, spec.entry),
                feature: "subgroups",
            });
        }
        let label = format!("{}::{}", spec.shader.name, spec.entry);
        let p = self.scoped(&format!("compiling {label}"), || {
            // The path as label: wgpu's messages then say which lines past
            // the shader's own are which prelude's.
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&spec.shader.path()),
                    source: wgpu::ShaderSource::Wgsl(spec.shader.source()),
                });
            let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match b {
                            Binding::Uniform => wgpu::BufferBindingType::Uniform,
                            Binding::Storage => {
                                wgpu::BufferBindingType::Storage { read_only: true }
                            }
                            Binding::StorageRw => {
                                wgpu::BufferBindingType::Storage { read_only: false }
                            }
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&label),
                    entries: &entries,
                });
            let pl = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(&label),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(spec.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
            Pipeline {
                pipeline,
                layout,
                label: label.clone(),
            }
        })?;
        let p = Arc::new(p);
        self.pipelines
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, p.clone());
        Ok(p)
    }
}
