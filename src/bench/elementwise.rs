use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::elementwise;

/// LeakyReLU at the CNN's largest activation (batch 32 · 32×32 · 32 channels).
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let n = 32 * 32 * 32 * 32;
    let x = gpu.storage("bench x", (n * 4) as u64)?;
    let y = gpu.storage("bench y", (n * 4) as u64)?;
    let f = elementwise::forward(gpu, &x, &y, n, 0.2)?;
    let b = elementwise::backward(gpu, &x, &y, n, 0.2)?;
    Ok(vec![
        measure(
            gpu,
            "leaky_relu_forward",
            &format!("n={n}"),
            &[&f],
            Work::Bytes(8.0 * n as f64),
            quick,
        )?,
        measure(
            gpu,
            "leaky_relu_backward",
            &format!("n={n}"),
            &[&b],
            Work::Bytes(12.0 * n as f64),
            quick,
        )?,
    ])
}
