//! Column-block copies between row-major matrices (`shaders/concat.wgsl`):
//! Concatenate along NHWC's channel axis, forward and backward.

use crate::gpu::{grid_1d_or_none, Bind, Binding, Dispatch, Gpu, KernelSpec, Result};
use crate::shaders::CONCAT;

const WG: u32 = 256;
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::Storage, Binding::StorageRw];

/// `copy_columns`: one invocation per copied element.
pub static COPY_COLUMNS: KernelSpec = KernelSpec {
    shader: &CONCAT,
    entry: "copy_columns",
    bindings: BINDINGS,
};
/// `copy_columns_vec4`: one invocation per copied vec4 (width, strides and offsets multiples of 4).
pub static COPY_COLUMNS_VEC4: KernelSpec = KernelSpec {
    shader: &CONCAT,
    entry: "copy_columns_vec4",
    bindings: BINDINGS,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    width: u32,
    src_stride: u32,
    src_offset: u32,
    dst_stride: u32,
    dst_offset: u32,
    _pad: [u32; 2],
}

/// dst[r·dst_stride + dst_offset + j] = src[r·src_stride + src_offset + j]
/// for r < rows, j < width; the rest of dst is left as it is.
#[allow(clippy::too_many_arguments)] // two (buffer, stride, offset) triples
pub fn copy_columns<'b>(
    gpu: &Gpu,
    rows: usize,
    width: usize,
    src: impl Bind<'b>,
    src_stride: usize,
    src_offset: usize,
    dst: impl Bind<'b>,
    dst_stride: usize,
    dst_offset: usize,
) -> Result<Dispatch> {
    // Rows of the block must not overlap (a single row may span anything).
    assert!(
        rows <= 1 || (src_offset + width <= src_stride && dst_offset + width <= dst_stride),
        "copy_columns: {width} columns from offsets {src_offset}, {dst_offset} overrun \
         rows of strides {src_stride}, {dst_stride}"
    );
    let quads = [width, src_stride, src_offset, dst_stride, dst_offset]
        .iter()
        .all(|v| v % 4 == 0);
    let (spec, q) = if quads {
        (&COPY_COLUMNS_VEC4, 4)
    } else {
        (&COPY_COLUMNS, 1)
    };
    let n = rows * width / q;
    assert!(
        n <= u32::MAX as usize,
        "copy_columns: {n} work items overflow u32"
    );
    gpu.launch(
        spec,
        &[("WG", WG as f64)],
        &Params {
            n: n as u32,
            width: (width / q).max(1) as u32,
            src_stride: (src_stride / q) as u32,
            src_offset: (src_offset / q) as u32,
            dst_stride: (dst_stride / q) as u32,
            dst_offset: (dst_offset / q) as u32,
            _pad: [0; 2],
        },
        &[src.view(), dst.view()],
        grid_1d_or_none(n as u64, WG),
    )
}

/// Plain-Rust reference.
pub mod cpu {
    /// As the kernel, in place on `dst`.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_columns(
        rows: usize,
        width: usize,
        src: &[f32],
        src_stride: usize,
        src_offset: usize,
        dst: &mut [f32],
        dst_stride: usize,
        dst_offset: usize,
    ) {
        for r in 0..rows {
            let s = r * src_stride + src_offset;
            let d = r * dst_stride + dst_offset;
            dst[d..d + width].copy_from_slice(&src[s..s + width]);
        }
    }
}
