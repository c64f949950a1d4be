//! Activation benchmarks.

use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::elementwise::{self, ActKind};

/// LeakyReLU (the CNN's) and GELU (the costliest kind: an erfc and an exp)
/// at the CNN's largest activation (batch 32 · 32×32 · 32 channels).
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let n = 32 * 32 * 32 * 32;
    let x = gpu.storage("bench x", (n * 4) as u64)?;
    let dy = gpu.storage("bench dy", (n * 4) as u64)?;
    let y = gpu.storage("bench y", (n * 4) as u64)?;
    let mut out = Vec::new();
    for (name, kind) in [
        ("leaky_relu", ActKind::LeakyRelu(0.2)),
        ("gelu", ActKind::Gelu),
    ] {
        let f = elementwise::forward(gpu, kind, &x, &y, n)?;
        let b = elementwise::backward(gpu, kind, &x, &dy, &y, n)?;
        out.push(measure(
            gpu,
            &format!("{name}_forward"),
            &format!("n={n}"),
            &[&f],
            Work::Bytes(8.0 * n as f64),
            quick,
        )?);
        out.push(measure(
            gpu,
            &format!("{name}_backward"),
            &format!("n={n}"),
            &[&b],
            Work::Bytes(12.0 * n as f64),
            quick,
        )?);
    }
    Ok(out)
}
