//! GEMM benchmarks: every variant, and the tune cache's winners.

use super::{measure, Measurement, Work};
use crate::gpu::{Gpu, Result};
use crate::kernels::gemm::{self, Epilogue, GemmConfig, GemmShape, Variant};
use crate::tune::{Cases, GemmCase, Policy, Tuner};

/// (label, shape, bias+activation, accumulate) as training runs them.
fn cases() -> Vec<(&'static str, GemmShape, bool, bool)> {
    let s = GemmShape::new;
    vec![
        ("square NN", s(1024, 1024, 1024, false, false), false, false),
        ("square NT", s(1024, 1024, 1024, false, true), false, false),
        ("square TN", s(1024, 1024, 1024, true, false), false, true),
        // Dense 3072→200→150 at batch 32: forward, dX, dW.
        ("mlp fwd NN", s(32, 200, 3072, false, false), true, false),
        ("mlp fwd NN", s(32, 150, 200, false, false), true, false),
        ("mlp dX NT", s(32, 3072, 200, false, true), false, false),
        ("mlp dW TN", s(3072, 200, 32, true, false), false, true),
        // im2col Conv2D 3×3 at batch 32: 3→32 on 32×32, 32→32 and 32→64 on
        // 16×16, 64→64 on 8×8; the dense layer after flatten.
        ("conv fwd NN", s(32768, 32, 27, false, false), true, false),
        ("conv fwd NN", s(8192, 32, 288, false, false), true, false),
        ("conv fwd NN", s(8192, 64, 288, false, false), true, false),
        ("conv fwd NN", s(2048, 64, 576, false, false), true, false),
        ("dense fwd NN", s(32, 128, 4096, false, false), true, false),
        ("conv dX NT", s(8192, 288, 32, false, true), false, false),
        ("conv dW TN", s(288, 32, 8192, true, false), false, true),
        ("conv dW TN", s(576, 64, 2048, true, false), false, true),
    ]
}

/// Every available variant at a 1024³ square and at the MLP's and CNN's
/// shapes, then, for each shape the tune cache holds a winner for, that
/// winner (kernel `gemm tuned <label>`); GFLOP/s counts 2·M·N·K.
pub fn run(gpu: &Gpu, quick: bool) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let mut tuner = Tuner::new(gpu, cache_policy());
    let tuned: Vec<GemmCase> = cases()
        .into_iter()
        .map(|(_, shape, act, acc)| GemmCase::new(shape, act, acc))
        .collect();
    let tuned = Cases {
        gemm: tuned,
        conv: Vec::new(),
    };
    let table = tuner.prepare(gpu, &tuned)?.clone();
    for variant in gemm::VARIANTS {
        // The tiled kernel is for real GPUs; on a CPU adapter it takes
        // minutes and is never chosen, so a quick run skips it there.
        if !gemm::variant_available(gpu, variant)
            || (quick && variant == Variant::Tiled && gpu.is_software())
        {
            continue;
        }
        for (label, shape, act, acc) in cases() {
            let config = GemmConfig::for_variant(gpu, variant, shape);
            let name = match variant {
                Variant::Tiled => "gemm tiled",
                Variant::RegisterBlocked => "gemm regblock",
                _ => "gemm subgroup",
            };
            out.push(one(gpu, name, label, config, shape, act, acc, quick)?);
        }
    }
    for (label, shape, act, acc) in cases() {
        if let Some(config) = table.tuned_gemm(GemmCase::new(shape, act, acc)) {
            let name = format!("gemm tuned {}", config.label());
            out.push(one(gpu, &name, label, config, shape, act, acc, quick)?);
        }
    }
    Ok(out)
}

/// The tune cache's winners, unless `GDL_GPU_TUNE=off`; a value that is
/// neither (which the CLI refuses up front) gets the built-in choice.
pub(crate) fn cache_policy() -> Policy {
    Policy::from_env(Policy::Cached).unwrap_or(Policy::BuiltIn)
}

/// Times `config` at `shape` on fresh buffers.
#[allow(clippy::too_many_arguments)]
fn one(
    gpu: &Gpu,
    name: &str,
    label: &str,
    config: GemmConfig,
    shape: GemmShape,
    act: bool,
    acc: bool,
    quick: bool,
) -> Result<Measurement> {
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
    let ds = gemm::gemm_config(gpu, config, shape, &a, &b, bias, &c, epi, acc)?;
    measure(
        gpu,
        name,
        &format!("{label} {m}x{n}x{k}"),
        &ds.iter().collect::<Vec<_>>(),
        Work::Flops(shape.flops()),
        quick,
    )
}
