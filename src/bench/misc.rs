//! Loss, optimizer and glue kernels at the models' shapes.

use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::adam::{self, AdamConfig};
use crate::kernels::gather::{self, GpuDataset};
use crate::kernels::step::StepUniform;
use crate::kernels::{add, concat, dropout, reduce, softmax_xent};

/// The MLP's parameter count: 3072·200+200 + 200·150+150 + 150·10+10.
const MLP_PARAMS: usize = 646_260;

/// Softmax cross-entropy with the metrics, Adam, gather, dropout, add, concat and column sums.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let step = gpu.uniform("bench step", &StepUniform::new(0, 1, 1))?;

    // Gather of one CIFAR batch from a 1,000-image resident dataset.
    let (len, batch, image) = (1000usize, 32usize, 3072usize);
    let pixels: Vec<u8> = (0..len * image).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..len).map(|i| (i % 10) as u8).collect();
    let ds = GpuDataset::upload(gpu, &pixels, &labels, 32, 32, 3)?;
    let perm: Vec<u32> = (0..len as u32).rev().collect();
    let idx = gpu.upload_storage("bench indices", &perm)?;
    let x = gpu.storage("bench x", (batch * image * 4) as u64)?;
    let y = gpu.storage("bench labels", (batch * 4) as u64)?;
    let d = gather::gather(gpu, &ds, batch, &idx, &step, &x, &y)?;
    out.push(measure(
        gpu,
        "gather",
        "batch=32 of 32x32x3 u8 -> f32",
        &[&d],
        // u8 read, f32 written, labels.
        Work::Bytes((batch * image * 5 + batch * 12) as f64),
        quick,
    )?);

    // Softmax + cross-entropy + metrics at the models' output.
    let (b, k) = (32usize, 10usize);
    let logits = gpu.storage("bench logits", (b * k * 4) as u64)?;
    let lab = gpu.storage("bench labels", (b * 4) as u64)?;
    let dl = gpu.storage("bench dlogits", (b * k * 4) as u64)?;
    let metrics = gpu.storage("bench metrics", 16)?;
    let d = softmax_xent::xent_metrics(gpu, (b, k), &logits, &lab, &metrics, Some((&dl).into()))?;
    out.push(measure(
        gpu,
        "softmax_xent_metrics",
        "32x10",
        &[&d],
        // Logits read, dlogits written, labels, the metrics read and written.
        Work::Bytes((b * k * 8 + b * 4 + 32) as f64),
        quick,
    )?);

    // Adam over the MLP's packed parameters.
    let n = MLP_PARAMS;
    let hyper = gpu.uniform("bench adam", &AdamConfig::default().uniform(1, n))?;
    let bufs: Vec<wgpu::Buffer> = (0..4)
        .map(|_| gpu.storage("bench adam buffer", (n * 4) as u64))
        .collect::<Result<_>>()?;
    let d = adam::update(gpu, n, &hyper, &bufs[0], &bufs[1], &bufs[2], &bufs[3])?;
    out.push(measure(
        gpu,
        "adam_update",
        &format!("n={n} (MLP)"),
        &[&d],
        // Reads θ, g, m, v; writes θ, m, v.
        Work::Bytes((n * 4 * 7) as f64),
        quick,
    )?);

    // Dropout over a 32×128 activation.
    let n = 32 * 128;
    let xin = gpu.storage("bench dropout x", (n * 4) as u64)?;
    let xout = gpu.storage("bench dropout y", (n * 4) as u64)?;
    let d = dropout::forward(gpu, n, 0.5, 0, &step, &xin, &xout)?;
    out.push(measure(
        gpu,
        "dropout_forward",
        "32x128 rate=0.5",
        &[&d],
        Work::Bytes((n * 8) as f64),
        quick,
    )?);

    // Bias gradient of a conv layer: 32·32·32 rows, 32 channels.
    let (rows, cols) = (32_768usize, 32usize);
    let dy = gpu.storage("bench dy", (rows * cols * 4) as u64)?;
    let db = gpu.storage("bench db", (cols * 4) as u64)?;
    let ds = reduce::column_sums(gpu, rows, cols, &dy, &db)?;
    let refs: Vec<_> = ds.iter().collect();
    out.push(measure(
        gpu,
        "column_sums",
        "32768x32",
        &refs,
        Work::Bytes((rows * cols * 4) as f64),
        quick,
    )?);

    // Add (a residual join) and gradient accumulation over the CNN's largest
    // map; Concatenate's copy of 32 + 64 channels of 32·16·16 pixels.
    let n = 32 * 32 * 32 * 32;
    let a = gpu.storage("bench add a", (n * 4) as u64)?;
    let b = gpu.storage("bench add b", (n * 4) as u64)?;
    let c = gpu.storage("bench add c", (n * 4) as u64)?;
    let shape = format!("n={n}");
    let d = add::add(gpu, n, &a, &b, &c)?;
    let bytes = Work::Bytes((n * 12) as f64);
    out.push(measure(gpu, "add", &shape, &[&d], bytes, quick)?);
    let d = add::accumulate(gpu, n, &a, &c)?;
    out.push(measure(gpu, "accumulate", &shape, &[&d], bytes, quick)?);
    let rows = 32 * 16 * 16;
    let (left, right) = (&a, &b);
    let d1 = concat::copy_columns(gpu, rows, 32, left, 32, 0, &c, 96, 0)?;
    let d2 = concat::copy_columns(gpu, rows, 64, right, 64, 0, &c, 96, 32)?;
    out.push(measure(
        gpu,
        "concat_copy_columns",
        "32x16x16 32+64 channels",
        &[&d1, &d2],
        Work::Bytes((rows * 96 * 8) as f64),
        quick,
    )?);
    Ok(out)
}
