//! BatchNorm benchmarks.

use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::batchnorm::{self, BnBuffers, BnPost, BnShape, EPSILON, MOMENTUM};
use crate::kernels::dropout::DropoutMask;
use crate::kernels::elementwise::ActKind;
use crate::kernels::step::StepUniform;

/// Training forward and backward at the CNN's batch norms (batch 32) and the
/// dense one, alone and with what follows each in the CNN fused in
/// (LeakyReLU(0.2), and Dropout(0.5) after the dense one). Bytes count the
/// row passes only: forward reads x twice (statistics, normalize) and writes
/// y; backward reads x and dy twice and writes dx.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let step = gpu.uniform("bench step", &StepUniform::new(0, 1, 1))?;
    let leaky = Some(ActKind::LeakyRelu(0.2));
    let dropout = Some(DropoutMask {
        rate: 0.5,
        stream: 0,
    });
    for (rows, channels, name, fused) in [
        (32 * 32 * 32, 32, "32x32x32x32", None),
        (32 * 16 * 16, 32, "32x16x16x32", None),
        (32 * 16 * 16, 64, "32x16x16x64", None),
        (32 * 8 * 8, 64, "32x8x8x64", None),
        (32, 128, "32x128 (dense)", None),
        (
            32 * 32 * 32,
            32,
            "32x32x32x32 + leaky_relu",
            Some(BnPost {
                act: leaky,
                dropout: None,
            }),
        ),
        (
            32,
            128,
            "32x128 + leaky_relu + dropout",
            Some(BnPost {
                act: leaky,
                dropout,
            }),
        ),
    ] {
        let s = BnShape { rows, channels };
        let n = (s.len() * 4) as u64;
        let c = (channels * 4) as u64;
        let x = gpu.storage("bench x", n)?;
        let y = gpu.storage("bench y", n)?;
        let dx = gpu.storage("bench dx", n)?;
        let ones = vec![1.0f32; channels];
        let gamma = gpu.upload_storage("bench gamma", &ones)?;
        let beta = gpu.storage("bench beta", c)?;
        let mm = gpu.storage("bench moving mean", c)?;
        let mv = gpu.upload_storage("bench moving var", &ones)?;
        let mean = gpu.storage("bench mean", c)?;
        let inv = gpu.storage("bench inv_std", c)?;
        let dg = gpu.storage("bench dgamma", c)?;
        let db = gpu.storage("bench dbeta", c)?;
        let p = BnBuffers {
            gamma: (&gamma).into(),
            beta: (&beta).into(),
            moving_mean: (&mm).into(),
            moving_var: (&mv).into(),
            save_mean: (&mean).into(),
            save_inv_std: (&inv).into(),
        };
        let post = fused.unwrap_or_default();
        let (fwd_row, bwd_row) = match fused {
            None => ("batchnorm_forward_train", "batchnorm_backward"),
            Some(_) => ("batchnorm_fused_forward_train", "batchnorm_fused_backward"),
        };
        let f = batchnorm::forward_train(gpu, s, &x, &y, &p, (MOMENTUM, EPSILON), post, &step)?;
        let refs: Vec<_> = f.iter().collect();
        out.push(measure(
            gpu,
            fwd_row,
            name,
            &refs,
            Work::Bytes(3.0 * n as f64),
            quick,
        )?);
        let b = batchnorm::backward(gpu, s, &x, &y, &p, (&dx, &dg, &db), post, &step)?;
        let refs: Vec<_> = b.iter().collect();
        out.push(measure(
            gpu,
            bwd_row,
            name,
            &refs,
            Work::Bytes(5.0 * n as f64),
            quick,
        )?);
    }
    Ok(out)
}
