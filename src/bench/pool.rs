//! Pooling benchmarks.

use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::pool::{self, Pool2dGeom};
use crate::kernels::window::{Padding, Window2d};

/// Max and average pooling, forward and backward, at the CNN's first pool
/// (batch 32, 32×32×32, 2×2 stride 2) and global average pooling of its last
/// map (8×8×64). Bytes: x (or dy) read once and the output written once;
/// max backward reads x and dy and writes dx.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let pool2 = Pool2dGeom {
        batch: 32,
        channels: 32,
        window: Window2d {
            in_h: 32,
            in_w: 32,
            kh: 2,
            kw: 2,
            stride_h: 2,
            stride_w: 2,
            padding: Padding::Valid,
        },
    };
    for (g, shape, max) in [
        (pool2, "32x32x32x32 k2 s2", true),
        (Pool2dGeom::global(32, 8, 8, 64), "32x8x8x64 global", false),
    ] {
        let (n_in, n_out) = (g.input_len(), g.output_len());
        let x = gpu.storage("bench x", (n_in * 4) as u64)?;
        let dx = gpu.storage("bench dx", (n_in * 4) as u64)?;
        let y = gpu.storage("bench y", (n_out * 4) as u64)?;
        let fwd_bytes = Work::Bytes(4.0 * (n_in + n_out) as f64);
        if max {
            let f = pool::max_forward(gpu, &g, &x, &y)?;
            out.push(measure(
                gpu,
                "max_pool_forward",
                shape,
                &[&f],
                fwd_bytes,
                quick,
            )?);
            let b = pool::max_backward(gpu, &g, &x, &y, &dx)?;
            let bytes = Work::Bytes(4.0 * (2 * n_in + n_out) as f64);
            out.push(measure(
                gpu,
                "max_pool_backward",
                shape,
                &[&b],
                bytes,
                quick,
            )?);
        }
        let f = pool::avg_forward(gpu, &g, &x, &y)?;
        out.push(measure(
            gpu,
            "avg_pool_forward",
            shape,
            &[&f],
            fwd_bytes,
            quick,
        )?);
        let b = pool::avg_backward(gpu, &g, &y, &dx)?;
        out.push(measure(
            gpu,
            "avg_pool_backward",
            shape,
            &[&b],
            fwd_bytes,
            quick,
        )?);
    }
    Ok(out)
}
