use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::gemm::{self, Epilogue, GemmShape, Variant};

/// (label, shape, bias+activation, accumulate) as training runs them. The
/// square is 1024³, or 512³ when `quick` (the tiled baseline takes seconds
/// per 1024³ run on lavapipe, too long for a one-minute quick suite).
fn cases(quick: bool) -> Vec<(&'static str, GemmShape, bool, bool)> {
    let s = GemmShape::new;
    let q = if quick { 512 } else { 1024 };
    vec![
        ("square NN", s(q, q, q, false, false), false, false),
        ("square NT", s(q, q, q, false, true), false, false),
        ("square TN", s(q, q, q, true, false), false, false),
        // Dense 3072→200 at batch 32.
        ("mlp fwd NN", s(32, 200, 3072, false, false), true, false),
        ("mlp dX NT", s(32, 3072, 200, false, true), false, false),
        ("mlp dW TN", s(3072, 200, 32, true, false), false, true),
        // im2col Conv2D 3×3, 32→32 channels, batch 32 of 16×16 maps.
        ("conv fwd NN", s(8192, 32, 288, false, false), true, false),
        ("conv dX NT", s(8192, 288, 32, false, true), false, false),
        ("conv dW TN", s(288, 32, 8192, true, false), false, true),
    ]
}

/// Every available variant at a large square and at the MLP's and CNN's
/// shapes; GFLOP/s counts 2·M·N·K.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for variant in gemm::VARIANTS {
        if !gemm::variant_available(gpu, variant) {
            continue;
        }
        for (label, shape, act, acc) in cases(quick) {
            let GemmShape { m, n, k, .. } = shape;
            let a = gpu.storage("bench a", (m * k * 4) as u64)?;
            let b = gpu.storage("bench b", (k * n * 4) as u64)?;
            let bias = gpu.storage("bench bias", (n * 4) as u64)?;
            let c = gpu.storage("bench c", (m * n * 4) as u64)?;
            let (bias, epi) = if act {
                (Some((&bias).into()), Epilogue::LeakyRelu(0.2))
            } else {
                (None, Epilogue::None)
            };
            let ds = gemm::gemm_variant(gpu, variant, shape, &a, &b, bias, &c, epi, acc)?;
            let name = match variant {
                Variant::Tiled => "gemm tiled",
                Variant::RegisterBlocked => "gemm regblock",
                _ => "gemm subgroup",
            };
            out.push(measure(
                gpu,
                name,
                &format!("{label} {m}x{n}x{k}"),
                &ds.iter().collect::<Vec<_>>(),
                Work::Flops(shape.flops()),
                quick,
            )?);
        }
    }
    Ok(out)
}
