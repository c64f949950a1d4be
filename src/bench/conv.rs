//! Convolution benchmarks: im2col and col2im, and the implicit-GEMM
//! kernels that replace them where the subgroup GEMM runs.

use super::{measure, Measurement, Work};
use crate::gpu::View;
use crate::gpu::{Gpu, Result};
use crate::kernels::conv::{self, Conv2dGeom, ConvMethod, ConvPass, Padding};
use crate::kernels::gemm::{self, Epilogue};
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
    out.extend(implicit(gpu, quick)?);
    Ok(out)
}

/// The implicit-GEMM kernels at the CNN's convolutions they take (batch 32,
/// 3×3, "same", their real channel counts): forward with bias and
/// LeakyReLU, weight gradient with the bias gradient in the same dispatch,
/// and (stride 1) the input gradient. GFLOP/s of the convolution's GEMM.
fn implicit(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for (hw, c, oc, stride) in [(32, 32, 32, 2), (16, 32, 64, 1), (16, 64, 64, 2)] {
        let g = Conv2dGeom {
            batch: 32,
            in_c: c,
            out_c: oc,
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
        if !ConvMethod::Implicit.available(gpu, &g, ConvPass::Forward) {
            continue;
        }
        let flops = Work::Flops(2.0 * (g.col_rows() * g.out_c * g.col_cols()) as f64);
        let x = gpu.storage("bench x", (g.input_len() * 4) as u64)?;
        let y = gpu.storage("bench y", (g.output_len() * 4) as u64)?;
        // dW then db at the next 256-byte boundary, as the parameter layout
        // places a kernel and its bias.
        let db_at = (g.weight_len() * 4).next_multiple_of(256) as u64;
        let w = gpu.storage("bench w", db_at + (g.out_c * 4) as u64)?;
        let (wv, dbv) = (
            View::new(&w, 0, (g.weight_len() * 4) as u64),
            View::new(&w, db_at, (g.out_c * 4) as u64),
        );
        let bias = gpu.storage("bench bias", (g.out_c * 4) as u64)?;
        let shape = format!("32x{hw}x{hw}x{c} to {oc} k3 s{stride}");
        let d = gemm::conv_forward_implicit(
            gpu,
            &g,
            &x,
            wv,
            Some((&bias).into()),
            &y,
            Epilogue::LeakyRelu(0.2),
        )?;
        let refs: Vec<_> = d.iter().collect();
        out.push(measure(
            gpu,
            "conv forward implicit",
            &shape,
            &refs,
            flops,
            quick,
        )?);
        let d = gemm::conv_weight_grad_implicit(gpu, &g, &x, &y, wv, Some(dbv))?;
        let refs: Vec<_> = d.iter().collect();
        out.push(measure(
            gpu,
            "conv weight grad implicit +db",
            &shape,
            &refs,
            flops,
            quick,
        )?);
        if ConvMethod::builtin(gpu, &g, ConvPass::InputGrad) == ConvMethod::Implicit {
            let d = gemm::conv_input_grad_implicit(gpu, &g, &y, wv, &x)?;
            let refs: Vec<_> = d.iter().collect();
            out.push(measure(
                gpu,
                "conv input grad implicit",
                &shape,
                &refs,
                flops,
                quick,
            )?);
        }
    }
    Ok(out)
}
