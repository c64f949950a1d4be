//! A model built in Rust rather than read from a file: a small residual CNN
//! with pooling, trained for `--steps N` steps and evaluated on CIFAR-10's
//! test set.
//!
//!     cargo run --release --example custom_model -- --steps 200 [--data PATH] [--backend cpu]

use gdl_gpu::data::Cifar10;
use gdl_gpu::graph::ops::{
    ActivationLayer, Add, BatchNorm, Conv2d, Dense, GlobalAveragePooling, Pool2d, PoolKind,
};
use gdl_gpu::graph::params::ParamLayout;
use gdl_gpu::graph::{Activation, Graph, GraphError};
use gdl_gpu::kernels::adam::AdamConfig;
use gdl_gpu::kernels::window::Padding;
use gdl_gpu::train::cpu::CpuBackend;
use gdl_gpu::train::gpu::GpuBackend;
use gdl_gpu::train::{fit, Backend, FitConfig, ModelValues};

/// Conv2D(32, 3×3, same) → BatchNorm → ReLU, twice with a skip connection
/// around the pair, then max pooling; global average pooling and a softmax.
fn residual_cnn() -> Result<Graph, GraphError> {
    let mut g = Graph::new("custom_residual", 32, 32, 3);
    let conv = || Conv2d::new(32, 3, 1, Padding::Same).without_bias();
    let relu = || ActivationLayer::new(Activation::Relu);
    let x = g.add(None, conv(), &[0])?;
    let x = g.add(None, BatchNorm::default(), &[x])?;
    let stem = g.add(None, relu(), &[x])?;
    let y = g.add(None, conv(), &[stem])?;
    let y = g.add(None, BatchNorm::default(), &[y])?;
    let y = g.add(None, relu(), &[y])?;
    let y = g.add(None, conv(), &[y])?;
    let y = g.add(None, BatchNorm::default(), &[y])?;
    let sum = g.add(Some("skip"), Add, &[y, stem])?;
    let y = g.add(None, relu(), &[sum])?;
    let y = g.add(None, Pool2d::new(PoolKind::Max, 2), &[y])?;
    let y = g.add(None, GlobalAveragePooling, &[y])?;
    g.add(None, Dense::new(10, Activation::Softmax), &[y])?;
    g.validate(10)?;
    Ok(g)
}

fn main() -> anyhow::Result<()> {
    let mut steps = 100;
    let mut data = None;
    let mut cpu = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--steps" => steps = args.next().and_then(|s| s.parse().ok()).unwrap_or(steps),
            "--data" => data = args.next().map(std::path::PathBuf::from),
            "--backend" => cpu = args.next().as_deref() == Some("cpu"),
            other => anyhow::bail!(
                "unknown argument {other:?} (--steps N, --data PATH, --backend gpu|cpu)"
            ),
        }
    }
    let graph = residual_cnn()?;
    print!("{}", graph.summary());
    let data = Cifar10::load_or_download(data.as_deref())?;
    let init = ModelValues::initial(&ParamLayout::new(&graph), 0);
    let adam = AdamConfig::default();
    let gpu = if cpu {
        None
    } else {
        Some(gdl_gpu::Gpu::new()?)
    };
    let mut backend: Box<dyn Backend> = match &gpu {
        Some(gpu) => Box::new(GpuBackend::new(
            gpu,
            &graph,
            &data.train,
            &data.test,
            adam,
            0,
            &init,
        )?),
        None => Box::new(CpuBackend::new(
            &graph,
            &data.train,
            &data.test,
            adam,
            0,
            &init,
        )?),
    };
    let cfg = FitConfig {
        steps_per_epoch: Some(steps),
        ..FitConfig::new(1, 32, 0)
    };
    let reports = fit(backend.as_mut(), data.train.len, &cfg, |_, _| Ok(()))?;
    let r = reports.last().expect("one epoch");
    println!(
        "{steps} steps on {}: train loss {:.4}, test accuracy {:.4}",
        backend.describe(),
        r.train.loss(),
        r.test.accuracy()
    );
    Ok(())
}
