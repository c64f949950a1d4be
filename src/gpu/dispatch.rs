//! A `Dispatch` is everything one kernel launch needs, built once (pipeline,
//! bind group with its uniforms, workgroup counts) and recorded into any
//! number of compute passes. The executor plans a training step as a list of
//! these, so recording a step allocates nothing.

use std::sync::Arc;

use bytemuck::Pod;

use super::error::Result;
use super::pipelines::{KernelSpec, Pipeline};
use super::view::View;
use super::Gpu;

/// A kernel launch ready to record: pipeline, bound buffers and grid.
pub struct Dispatch {
    /// The compiled kernel.
    pub pipeline: Arc<Pipeline>,
    /// Its bound buffers (group 0).
    pub bind_group: wgpu::BindGroup,
    /// Workgroup counts (x, y, z); any 0 means nothing to run.
    pub workgroups: [u32; 3],
}

/// Workgroup counts covering `n` items with `per_group` items per group,
/// folded into y when x would pass the 65,535 limit of one dimension.
/// Kernels recover the flat index with `flat_index` (`shaders/prelude/grid.wgsl`).
pub fn grid_1d(n: u64, per_group: u32) -> [u32; 3] {
    let groups = n.div_ceil(per_group as u64).max(1);
    if groups <= 65_535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65_535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

/// As [`grid_1d`], but no workgroups at all for `n = 0`, for kernels whose
/// constants are degenerate then (an empty convolution or pooling output):
/// [`Dispatch::record`] skips such a dispatch.
pub fn grid_1d_or_none(n: u64, per_group: u32) -> [u32; 3] {
    if n == 0 {
        [0, 1, 1]
    } else {
        grid_1d(n, per_group)
    }
}

impl Dispatch {
    /// Records the dispatch into `pass` (nothing for an empty grid).
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        let [x, y, z] = self.workgroups;
        if x == 0 || y == 0 || z == 0 {
            return;
        }
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}

impl Gpu {
    /// Builds a dispatch of a kernel whose binding 0 is its own parameter
    /// struct: `params` goes into a new uniform buffer (the bind group keeps
    /// it alive) and `buffers` follow from binding 1.
    pub fn launch(
        &self,
        spec: &KernelSpec,
        constants: &[(&str, f64)],
        params: &impl Pod,
        buffers: &[View<'_>],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let uniform = self.uniform(spec.entry, params)?;
        let mut resources = Vec::with_capacity(1 + buffers.len());
        resources.push(View::from(&uniform));
        resources.extend_from_slice(buffers);
        self.dispatch(spec, constants, &resources, workgroups)
    }

    /// Builds a dispatch of `spec`. `resources` are bound in binding order and
    /// must match `spec.bindings`.
    pub fn dispatch(
        &self,
        spec: &KernelSpec,
        constants: &[(&str, f64)],
        resources: &[View<'_>],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        assert_eq!(
            resources.len(),
            spec.bindings.len(),
            "{}::{}: binding count",
            spec.shader.name,
            spec.entry
        );
        let pipeline = self.pipeline(spec, constants)?;
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: r.binding(),
            })
            .collect();
        let bind_group = self.scoped(&format!("binding {}", pipeline.label), || {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&pipeline.label),
                layout: &pipeline.layout,
                entries: &entries,
            })
        })?;
        Ok(Dispatch {
            pipeline,
            bind_group,
            workgroups,
        })
    }
}
