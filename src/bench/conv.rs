//! im2col and col2im benchmarks.

use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::conv::{self, Conv2dGeom, Padding};
use crate::kernels::window::Window2d;

/// im2col and col2im at the CNN's four convolutions (batch 32, 3×3, "same").
/// Bytes: every cols element read (padding excepted, counted anyway) and
/// written once by im2col; read once by col2im, which writes dx once.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for (hw, c, stride) in [(32, 3, 1), (32, 32, 2), (16, 32, 1), (16, 64, 2)] {
        let g = Conv2dGeom {
            batch: 32,
            in_c: c,
            out_c: c,
            window: Window2d {
                in_h: hw,
                in_w: hw,
                kh: 3,
                kw: 3,
                stride_h: stride,
                stride_w: stride,
                padding: Padding::Same,
            },
        };
        let n = g.col_rows() * g.col_cols();
        let x = gpu.storage("bench x", (g.input_len() * 4) as u64)?;
        let cols = gpu.storage("bench cols", (n * 4) as u64)?;
        let shape = format!("32x{hw}x{hw}x{c} k3 s{stride}");
        let d = conv::im2col(gpu, &g, &x, &cols)?;
        out.push(measure(
            gpu,
            "im2col",
            &shape,
            &[&d],
            Work::Bytes(8.0 * n as f64),
            quick,
        )?);
        let d = conv::col2im(gpu, &g, &cols, &x)?;
        out.push(measure(
            gpu,
            "col2im",
            &shape,
            &[&d],
            Work::Bytes(4.0 * (n + g.input_len()) as f64),
            quick,
        )?);
    }
    Ok(out)
}
